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

    /// Pixels of one sample by importance (the map summed over channels), most important first; ties
    /// keep pixel order.
    static func order(_ map: UnsafeMutableBufferPointer<Float>, sample s: Int, channels: Int, pixels: Int) -> [Int] {
        let base = s * channels * pixels
        let importance = (0..<pixels).map { p in (0..<channels).reduce(Float(0)) { $0 + map[base + $1 * pixels + p] } }
        return (0..<pixels).sorted { importance[$0] > importance[$1] || (importance[$0] == importance[$1] && $0 < $1) }
    }

    /// The inputs of one sample's curve [steps + 1, sample shape...]: x with the first round(k / steps *
    /// pixels) pixels of `order` taken from `from`.
    static func path(_ x: Tensor, _ from: Tensor, sample s: Int, order: [Int], steps: Int, channels: Int, pixels: Int) -> Tensor {
        let size = channels * pixels, base = s * size
        let out = Tensor(zeros: [steps + 1] + x.shape.dropFirst())
        let o = out.floats, xs = x.floats, fs = from.floats
        for k in 0...steps {
            let replaced = Int((Double(k) / Double(steps) * Double(pixels)).rounded())
            for i in 0..<size { o[k * size + i] = xs[base + i] }
            for p in order.prefix(replaced) { for ch in 0..<channels { o[k * size + ch * pixels + p] = fs[base + ch * pixels + p] } }
        }
        return out
    }

    /// Softmax probability of `column` for each row of logits [R, classes].
    static func probabilities(_ logits: Tensor, column: Int) -> [Double] {
        let classes = logits.shape[1], l = logits.floats
        var out: [Double] = []
        for r in 0..<logits.shape[0] {
            let row: [Double] = (0..<classes).map { Double(l[r * classes + $0]) }
            let m = row.max()!
            var z = 0.0
            for v in row { z += exp(v - m) }
            out.append(exp(row[column] - m) / z)
        }
        return out
    }

    /// Trapezoid area of values at evenly spaced fractions 0...1.
    static func area(_ v: [Double]) -> Double {
        guard v.count > 1 else { return v.first ?? 0 }
        var total = 0.0
        for i in 1..<v.count { total += (v[i] + v[i - 1]) / 2 }
        return total / Double(v.count - 1)
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
            let order = Self.order(map.floats, sample: s, channels: channels, pixels: pixels)
            let probs = Self.probabilities(try host.classifierForward(Self.path(x, from, sample: s, order: order, steps: steps, channels: channels, pixels: pixels)), column: y)
            for k in 0...steps { curves.floats[s * (steps + 1) + k] = Float(probs[k]) }
            scores.floats[s] = Float(Self.area(probs))
        }
        return Outputs([("score", scores), ("curve", curves)], json: ["curve_axes": [
            "x": .array((0...steps).map { .double(Double($0) / Double(steps)) }),
            "x_label": "fraction of pixels replaced by the baseline", "y_label": "probability of the explained class"]])
    }
}
