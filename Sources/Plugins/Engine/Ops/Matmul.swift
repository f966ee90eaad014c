import Foundation

extension Var {
    /// Matrix product of [M,K] and [K,N], or batched [B,M,K] x [B,K,N]. Transposed operands are read
    /// in place (BLAS transpose flags), so the backward's transposes cost no copies.
    public func matmul(_ b: Var) -> Var {
        let a = self
        return Var.make("matmul", Kernels.matmul(a.data, b.data), [a, b]) { g, _ in
            [a.requiresGrad ? g.matmul(b.transpose(-2, -1)) : nil,
             b.requiresGrad ? a.transpose(-2, -1).matmul(g) : nil]
        }
    }

    /// x [N, in] W^T [in, out] + b, with PyTorch's weight layout [out, in].
    public func linear(_ weight: Var, _ bias: Var?) -> Var {
        let y = matmul(weight.transpose(0, 1))
        return bias.map { y + $0 } ?? y
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

extension Kernels {
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
