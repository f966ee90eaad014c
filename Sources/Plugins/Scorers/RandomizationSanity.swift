import Foundation
import QuacPluginKit

/// The model-randomisation sanity check (Adebayo et al. 2018): the classifier's layers are re-drawn
/// cascading from the output (the top one, then the top two, ...) and the method run again on the same
/// inputs each time; per sample and level, the Spearman rank correlation between the absolute values of
/// the map on the trained classifier and the map on the randomised one (both computed in this call, with
/// its seed). A method that explains the model
/// loses its map as the model goes (low correlation); one that ignores the model keeps it (near 1).
/// Score: the correlation with every listed layer re-drawn (lower is better); "curve": one value per
/// level. Needs a classifier that offers QUAC_EXT_CLASSIFIER_RANDOMIZE (the engine's CNN does).
final class RandomizationSanityScorer: ScorerPlugin {
    static let description = PluginDescription(
        id: "org.quac.randomization-sanity", name: "Model randomisation sanity check",
        summary: "Rank correlation of a method's maps before and after cascading randomisation of the classifier's layers (Adebayo et al. 2018; lower is better)",
        kind: .scorer)
    let host: HostServices
    let levels: Int, seed: UInt64

    init(host: HostServices, parameters: Parameters) throws {
        self.host = host
        levels = try parameters.int("levels")
        seed = UInt64(try parameters.int("seed"))
        guard levels >= 1 else { throw PluginError.invalid("levels must be >= 1") }
    }

    /// Ranks with ties at their average rank (1-based).
    static func ranks(_ v: [Double]) -> [Double] {
        let order = v.indices.sorted { v[$0] < v[$1] }
        var out = [Double](repeating: 0, count: v.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && v[order[j + 1]] == v[order[i]] { j += 1 }
            let rank = Double(i + j) / 2 + 1
            for k in i...j { out[order[k]] = rank }
            i = j + 1
        }
        return out
    }

    static func spearman(_ a: [Double], _ b: [Double]) -> Double {
        FaithfulnessCorrelationScorer.pearson(ranks(a), ranks(b))
    }

    func score(_ batch: Batch) throws -> Outputs {
        let n = batch.count
        // The method re-run on the trained classifier with this call's seed: a method that draws random
        // numbers draws the same ones in every run below, so only the classifier changes.
        let original = try host.scoredMethodAttribute(x: batch.x, source: batch.source, target: batch.target, xCF: batch.xCF,
                                                      concepts: batch.concepts, seed: batch.seed)
        let d = original.count / max(n, 1)
        let scores = Tensor(zeros: [n]), curves = Tensor(zeros: [n, levels])
        for level in 1...levels {
            try host.checkCancelled()
            let randomized = try host.scoredMethodAttributeRandomized(count: level, randomSeed: seed, x: batch.x, source: batch.source,
                                                                      target: batch.target, xCF: batch.xCF, concepts: batch.concepts, seed: batch.seed)
            guard randomized.count == original.count else { throw PluginError.invalid("the re-run method's map has shape \(randomized.shape), the original \(original.shape)") }
            for s in 0..<n {
                let a = (0..<d).map { Double(abs(original.floats[s * d + $0])) }
                let b = (0..<d).map { Double(abs(randomized.floats[s * d + $0])) }
                let r = Self.spearman(a, b)
                curves.floats[s * levels + level - 1] = Float(r)
                if level == levels { scores.floats[s] = Float(r) }
            }
            host.progress(level, of: levels, "randomised layers")
        }
        return Outputs([("score", scores), ("curve", curves)], json: ["curve_axes": [
            "x": .array((1...levels).map { .double(Double($0)) }), "x_label": "layers re-drawn from the output",
            "y_label": "rank correlation with the trained model's map"]])
    }
}
