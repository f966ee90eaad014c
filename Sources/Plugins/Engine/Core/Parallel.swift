import COpenBLAS
import Foundation

/// The engine's one thread setting: OpenBLAS's threads and the parallel loops (im2col, pooling,
/// elementwise kernels) both follow it.
public enum EngineThreads {
    nonisolated(unsafe) private static var value: Int = {
        if let s = ProcessInfo.processInfo.environment["QUAC_ENGINE_THREADS"], let n = Int(s), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()
    nonisolated(unsafe) private static var applied = false

    public static var count: Int {
        get { value }
        set {
            value = max(1, newValue)
            openblas_set_num_threads(Int32(value))
            applied = true
        }
    }

    static func ensureApplied() {
        if !applied { applied = true; openblas_set_num_threads(Int32(value)) }
    }
}

/// Runs body(range) over `0..<n` split into contiguous chunks, in parallel when the work is large enough
/// (`cost` is a rough count of floats touched per index).
@inline(__always)
func parallelChunks(_ n: Int, cost: Int = 1, _ body: (Range<Int>) -> Void) {
    let threads = EngineThreads.count
    if threads <= 1 || n < 2 || n * cost < 32_768 { body(0..<n); return }
    let chunks = min(threads, n)
    DispatchQueue.concurrentPerform(iterations: chunks) { c in
        let lo = n * c / chunks, hi = n * (c + 1) / chunks
        if lo < hi { body(lo..<hi) }
    }
}
