import Foundation
@_exported import QuacCore
@_exported import QuacPluginAPI

/// Float32 values with a shape and element strides over shared storage. Views (transpose, permute,
/// expand, reshape of compact data) share storage; kernels that need compact input call `contiguous()`,
/// which copies only when the layout requires it. The storage is QuacCore's `TensorStorage`, so bridging
/// to the host tensor and to the ABI's DLPack tensors needs no copy.
public struct NDArray: @unchecked Sendable {
    public let storage: TensorStorage
    /// Element offset of element 0 in `storage`.
    public let offset: Int
    public let shape: [Int]
    /// Strides in elements; 0 on broadcast dimensions.
    public let strides: [Int]

    public init(storage: TensorStorage, offset: Int = 0, shape: [Int], strides: [Int]? = nil) {
        self.storage = storage
        self.offset = offset
        self.shape = shape
        self.strides = strides ?? NDArray.compactStrides(shape)
    }

    public static func compactStrides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for d in stride(from: shape.count - 1, through: 0, by: -1) { s[d] = acc; acc *= shape[d] }
        return s
    }

    public var count: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }
    public var pointer: UnsafeMutablePointer<Float> { storage.base.assumingMemoryBound(to: Float.self) + offset }

    /// True when the elements lie row-major with no gaps (size-1 dimensions may have any stride).
    public var isContiguous: Bool {
        var expected = 1
        for d in stride(from: shape.count - 1, through: 0, by: -1) where shape[d] != 1 {
            if strides[d] != expected { return false }
            expected *= shape[d]
        }
        return true
    }

    // MARK: Creation

    /// Storage from the buffer pool; contents undefined (the caller writes every element).
    public static func uninitialized(_ shape: [Int]) -> NDArray {
        NDArray(storage: BufferPool.shared.storage(count: shape.reduce(1, *)), shape: shape)
    }

    public static func zeros(_ shape: [Int]) -> NDArray {
        NDArray(storage: BufferPool.shared.storage(count: shape.reduce(1, *), zeroed: true), shape: shape)
    }
    public static func ones(_ shape: [Int]) -> NDArray { full(shape, 1) }

    public static func full(_ shape: [Int], _ value: Float) -> NDArray {
        let a = uninitialized(shape)
        a.pointer.update(repeating: value, count: a.count)
        return a
    }

    public static func scalar(_ value: Float) -> NDArray { full([], value) }

    public init(_ values: [Float], shape: [Int]) {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        self = NDArray.uninitialized(shape)
        let p = pointer
        values.withUnsafeBufferPointer { if let b = $0.baseAddress { p.update(from: b, count: $0.count) } }
    }

    public init(_ values: [Float]) { self.init(values, shape: [values.count]) }

    /// The values in row-major order.
    public var array: [Float] {
        let c = contiguous()
        return Array(UnsafeBufferPointer(start: c.pointer, count: c.count))
    }

    /// Index of the largest value in each row of the last dimension (predicted classes of logits).
    public func argmax() -> [Int] {
        let c = contiguous()
        let k = shape.last ?? 1
        return (0..<(count / Swift.max(k, 1))).map { r in
            let p = c.pointer + r * k
            var best = 0
            for j in 1..<Swift.max(k, 1) where p[j] > p[best] { best = j }
            return best
        }
    }

    /// The single value of a one-element array.
    public var item: Float {
        precondition(count == 1, "item() of an array with \(count) elements")
        return pointer.pointee
    }

    // MARK: Views and copies

    /// A compact copy, or self when already compact.
    public func contiguous() -> NDArray { isContiguous ? self : copy() }

    /// A compact copy in fresh storage.
    public func copy() -> NDArray {
        let out = NDArray.uninitialized(shape)
        copyStrided(from: self, to: out.pointer)
        return out
    }

    /// Same elements, new shape: a view when compact, else a copy first.
    public func reshaped(_ newShape: [Int]) -> NDArray {
        let shape = NDArray.resolve(newShape, count: count)
        let c = contiguous()
        return NDArray(storage: c.storage, offset: c.offset, shape: shape)
    }

    /// Fills in one -1 dimension.
    static func resolve(_ newShape: [Int], count: Int) -> [Int] {
        var shape = newShape
        if let i = shape.firstIndex(of: -1) {
            let rest = shape.enumerated().filter { $0.offset != i }.reduce(1) { $0 * $1.element }
            precondition(rest > 0 && count % rest == 0, "cannot reshape \(count) elements to \(newShape)")
            shape[i] = count / rest
        }
        precondition(shape.reduce(1, *) == count, "cannot reshape \(count) elements to \(newShape)")
        return shape
    }

    public func permuted(_ order: [Int]) -> NDArray {
        precondition(order.sorted() == Array(0..<rank), "bad permutation \(order) for rank \(rank)")
        return NDArray(storage: storage, offset: offset, shape: order.map { shape[$0] }, strides: order.map { strides[$0] })
    }

    public func transposed(_ a: Int, _ b: Int) -> NDArray {
        var order = Array(0..<rank)
        order.swapAt(a, b)
        return permuted(order)
    }

    /// A broadcast view (stride 0 on expanded dimensions); leading dimensions may be added.
    public func expanded(_ target: [Int]) -> NDArray {
        precondition(target.count >= rank, "cannot expand \(shape) to \(target)")
        let lead = target.count - rank
        var st = [Int](repeating: 0, count: target.count)
        for d in 0..<rank {
            if shape[d] == target[lead + d] { st[lead + d] = strides[d] } else {
                precondition(shape[d] == 1, "cannot expand \(shape) to \(target)")
            }
        }
        return NDArray(storage: storage, offset: offset, shape: target, strides: st)
    }

    /// Writes `src` (same shape, any strides) into this array's elements (which may be a strided view).
    public func assign(from src: NDArray) {
        precondition(src.shape == shape, "assign \(src.shape) to \(shape)")
        let bd = storage.base.assumingMemoryBound(to: Float.self)
        let bs = src.storage.base.assumingMemoryBound(to: Float.self)
        Kernels.forEach2(shape, strides, offset, src.strides, src.offset) { od, os, _, n, sd, ss in
            let pd = bd + od, ps = bs + os
            if sd == 1 && ss == 1 { pd.update(from: ps, count: n) } else { for i in 0..<n { pd[i * sd] = ps[i * ss] } }
        }
    }
}

/// Copies a (possibly strided) array into compact memory.
func copyStrided(from src: NDArray, to dst: UnsafeMutablePointer<Float>) {
    if src.isContiguous { dst.update(from: src.pointer, count: src.count); return }
    let base = src.storage.base.assumingMemoryBound(to: Float.self)
    Kernels.forEach2(src.shape, src.strides, src.offset, NDArray.compactStrides(src.shape), 0) { os, od, _, n, ss, sd in
        let p = base + os, q = dst + od
        if ss == 1 && sd == 1 { q.update(from: p, count: n) }
        else if ss == 0 && sd == 1 { q.update(repeating: p.pointee, count: n) }
        else { for i in 0..<n { q[i * sd] = p[i * ss] } }
    }
}

// MARK: Bridging

extension NDArray {
    /// A view of a float32 host tensor, sharing its storage.
    public init(_ tensor: Tensor) {
        precondition(tensor.dtype == .float32, "engine arrays are float32, tensor is \(tensor.dtype.displayName)")
        precondition(tensor.offset % 4 == 0, "misaligned float32 tensor")
        self.init(storage: tensor.storage, offset: tensor.offset / 4, shape: tensor.shape)
    }

    /// A host tensor sharing this array's storage (copies only when the array is not compact).
    public var tensor: Tensor {
        let c = contiguous()
        return Tensor(dtype: .float32, shape: c.shape, storage: c.storage, offset: c.offset * 4)
    }

    /// A view of a borrowed ABI tensor (compact float32 on the CPU) without copying; the caller keeps
    /// the ABI tensor alive while the view is used. Non-compact or non-float32 tensors are copied.
    public static func borrowing(_ t: quac_tensor) throws -> NDArray {
        if let p = Tensor.problem(with: t) { throw TensorError.invalid(p) }
        let shape = (0..<Int(t.ndim)).map { Int(t.shape[$0]) }
        let isF32 = DType(abi: t.dtype) == .float32
        let n = shape.reduce(1, *)
        if isF32 && (t.strides == nil || NDArray.stridesCompact(shape, t.strides)) && Int(t.byte_offset) % 4 == 0 {
            guard let base = t.data else { return NDArray.zeros(shape) }
            let storage = TensorStorage(base: base + Int(t.byte_offset), byteCount: n * 4, release: nil)
            return NDArray(storage: storage, shape: shape)
        }
        let copy = try Tensor(copying: t)
        if copy.dtype == .float32 { return NDArray(copy) }
        return NDArray(copy.doubleArray().map { Float($0) }, shape: shape)
    }

    static func stridesCompact(_ shape: [Int], _ strides: UnsafeMutablePointer<Int64>) -> Bool {
        var expected = 1
        for d in stride(from: shape.count - 1, through: 0, by: -1) where shape[d] != 1 {
            if Int(strides[d]) != expected { return false }
            expected *= shape[d]
        }
        return true
    }

    /// Takes ownership of a managed ABI tensor: float32 compact tensors are wrapped in place (the
    /// deleter runs when the last view goes), anything else is converted.
    public init(adopting managed: UnsafeMutablePointer<quac_managed_tensor>) throws {
        let t = try Tensor(adopting: managed)
        if t.dtype == .float32 { self.init(t) } else { self.init(t.doubleArray().map { Float($0) }, shape: t.shape) }
    }

    /// Copies the values into a caller-allocated ABI tensor (an output the host allocated) of the same
    /// shape, float32 and compact.
    public func copy(into t: quac_tensor) throws {
        if let p = Tensor.problem(with: t) { throw TensorError.invalid(p) }
        let dims = (0..<Int(t.ndim)).map { Int(t.shape[$0]) }
        guard dims == shape, DType(abi: t.dtype) == .float32 else {
            throw TensorError.invalid("output is \(t.dtype.displayName) \(dims), the result float32 \(shape)")
        }
        guard t.strides == nil || NDArray.stridesCompact(dims, t.strides) else {
            throw TensorError.invalid("output tensor is not compact")
        }
        guard count > 0, let base = t.data else { return }
        copyStrided(from: self, to: (base + Int(t.byte_offset)).assumingMemoryBound(to: Float.self))
    }

    /// Calls `body` with a borrowed ABI view (valid during the call).
    public func withABITensor<R>(_ body: (UnsafePointer<quac_tensor>) throws -> R) rethrows -> R {
        try tensor.withABITensor(body)
    }
}

/// Integer class labels (int64 in files and at the ABI).
public struct Labels: Sendable, Equatable {
    public var values: [Int]
    public init(_ values: [Int]) { self.values = values }
    public init(_ tensor: Tensor) { values = tensor.doubleArray().map { Int($0) } }
    public var count: Int { values.count }
    public var tensor: Tensor { Tensor(values.map { Int64($0) }, shape: [values.count]) }
}
