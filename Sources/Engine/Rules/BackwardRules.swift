import Foundation

/// How nonlinearities send gradients back. Attribution methods ask for a modified rule while they run a
/// network (docs/algorithms.md, "Modified backward rules"); training always uses `.standard`.
public enum BackwardRule: Sendable {
    case standard
    /// Guided backpropagation: ReLU passes only positive gradients where its input was positive.
    case guided
    /// DeepLift's rescale rule. The batch holds inputs then baselines ([x; x0], 2N samples); every
    /// nonlinearity's multiplier is (g(x) - g(x0)) / (x - x0), g'(x) where |x - x0| < 1e-7.
    case deepLiftRescale
}

extension BackwardRule {
    /// The rule a host asks for through the classifier extension's `vjp_rule`.
    public init?(abi: quac_backward_rule) {
        switch abi {
        case QUAC_RULE_DEEPLIFT_RESCALE: self = .deepLiftRescale
        case QUAC_RULE_GUIDED_BACKPROP: self = .guided
        default: return nil
        }
    }
}

/// Runs `body` with a backward rule: the graph recorded inside uses it.
public func withBackwardRule<R>(_ rule: BackwardRule, _ body: () throws -> R) rethrows -> R {
    let ctx = ThreadContext.current
    let old = ctx.rule
    ctx.rule = rule
    defer { ctx.rule = old }
    return try body()
}

extension Var {
    /// An elementwise nonlinearity: `f` forward, `derivative(g, x, out)` its ordinary backward.
    @inline(__always)
    func activation(_ name: String, _ f: (Float) -> Float,
                    _ derivative: @escaping (_ g: Var, _ x: Var, _ out: Var) -> Var) -> Var {
        let out = Kernels.unary(data, f)
        let x = self
        switch ThreadContext.current.rule {
        case .standard:
            return Var.make(name, out, [x]) { g, out in [derivative(g, x, out)] }
        case .guided:
            guard name == "relu" else { return Var.make(name, out, [x]) { g, out in [derivative(g, x, out)] } }
            return Var.make("guided_relu", out, [x]) { g, _ in
                [Var(Kernels.binary(g.data, x.data) { $1 > 0 && $0 > 0 ? $0 : 0 })]
            }
        case .deepLiftRescale:
            let m = deepLiftMultiplier(x.data, out, derivative)
            return Var.make("deeplift_" + name, out, [x]) { g, _ in [g * Var(m)] }
        }
    }

    /// Per-element multipliers for a [x; x0] batch: both halves get (out - out0) / (x - x0), or the
    /// ordinary derivative of their own half where the two inputs (nearly) coincide.
    private func deepLiftMultiplier(_ x: NDArray, _ out: NDArray,
                                    _ derivative: (Var, Var, Var) -> Var) -> NDArray {
        precondition(x.rank >= 1 && x.shape[0] % 2 == 0, "DeepLift needs a batch of inputs then baselines")
        let slope = noGrad { derivative(Var(NDArray.ones(x.shape)), Var(x), Var(out)).data.contiguous() }
        let xc = x.contiguous(), oc = out.contiguous()
        let half = x.count / 2
        let m = NDArray.uninitialized(x.shape)
        let px = xc.pointer, po = oc.pointer, ps = slope.pointer, pm = m.pointer
        for i in 0..<half {
            let dx = px[i] - px[i + half]
            if Swift.abs(dx) < 1e-7 {
                pm[i] = ps[i]; pm[i + half] = ps[i + half]
            } else {
                let r = (po[i] - po[i + half]) / dx
                pm[i] = r; pm[i + half] = r
            }
        }
        return m
    }
}

extension Var {
    /// Captum's DeepLift rule for max pooling on a [x; x0] batch. With m = max(out, out0), the pooled
    /// differences (m - out0) and (out - m) are routed back through each half's own argmax, summed,
    /// and divided by x - x0 (the ordinary gradient where x and x0 coincide); both halves get the result.
    static func deepLiftMaxPool(_ g: Var, _ x: Var, _ out: Var, _ idx: PlaneIndices) -> Var {
        noGrad {
            let o = out.data.contiguous()
            let ho = o.count / 2
            let deltaOut = NDArray.uninitialized(o.shape)
            for i in 0..<ho {
                let m = Swift.max(o.pointer[i], o.pointer[i + ho])
                deltaOut.pointer[i] = m - o.pointer[i + ho]
                deltaOut.pointer[i + ho] = o.pointer[i] - m
            }
            let ordinary = scatterPlanes(g, idx, inputShape: x.shape).data
            let routed = scatterPlanes(Var(Kernels.binary(g.data, deltaOut, *)), idx, inputShape: x.shape).data
            let xc = x.data.contiguous()
            let h = routed.count / 2
            let result = NDArray.uninitialized(x.shape)
            let (pr, po, px, pz) = (routed.pointer, ordinary.pointer, xc.pointer, result.pointer)
            for i in 0..<h {
                let s = pr[i] + pr[i + h], d = px[i] - px[i + h]
                let small = Swift.abs(d) < 1e-7
                pz[i] = small ? po[i] : s / d
                pz[i + h] = small ? po[i + h] : s / d
            }
            return Var(result)
        }
    }
}

/// Gradients under a modified backward rule, as a classifier's `vjp_rule` answers them.
public enum ModifiedBackward {
    /// grad_x of sum(f(x) * gradOutput) under `rule`. For DeepLift, f runs once on [x; baseline] and the
    /// result is the rescale rule's multipliers for x (attributions are (x - baseline) * multipliers);
    /// guided backpropagation ignores the baseline.
    public static func vjp(rule: BackwardRule, _ f: (Var) -> Var, x: NDArray, baseline: NDArray? = nil,
                           gradOutput: NDArray) -> NDArray {
        switch rule {
        case .standard, .guided:
            let xv = Var(x, requiresGrad: true)
            let y = withBackwardRule(rule) { f(xv) }
            return gradients(of: [y], wrt: [xv], seeds: [Var(gradOutput)])[0]?.data ?? .zeros(x.shape)
        case .deepLiftRescale:
            let base = baseline ?? .zeros(x.shape)
            precondition(base.shape == x.shape, "baseline \(base.shape) for input \(x.shape)")
            let both = Var(Var.concat([Var(x), Var(base)], axis: 0).data, requiresGrad: true)
            let y = withBackwardRule(.deepLiftRescale) { f(both) }
            let seed = Var.concat([Var(gradOutput), Var(gradOutput)], axis: 0)
            guard let g = gradients(of: [y], wrt: [both], seeds: [seed])[0] else { return .zeros(x.shape) }
            return g.slice(axis: 0, 0..<x.shape[0]).data.contiguous()
        }
    }
}
