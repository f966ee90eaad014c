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

    /// F.batch_norm. In training, normalizes with the batch's statistics and updates the running ones
    /// (unbiased variance, as PyTorch); in evaluation, uses the running statistics.
    public func batchNorm(runningMean: NDArray?, runningVar: NDArray?, weight: Var?, bias: Var?,
                          training: Bool, momentum: Float = 0.1, eps: Float = 1e-5) -> Var {
        let normalized: Var
        if training || runningMean == nil || runningVar == nil {
            let axes = channelAxes
            let mean = self.mean(axes: axes, keepDims: true)
            let centered = self - mean
            let variance = centered.square().mean(axes: axes, keepDims: true)
            normalized = centered * (variance + eps).rsqrt()
            if training, let rm = runningMean, let rv = runningVar {
                let n = Float(count / shape[1])
                let m = mean.data.reshaped([shape[1]]), v = variance.data.reshaped([shape[1]])
                let unbias = n / Swift.max(n - 1, 1)
                let (pm, pv, pr, ps) = (m.pointer, v.pointer, rm.pointer, rv.pointer)
                for c in 0..<shape[1] {
                    pr[c] = (1 - momentum) * pr[c] + momentum * pm[c]
                    ps[c] = (1 - momentum) * ps[c] + momentum * pv[c] * unbias
                }
            }
        } else {
            let rm = perChannel(Var(runningMean!)), rv = perChannel(Var(runningVar!))
            normalized = (self - rm) * (rv + eps).rsqrt()
        }
        var y = normalized
        if let weight { y = y * perChannel(weight) }
        if let bias { y = y + perChannel(bias) }
        return y
    }

    /// F.instance_norm without running statistics: per sample and channel over the spatial axes.
    public func instanceNorm(weight: Var? = nil, bias: Var? = nil, eps: Float = 1e-5) -> Var {
        let axes = Array(2..<rank)
        let centered = self - mean(axes: axes, keepDims: true)
        var y = centered * (centered.square().mean(axes: axes, keepDims: true) + eps).rsqrt()
        if let weight { y = y * perChannel(weight) }
        if let bias { y = y + perChannel(bias) }
        return y
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
