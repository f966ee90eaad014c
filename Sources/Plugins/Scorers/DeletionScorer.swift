import Foundation
import QuacPluginKit

/// Deletion: the mirror of insertion. The most attributed pixels of x are replaced by a baseline (the
/// counterfactual, or zeros), a growing fraction at a time, and the probability of the explained class
/// recorded; the score is the area under that curve (fraction replaced vs. probability). A map that
/// finds what the classifier relies on makes the probability fall fast: lower is better.
final class DeletionScorer: ScorerPlugin {
    static let description = PluginDescription(
        id: "org.quac.deletion", name: "Deletion",
        summary: "Area under the explained class's probability as the top-attributed pixels are replaced by a baseline (lower is better)",
        kind: .scorer)
    let host: HostServices
    let steps: Int
    let baseline: String

    init(host: HostServices, parameters: Parameters) throws {
        self.host = host
        steps = try parameters.int("steps")
        baseline = try parameters.string("baseline")
        guard steps >= 1 else { throw PluginError.invalid("steps must be >= 1") }
        guard baseline == "counterfactual" || baseline == "zeros" else { throw PluginError.invalid("baseline must be \"counterfactual\" or \"zeros\", got \"\(baseline)\"") }
    }

    func score(_ batch: Batch) throws -> Outputs {
        let x = batch.x
        guard let map = batch.attribution else { throw PluginError.invalid("attribution is required") }
        guard x.rank >= 2 else { throw PluginError.invalid("x: expected [N, ...], got \(x.shape)") }
        let sources = try batch.requireSource()
        let from = baseline == "counterfactual" ? try batch.requireCounterfactual() : Tensor(zeros: x.shape)
        let n = batch.count
        let (spec, _) = try host.classifierInfo()
        let channels = x.rank == 4 ? x.shape[1] : 1
        let pixels = x.count / max(n, 1) / channels
        let scores = Tensor(zeros: [n]), curves = Tensor(zeros: [n, steps + 1])
        for s in 0..<n {
            try host.checkCancelled()
            let y = Int(sources[s])
            guard y >= 0, y < spec.numClasses else { throw PluginError.invalid("source \(y) of sample \(s) is outside [0, \(spec.numClasses))") }
            let order = PixelRemoval.order(map.floats, sample: s, channels: channels, pixels: pixels)
            let probs = PixelRemoval.probabilities(try host.classifierForward(PixelRemoval.path(x, from, sample: s, order: order, steps: steps, channels: channels, pixels: pixels)), column: y)
            for k in 0...steps { curves.floats[s * (steps + 1) + k] = Float(probs[k]) }
            scores.floats[s] = Float(PixelRemoval.area(probs))
        }
        return Outputs([("score", scores), ("curve", curves)], json: ["curve_axes": [
            "x": .array((0...steps).map { .double(Double($0) / Double(steps)) }),
            "x_label": "fraction of pixels replaced by the baseline", "y_label": "probability of the explained class"]])
    }
}
