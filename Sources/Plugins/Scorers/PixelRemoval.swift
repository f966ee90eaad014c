import Foundation
import QuacPluginKit

/// What the scorers that move pixels by importance share (insertion, deletion, ROAD): the order of a
/// sample's pixels by its map, the inputs of a curve that takes a growing fraction of them from another
/// image, the explained class's probabilities, and the area under a curve.
enum PixelRemoval {
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
}
