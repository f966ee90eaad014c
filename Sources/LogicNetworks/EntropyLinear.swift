import Engine
import Foundation

/// The entropy layer of a logic explained network: per class i, a linear map of the concepts whose
/// inputs are weighted by how much the class attends to each concept. With weights W [r, h, k]:
/// gamma_ij = ||W_i,:,j||_1, alpha_i = softmax_j(gamma_ij / tau), alpha~_i = alpha_i / max_j alpha_ij;
/// output_i = (c * alpha~_i) W_i^T + b_i, so the output is [N, r, h]. A concept j is in class i's mask
/// when alpha~_ij > 0.5. Parameter names and layouts are torch_explain's EntropyLinear ("weight"
/// [r, h, k], "bias" [r, 1, h]), so weights move both ways.
public final class EntropyLinear: Module, @unchecked Sendable {
    public private(set) var weight: Var
    public private(set) var bias: Var
    public let temperature: Float

    /// Uniform in +-1/sqrt(h * k) (PyTorch's fan-in of a [r, h, k] tensor, as torch_explain draws it).
    public init(concepts k: Int, hidden h: Int, classes r: Int, temperature: Float = 0.6, rng: inout RandomGenerator) {
        let bound = 1 / Float(h * k).squareRoot()
        weight = Var(.uniform([r, h, k], low: -bound, high: bound, rng: &rng), requiresGrad: true)
        bias = Var(.uniform([r, 1, h], low: -bound, high: bound, rng: &rng), requiresGrad: true)
        self.temperature = temperature
    }

    public var classes: Int { weight.shape[0] }
    public var concepts: Int { weight.shape[2] }

    /// alpha and alpha~ [r, k], differentiable in the weights.
    public func attention() -> (alpha: Var, normalized: Var) {
        let gamma = weight.abs().sum(axes: [1])
        let alpha = (gamma / temperature).softmax(axis: 1)
        return (alpha, alpha / alpha.max(axes: [1], keepDims: true))
    }

    /// The concept mask [r][k]: alpha~ > 0.5.
    public func mask() -> [[Bool]] {
        let a = noGrad { attention().normalized }.array, k = concepts
        return (0..<classes).map { i in (0..<k).map { a[i * k + $0] > 0.5 } }
    }

    /// c [N, k] -> [N, r, h].
    public override func forward(_ c: Var) -> Var {
        let (r, k) = (classes, concepts)
        precondition(c.rank == 2 && c.shape[1] == k, "entropy layer of \(k) concepts given \(c.shape)")
        let n = c.shape[0]
        let weighted = c.reshape([1, n, k]) * attention().normalized.reshape([r, 1, k])   // [r, N, k]
        let out = weighted.matmul(weight.transpose(1, 2)) + bias                          // [r, N, h]
        return out.permute([1, 0, 2])
    }

    /// -sum alpha log alpha over classes and concepts: small when each class attends to few concepts.
    public func entropy() -> Var {
        let alpha = attention().alpha
        return -(alpha * alpha.log()).sum()
    }

    public override var localParameters: [(String, Var)] { [("weight", weight), ("bias", bias)] }
    public override func replaceLocalParameter(_ name: String, with value: Var) {
        if name == "weight" { weight = value } else if name == "bias" { bias = value } else { super.replaceLocalParameter(name, with: value) }
    }
}

/// A logic explained network: the entropy layer, then layers shared by the classes down to one logit
/// per class: [EntropyLinear(k -> h0), LeakyReLU, Linear(h0 -> h1), LeakyReLU, ..., Linear(-> 1)].
/// Children are named "0", "1", ... as torch_explain's nn.Sequential of the same layers, so state
/// dicts are interchangeable.
public final class LogicNetwork: Module, @unchecked Sendable {
    public let entropy: EntropyLinear
    let layers: [Module]
    public let slope: Float

    public init(concepts k: Int, classes r: Int, hidden: [Int], temperature: Float = 0.6, slope: Float = 0.01, seed: UInt64) {
        precondition(!hidden.isEmpty, "a logic network needs the entropy layer's width")
        var rng = RandomGenerator(seed: seed)
        entropy = EntropyLinear(concepts: k, hidden: hidden[0], classes: r, temperature: temperature, rng: &rng)
        var ls: [Module] = [entropy]
        let widths = hidden + [1]
        for i in 1..<widths.count {
            ls.append(Lambda("leaky_relu") { $0.leakyRelu(slope) })
            ls.append(Linear(widths[i - 1], widths[i], rng: &rng))
        }
        layers = ls
        self.slope = slope
    }

    /// Logits [N, r] of concepts [N, k].
    public override func forward(_ c: Var) -> Var {
        var y = entropy(c)                       // [N, r, h]
        let (n, r) = (y.shape[0], y.shape[1])
        for layer in layers.dropFirst() {
            let out = layer(y.reshape([n * r, y.shape[2]]))
            y = out.reshape([n, r, out.shape[1]])
        }
        return y.reshape([n, r])
    }

    public override var children: [(String, Module)] { layers.enumerated().map { (String($0.offset), $0.element) } }

    /// BCE-with-logits against the one-hot classes plus lambda times the entropy layer's entropy.
    public func loss(_ c: Var, labels: [Int], lambda: Float) -> Var {
        let logits = self(c)
        let (n, r) = (logits.shape[0], logits.shape[1])
        let onehot = NDArray.zeros([n, r])
        for (s, y) in labels.enumerated() { onehot.pointer[s * r + y] = 1 }
        return Loss.bceWithLogits(logits, Var(onehot)) + entropy.entropy() * lambda
    }
}
