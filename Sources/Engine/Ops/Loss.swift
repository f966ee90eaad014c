import Foundation

/// How a loss combines its per-element terms.
public enum Reduction: String, Sendable { case mean, sum, none, batchMean = "batchmean" }

public enum Loss {
    static func reduce(_ v: Var, _ r: Reduction) -> Var {
        switch r {
        case .mean: return v.mean()
        case .sum: return v.sum()
        case .none: return v
        case .batchMean: return v.sum() / Float(v.shape[0])
        }
    }

    /// Cross-entropy of logits [N, C] (or [N, C, ...]) against class labels, as F.cross_entropy.
    public static func crossEntropy(_ logits: Var, _ labels: Labels, reduction: Reduction = .mean) -> Var {
        let n = logits.shape[0], c = logits.shape[1]
        precondition(labels.count == n, "\(labels.count) labels for \(n) samples")
        let inner = logits.shape.dropFirst(2).reduce(1, *)
        precondition(inner == 1, "crossEntropy expects [N, C] logits")
        let onehot = NDArray.zeros([n, c])
        for (i, y) in labels.values.enumerated() {
            precondition(y >= 0 && y < c, "label \(y) outside 0..<\(c)")
            onehot.pointer[i * c + y] = 1
        }
        let nll = -(logits.logSoftmax(axis: 1) * Var(onehot)).sum(axes: [1])
        return reduce(nll, reduction)
    }

    /// Binary cross-entropy on logits: softplus(x) - x * y, stable for large |x|.
    public static func bceWithLogits(_ logits: Var, _ target: Var, reduction: Reduction = .mean) -> Var {
        reduce(logits.softplus() - logits * target, reduction)
    }

    public static func mse(_ a: Var, _ b: Var, reduction: Reduction = .mean) -> Var {
        reduce((a - b).square(), reduction)
    }

    public static func l1(_ a: Var, _ b: Var, reduction: Reduction = .mean) -> Var {
        reduce((a - b).abs(), reduction)
    }

    /// F.kl_div(input, target): input holds log-probabilities, target probabilities;
    /// terms target * (log target - input), 0 where target is 0.
    public static func klDiv(_ logInput: Var, _ target: Var, reduction: Reduction = .mean) -> Var {
        let t = target.data
        let term: Var
        if target.requiresGrad {
            // log(target) differentiable where target > 0 (1 stands in elsewhere; the term is 0 there).
            let safe = Var.select(Kernels.unary(t) { $0 > 0 ? 1 : 0 }, target, Var(NDArray.ones(t.shape)))
            term = target * (safe.log() - logInput)
        } else {
            term = target * (Var(Kernels.unary(t) { $0 > 0 ? Foundation.log($0) : 0 }) - logInput)
        }
        return reduce(term, reduction)
    }
}
