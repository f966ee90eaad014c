import Foundation

/// A tensor whose values are known when the file is read: an initializer, a Constant node, or what
/// shape arithmetic over them computes (PyTorch exports `x.view(x.size(0), -1)` and `F.pad` as small
/// graphs of Shape, Gather, Concat, Slice... over int64 vectors). Values are kept as Double (exact for
/// every int64 a shape holds and for every float32); `batch` stands for the batch size, which the file
/// may leave symbolic and the engine's network takes from its input.
struct OnnxConstant: Equatable {
    var shape: [Int]
    var values: [Double]
    var isInteger: Bool

    /// The batch size, wherever a Shape node read it (-2^62, exactly representable, never a real size).
    static let batch: Double = -4_611_686_018_427_387_904

    var count: Int { shape.reduce(1, *) }
    var dependsOnBatch: Bool { values.contains(Self.batch) }

    init(shape: [Int], values: [Double], isInteger: Bool) {
        self.shape = shape
        self.values = values
        self.isInteger = isInteger
    }

    init(ints: [Int], shape: [Int]? = nil) {
        self.init(shape: shape ?? [ints.count], values: ints.map(Double.init), isInteger: true)
    }

    /// The values as integers; one beyond +-2^31 (no size, axis or pad is) reads as Int32.min, which
    /// every consumer refuses as negative or out of range.
    var ints: [Int] { values.map { $0 == Self.batch ? Int(Self.batch) : Self.clamped($0) } }

    static func clamped(_ v: Double) -> Int {
        v.isFinite && abs(v) <= 2_147_483_647 ? Int(v) : Int(Int32.min)
    }

    /// The product of sizes, or nil when it overflows.
    static func product(_ sizes: [Int]) -> Int? {
        var p = 1
        for s in sizes {
            let (r, o) = p.multipliedReportingOverflow(by: s)
            if o { return nil }
            p = r
        }
        return p
    }
    var floats: [Float] { values.map(Float.init) }

    /// Row-major strides of `shape`.
    static func strides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        for d in stride(from: shape.count - 2, through: 0, by: -1) { s[d] = s[d + 1] * shape[d + 1] }
        return s
    }

    /// Calls body(flat index in the result, source multi-index) over every element of `shape`.
    static func forEachIndex(_ shape: [Int], _ body: (Int, [Int]) -> Void) {
        let n = shape.reduce(1, *)
        guard n > 0 else { return }
        var idx = [Int](repeating: 0, count: shape.count)
        for flat in 0..<n {
            body(flat, idx)
            var d = shape.count - 1
            while d >= 0 {
                idx[d] += 1
                if idx[d] < shape[d] { break }
                idx[d] = 0
                d -= 1
            }
        }
    }

    func value(at idx: [Int]) -> Double {
        values[zip(idx, Self.strides(shape)).reduce(0) { $0 + $1.0 * $1.1 }]
    }

    func transposed(_ perm: [Int]) -> OnnxConstant {
        let outShape = perm.map { shape[$0] }
        var out = [Double](repeating: 0, count: count)
        Self.forEachIndex(outShape) { flat, idx in
            var src = [Int](repeating: 0, count: shape.count)
            for (o, p) in perm.enumerated() { src[p] = idx[o] }
            out[flat] = value(at: src)
        }
        return OnnxConstant(shape: outShape, values: out, isInteger: isInteger)
    }

    /// NumPy broadcasting of two shapes, or nil when they do not broadcast.
    static func broadcast(_ a: [Int], _ b: [Int]) -> [Int]? {
        let r = max(a.count, b.count)
        let pa = [Int](repeating: 1, count: r - a.count) + a, pb = [Int](repeating: 1, count: r - b.count) + b
        var out: [Int] = []
        for (x, y) in zip(pa, pb) {
            guard x == y || x == 1 || y == 1 else { return nil }
            out.append(x == 1 ? y : x)
        }
        return out
    }

    /// Elementwise a op b with broadcasting.
    static func combine(_ a: OnnxConstant, _ b: OnnxConstant, _ op: (Double, Double) -> Double) -> OnnxConstant? {
        guard let shape = broadcast(a.shape, b.shape) else { return nil }
        let r = shape.count
        func pick(_ c: OnnxConstant, _ idx: [Int]) -> Double {
            let off = r - c.shape.count
            return c.value(at: (0..<c.shape.count).map { c.shape[$0] == 1 ? 0 : idx[$0 + off] })
        }
        var out = [Double](repeating: 0, count: shape.reduce(1, *))
        forEachIndex(shape) { flat, idx in out[flat] = op(pick(a, idx), pick(b, idx)) }
        let integer = a.isInteger && b.isInteger
        return OnnxConstant(shape: shape, values: integer ? out.map { $0.rounded(.towardZero) } : out, isInteger: integer)
    }
}

/// Reading ONNX's TensorProto (float, double, int64, int32 and bool; data inline or in raw_data).
enum OnnxTensorDecoding {
    /// ONNX's TensorProto.DataType codes this importer reads.
    static let float = 1, int32 = 6, int64 = 7, bool = 9, double = 11

    static func decode(_ t: Onnx_TensorProto) throws -> OnnxConstant {
        let shape = t.dims.map { Int($0) }
        guard shape.allSatisfy({ $0 >= 0 }) else { throw OnnxImportError("tensor \"\(t.name)\": negative dimension in \(shape)") }
        guard t.externalData.isEmpty, t.dataLocation != .external else {
            throw OnnxImportError("tensor \"\(t.name)\": its data is in an external file, which this importer does not read (save the model with its weights inside)")
        }
        guard let count = OnnxConstant.product(shape), count <= 1 << 33 else { throw OnnxImportError("tensor \"\(t.name)\": shape \(shape) is too large") }
        let raw = t.rawData
        func fromRaw<T>(_ type: T.Type, _ convert: (T) -> Double) throws -> [Double] {
            let size = MemoryLayout<T>.size
            guard raw.count == count * size else {
                throw OnnxImportError("tensor \"\(t.name)\": raw_data holds \(raw.count) bytes, its shape \(shape) needs \(count * size)")
            }
            return raw.withUnsafeBytes { buf in (0..<count).map { convert(buf.loadUnaligned(fromByteOffset: $0 * size, as: T.self)) } }
        }
        var values: [Double]
        var integer = false
        switch Int(t.dataType) {
        case float: values = raw.isEmpty ? t.floatData.map(Double.init) : try fromRaw(Float.self) { Double($0) }
        case double: values = raw.isEmpty ? t.doubleData : try fromRaw(Double.self) { $0 }
        case int64: values = raw.isEmpty ? t.int64Data.map(Double.init) : try fromRaw(Int64.self) { Double($0) }; integer = true
        case int32: values = raw.isEmpty ? t.int32Data.map(Double.init) : try fromRaw(Int32.self) { Double($0) }; integer = true
        case bool: values = raw.isEmpty ? t.int32Data.map { $0 != 0 ? 1 : 0 } : try fromRaw(UInt8.self) { $0 != 0 ? 1 : 0 }; integer = true
        default:
            throw OnnxImportError("tensor \"\(t.name)\": data type \(t.dataType) is not supported (float, double, int64, int32, bool are)")
        }
        guard values.count == count else {
            throw OnnxImportError("tensor \"\(t.name)\": \(values.count) values for shape \(shape)")
        }
        if !integer, let bad = values.first(where: { !$0.isFinite }) {
            throw OnnxImportError("tensor \"\(t.name)\": holds \(bad)")
        }
        return OnnxConstant(shape: shape, values: values, isInteger: integer)
    }
}

/// A one-line reason the import stops (the caller adds the file's name).
public struct OnnxImportError: Error, CustomStringConvertible, Equatable {
    public let description: String
    init(_ message: String) { description = message }
}
