import Foundation

/// Reuses freed float buffers by exact size, so a training loop that repeats the same shapes stops
/// allocating after its first step. Buffers come back when the last array viewing them goes away.
public final class BufferPool: @unchecked Sendable {
    public static let shared = BufferPool()

    /// Upper bound on bytes kept for reuse; beyond it freed buffers are deallocated. QUAC_ENGINE_POOL_MB
    /// sets it (default 1024).
    public var capacityBytes: Int = {
        if let s = ProcessInfo.processInfo.environment["QUAC_ENGINE_POOL_MB"], let mb = Int(s), mb >= 0 { return mb << 20 }
        return 1 << 30
    }()
    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    private var pooledBytes = 0
    /// Pooled buffers in the order they were freed (entries already handed out again are skipped).
    private var order: [(Int, UnsafeMutableRawPointer)] = []
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
            if let i = order.lastIndex(where: { $0.1 == last }) { order.remove(at: i) }
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
        guard bytes <= capacityBytes else {
            lock.unlock()
            p.deallocate()
            return
        }
        // Over capacity, the buffers freed longest ago go first: the sizes a loop uses now are the ones
        // it will ask for again (refusing new sizes instead would leave a full pool of stale ones, and
        // every large array of the current loop would come fresh from the OS, page faults included).
        var evicted: [UnsafeMutableRawPointer] = []
        while pooledBytes + bytes > capacityBytes, let (oldBytes, old) = order.first {
            order.removeFirst()
            if let i = free[oldBytes]?.firstIndex(of: old) {
                free[oldBytes]!.remove(at: i)
                pooledBytes -= oldBytes
                evicted.append(old)
            }
        }
        free[bytes, default: []].append(p)
        order.append((bytes, p))
        pooledBytes += bytes
        lock.unlock()
        evicted.forEach { $0.deallocate() }
    }

    /// Frees every pooled buffer.
    public func drain() {
        lock.lock()
        let all = free.values.flatMap { $0 }
        free = [:]
        order = []
        pooledBytes = 0
        lock.unlock()
        all.forEach { $0.deallocate() }
    }
}
