import Foundation

extension Var {
    /// Matrix product of [M,K] and [K,N], or batched [B,M,K] x [B,K,N]. Transposed operands are read
    /// in place (BLAS transpose flags), so the backward's transposes cost no copies.
    public func matmul(_ b: Var) -> Var {
        let a = self
        return Var.make("matmul", Kernels.matmul(a.data, b.data), [a, b]) { g, _ in
            [a.gradNeeded ? g.matmul(b.transpose(-2, -1)) : nil,
             b.gradNeeded ? a.transpose(-2, -1).matmul(g) : nil]
        }
    }

    /// x [N, in] W^T [in, out] + b, with PyTorch's weight layout [out, in]. Its own op (not matmul
    /// of a transposed view) so the weight gradient g^T x comes out in W's layout, not as a
    /// transposed view an optimizer would have to copy.
    public func linear(_ weight: Var, _ bias: Var?) -> Var {
        let x = self
        precondition(x.rank == 2 && weight.rank == 2 && x.shape[1] == weight.shape[1],
                     "linear of input \(x.shape) with weight \(weight.shape)")
        let (batch, fin, fout) = (x.shape[0], x.shape[1], weight.shape[0])
        if SmallBatchGEMM.forwardApplies(batch: batch, inFeatures: fin, outFeatures: fout)
            && (bias.map { $0.shape == [fout] } ?? true) {
            // One op with the bias: the kernel adds it while it writes y.
            let out = SmallBatchGEMM.forward(x.data, weight.data, bias: bias?.data)
            return Var.make("linear", out, [x, weight] + (bias.map { [$0] } ?? [])) { g, _ in
                var grads: [Var?] = [x.gradNeeded ? g.linearInputGrad(weight) : nil,
                                     weight.gradNeeded ? g.transpose(0, 1).matmul(x) : nil]
                if let bias { grads.append(bias.gradNeeded ? g.sum(axes: [0]) : nil) }
                return grads
            }
        }
        let y = Var.make("linear", Kernels.matmul(x.data, weight.data.transposed(0, 1)), [x, weight]) { g, _ in
            [x.gradNeeded ? g.linearInputGrad(weight) : nil, weight.gradNeeded ? g.transpose(0, 1).matmul(x) : nil]
        }
        return bias.map { y + $0 } ?? y
    }

    /// g W: the input gradient of a linear layer (differentiable again, as a matmul).
    func linearInputGrad(_ weight: Var) -> Var {
        let g = self
        guard !GradMode.isEnabled || !(g.requiresGrad || weight.requiresGrad),
              SmallBatchGEMM.inputGradApplies(batch: g.shape[0], inFeatures: weight.shape[1], outFeatures: weight.shape[0])
        else { return g.matmul(weight) }
        return Var(SmallBatchGEMM.inputGrad(g.data, weight.data))
    }

    // MARK: Softmax family

    /// softmax along `axis`; backward: out * (g - sum(g * out)).
    public func softmax(axis: Int = -1) -> Var {
        let ax = axis < 0 ? axis + rank : axis
        let out = Kernels.softmax(data, axis: ax, log: false)
        return Var.make("softmax", out, [self]) { g, out in
            [out * (g - (g * out).sum(axes: [ax], keepDims: true))]
        }
    }

    /// log-softmax along `axis`; backward: g - softmax * sum(g).
    public func logSoftmax(axis: Int = -1) -> Var {
        let ax = axis < 0 ? axis + rank : axis
        let out = Kernels.softmax(data, axis: ax, log: true)
        return Var.make("log_softmax", out, [self]) { g, out in
            [g - out.exp() * g.sum(axes: [ax], keepDims: true)]
        }
    }
}

extension Var {
    /// Sparsemax along the last axis (Martins & Astudillo 2016): the Euclidean projection onto the
    /// probability simplex, exactly zero outside its support S. Backward: on S, g - mean over S of g;
    /// zero elsewhere (linear in g with S fixed, so it differentiates again).
    public func sparsemax() -> Var {
        let (out, support) = Kernels.sparsemax(data)
        return Var.make("sparsemax", out, [self]) { g, _ in
            let s = Var(support)
            let gs = g * s
            let meanOnSupport = gs.sum(axes: [-1], keepDims: true) / s.sum(axes: [-1], keepDims: true)
            return [(g - meanOnSupport) * s]
        }
    }
}

extension Kernels {
    /// Sparsemax of each row along the last axis, and the 0/1 support.
    static func sparsemax(_ x: NDArray) -> (NDArray, NDArray) {
        let c = x.contiguous()
        let k = x.shape.last ?? 1, rows = x.count / Swift.max(k, 1)
        let out = NDArray.uninitialized(x.shape), support = NDArray.uninitialized(x.shape)
        var sorted = [Float](repeating: 0, count: k)
        for r in 0..<rows {
            let src = c.pointer + r * k, dst = out.pointer + r * k, sup = support.pointer + r * k
            for j in 0..<k { sorted[j] = src[j] }
            sorted.sort(by: >)
            // tau from the largest support size j with 1 + j * z_j > sum of the j largest.
            var cumulative: Float = 0, tau: Float = 0
            for j in 0..<k {
                cumulative += sorted[j]
                if 1 + Float(j + 1) * sorted[j] > cumulative { tau = (cumulative - 1) / Float(j + 1) }
            }
            for j in 0..<k {
                let v = src[j] - tau
                dst[j] = v > 0 ? v : 0
                sup[j] = v > 0 ? 1 : 0
            }
        }
        return (out, support)
    }

    /// Numerically stable (log-)softmax along one axis.
    static func softmax(_ x: NDArray, axis: Int, log: Bool) -> NDArray {
        let r = x.rank
        var order = Array(0..<r)
        order.remove(at: axis)
        order.append(axis)
        let p = x.permuted(order).contiguous()
        let k = x.shape[axis], rows = x.count / Swift.max(k, 1)
        let out = NDArray.uninitialized(p.shape)
        let src = p.pointer, dst = out.pointer
        parallelChunks(rows, cost: k * 4) { range in
            for row in range {
                let s = src + row * k, d = dst + row * k
                var m = -Float.infinity
                for j in 0..<k { m = Swift.max(m, s[j]) }
                var total: Double = 0
                for j in 0..<k { let e = Foundation.exp(s[j] - m); d[j] = e; total += Double(e) }
                if log {
                    let lse = Float(Foundation.log(total))
                    for j in 0..<k { d[j] = s[j] - m - lse }
                } else {
                    let inv = Float(1 / total)
                    for j in 0..<k { d[j] *= inv }
                }
            }
        }
        var inverse = [Int](repeating: 0, count: r)
        for (i, d) in order.enumerated() { inverse[d] = i }
        return out.permuted(inverse).contiguous()
    }
}
