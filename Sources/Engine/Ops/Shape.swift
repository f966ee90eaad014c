import Foundation

// Reductions and shape ops. The gradient of a reduction broadcasts back; the gradient of a view op is
// the inverse view; slice and pad are each other's adjoints, as are concat and slicing into parts.

extension Var {
    func normalizedAxes(_ axes: [Int]?) -> [Int] {
        guard let axes else { return Array(0..<rank) }
        return Array(Set(axes.map { $0 < 0 ? $0 + rank : $0 })).sorted()
    }

    func reducedShape(_ axes: [Int], keepDims: Bool) -> [Int] {
        keepDims ? shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
                 : shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element)
    }

    // MARK: Reductions

    /// Sum over `axes` (all when nil).
    public func sum(axes: [Int]? = nil, keepDims: Bool = false) -> Var {
        let ax = normalizedAxes(axes)
        let kept = reducedShape(ax, keepDims: true)
        let out = Kernels.sum(data, axes: ax).reshaped(reducedShape(ax, keepDims: keepDims))
        let from = shape
        return Var.make("sum", out, [self]) { g, _ in [g.reshape(kept).expand(from)] }
    }

    public func mean(axes: [Int]? = nil, keepDims: Bool = false) -> Var {
        let ax = normalizedAxes(axes)
        let n = ax.reduce(1) { $0 * shape[$1] }
        return sum(axes: ax, keepDims: keepDims) * (1 / Float(n))
    }

    /// Biased (population) variance over `axes`, as normalization layers use it.
    public func variance(axes: [Int]? = nil, keepDims: Bool = false, unbiased: Bool = false) -> Var {
        let ax = normalizedAxes(axes)
        let n = ax.reduce(1) { $0 * shape[$1] }
        let centered = self - mean(axes: ax, keepDims: true)
        let ss = centered.square().sum(axes: ax, keepDims: keepDims)
        return ss * (1 / Float(unbiased ? n - 1 : n))
    }

    /// Max over `axes`; the gradient goes to the first maximal element of each group.
    public func max(axes: [Int]? = nil, keepDims: Bool = false) -> Var {
        let ax = normalizedAxes(axes)
        let (values, mask) = Kernels.maxReduce(data, axes: ax)
        let kept = reducedShape(ax, keepDims: true)
        let from = shape
        return Var.make("max", values.reshaped(reducedShape(ax, keepDims: keepDims)), [self]) { g, _ in
            [g.reshape(kept).expand(from) * Var(mask)]
        }
    }

    public func logSumExp(axes: [Int], keepDims: Bool = false) -> Var {
        let m = Var(max(axes: axes, keepDims: true).data)
        let s = (self - m).exp().sum(axes: axes, keepDims: true).log() + m
        return keepDims ? s : s.reshape(reducedShape(normalizedAxes(axes), keepDims: false))
    }

    // MARK: Views

    public func reshape(_ newShape: [Int]) -> Var {
        let target = NDArray.resolve(newShape, count: count)
        if target == shape { return self }
        let from = shape
        return Var.make("reshape", data.reshaped(target), [self]) { g, _ in [g.reshape(from)] }
    }

    /// Flattens dimensions from `start` on ([N,C,H,W] -> [N, C*H*W]).
    public func flatten(from start: Int = 1) -> Var {
        reshape(Array(shape.prefix(start)) + [shape.dropFirst(start).reduce(1, *)])
    }

    public func permute(_ order: [Int]) -> Var {
        var inverse = [Int](repeating: 0, count: order.count)
        for (i, d) in order.enumerated() { inverse[d] = i }
        return Var.make("permute", data.permuted(order), [self]) { g, _ in [g.permute(inverse)] }
    }

    public func transpose(_ a: Int = 0, _ b: Int = 1) -> Var {
        var order = Array(0..<rank)
        order.swapAt(a < 0 ? a + rank : a, b < 0 ? b + rank : b)
        return permute(order)
    }

    /// Elements `range` along `axis` (a view).
    public func slice(axis: Int, _ range: Range<Int>) -> Var {
        let ax = axis < 0 ? axis + rank : axis
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[ax], "slice \(range) of \(shape[ax])")
        var s = shape
        s[ax] = range.count
        let view = NDArray(storage: data.storage, offset: data.offset + range.lowerBound * data.strides[ax],
                           shape: s, strides: data.strides)
        let before = range.lowerBound, after = shape[ax] - range.upperBound
        return Var.make("slice", view, [self]) { g, _ in
            var p = [(Int, Int)](repeating: (0, 0), count: g.rank)
            p[ax] = (before, after)
            return [g.pad(p)]
        }
    }

    /// Zero padding: `padding[d]` elements before and after along each dimension d.
    public func pad(_ padding: [(Int, Int)], value: Float = 0) -> Var {
        precondition(padding.count == rank, "pad needs one (before, after) per dimension")
        let outShape = zip(shape, padding).map { $0 + $1.0 + $1.1 }
        let out = NDArray.full(outShape, value)
        var off = 0
        for d in 0..<rank { off += padding[d].0 * out.strides[d] }
        NDArray(storage: out.storage, offset: off, shape: shape, strides: out.strides).assign(from: data)
        let ranges = zip(shape, padding).map { $1.0..<($1.0 + $0) }
        return Var.make("pad", out, [self]) { g, _ in
            var r = g
            for d in 0..<ranges.count where r.shape[d] != ranges[d].count { r = r.slice(axis: d, ranges[d]) }
            return [r]
        }
    }

    /// Reverses the order along `axes` (a view with negative strides).
    public func flip(_ axes: [Int]) -> Var {
        let ax = normalizedAxes(axes)
        var st = data.strides, off = data.offset
        for d in ax where shape[d] > 0 { off += (shape[d] - 1) * st[d]; st[d] = -st[d] }
        let view = NDArray(storage: data.storage, offset: off, shape: shape, strides: st)
        return Var.make("flip", view, [self]) { g, _ in [g.flip(ax)] }
    }

    /// Concatenation along `axis`.
    public static func concat(_ parts: [Var], axis: Int) -> Var {
        precondition(!parts.isEmpty, "nothing to concatenate")
        let ax = axis < 0 ? axis + parts[0].rank : axis
        var outShape = parts[0].shape
        outShape[ax] = parts.reduce(0) { $0 + $1.shape[ax] }
        let out = NDArray.uninitialized(outShape)
        var at = 0
        var ranges: [Range<Int>] = []
        for p in parts {
            precondition(p.rank == outShape.count, "concat of ranks \(p.rank) and \(outShape.count)")
            let n = p.shape[ax]
            NDArray(storage: out.storage, offset: at * out.strides[ax], shape: p.shape, strides: out.strides).assign(from: p.data)
            ranges.append(at..<(at + n))
            at += n
        }
        return make("concat", out, parts) { g, _ in
            zip(parts, ranges).map { p, r in p.gradNeeded ? g.slice(axis: ax, r) : nil }
        }
    }

    /// Stacks equally shaped values along a new dimension `axis`.
    public static func stack(_ parts: [Var], axis: Int = 0) -> Var {
        precondition(!parts.isEmpty, "nothing to stack")
        let r = parts[0].rank
        let ax = axis < 0 ? axis + r + 1 : axis
        return concat(parts.map { p in
            var s = p.shape
            s.insert(1, at: ax)
            return p.reshape(s)
        }, axis: ax)
    }

    /// `count` equal slices along `axis` (the size must divide evenly).
    public func chunk(_ count: Int, axis: Int = 0) -> [Var] {
        let ax = axis < 0 ? axis + rank : axis
        precondition(shape[ax] % count == 0, "cannot split \(shape[ax]) into \(count) equal chunks")
        let size = shape[ax] / count
        return (0..<count).map { slice(axis: ax, $0 * size..<($0 + 1) * size) }
    }

    /// A compact copy (a no-op for the graph).
    public func contiguous() -> Var {
        if data.isContiguous { return self }
        return Var.make("contiguous", data.copy(), [self]) { g, _ in [g] }
    }
}
