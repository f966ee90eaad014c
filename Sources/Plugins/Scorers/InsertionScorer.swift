import Foundation
import QuacPluginKit

/// Counterfactual insertion curve: copy the most attributed pixels of x_cf into x, a growing fraction
/// at a time, and record how the target probability rises. The score is the area under that curve
/// (fraction copied vs. change in target probability), so a map that finds the few pixels that matter
/// scores high. It is QuAC's evaluation without the morphology and blur of the QuAC scorer.
final class InsertionScorer: ScorerPlugin {
    static let description = PluginDescription(
        id: "org.quac.insertion", name: "Counterfactual insertion",
        summary: "Area under the target-probability curve as the top-attributed pixels are taken from the counterfactual",
        kind: .scorer)
    let host: HostServices
    let steps: Int

    init(host: HostServices, parameters: Parameters) throws {
        self.host = host
        steps = try parameters.int("steps")
        guard steps >= 1 else { throw PluginError.invalid("steps must be >= 1") }
    }

    func score(_ batch: Batch) throws -> Outputs {
        let cf = try batch.requireCounterfactual()
        let targets = try batch.requireTarget()
        guard let map = batch.attribution else { throw PluginError.invalid("attribution is required") }
        let x = batch.x
        guard x.rank >= 2 else { throw PluginError.invalid("x: expected [N, ...], got \(x.shape)") }
        let n = batch.count
        let (spec, _) = try host.classifierInfo()
        let channels = x.rank == 4 ? x.shape[1] : 1
        let pixels = x.count / max(n, 1) / channels
        let scores = Tensor(zeros: [n])
        let curves = Tensor(zeros: [n, steps + 1])
        for s in 0..<n {
            try host.checkCancelled()
            let t = Int(targets[s])
            guard t >= 0, t < spec.numClasses else { throw PluginError.invalid("target \(t) of sample \(s) is outside [0, \(spec.numClasses))") }
            let order = PixelRemoval.order(map.floats, sample: s, channels: channels, pixels: pixels)
            // All hybrids of one query go through the classifier as one batch.
            let hybrids = PixelRemoval.path(x, cf, sample: s, order: order, steps: steps, channels: channels, pixels: pixels)
            let probs = PixelRemoval.probabilities(try host.classifierForward(hybrids), column: t)
            var area: Double = 0
            for k in 0...steps {
                curves.floats[s * (steps + 1) + k] = Float(probs[k] - probs[0])
                if k > 0 { area += (probs[k] - probs[0] + probs[k - 1] - probs[0]) / 2 / Double(steps) }
            }
            scores.floats[s] = Float(area)
        }
        let fractions = (0...steps).map { JSONValue.double(Double($0) / Double(steps)) }
        return Outputs([("score", scores), ("curve", curves)], json: ["curve_axes": ["x": .array(fractions), "x_label": "fraction of pixels from the counterfactual",
                                                                                     "y_label": "change of the target's probability"]])
    }
}
