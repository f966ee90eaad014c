import Foundation

/// A tiny dataset with a known answer, for the demo and for tests: noisy grayscale images where class 1
/// has a bright square patch at a fixed place and class 0 has none. It comes with exact
/// counterfactuals (the same image with the patch toggled), the ground-truth mask, and the weights of a
/// linear classifier that detects the patch, so every explanation can be judged against the truth.
public enum ToyDataset {
    public struct Options {
        public var count = 64
        public var size = 16
        public var patch = 4
        public var noise: Float = 0.3
        public var seed: UInt64 = 0
        public init() {}
    }

    /// Writes data.safetensors (images, labels, counterfactuals, masks) and model.safetensors (MLP
    /// classifier weights with hidden = 0) into `dir`.
    public static func write(to dir: URL, options o: Options) throws {
        guard o.count >= 2, o.size >= 4, o.patch >= 1, o.patch < o.size else {
            throw QuacError("data toy: need count >= 2, size >= 4 and 1 <= patch < size")
        }
        var rng = SeededRandom(seed: o.seed)
        let pixels = o.size * o.size
        let top = o.size / 4, left = o.size / 2
        var mask = [Float](repeating: 0, count: pixels)
        for r in top..<min(top + o.patch, o.size) { for c in left..<min(left + o.patch, o.size) { mask[r * o.size + c] = 1 } }
        let brightness: Float = 0.8
        var images: [Float] = [], cfs: [Float] = [], labels: [Int64] = [], masks: [Float] = []
        for i in 0..<o.count {
            let label = Int64(i % 2)
            let noise = (0..<pixels).map { _ in max(-1, min(1, rng.normal() * o.noise)) }
            let withPatch = zip(noise, mask).map { $1 > 0 ? min(1, $0 + brightness) : $0 }
            images += label == 1 ? withPatch : noise
            cfs += label == 1 ? noise : withPatch
            labels.append(label)
            masks += mask
        }
        let shape = [o.count, 1, o.size, o.size]
        try Safetensors.write([("images", Tensor(images, shape: shape)), ("labels", Tensor(labels, shape: [o.count])),
                               ("counterfactuals", Tensor(cfs, shape: shape)), ("masks", Tensor(masks, shape: shape))],
                              metadata: ["generator": "quac-host data toy", "seed": String(o.seed)],
                              to: dir.appendingPathComponent("data.safetensors"))
        // A linear detector: logit_1 - logit_0 = 2 * (sum over the patch) - threshold at half the brightness.
        let area = Float(mask.reduce(0, +))
        let weight = mask.map { -$0 } + mask
        let bias: [Float] = [0, -brightness * area / 2]
        try Safetensors.write([("fc2.weight", Tensor(weight, shape: [2, pixels])), ("fc2.bias", Tensor(bias, shape: [2]))],
                              metadata: ["architecture": #"{"kind": "mlp", "hidden": 0}"#],
                              to: dir.appendingPathComponent("model.safetensors"))
    }
}
