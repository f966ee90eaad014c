import Foundation
import QuacPluginKit

/// Infidelity (Captum's `infidelity`): how well a map predicts the change of the explained class's
/// logit under random perturbations. For perturbations I_k of a sample (k = 1..n), with a the map,
/// e_k = sum(I_k * a) - (f(x) - f(x - I_k)); infidelity = mean_k e_k^2. With normalization the map is
/// first scaled by the least-squares beta = mean_k(s_k d_k) / mean_k(s_k^2) (s_k = sum(I_k * a),
/// d_k = f(x) - f(x - I_k)), so only the map's shape counts. Lower is better. The map is the method's raw
/// map (its scale matters); perturbations are Gaussian or uniform noise, drawn per sample from the seed
/// and the sample's own values.
final class InfidelityScorer: ScorerPlugin {
    static let description = PluginDescription(
        id: "org.quac.infidelity", name: "Infidelity",
        summary: "Mean squared error between a map's predicted and the classifier's actual logit change under noise (Captum's infidelity; lower is better)",
        kind: .scorer)
    let host: HostServices
    let samples: Int, std: Double, normalize: Bool
    /// The noise function: "gaussian" (standard deviation noise_std) or "uniform" (in [-noise_std, noise_std]).
    let noise: String

    init(host: HostServices, parameters: Parameters) throws {
        self.host = host
        samples = try parameters.int("n_perturb_samples")
        std = try parameters.double("noise_std")
        normalize = try parameters.bool("normalize")
        noise = try parameters.string("noise")
        guard noise == "gaussian" || noise == "uniform" else { throw PluginError.invalid("noise must be \"gaussian\" or \"uniform\", got \"\(noise)\"") }
        guard samples >= 1, std > 0, std.isFinite else { throw PluginError.invalid("n_perturb_samples must be >= 1 and noise_std > 0") }
    }

    /// The infidelity of one sample from its map, its perturbations I_k and the explained logit at x
    /// and at each x - I_k.
    static func value(map: [Double], perturbations: [[Double]], logit: Double, perturbedLogits: [Double], normalize: Bool) -> Double {
        let s = perturbations.map { p in zip(p, map).reduce(0) { $0 + $1.0 * $1.1 } }
        let d = perturbedLogits.map { logit - $0 }
        var beta = 1.0
        if normalize {
            let num = zip(s, d).reduce(0) { $0 + $1.0 * $1.1 } / Double(s.count)
            let den = s.reduce(0) { $0 + $1 * $1 } / Double(s.count)
            beta = den > 0 ? num / den : 0
        }
        return zip(s, d).reduce(0) { $0 + (beta * $1.0 - $1.1) * (beta * $1.0 - $1.1) } / Double(s.count)
    }

    func score(_ batch: Batch) throws -> Outputs {
        let x = batch.x
        guard let map = batch.maps.first?.1 ?? batch.attribution else { throw PluginError.invalid("attribution is required") }
        let sources = try batch.requireSource()
        let n = batch.count, d = x.count / max(n, 1)
        let (spec, _) = try host.classifierInfo()
        let out = Tensor(zeros: [n])
        for s in 0..<n {
            try host.checkCancelled()
            let y = Int(sources[s])
            guard y >= 0, y < spec.numClasses else { throw PluginError.invalid("source \(y) of sample \(s) is outside [0, \(spec.numClasses))") }
            var rng = SampleNoise.generator(seed: batch.seed, sample: x.floats[(s * d)..<((s + 1) * d)], salt: 0x1F1D)
            let perturbations = (0..<samples).map { _ in
                (0..<d).map { _ in noise == "gaussian" ? Double(rng.normal()) * std : (Double(rng.uniform()) * 2 - 1) * std }
            }
            // x and every x - I_k in one forward pass.
            let inputs = Tensor(zeros: [samples + 1] + x.shape.dropFirst())
            for i in 0..<d { inputs.floats[i] = x.floats[s * d + i] }
            for (k, p) in perturbations.enumerated() { for i in 0..<d { inputs.floats[(k + 1) * d + i] = Float(Double(x.floats[s * d + i]) - p[i]) } }
            let logits = try host.classifierForward(inputs)
            let c = spec.numClasses
            let f = (0...samples).map { Double(logits.floats[$0 * c + y]) }
            out.floats[s] = Float(Self.value(map: (0..<d).map { Double(map.floats[s * d + $0]) }, perturbations: perturbations,
                                             logit: f[0], perturbedLogits: Array(f.dropFirst()), normalize: normalize))
        }
        return Outputs([("score", out)])
    }
}
