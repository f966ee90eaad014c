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

    /// A buffer for `count` floats; with `zeroed`, all zero. A fresh mapping from the OS is zero
    /// already, so it is not written (its pages stay untouched until used: a model's zero-filled
    /// parameters that a weights file then replaces cost nothing).
    func storage(count: Int, zeroed: Bool = false) -> TensorStorage {
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
        let base = p ?? Self.allocate(bytes)
        if zeroed && !(p == nil && bytes >= Self.mappedBytes) { base.initializeMemory(as: UInt8.self, repeating: 0, count: count * 4) }
        return TensorStorage(base: base, byteCount: count * 4) { [unowned self] in self.give(base, bytes) }
    }

    private func give(_ p: UnsafeMutableRawPointer, _ bytes: Int) {
        lock.lock()
        guard bytes <= capacityBytes else {
            lock.unlock()
            Self.deallocate(p, bytes)
            return
        }
        // Over capacity, the buffers freed longest ago go first: the sizes a loop uses now are the ones
        // it will ask for again (refusing new sizes instead would leave a full pool of stale ones, and
        // every large array of the current loop would come fresh from the OS, page faults included).
        var evicted: [(UnsafeMutableRawPointer, Int)] = []
        while pooledBytes + bytes > capacityBytes, let (oldBytes, old) = order.first {
            order.removeFirst()
            if let i = free[oldBytes]?.firstIndex(of: old) {
                free[oldBytes]!.remove(at: i)
                pooledBytes -= oldBytes
                evicted.append((old, oldBytes))
            }
        }
        free[bytes, default: []].append(p)
        order.append((bytes, p))
        pooledBytes += bytes
        lock.unlock()
        evicted.forEach { Self.deallocate($0.0, $0.1) }
    }

    /// Frees every pooled buffer.
    public func drain() {
        lock.lock()
        let all = free.flatMap { bytes, list in list.map { ($0, bytes) } }
        free = [:]
        order = []
        pooledBytes = 0
        lock.unlock()
        all.forEach { Self.deallocate($0.0, $0.1) }
    }

    /// Buffers from this size on are mapped from the OS directly and unmapped when freed. Through
    /// malloc, glibc's adaptive threshold would soon serve them from its heap, which keeps freed memory
    /// resident: mapping them lowered a 128x128 StarGAN step's peak from 10436 to 9985 MiB.
    static let mappedBytes = 4 << 20

    private static func allocate(_ bytes: Int) -> UnsafeMutableRawPointer {
        guard bytes >= mappedBytes else { return UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64) }
        guard let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED else {
            fatalError("out of memory: could not map \(bytes) bytes for an array")  // as allocate() would trap
        }
        return p
    }

    private static func deallocate(_ p: UnsafeMutableRawPointer, _ bytes: Int) {
        if bytes >= mappedBytes { munmap(p, bytes) } else { p.deallocate() }
    }
}
