import Foundation
import QuacPluginKit

/// Max-sensitivity (Captum's `sensitivity_max`): how much a method's map changes when its input moves a
/// little. For perturbations u_k uniform in [-radius, radius] per element, the method is run again on
/// x + u_k (through the host's scored-method service) and the score is
/// max_k ||e(x + u_k) - e(x)|| / ||e(x)|| (Frobenius norms over the sample; a zero ||e(x)|| counts as 1).
/// Lower is better (a more stable explanation). Perturbations are drawn per sample from the seed and the
/// sample's own values.
final class SensitivityMaxScorer: ScorerPlugin {
    static let description = PluginDescription(
        id: "org.quac.sensitivity-max", name: "Max-sensitivity",
        summary: "Largest relative change of a method's map under small uniform input perturbations (Captum's sensitivity_max; lower is better)",
        kind: .scorer)
    let host: HostServices
    let samples: Int, radius: Double

    init(host: HostServices, parameters: Parameters) throws {
        self.host = host
        samples = try parameters.int("n_perturb_samples")
        radius = try parameters.double("perturb_radius")
        guard samples >= 1, radius > 0, radius.isFinite else { throw PluginError.invalid("n_perturb_samples must be >= 1 and perturb_radius > 0") }
    }

    /// max_k ||perturbed_k - e|| / ||e|| (||e|| = 0 counts as 1).
    static func value(explanation e: [Double], perturbed: [[Double]]) -> Double {
        var norm = (e.reduce(0) { $0 + $1 * $1 }).squareRoot()
        if norm == 0 { norm = 1 }
        var best = 0.0
        for p in perturbed {
            var d = 0.0
            for (a, b) in zip(p, e) { d += (a - b) * (a - b) }
            best = max(best, d.squareRoot() / norm)
        }
        return best
    }

    func score(_ batch: Batch) throws -> Outputs {
        let x = batch.x
        let n = batch.count, d = x.count / max(n, 1)
        let out = Tensor(zeros: [n])
        for s in 0..<n {
            try host.checkCancelled()
            /// Sample s repeated samples + 1 times (a new tensor).
            func rows(_ t: Tensor?) -> Tensor? {
                t.map { Tensor.concatenate(Array(repeating: $0.rows(s..<s + 1), count: samples + 1)) }
            }
            // The sample itself and its perturbations in one call: e(x) comes from the same run.
            var rng = SampleNoise.generator(seed: batch.seed, sample: x.floats[(s * d)..<((s + 1) * d)], salt: 0x5E45)
            let inputs = rows(x)!
            for k in 1...samples { for i in 0..<d { inputs.floats[k * d + i] += Float((Double(rng.uniform()) * 2 - 1) * radius) } }
            let maps = try host.scoredMethodAttribute(x: inputs, source: rows(batch.source), target: rows(batch.target), xCF: rows(batch.xCF),
                                                      concepts: rows(batch.concepts), seed: batch.seed)
            let m = maps.count / (samples + 1)
            let e = (0..<m).map { Double(maps.floats[$0]) }
            let perturbed = (1...samples).map { k in (0..<m).map { Double(maps.floats[k * m + $0]) } }
            out.floats[s] = Float(Self.value(explanation: e, perturbed: perturbed))
        }
        return Outputs([("score", out)])
    }
}
