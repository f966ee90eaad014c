import QuacPluginAPI

/// Bridging between Tensor and the ABI's DLPack-compatible structs, without copying where the layout
/// allows it.
extension Tensor {
    /// Calls `body` with a borrowed, read-only quac_tensor view of this tensor (valid during the call).
    public func withABITensor<R>(_ body: (UnsafePointer<quac_tensor>) throws -> R) rethrows -> R {
        var dims = shape.map { Int64($0) }
        return try dims.withUnsafeMutableBufferPointer { dimsPtr in
            var t = quac_tensor(data: storage.base, device: quac_device(device_type: Int32(QUAC_DEVICE_CPU), device_id: 0),
                                ndim: Int32(shape.count), dtype: dtype.abi, shape: dimsPtr.baseAddress,
                                strides: nil, byte_offset: UInt64(offset))
            return try withUnsafePointer(to: &t) { try body($0) }
        }
    }

    /// Why an ABI tensor cannot be taken as a host tensor, or nil when it can.
    public static func problem(with t: quac_tensor) -> String? {
        if t.device.device_type != Int32(QUAC_DEVICE_CPU) { return "tensor is on device type \(t.device.device_type), not CPU" }
        if t.ndim < 0 || t.ndim > 16 { return "tensor has rank \(t.ndim)" }
        if DType(abi: t.dtype) == nil { return "tensor has unsupported \(t.dtype.displayName)" }
        if t.ndim > 0 && t.shape == nil { return "tensor has a NULL shape" }
        for i in 0..<Int(t.ndim) where t.shape[i] < 0 { return "tensor has negative dimension \(t.shape[i])" }
        let count = (0..<Int(t.ndim)).reduce(Int64(1)) { $0 * t.shape[$1] }
        if count > 0 && t.data == nil { return "tensor has NULL data" }
        return nil
    }

    /// Copies a borrowed ABI tensor (any strides) into a new compact host tensor.
    public init(copying t: quac_tensor) throws {
        if let p = Tensor.problem(with: t) { throw TensorError.invalid(p) }
        let dtype = DType(abi: t.dtype)!
        let shape = (0..<Int(t.ndim)).map { Int(t.shape[$0]) }
        self.init(zeros: shape, dtype: dtype)
        let n = count
        if n == 0 { return }
        let src = t.data! + Int(t.byte_offset)
        let es = dtype.byteSize
        if t.strides == nil || Tensor.isCompact(shape: shape, strides: t.strides) {
            data.copyMemory(from: src, byteCount: n * es)
            return
        }
        var index = [Int](repeating: 0, count: shape.count)
        for linear in 0..<n {
            var off = 0
            for d in 0..<shape.count { off += index[d] * Int(t.strides[d]) }
            (data + linear * es).copyMemory(from: src + off * es, byteCount: es)
            var d = shape.count - 1
            while d >= 0 { index[d] += 1; if index[d] < shape[d] { break }; index[d] = 0; d -= 1 }
        }
    }

    /// Takes ownership of a managed tensor. Compact CPU tensors are wrapped in place (the deleter runs
    /// when the last view goes); anything else is copied and released at once.
    public init(adopting managed: UnsafeMutablePointer<quac_managed_tensor>) throws {
        let t = managed.pointee.tensor
        if let p = Tensor.problem(with: t) {
            managed.pointee.deleter?(managed)
            throw TensorError.invalid(p)
        }
        let shape = (0..<Int(t.ndim)).map { Int(t.shape[$0]) }
        if t.strides == nil || Tensor.isCompact(shape: shape, strides: t.strides) {
            let dtype = DType(abi: t.dtype)!
            let bytes = shape.reduce(1, *) * dtype.byteSize
            let base = t.data ?? UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1)
            let ownsDummy = t.data == nil
            let storage = TensorStorage(base: base + Int(t.byte_offset), byteCount: bytes) {
                if ownsDummy { base.deallocate() }
                managed.pointee.deleter?(managed)
            }
            self.init(dtype: dtype, shape: shape, storage: storage)
        } else {
            defer { managed.pointee.deleter?(managed) }
            try self.init(copying: t)
        }
    }

    static func isCompact(shape: [Int], strides: UnsafeMutablePointer<Int64>) -> Bool {
        var expected = 1
        for d in stride(from: shape.count - 1, through: 0, by: -1) {
            if shape[d] != 1 && Int(strides[d]) != expected { return false }
            expected *= shape[d]
        }
        return true
    }
}

public enum TensorError: Error, CustomStringConvertible {
    case invalid(String)
    public var description: String {
        switch self { case .invalid(let s): return s }
    }
}

extension Tensor {
    /// A view of a borrowed ABI tensor, valid only while the borrowed memory is (the duration of a
    /// plugin call). Compact tensors are not copied; strided ones are.
    public init(borrowing t: quac_tensor) throws {
        if let p = Tensor.problem(with: t) { throw TensorError.invalid(p) }
        let shape = (0..<Int(t.ndim)).map { Int(t.shape[$0]) }
        guard t.strides == nil || Tensor.isCompact(shape: shape, strides: t.strides) else {
            try self.init(copying: t)
            return
        }
        let dtype = DType(abi: t.dtype)!
        let bytes = shape.reduce(1, *) * dtype.byteSize
        if bytes == 0 {
            self.init(zeros: shape, dtype: dtype)
            return
        }
        self.init(dtype: dtype, shape: shape,
                  storage: TensorStorage(base: t.data! + Int(t.byte_offset), byteCount: bytes, release: nil))
    }

    /// A heap-held ABI view of this tensor, for building structs that point at several tensors.
    public func abiView() -> ABITensorView { ABITensorView(self) }
}

/// A quac_tensor describing a Tensor, alive as long as this object (which keeps the Tensor alive).
public final class ABITensorView {
    public let tensor: Tensor
    public let pointer: UnsafeMutablePointer<quac_tensor>
    private let dims: UnsafeMutablePointer<Int64>

    public init(_ tensor: Tensor) {
        self.tensor = tensor
        dims = .allocate(capacity: max(tensor.rank, 1))
        for (i, d) in tensor.shape.enumerated() { dims[i] = Int64(d) }
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: quac_tensor(
            data: tensor.storage.base, device: quac_device(device_type: Int32(QUAC_DEVICE_CPU), device_id: 0),
            ndim: Int32(tensor.rank), dtype: tensor.dtype.abi, shape: dims, strides: nil,
            byte_offset: UInt64(tensor.offset)))
    }

    deinit {
        pointer.deallocate()
        dims.deallocate()
    }
}
