import Foundation

/// Reuses freed float buffers by exact size, so a training loop that repeats the same shapes stops
/// allocating after its first step. Buffers come back when the last array viewing them goes away.
public final class BufferPool: @unchecked Sendable {
    public static let shared = BufferPool()

    /// Upper bound on bytes kept for reuse; beyond it freed buffers are deallocated.
    public var capacityBytes = 1 << 30
    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    private var pooledBytes = 0
    private let lock = NSLock()
    /// Fresh allocations and reuses, for tests and tuning.
    public private(set) var allocations = 0
    public private(set) var reuses = 0

    func storage(count: Int) -> TensorStorage {
        // Round to 64 bytes so nearby sizes share bins and AVX loads stay aligned.
        let bytes = max(64, (count * 4 + 63) & ~63)
        lock.lock()
        var p: UnsafeMutableRawPointer?
        if var list = free[bytes], let last = list.popLast() {
            free[bytes] = list
            pooledBytes -= bytes
            reuses += 1
            p = last
        } else {
            allocations += 1
        }
        lock.unlock()
        let base = p ?? UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        return TensorStorage(base: base, byteCount: count * 4) { [unowned self] in self.give(base, bytes) }
    }

    private func give(_ p: UnsafeMutableRawPointer, _ bytes: Int) {
        lock.lock()
        if pooledBytes + bytes <= capacityBytes {
            free[bytes, default: []].append(p)
            pooledBytes += bytes
            lock.unlock()
        } else {
            lock.unlock()
            p.deallocate()
        }
    }

    /// Frees every pooled buffer.
    public func drain() {
        lock.lock()
        let all = free.values.flatMap { $0 }
        free = [:]
        pooledBytes = 0
        lock.unlock()
        all.forEach { $0.deallocate() }
    }
}
