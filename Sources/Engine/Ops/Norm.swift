import Foundation

// Normalization layers and dropout, composed from differentiable ops (so their double backward comes
// for free).

extension Var {
    /// Axes a per-channel statistic reduces over: all but dimension 1.
    var channelAxes: [Int] { [0] + Array(2..<Swift.max(rank, 2)) }

    /// Reshapes a per-channel vector [C] to broadcast against self ([1,C,1,1] for images).
    func perChannel(_ v: Var) -> Var {
        var s = [Int](repeating: 1, count: rank)
        s[1] = v.count
        return v.reshape(s)
    }

    /// (x - mean) / sqrt(var + eps) with statistics per group, x viewed as [A, G, S]: batch norm uses
    /// (N, C, H*W), instance norm (1, N*C, H*W). Returns the normalized values and each group's mean and
    /// biased variance. Forward and first-order backward are fused kernels; when the backward itself is
    /// recorded (double backward), it differentiates the same formula written with differentiable ops.
    func normalized(outer a: Int, groups g: Int, inner s: Int, eps: Float) -> (Var, NDArray, NDArray) {
        let x = self
        let (xhat, mean, variance, invstd) = Kernels.normalize(x.data, a, g, s, eps: eps)
        let out = Var.make("normalize", xhat, [x]) { gy, out in
            if GradMode.isEnabled {
                let xr = x.reshape([a, g, s])
                let centered = xr - xr.mean(axes: [0, 2], keepDims: true)
                let reference = (centered * (centered.square().mean(axes: [0, 2], keepDims: true) + eps).rsqrt()).reshape(x.shape)
                return [gradients(of: [reference], wrt: [x], seeds: [gy], createGraph: true)[0]]
            }
            return [Var(Kernels.normalizeBackward(gy.data, out.data, invstd, a, g, s))]
        }
        return (out, mean, variance)
    }

    /// F.batch_norm. In training, normalizes with the batch's statistics and updates the running ones
    /// (unbiased variance, as PyTorch); in evaluation, it is a per-channel affine map of the running
    /// statistics.
    public func batchNorm(runningMean: NDArray?, runningVar: NDArray?, weight: Var?, bias: Var?,
                          training: Bool, momentum: Float = 0.1, eps: Float = 1e-5) -> Var {
        let (n, c) = (shape[0], shape[1])
        if training || runningMean == nil || runningVar == nil {
            let (xhat, mean, variance) = normalized(outer: n, groups: c, inner: count / Swift.max(n * c, 1), eps: eps)
            if training, let rm = runningMean, let rv = runningVar {
                let m = Float(count / c)
                let unbias = m / Swift.max(m - 1, 1)
                let (pm, pv, pr, ps) = (mean.pointer, variance.pointer, rm.pointer, rv.pointer)
                for k in 0..<c {
                    pr[k] = (1 - momentum) * pr[k] + momentum * pm[k]
                    ps[k] = (1 - momentum) * ps[k] + momentum * pv[k] * unbias
                }
            }
            return xhat.channelAffine(weight, bias)
        }
        let (scale, shift) = Var.batchNormEvalAffine(runningMean: runningMean!, runningVar: runningVar!,
                                                     weight: weight, bias: bias, eps: eps)
        return channelAffine(scale, shift)
    }

    /// Batch norm in evaluation mode is y = x * scale + shift per channel, scale = weight /
    /// sqrt(running_var + eps), shift = bias - running_mean * scale (as Vars: gradients reach weight
    /// and bias).
    static func batchNormEvalAffine(runningMean: NDArray, runningVar: NDArray, weight: Var?, bias: Var?,
                                    eps: Float) -> (scale: Var, shift: Var) {
        let invstd = Var(Kernels.unary(runningVar) { 1 / ($0 + eps).squareRoot() })
        let scale = weight.map { $0 * invstd } ?? invstd
        var shift = -(Var(runningMean) * scale)
        if let bias { shift = shift + bias }
        return (scale, shift)
    }

    /// F.instance_norm without running statistics: per sample and channel over the spatial axes.
    public func instanceNorm(weight: Var? = nil, bias: Var? = nil, eps: Float = 1e-5) -> Var {
        let (n, c) = (shape[0], shape[1])
        return normalized(outer: 1, groups: n * c, inner: count / Swift.max(n * c, 1), eps: eps).0.channelAffine(weight, bias)
    }

    /// StarGAN v2's AdaIN: (1 + gamma) * IN(x) + beta, gamma and beta [N, C] from the style vector.
    public func adaIN(gamma: Var, beta: Var, eps: Float = 1e-5) -> Var {
        let s = [shape[0], shape[1]] + [Int](repeating: 1, count: rank - 2)
        return (1 + gamma.reshape(s)) * instanceNorm(eps: eps) + beta.reshape(s)
    }

    /// Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1-p).
    public func dropout(_ p: Float, training: Bool, rng: inout RandomGenerator) -> Var {
        if !training || p == 0 { return self }
        let mask = NDArray.uninitialized(shape)
        let scale = 1 / (1 - p)
        let mp = mask.pointer
        for i in 0..<count { mp[i] = rng.uniform() < p ? 0 : scale }
        return self * Var(mask)
    }
}

extension Kernels {
    /// Normalization of x viewed as [A, G, S] over A and S per group: (xhat, mean, biased var, invstd).
    static func normalize(_ x: NDArray, _ a: Int, _ g: Int, _ s: Int, eps: Float) -> (NDArray, NDArray, NDArray, NDArray) {
        let xc = x.contiguous()
        let out = NDArray.uninitialized(x.shape)
        let mean = NDArray.uninitialized([g]), variance = NDArray.uninitialized([g]), invstd = NDArray.uninitialized([g])
        let src = xc.pointer, dst = out.pointer, pm = mean.pointer, pv = variance.pointer, pi = invstd.pointer
        let m = Double(a * s)
        parallelChunks(g, cost: a * s * 3) { range in
            for k in range {
                // Two passes in Double: the mean, then the centered sum of squares.
                var total: Double = 0
                for ai in 0..<a { total += DoubleSums.sum(src + (ai * g + k) * s, s) }
                let mu = total / m
                var ss: Double = 0
                for ai in 0..<a { ss += DoubleSums.squaredDeviations(src + (ai * g + k) * s, s, from: mu) }
                let v = ss / m
                let inv = Float(1 / (v + Double(eps)).squareRoot())
                let muf = Float(mu)
                for ai in 0..<a {
                    let p = src + (ai * g + k) * s, o = dst + (ai * g + k) * s
                    for j in 0..<s { o[j] = (p[j] - muf) * inv }
                }
                pm[k] = muf; pv[k] = Float(v); pi[k] = inv
            }
        }
        return (out, mean, variance, invstd)
    }

    /// gx = invstd * (gy - mean(gy) - xhat * mean(gy * xhat)), means per group.
    static func normalizeBackward(_ gy: NDArray, _ xhat: NDArray, _ invstd: NDArray, _ a: Int, _ g: Int, _ s: Int) -> NDArray {
        let gc = gy.contiguous(), xc = xhat.contiguous()
        let out = NDArray.uninitialized(xhat.shape)
        let pg = gc.pointer, px = xc.pointer, dst = out.pointer, pi = invstd.pointer
        let m = Double(a * s)
        parallelChunks(g, cost: a * s * 3) { range in
            for k in range {
                var sg: Double = 0, sgx: Double = 0
                for ai in 0..<a {
                    let off = (ai * g + k) * s
                    sg += DoubleSums.sum(pg + off, s)
                    sgx += DoubleSums.sumOfProducts(pg + off, px + off, s)
                }
                let mg = Float(sg / m), mgx = Float(sgx / m), inv = pi[k]
                for ai in 0..<a {
                    let off = (ai * g + k) * s
                    for j in 0..<s { dst[off + j] = inv * (pg[off + j] - mg - px[off + j] * mgx) }
                }
            }
        }
        return out
    }
}
