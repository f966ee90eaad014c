import Foundation

// Elementwise ops. Each op: its forward kernel, and its derivative written with Var ops so it can be
// differentiated again. Binary ops broadcast NumPy-style; their gradients are summed back to each
// input's shape (`sumTo`).

extension Var {
    /// A constant (no gradient) of the given values.
    public static func constant(_ a: NDArray) -> Var { Var(a) }
    public static func scalar(_ v: Float) -> Var { Var(NDArray.scalar(v)) }

    // MARK: Binary

    public static func + (a: Var, b: Var) -> Var {
        let (sa, sb) = (a.shape, b.shape)
        return make("add", Kernels.binary(a.data, b.data, +), [a, b]) { g, _ in
            [a.gradNeeded ? g.sumTo(sa) : nil, b.gradNeeded ? g.sumTo(sb) : nil]
        }
    }

    public static func - (a: Var, b: Var) -> Var {
        let (sa, sb) = (a.shape, b.shape)
        return make("sub", Kernels.binary(a.data, b.data, -), [a, b]) { g, _ in
            [a.gradNeeded ? g.sumTo(sa) : nil, b.gradNeeded ? (-g).sumTo(sb) : nil]
        }
    }

    public static func * (a: Var, b: Var) -> Var {
        make("mul", Kernels.binary(a.data, b.data, *), [a, b]) { g, _ in
            [a.gradNeeded ? (g * b).sumTo(a.shape) : nil, b.gradNeeded ? (g * a).sumTo(b.shape) : nil]
        }
    }

    public static func / (a: Var, b: Var) -> Var {
        make("div", Kernels.binary(a.data, b.data, /), [a, b]) { g, _ in
            [a.gradNeeded ? (g / b).sumTo(a.shape) : nil,
             b.gradNeeded ? (-(g * a) / (b * b)).sumTo(b.shape) : nil]
        }
    }

    /// max(a, b) elementwise; the gradient goes to the larger one, and to a on ties (torch.maximum
    /// splits a tie's gradient in half).
    public static func maximum(_ a: Var, _ b: Var) -> Var {
        let out = Kernels.binary(a.data, b.data) { Swift.max($0, $1) }
        let pickA = Var(Kernels.binary(a.data, b.data) { $0 >= $1 ? 1 : 0 })
        return make("maximum", out, [a, b]) { g, _ in
            [a.gradNeeded ? (g * pickA).sumTo(a.shape) : nil,
             b.gradNeeded ? (g * (1 - pickA)).sumTo(b.shape) : nil]
        }
    }

    /// where(mask, a, b) with a constant 0/1 mask.
    public static func select(_ mask: NDArray, _ a: Var, _ b: Var) -> Var {
        let m = Var(mask)
        return a * m + b * (1 - m)
    }

    // MARK: Scalars

    public static func + (a: Var, s: Float) -> Var {
        make("add_scalar", Kernels.unary(a.data) { $0 + s }, [a]) { g, _ in [g] }
    }
    public static func + (s: Float, a: Var) -> Var { a + s }
    public static func - (a: Var, s: Float) -> Var { a + (-s) }

    public static func - (s: Float, a: Var) -> Var {
        make("rsub_scalar", Kernels.unary(a.data) { s - $0 }, [a]) { g, _ in [-g] }
    }

    public static func * (a: Var, s: Float) -> Var {
        make("mul_scalar", Kernels.unary(a.data) { $0 * s }, [a]) { g, _ in [g * s] }
    }
    public static func * (s: Float, a: Var) -> Var { a * s }
    public static func / (a: Var, s: Float) -> Var { a * (1 / s) }

    public static func / (s: Float, a: Var) -> Var {
        make("rdiv_scalar", Kernels.unary(a.data) { s / $0 }, [a]) { g, out in [-(g * out) / a] }
    }

    public static prefix func - (a: Var) -> Var {
        make("neg", Kernels.unary(a.data) { -$0 }, [a]) { g, _ in [-g] }
    }

    /// a^p for a constant exponent.
    public func pow(_ p: Float) -> Var {
        if p == 2 { return square() }
        return Var.make("pow", Kernels.unary(data) { Foundation.pow($0, p) }, [self]) { g, _ in
            [g * p * self.pow(p - 1)]
        }
    }

    public func square() -> Var {
        Var.make("square", Kernels.unary(data) { $0 * $0 }, [self]) { g, _ in [g * self * 2] }
    }

    // MARK: Unary math

    public func exp() -> Var {
        Var.make("exp", Kernels.unary(data) { Foundation.exp($0) }, [self]) { g, out in [g * out] }
    }

    public func log() -> Var {
        Var.make("log", Kernels.unary(data) { Foundation.log($0) }, [self]) { g, _ in [g / self] }
    }

    public func sqrt() -> Var {
        Var.make("sqrt", Kernels.unary(data) { $0.squareRoot() }, [self]) { g, out in [g * 0.5 / out] }
    }

    /// 1/sqrt(a).
    public func rsqrt() -> Var {
        Var.make("rsqrt", Kernels.unary(data) { 1 / $0.squareRoot() }, [self]) { g, out in
            [g * (out * out * out) * -0.5]
        }
    }

    public func abs() -> Var {
        let sign = Kernels.unary(data) { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) }
        return Var.make("abs", Kernels.unary(data) { Swift.abs($0) }, [self]) { g, _ in [g * Var(sign)] }
    }

    public func clamp(min lo: Float = -.infinity, max hi: Float = .infinity) -> Var {
        let inside = Kernels.unary(data) { $0 >= lo && $0 <= hi ? 1 : 0 }
        return Var.make("clamp", Kernels.unary(data) { Swift.min(Swift.max($0, lo), hi) }, [self]) { g, _ in
            [g * Var(inside)]
        }
    }

    // MARK: Activations (these consult the backward rule: DeepLift and guided backprop change them)

    public func tanh() -> Var {
        activation("tanh", { Foundation.tanh($0) }) { g, x, out in g * (1 - out * out) }
    }

    public func sigmoid() -> Var {
        activation("sigmoid", { $0 >= 0 ? 1 / (1 + Foundation.exp(-$0)) : Foundation.exp($0) / (1 + Foundation.exp($0)) }) {
            g, _, out in g * out * (1 - out)
        }
    }

    public func relu() -> Var {
        activation("relu", { $0 > 0 ? $0 : 0 }) { g, x, _ in g.scaledWhere(positive: x.data, else: 0) }
    }

    public func leakyRelu(_ slope: Float = 0.01) -> Var {
        activation("leaky_relu", { $0 > 0 ? $0 : $0 * slope }) { g, x, _ in g.scaledWhere(positive: x.data, else: slope) }
    }

    /// log(1 + exp(beta x)) / beta; linear above `threshold` (PyTorch's defaults).
    public func softplus(beta: Float = 1, threshold: Float = 20) -> Var {
        activation("softplus", { v in
            let z = v * beta
            return z > threshold ? v : (Swift.max(z, 0) + Foundation.log1p(Foundation.exp(-Swift.abs(z)))) / beta
        }) { g, x, _ in g * (x * beta).sigmoid() }
    }

    /// self where `x` > 0, self * slope elsewhere, in one pass: the (leaky) ReLU's backward. Linear in
    /// self with the mask fixed, so its own derivative is itself.
    func scaledWhere(positive x: NDArray, else slope: Float) -> Var {
        precondition(x.shape == shape, "mask \(x.shape) for \(shape)")
        return Var.make("scaled_where", Kernels.binary(data, x) { $1 > 0 ? $0 : $0 * slope }, [self]) { h, _ in
            [h.scaledWhere(positive: x, else: slope)]
        }
    }

    /// x * scale[c] + shift[c] over dimension 1 in one pass (normalization layers' affine step). Its
    /// first-order backward is one fused pass too; a recorded backward uses broadcasting ops.
    func channelAffine(_ scale: Var?, _ shift: Var?) -> Var {
        if scale == nil && shift == nil { return self }
        let (n, c) = (shape[0], shape[1])
        let inner = count / Swift.max(n * c, 1)
        let xc = data.contiguous()
        let out = NDArray.uninitialized(shape)
        let sc = scale?.data.contiguous(), sh = shift?.data.contiguous()
        let px = xc.pointer, po = out.pointer
        let ps = sc?.pointer, pt = sh?.pointer
        parallelChunks(c, cost: n * inner) { range in
            for k in range {
                let a = ps?[k] ?? 1, t = pt?[k] ?? 0
                for b in 0..<n {
                    let off = (b * c + k) * inner
                    for j in 0..<inner { po[off + j] = px[off + j] * a + t }
                }
            }
        }
        let x = self
        return Var.make("channel_affine", out, [x] + [scale, shift].compactMap { $0 }) { g, _ in
            if GradMode.isEnabled {
                var grads: [Var?] = [x.gradNeeded ? (scale.map { g * x.perChannel($0) } ?? g) : nil]
                if let scale { grads.append(scale.gradNeeded ? (g * x).sum(axes: x.channelAxes).reshape(scale.shape) : nil) }
                if let shift { grads.append(shift.gradNeeded ? g.sum(axes: x.channelAxes).reshape(shift.shape) : nil) }
                return grads
            }
            // The per-channel sums only when scale or shift needs its gradient (not for an input
            // gradient in evaluation mode, where they would double the pass's cost).
            let sums = (scale?.gradNeeded ?? false) || (shift?.gradNeeded ?? false)
            let (gx, gs, gt) = Kernels.channelAffineBackward(g.data, xc, sc, n: n, c: c, inner: inner, sums: sums)
            var grads: [Var?] = [x.gradNeeded ? Var(gx) : nil]
            if let scale { grads.append(scale.gradNeeded ? Var(gs.reshaped(scale.shape)) : nil) }
            if let shift { grads.append(shift.gradNeeded ? Var(gt.reshaped(shift.shape)) : nil) }
            return grads
        }
    }

    // MARK: Broadcasting helpers

    /// Sums a broadcast gradient back to `shape` (leading dimensions dropped, size-1 dimensions summed).
    public func sumTo(_ target: [Int]) -> Var {
        if shape == target { return self }
        let lead = rank - target.count
        precondition(lead >= 0, "sumTo \(target) from \(shape)")
        var axes = Array(0..<lead)
        for d in 0..<target.count where target[d] == 1 && shape[lead + d] != 1 { axes.append(lead + d) }
        let summed = Kernels.sum(data, axes: axes).reshaped(target)
        let from = shape
        return Var.make("sum_to", summed, [self]) { g, _ in [g.expand(from)] }
    }

    /// A broadcast view to `target` (no copy).
    public func expand(_ target: [Int]) -> Var {
        if shape == target { return self }
        let from = shape
        return Var.make("expand", data.expanded(target), [self]) { g, _ in [g.sumTo(from)] }
    }
}

extension Kernels {
    /// One pass over g: g * scale[c], and per channel sum(g * x) and sum(g) (left zero unless `sums`).
    static func channelAffineBackward(_ g: NDArray, _ x: NDArray, _ scale: NDArray?, n: Int, c: Int, inner: Int,
                                      sums: Bool = true) -> (NDArray, NDArray, NDArray) {
        let gc = g.contiguous()
        let gx = NDArray.uninitialized(g.shape), gs = NDArray.zeros([c]), gt = NDArray.zeros([c])
        let pg = gc.pointer, px = x.pointer, po = gx.pointer
        parallelChunks(c, cost: n * inner * (sums ? 3 : 2)) { range in
            for k in range {
                let a = scale?.pointer[k] ?? 1
                if !sums {
                    for b in 0..<n {
                        let off = (b * c + k) * inner
                        for j in 0..<inner { po[off + j] = pg[off + j] * a }
                    }
                    continue
                }
                var sgx: Double = 0, sg: Double = 0
                for b in 0..<n {
                    let off = (b * c + k) * inner
                    var fgx: Float = 0, fg: Float = 0
                    for j in 0..<inner {
                        let v = pg[off + j]
                        po[off + j] = v * a
                        fgx += v * px[off + j]
                        fg += v
                    }
                    sgx += Double(fgx); sg += Double(fg)
                }
                gs.pointer[k] = Float(sgx); gt.pointer[k] = Float(sg)
            }
        }
        return (gx, gs, gt)
    }
}
