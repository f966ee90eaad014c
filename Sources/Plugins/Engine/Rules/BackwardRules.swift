import Foundation

/// How nonlinearities send gradients back. Attribution methods ask for a modified rule while they run a
/// network (ALGORITHMS.md 1.1); training always uses `.standard`.
public enum BackwardRule: Sendable {
    case standard
    /// Guided backpropagation: ReLU passes only positive gradients where its input was positive.
    case guided
    /// DeepLift's rescale rule. The batch holds inputs then baselines ([x; x0], 2N samples); every
    /// nonlinearity's multiplier is (g(x) - g(x0)) / (x - x0), g'(x) where |x - x0| < 1e-7.
    case deepLiftRescale
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
    /// Captum's DeepLift rule for max pooling on a [x; x0] batch: the gradient flows as for the
    /// difference of the pooled outputs, routed by both halves' argmax positions, divided by x - x0
    /// (the ordinary gradient where x and x0 coincide).
    static func deepLiftMaxPool(_ g: Var, _ x: Var, _ out: Var, _ idx: PlaneIndices) -> Var {
        noGrad {
            let doubled = { (a: NDArray) -> NDArray in
                // [a_x - a_x0; a_x - a_x0]
                let c = a.contiguous()
                let h = c.count / 2
                let d = NDArray.uninitialized(a.shape)
                for i in 0..<h { let v = c.pointer[i] - c.pointer[i + h]; d.pointer[i] = v; d.pointer[i + h] = v }
                return d
            }
            let deltaOut = doubled(out.data)
            let ordinary = scatterPlanes(g, idx, inputShape: x.shape).data
            let routed = scatterPlanes(Var(Kernels.binary(g.data, deltaOut, *)), idx, inputShape: x.shape).data
            let h = routed.count / 2
            let deltaIn = doubled(x.data)
            let result = NDArray.uninitialized(x.shape)
            let (pr, po, pd, pz) = (routed.pointer, ordinary.pointer, deltaIn.pointer, result.pointer)
            for i in 0..<h {
                let s = pr[i] + pr[i + h]
                for j in [i, i + h] { pz[j] = Swift.abs(pd[j]) < 1e-7 ? po[j] : s / pd[j] }
            }
            return Var(result)
        }
    }
}
