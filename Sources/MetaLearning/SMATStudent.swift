import Engine
import Foundation
import QuacCore

/// The student of SMAT-style training: a small CNN that learns to simulate the teacher (the classifier
/// being explained) from its predictions, with an explainer of its own: its first layer's channel maps
/// mixed by sparsemax(psi). Trained by SGD with momentum (PyTorch's rule: buf = mu * buf + g,
/// theta -= lr * buf), whose update the meta step simulates with the same state.
///
/// Network: conv3x3-ReLU to channels[0] (the heads, at the input's resolution), then per further width
/// [2x2 max pooling, conv3x3-ReLU], a global max pooling, and a linear layer to the classes.
public final class SMATStudent {
    public let net: Module
    public let architecture: JSONValue
    /// The student explainer's mixing parameters over its channels (uniform 1/c at the start).
    public let psi: Var
    public let learningRate: Float, momentum: Float
    /// SGD momentum buffers, one per weight of `net` then psi.
    public private(set) var buffers: [NDArray]
    private var lastHeads: Var?
    public let headChannels: Int

    public static func architecture(inputShape: [Int], channels: [Int], classes: Int) -> JSONValue {
        func int(_ v: Int) -> JSONValue { .int(Int64(v)) }
        var layers: [JSONValue] = [["type": "conv2d", "in": int(inputShape[0]), "out": int(channels[0]), "kernel": 3, "padding": 1], ["type": "relu"]]
        var (h, w) = (inputShape[1], inputShape[2])
        for (i, c) in channels.enumerated().dropFirst() {
            layers += [["type": "max_pool2d", "kernel": 2], ["type": "conv2d", "in": int(channels[i - 1]), "out": int(c), "kernel": 3, "padding": 1], ["type": "relu"]]
            h /= 2; w /= 2
        }
        precondition(h == w, "the student's global pooling needs square feature maps")
        layers += [["type": "max_pool2d", "kernel": int(h)], ["type": "flatten"],
                   ["type": "linear", "in": int(channels.last!), "out": int(classes)]]
        return ["type": "sequential", "init": "kaiming_normal", "layers": .array(layers)]
    }

    public init(inputShape: [Int], channels: [Int], classes: Int, seed: UInt64, learningRate: Float, momentum: Float) throws {
        architecture = Self.architecture(inputShape: inputShape, channels: channels, classes: classes)
        do { net = try ModelBuilder.build(architecture, seed: seed) } catch { throw EngineError.badArchitecture("student: \(error)") }
        headChannels = channels[0]
        psi = Var(NDArray.full([channels[0]], 1 / Float(channels[0])), requiresGrad: true)
        self.learningRate = learningRate
        self.momentum = momentum
        buffers = net.parameters.map { NDArray.zeros($0.shape) } + [NDArray.zeros(psi.shape)]
        net.train()
        net.module(at: "1")!.outputHook = { [unowned self] y in self.lastHeads = y; return y }
    }

    /// The weights by name (not psi): what one simulated update replaces.
    public var weights: [(String, Var)] { net.namedParameters() }

    /// Logits and the head maps [N, c, P] of one pass.
    public func forward(_ x: Var) -> (logits: Var, heads: Var) {
        let logits = net(x)
        let h = lastHeads!
        lastHeads = nil
        return (logits, h.reshape([h.shape[0], h.shape[1], h.count / (h.shape[0] * h.shape[1])]))
    }

    /// The student explainer's log explanation over positions.
    public func logExplanation(_ heads: Var) -> Var {
        SMATMath.logExplanation(SMATMath.mix(SMATMath.standardize(heads), psi.sparsemax()))
    }

    /// CE(S(x), teacher's classes) + beta * KL(teacher explanation || student explanation); no
    /// explanation term when `teacher` is nil.
    public func innerLoss(_ x: NDArray, _ labels: Labels, teacher logE: Var?, beta: Float) -> Var {
        let (logits, heads) = forward(Var(x))
        let ce = Loss.crossEntropy(logits, labels)
        guard let logE, beta != 0 else { return ce }
        return ce + SMATMath.kl(logE, logExplanation(heads)) * beta
    }

    /// One real SGD step on the inner loss; returns the loss.
    @discardableResult
    public func step(_ x: NDArray, _ labels: Labels, teacher logE: NDArray?, beta: Float) -> Float {
        let params = net.parameters + [psi]
        let loss = innerLoss(x, labels, teacher: logE.map { Var($0) }, beta: beta)
        let grads = gradients(of: [loss], wrt: params)
        for (i, p) in params.enumerated() {
            guard let g = grads[i] else { continue }
            let b = buffers[i], gd = g.data.contiguous(), pd = p.data.copy()
            for k in 0..<b.count {
                b.pointer[k] = momentum * b.pointer[k] + gd.pointer[k]
                pd.pointer[k] -= learningRate * b.pointer[k]
            }
            p.setData(pd)
        }
        return loss.item
    }

    /// theta' = theta - lr * (mu * buf + grad) for the weights, with the gradient of `loss` recorded
    /// (createGraph), so what is computed with theta' differentiates through the update.
    public func simulatedWeights(_ loss: Var) -> [String: Var] {
        let named = weights
        let grads = gradients(of: [loss], wrt: named.map(\.1), createGraph: true)
        var out: [String: Var] = [:]
        for (i, (name, p)) in named.enumerated() {
            guard let g = grads[i] else { continue }
            out[name] = p - (g + Var(buffers[i]) * momentum) * learningRate
        }
        return out
    }

    /// Accuracy of the student's classes against `labels` (in batches, without recording).
    public func accuracy(_ x: NDArray, _ labels: [Int]) -> Double {
        let n = labels.count
        guard n > 0 else { return .nan }
        var right = 0
        let per = x.count / n
        for start in stride(from: 0, to: n, by: 128) {
            let m = min(128, n - start)
            let xb = NDArray.zeros([m] + Array(x.shape.dropFirst()))
            (xb.pointer).update(from: x.contiguous().pointer + start * per, count: m * per)
            let logits = noGrad { forward(Var(xb)).logits }.data.contiguous()
            let c = logits.shape[1]
            for i in 0..<m {
                var best = 0
                for k in 1..<c where logits.pointer[i * c + k] > logits.pointer[i * c + best] { best = k }
                if best == labels[start + i] { right += 1 }
            }
        }
        return Double(right) / Double(n)
    }

    /// Weights, psi and momentum buffers, for a checkpoint.
    public func state() -> [(String, NDArray)] {
        net.stateDict() + [("psi", psi.data.copy())] + buffers.enumerated().map { ("momentum.\($0.offset)", $0.element.copy()) }
    }

    public func load(_ state: [String: NDArray]) throws {
        try net.loadStateDict(state)
        guard let p = state["psi"], p.shape == psi.shape else { throw EngineError.badCheckpoint("student state: no psi of shape \(psi.shape)") }
        psi.setData(p.copy())
        for i in buffers.indices {
            guard let b = state["momentum.\(i)"], b.shape == buffers[i].shape else { throw EngineError.badCheckpoint("student state: momentum buffer \(i) missing") }
            buffers[i] = b.copy()
        }
    }
}
