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

    /// The GEMM kernel OpenBLAS chose at load time ("Haswell", "SkylakeX", ...). OpenBLAS 0.3.21 does
    /// not know some recent Xeons and falls back to "Prescott" (SSE3), about 2x slower on convolutions;
    /// setting OPENBLAS_CORETYPE (e.g. Haswell on AVX2 machines) before the library loads fixes that.
    public static var blasCoreName: String { String(cString: openblas_get_corename()) }

    /// The OPENBLAS_CORETYPE a host should set before it loads the engine, when OpenBLAS's own detection
    /// picked the generic kernel on a CPU with AVX2 (nil when no override is needed).
    public static func recommendedBLASCoreType() -> String? {
        guard blasCoreName.lowercased() == "prescott" else { return nil }
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(line.split(separator: " ").map(String.init))
        if flags.contains("avx512f") { return "SkylakeX" }
        if flags.contains("avx2") && flags.contains("fma") { return "Haswell" }
        return nil
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

/// OpenBLAS's own thread count, lowered to one while engine threads each run their own GEMMs (nested
/// threading would oversubscribe the cores and make OpenBLAS's workers spin).
enum BLASThreads {
    static let lock = NSLock()
    nonisolated(unsafe) static var singleThreadedDepth = 0

    static func withSingleThread<R>(_ body: () -> R) -> R {
        EngineThreads.ensureApplied()
        lock.lock()
        if singleThreadedDepth == 0 { openblas_set_num_threads(1) }
        singleThreadedDepth += 1
        lock.unlock()
        defer {
            lock.lock()
            singleThreadedDepth -= 1
            if singleThreadedDepth == 0 { openblas_set_num_threads(Int32(EngineThreads.count)) }
            lock.unlock()
        }
        return body()
    }
}
