import Foundation
import QuacPluginKit

/// Faithfulness correlation (Bhatt et al. 2020): for random subsets S of pixels, the Pearson
/// correlation between the map's sum over S and the drop of the explained class's logit when S is set
/// to the baseline (zeros, or the counterfactual). A faithful map correlates: higher is better.
/// Subsets are drawn per sample from the seed and the sample's own values.
final class FaithfulnessCorrelationScorer: ScorerPlugin {
    static let description = PluginDescription(
        id: "org.quac.faithfulness-correlation", name: "Faithfulness correlation",
        summary: "Correlation of a map's sums over random pixel subsets with the logit drop when they are removed (Bhatt et al. 2020)",
        kind: .scorer)
    let host: HostServices
    let subsets: Int, subsetSize: Int, baseline: String

    init(host: HostServices, parameters: Parameters) throws {
        self.host = host
        subsets = try parameters.int("n_subsets")
        subsetSize = try parameters.int("subset_size")
        baseline = try parameters.string("baseline")
        guard subsets >= 2, subsetSize >= 1 else { throw PluginError.invalid("n_subsets must be >= 2 and subset_size >= 1") }
        guard baseline == "zeros" || baseline == "counterfactual" else { throw PluginError.invalid("baseline must be \"zeros\" or \"counterfactual\"") }
    }

    /// Pearson correlation (0 when either side is constant).
    static func pearson(_ a: [Double], _ b: [Double]) -> Double {
        let n = Double(a.count), ma = a.reduce(0, +) / n, mb = b.reduce(0, +) / n
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for (x, y) in zip(a, b) { sab += (x - ma) * (y - mb); saa += (x - ma) * (x - ma); sbb += (y - mb) * (y - mb) }
        return saa > 0 && sbb > 0 ? sab / (saa * sbb).squareRoot() : 0
    }

    func score(_ batch: Batch) throws -> Outputs {
        let x = batch.x
        guard let map = batch.attribution else { throw PluginError.invalid("attribution is required") }
        let sources = try batch.requireSource()
        let from = baseline == "counterfactual" ? try batch.requireCounterfactual() : Tensor(zeros: x.shape)
        let n = batch.count, d = x.count / max(n, 1)
        let channels = x.rank == 4 ? x.shape[1] : 1, pixels = d / channels
        guard subsetSize <= pixels else { throw PluginError.invalid("subset_size \(subsetSize) is larger than the \(pixels) pixels of a sample") }
        let (spec, _) = try host.classifierInfo()
        let out = Tensor(zeros: [n])
        for s in 0..<n {
            try host.checkCancelled()
            let y = Int(sources[s])
            guard y >= 0, y < spec.numClasses else { throw PluginError.invalid("source \(y) of sample \(s) is outside [0, \(spec.numClasses))") }
            var rng = SampleNoise.generator(seed: batch.seed, sample: x.floats[(s * d)..<((s + 1) * d)], salt: 0xFA17)
            let inputs = Tensor(zeros: [subsets + 1] + x.shape.dropFirst())
            for k in 0...subsets { for i in 0..<d { inputs.floats[k * d + i] = x.floats[s * d + i] } }
            var sums: [Double] = []
            for k in 1...subsets {
                var order = Array(0..<pixels)
                for i in 0..<subsetSize { order.swapAt(i, i + Int(rng.next() % UInt64(pixels - i))) }   // a partial Fisher-Yates: subsetSize distinct pixels
                var sum = 0.0
                for p in order.prefix(subsetSize) {
                    for ch in 0..<channels {
                        let i = ch * pixels + p
                        sum += Double(map.floats[s * d + i])
                        inputs.floats[k * d + i] = from.floats[s * d + i]
                    }
                }
                sums.append(sum)
            }
            let logits = try host.classifierForward(inputs)
            let c = spec.numClasses
            let drops = (1...subsets).map { Double(logits.floats[y]) - Double(logits.floats[$0 * c + y]) }
            out.floats[s] = Float(Self.pearson(sums, drops))
        }
        return Outputs([("score", out)])
    }
}
