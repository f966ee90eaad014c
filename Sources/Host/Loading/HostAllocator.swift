import Foundation
import QuacPluginAPI

/// The host's tensor allocator (host->tensor_alloc). One block holds the managed struct, the shape and
/// the 64-byte aligned data, so the deleter frees everything with one call whichever side runs it.
public enum HostAllocator {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var live = 0

    /// Tensors allocated and not yet released: the conformance check uses it to find leaks.
    public static var liveCount: Int { lock.lock(); defer { lock.unlock() }; return live }

    private static let headerBytes = (MemoryLayout<quac_managed_tensor>.stride + 63) / 64 * 64

    public static func allocate(dtype: quac_dtype, shape: [Int64]) -> UnsafeMutablePointer<quac_managed_tensor>? {
        guard let dt = DType(abi: dtype), shape.allSatisfy({ $0 >= 0 }), shape.count <= 16 else { return nil }
        let (count, overflow) = shape.reduce((Int64(1), false)) { acc, d in
            let (m, o) = acc.0.multipliedReportingOverflow(by: d)
            return (m, acc.1 || o)
        }
        guard !overflow, count < Int64(1) << 40 else { return nil }
        let shapeBytes = (shape.count * 8 + 63) / 64 * 64
        let dataBytes = Int(count) * dt.byteSize
        let total = headerBytes + shapeBytes + max(dataBytes, 1)
        let base = UnsafeMutableRawPointer.allocate(byteCount: total, alignment: 64)
        let shapePtr = (base + headerBytes).bindMemory(to: Int64.self, capacity: max(shape.count, 1))
        for (i, d) in shape.enumerated() { shapePtr[i] = d }
        let data = base + headerBytes + shapeBytes
        data.initializeMemory(as: UInt8.self, repeating: 0, count: max(dataBytes, 1))
        let managed = base.bindMemory(to: quac_managed_tensor.self, capacity: 1)
        var m = quac_managed_tensor()
        m.version.major = 1
        m.version.minor = 0
        m.manager_ctx = base
        m.deleter = hostTensorDeleter
        m.flags = 0
        m.tensor = quac_tensor(data: data, device: quac_device(device_type: Int32(QUAC_DEVICE_CPU), device_id: 0),
                               ndim: Int32(shape.count), dtype: dtype, shape: shapePtr, strides: nil, byte_offset: 0)
        managed.initialize(to: m)
        lock.lock(); live += 1; lock.unlock()
        return managed
    }

    fileprivate static func release(_ base: UnsafeMutableRawPointer) {
        lock.lock(); live -= 1; lock.unlock()
        base.deallocate()
    }
}

private let hostTensorDeleter: @convention(c) (UnsafeMutablePointer<quac_managed_tensor>?) -> Void = { managed in
    guard let managed, let base = managed.pointee.manager_ctx else { return }
    HostAllocator.release(base)
}

extension Tensor {
    /// A host-allocated managed copy, for handing a result to a plugin (which then owns it).
    public func managedCopy() -> UnsafeMutablePointer<quac_managed_tensor>? {
        guard let m = HostAllocator.allocate(dtype: dtype.abi, shape: shape.map(Int64.init)) else { return nil }
        if byteCount > 0 { m.pointee.tensor.data.copyMemory(from: data, byteCount: byteCount) }
        return m
    }
}
