import Foundation

/// Evaluating nodes whose inputs are all known while converting (constant folding): the shape
/// arithmetic exporters leave in graphs. Returns nil for a node it does not evaluate, which then
/// converts as a layer (or is refused).
extension Converter {
    func fold(_ ctx: NodeContext) throws -> OnnxConstant? {
        let node = ctx.node
        func input(_ i: Int, _ what: String) throws -> OnnxConstant {
            guard node.input.count > i, !node.input[i].isEmpty else { throw ctx.fail("needs \(what)") }
            return try constant(node.input[i], ctx, what)
        }
        func axis(_ a: Int, _ rank: Int) throws -> Int {
            let v = a < 0 ? a + rank : a
            guard v >= 0, v < max(rank, 1) else { throw ctx.fail("axis \(a) is out of range for rank \(rank)") }
            return v
        }
        switch node.opType {
        case "Constant":
            if let t = ctx.attribute("value") { return try OnnxTensorDecoding.decode(t.t) }
            if let f = ctx.attribute("value_float") { return OnnxConstant(shape: [], values: [Double(f.f)], isInteger: false) }
            if let f = ctx.attribute("value_floats") { return OnnxConstant(shape: [f.floats.count], values: f.floats.map(Double.init), isInteger: false) }
            if let i = ctx.attribute("value_int") { return OnnxConstant(ints: [Int(i.i)], shape: []) }
            if let i = ctx.attribute("value_ints") { return OnnxConstant(ints: i.ints.map(Int.init)) }
            throw ctx.fail("a Constant without a value (or with a sparse or string value) is not supported")
        case "Shape":
            var shape: [Int]
            switch try value(node.input[0], ctx) {
            case .tensor(_, let s): shape = [Int(OnnxConstant.batch)] + s
            case .constant(let c): shape = c.shape
            }
            let r = shape.count
            var start = ctx.int("start", 0), end = ctx.int("end", r)
            if start < 0 { start += r }
            if end < 0 { end += r }
            start = min(max(start, 0), r); end = min(max(end, start), r)
            return OnnxConstant(ints: Array(shape[start..<end]))
        case "Identity", "Dropout":
            return try input(0, "an input")
        case "Cast":
            var c = try input(0, "an input")
            let to = ctx.int("to", OnnxTensorDecoding.float)
            switch to {
            case OnnxTensorDecoding.float, OnnxTensorDecoding.double:
                guard !c.dependsOnBatch else { throw ctx.fail("a cast of the batch size to float is not supported") }
                c.isInteger = false
            case OnnxTensorDecoding.int64, OnnxTensorDecoding.int32:
                c.values = c.values.map { $0 == OnnxConstant.batch ? $0 : $0.rounded(.towardZero) }
                c.isInteger = true
            case OnnxTensorDecoding.bool:
                c.values = c.values.map { $0 != 0 ? 1 : 0 }
                c.isInteger = true
            default: throw ctx.fail("cast to data type \(to) is not supported")
            }
            return c
        case "ConstantOfShape":
            let shape = try input(0, "a shape").ints
            guard shape.allSatisfy({ $0 >= 0 }) else { throw ctx.fail("shape \(shape) depends on the batch size or is negative") }
            let fill = try ctx.attribute("value").map { try OnnxTensorDecoding.decode($0.t) } ?? OnnxConstant(shape: [1], values: [0], isInteger: false)
            guard let count = OnnxConstant.product(shape), count <= 1 << 20 else { throw ctx.fail("constant of shape \(shape) is too large") }
            return OnnxConstant(shape: shape, values: [Double](repeating: fill.values.first ?? 0, count: count), isInteger: fill.isInteger)
        case "Gather":
            let data = try input(0, "data"), indices = try input(1, "indices")
            let ax = try axis(ctx.int("axis", 0), data.shape.count)
            guard data.shape.count >= 1 else { throw ctx.fail("data must have at least one dimension") }
            let n = data.shape[ax]
            let idx = try indices.ints.map { i -> Int in
                let j = i < 0 ? i + n : i
                guard j >= 0, j < n else { throw ctx.fail("index \(i) is out of range for \(n)") }
                return j
            }
            let outShape = Array(data.shape[..<ax]) + indices.shape + Array(data.shape[(ax + 1)...])
            var out = [Double](repeating: 0, count: outShape.reduce(1, *))
            OnnxConstant.forEachIndex(outShape) { flat, o in
                let before = Array(o[..<ax]), which = Array(o[ax..<(ax + indices.shape.count)]), after = Array(o[(ax + indices.shape.count)...])
                let k = zip(which, OnnxConstant.strides(indices.shape)).reduce(0) { $0 + $1.0 * $1.1 }
                out[flat] = data.value(at: before + [idx[k]] + after)
            }
            return OnnxConstant(shape: outShape, values: out, isInteger: data.isInteger)
        case "Unsqueeze", "Squeeze":
            var c = try input(0, "an input")
            var axes = ctx.ints("axes") ?? []
            if node.input.count > 1, !node.input[1].isEmpty { axes = try input(1, "axes").ints }
            if node.opType == "Unsqueeze" {
                let rank = c.shape.count + axes.count
                let norm = Set(try axes.map { try axis($0, rank) })
                guard norm.count == axes.count else { throw ctx.fail("axes \(axes) repeat an axis") }
                var it = c.shape.makeIterator()
                c.shape = (0..<rank).map { norm.contains($0) ? 1 : it.next()! }
            } else {
                let norm = Set(try (axes.isEmpty ? c.shape.indices.filter { c.shape[$0] == 1 } : axes).map { try axis($0, c.shape.count) })
                c.shape = c.shape.enumerated().filter { !norm.contains($0.offset) }.map(\.element)
            }
            return c
        case "Reshape":
            var c = try input(0, "an input")
            var target = try input(1, "a shape").ints
            target = target.enumerated().map { i, d in d == 0 && i < c.shape.count ? c.shape[i] : d }
            if let i = target.firstIndex(of: -1) {
                guard let known = OnnxConstant.product(target.filter { $0 != -1 }), known > 0 else { throw ctx.fail("cannot reshape \(c.shape) to \(target)") }
                target[i] = c.count / known
            }
            guard target.allSatisfy({ $0 >= 0 }), OnnxConstant.product(target) == c.count else { throw ctx.fail("cannot reshape \(c.shape) to \(target)") }
            c.shape = target
            return c
        case "Transpose":
            let c = try input(0, "an input")
            let perm = ctx.ints("perm") ?? Array(c.shape.indices.reversed())
            guard perm.sorted() == Array(c.shape.indices) else { throw ctx.fail("perm \(perm) does not fit rank \(c.shape.count)") }
            return c.transposed(perm)
        case "Slice":
            let c = try input(0, "data")
            var starts: [Int], ends: [Int], axes: [Int]?, steps: [Int]?
            if opset >= 10 {
                starts = try input(1, "starts").ints; ends = try input(2, "ends").ints
                axes = node.input.count > 3 && !node.input[3].isEmpty ? try input(3, "axes").ints : nil
                steps = node.input.count > 4 && !node.input[4].isEmpty ? try input(4, "steps").ints : nil
            } else {
                starts = ctx.ints("starts") ?? []; ends = ctx.ints("ends") ?? []; axes = ctx.ints("axes"); steps = nil
            }
            let ax = try (axes ?? Array(starts.indices)).map { try axis($0, c.shape.count) }
            let st = steps ?? [Int](repeating: 1, count: starts.count)
            guard starts.count == ends.count, ax.count == starts.count, st.count == starts.count, !st.contains(0) else {
                throw ctx.fail("starts, ends, axes and steps do not match")
            }
            // Per axis, the source indices kept.
            var picks = c.shape.map { Array(0..<$0) }
            for (i, a) in ax.enumerated() {
                let n = c.shape[a], step = st[i]
                func clamp(_ v: Int, _ lo: Int, _ hi: Int) -> Int { min(max(v, lo), hi) }
                var s = starts[i] < 0 ? starts[i] + n : starts[i], e = ends[i] < 0 ? ends[i] + n : ends[i]
                if step > 0 { s = clamp(s, 0, n); e = clamp(e, 0, n) } else { s = clamp(s, -1, n - 1); e = clamp(e, -1, n - 1) }
                picks[a] = Array(stride(from: s, to: e, by: step))
            }
            let outShape = picks.map(\.count)
            var out = [Double](repeating: 0, count: outShape.reduce(1, *))
            OnnxConstant.forEachIndex(outShape) { flat, o in out[flat] = c.value(at: o.enumerated().map { picks[$0.offset][$0.element] }) }
            return OnnxConstant(shape: outShape, values: out, isInteger: c.isInteger)
        case "Concat":
            let parts = try node.input.indices.map { try input($0, "input \($0 + 1)") }
            guard let first = parts.first else { throw ctx.fail("no inputs") }
            let ax = try axis(ctx.int("axis", 0), first.shape.count)
            guard parts.allSatisfy({ p in p.shape.count == first.shape.count && p.shape.indices.allSatisfy { d in d == ax || p.shape[d] == first.shape[d] } }) else {
                throw ctx.fail("inputs of shapes \(parts.map(\.shape)) do not concatenate along axis \(ax)")
            }
            var shape = first.shape
            shape[ax] = parts.map { $0.shape[ax] }.reduce(0, +)
            var out = [Double](repeating: 0, count: shape.reduce(1, *))
            OnnxConstant.forEachIndex(shape) { flat, o in
                var k = o[ax], p = 0
                while k >= parts[p].shape[ax] { k -= parts[p].shape[ax]; p += 1 }
                var src = o
                src[ax] = k
                out[flat] = parts[p].value(at: src)
            }
            return OnnxConstant(shape: shape, values: out, isInteger: parts.allSatisfy(\.isInteger))
        case "Add", "Sub", "Mul", "Div":
            let a = try input(0, "A"), b = try input(1, "B")
            guard !a.dependsOnBatch, !b.dependsOnBatch else { throw ctx.fail("arithmetic on the batch size is not supported") }
            let ops: [String: (Double, Double) -> Double] = ["Add": (+), "Sub": (-), "Mul": (*), "Div": { $1 == 0 ? .nan : $0 / $1 }]
            guard let r = OnnxConstant.combine(a, b, ops[node.opType]!) else { throw ctx.fail("shapes \(a.shape) and \(b.shape) do not broadcast") }
            return r
        default:
            return nil
        }
    }
}
