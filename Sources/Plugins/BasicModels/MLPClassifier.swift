import COpenBLAS
import Foundation
import QuacPluginKit

/// A small fully connected classifier, x -> ReLU(W1 x + b1) -> W2 h + b2 (or W x + b with hidden = 0),
/// with exact gradients and both modified backward rules. It is the reference model of the host's own
/// tests and conformance checks: its DeepLift rescale satisfies summation-to-delta exactly.
final class MLPClassifier: ClassifierPlugin {
    static let description = PluginDescription(
        id: "org.quac.mlp-classifier", name: "MLP classifier",
        summary: "Fully connected ReLU network (or linear model) with exact gradients and DeepLift/guided backprop rules",
        kind: .classifier, reentrant: true)

    let spec: ClassifierSpec
    let inputSize: Int
    let hidden: Int
    /// Row-major weights: w1 [hidden, D], w2 [classes, hidden] (or w2 [classes, D] when hidden == 0).
    var w1: [Float], b1: [Float], w2: [Float], b2: [Float]
    let parameters: Parameters
    let host: HostServices

    init(host: HostServices, parameters: Parameters) throws {
        self.parameters = parameters
        self.host = host
        _ = try Settings(parameters)   // training settings are checked when the instance is made
        let classes = try parameters.int("num_classes")
        let shape = try parameters.ints("input_shape")
        guard classes >= 1, !shape.isEmpty, shape.allSatisfy({ $0 >= 1 }) else {
            throw PluginError.invalid("num_classes must be >= 1 and input_shape a list of positive sizes")
        }
        spec = ClassifierSpec(numClasses: classes, sampleShape: shape)
        if let problem = MemoryBudget.problem(shape.enumerated().map { ("input_shape[\($0.offset)]", $0.element) }) {
            throw PluginError.invalid("one sample of input_shape \(shape): \(problem)")
        }
        inputSize = shape.reduce(1, *)
        hidden = try parameters.int("hidden")
        let hiddenOrInput = hidden > 0 ? hidden : inputSize
        let weights = hidden > 0 ? [("hidden", hidden), ("inputs", inputSize)] : [("num_classes", classes), ("inputs", inputSize)]
        for w in [weights, [("num_classes", classes), ("hidden or inputs", hiddenOrInput)]] {
            if let problem = MemoryBudget.problem(w) { throw PluginError.invalid("the weights: \(problem)") }
        }
        if let path = try parameters.optionalString("weights") {
            (w1, b1, w2, b2) = try MLPClassifier.loadWeights(URL(fileURLWithPath: path), hidden: hidden, inputSize: inputSize, classes: classes)
        } else {
            // Kaiming-uniform-like initialisation from the seed, so a parameter set is a model.
            var rng = SeededRandom(seed: UInt64(try parameters.int("seed")))
            func init_(_ n: Int, fanIn: Int) -> [Float] {
                let bound = (6 / Float(fanIn)).squareRoot()
                return (0..<n).map { _ in (rng.uniform() * 2 - 1) * bound }
            }
            if hidden > 0 {
                w1 = init_(hidden * inputSize, fanIn: inputSize); b1 = init_(hidden, fanIn: inputSize).map { $0 * 0.1 }
            } else { w1 = []; b1 = [] }
            w2 = init_(classes * hiddenOrInput, fanIn: hiddenOrInput); b2 = init_(classes, fanIn: hiddenOrInput).map { $0 * 0.1 }
        }
    }

    var supportsModifiedBackward: Bool { true }

    /// Weights from a safetensors file: fc1.* (absent when hidden == 0) and fc2.*.
    static func loadWeights(_ url: URL, hidden: Int, inputSize: Int, classes: Int) throws -> ([Float], [Float], [Float], [Float]) {
        let file: SafetensorsFile
        do { file = try Safetensors.read(url) } catch { throw PluginError.io("weights: \(error)") }
        func load(_ name: String, _ shape: [Int]) throws -> [Float] {
            guard let t = file.tensors[name] else { throw PluginError.io("\(url.path): no tensor \"\(name)\"") }
            guard t.dtype == .float32, t.shape == shape else {
                throw PluginError.io("\(url.path): tensor \"\(name)\" is \(t.dtype.displayName) \(t.shape), expected float32 \(shape)")
            }
            return t.floatArray()
        }
        let width = hidden > 0 ? hidden : inputSize
        let w1 = hidden > 0 ? try load("fc1.weight", [hidden, inputSize]) : []
        let b1 = hidden > 0 ? try load("fc1.bias", [hidden]) : []
        return (w1, b1, try load("fc2.weight", [classes, width]), try load("fc2.bias", [classes]))
    }

    private func check(_ x: Tensor) throws -> Int {
        guard x.dtype == .float32 else { throw PluginError.invalid("x: expected float32, got \(x.dtype.displayName)") }
        guard x.rank == spec.sampleShape.count + 1, Array(x.shape.dropFirst()) == spec.sampleShape else {
            throw PluginError.invalid("x: expected [N, \(spec.sampleShape.map(String.init).joined(separator: ", "))], got \(x.shape)")
        }
        guard x.isFinite else { throw PluginError.invalid("x contains NaN or infinity") }
        return x.shape[0]
    }

    /// Pre-activations z = W1 x + b1 of one sample.
    private func preActivation(_ x: UnsafeMutableBufferPointer<Float>, _ n: Int) -> [Float] {
        (0..<hidden).map { j in
            var s = b1[j]
            let row = j * inputSize, base = n * inputSize
            for i in 0..<inputSize { s += w1[row + i] * x[base + i] }
            return s
        }
    }

    func forward(_ x: Tensor) throws -> Tensor {
        let n = try check(x)
        let k = spec.numClasses, width = hidden > 0 ? hidden : inputSize
        let out = Tensor(zeros: [n, k])
        guard n > 0 else { return out }
        // One matrix-vector product per sample and layer (BLAS), not one GEMM per batch: a sample's
        // logits are then bit-for-bit the same whatever batch it comes in, which batch-invariance
        // checks and resumable runs rely on.
        let xs = x.floats, o = out.floats
        var h = [Float](repeating: 0, count: width)
        let largest = max(hidden * inputSize, k * width)
        if largest < SingleThreadedBLAS.threshold {
            SingleThreadedBLAS.run { forwardRows(xs, n: n, into: o, hiddenScratch: &h) }
        } else {
            forwardRows(xs, n: n, into: o, hiddenScratch: &h)
        }
        return out
    }

    private func forwardRows(_ xs: UnsafeMutableBufferPointer<Float>, n: Int, into o: UnsafeMutableBufferPointer<Float>,
                             hiddenScratch h: inout [Float]) {
        let k = spec.numClasses, width = hidden > 0 ? hidden : inputSize
        for s in 0..<n {
            let input = xs.baseAddress! + s * inputSize
            if hidden > 0 {
                w1.withUnsafeBufferPointer { w in
                    cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(hidden), Int32(inputSize), 1, w.baseAddress, Int32(inputSize),
                                input, 1, 0, &h, 1)
                }
                for j in 0..<hidden { h[j] = max(h[j] + b1[j], 0) }
            }
            w2.withUnsafeBufferPointer { w in
                h.withUnsafeBufferPointer { hp in
                    cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(k), Int32(width), 1, w.baseAddress, Int32(width),
                                hidden > 0 ? hp.baseAddress : UnsafePointer(input), 1, 0, o.baseAddress! + s * k, 1)
                }
            }
            for c in 0..<k { o[s * k + c] += b2[c] }
        }
    }

    /// grad_x given, per sample, how the gradient at the hidden pre-activations is formed from the
    /// gradient at the hidden outputs (plain ReLU derivative, rescale multiplier, or guided).
    private func backward(_ x: Tensor, _ g: Tensor, hiddenRule: (_ z: [Float], _ sample: Int, _ gh: [Float]) -> [Float]) throws -> Tensor {
        let n = try check(x)
        guard g.dtype == .float32, g.shape == [n, spec.numClasses] else {
            throw PluginError.invalid("grad_logits: expected float32 [\(n), \(spec.numClasses)], got \(g.shape)")
        }
        let gx = Tensor(zeros: x.shape)
        let xs = x.floats, gs = g.floats, out = gx.floats
        let width = hidden > 0 ? hidden : inputSize
        for s in 0..<n {
            var gh = [Float](repeating: 0, count: width)
            for k in 0..<spec.numClasses {
                let gk = gs[s * spec.numClasses + k]
                for j in 0..<width { gh[j] += gk * w2[k * width + j] }
            }
            if hidden == 0 {
                for i in 0..<inputSize { out[s * inputSize + i] = gh[i] }
                continue
            }
            let gz = hiddenRule(preActivation(xs, s), s, gh)
            for j in 0..<hidden where gz[j] != 0 {
                for i in 0..<inputSize { out[s * inputSize + i] += gz[j] * w1[j * inputSize + i] }
            }
        }
        return gx
    }

    func vjp(_ x: Tensor, gradLogits: Tensor) throws -> (logits: Tensor, gradX: Tensor)? {
        let gx = try backward(x, gradLogits) { z, _, gh in zip(z, gh).map { $0 > 0 ? $1 : 0 } }
        return (try forward(x), gx)
    }

    func vjpRule(_ rule: quac_backward_rule, x: Tensor, baseline: Tensor?, gradLogits: Tensor) throws -> Tensor? {
        switch rule {
        case QUAC_RULE_GUIDED_BACKPROP:
            return try backward(x, gradLogits) { z, _, gh in zip(z, gh).map { $0 > 0 && $1 > 0 ? $1 : 0 } }
        case QUAC_RULE_DEEPLIFT_RESCALE:
            guard let baseline else { throw PluginError.invalid("DeepLift needs a baseline") }
            _ = try check(baseline)
            let bs = baseline.floats
            return try backward(x, gradLogits) { z, s, gh in
                let z0 = self.preActivation(bs, s)
                return (0..<z.count).map { j in
                    let dz = z[j] - z0[j]
                    let m = abs(dz) < 1e-7 ? (z[j] > 0 ? 1 : 0) : (max(z[j], 0) - max(z0[j], 0)) / dz
                    return gh[j] * m
                }
            }
        default:
            return nil
        }
    }
}
