import COpenBLAS
import Foundation

/// Runs small BLAS calls on the calling thread only. OpenBLAS threads a matrix-vector product from
/// about 10^4 multiply-adds on; when several of the host's threads each call the classifier (the QuAC
/// evaluator does), those calls then queue for OpenBLAS's one pool and its woken workers spin, for
/// products that take microseconds. Threading does not change OpenBLAS's results (each output is one
/// dot product whichever thread computes it), so this is about speed only. The engine's
/// `BLASThreads.withSingleThread` does the same for its own GEMMs; this bundle does not link the
/// engine, and each plugin library holds its own copy of such a counter anyway.
enum SingleThreadedBLAS {
    /// Products smaller than this (multiply-adds per call) gain nothing from OpenBLAS's threads.
    static let threshold = 1 << 20

    private static let lock = NSLock()
    nonisolated(unsafe) private static var depth = 0
    nonisolated(unsafe) private static var saved: Int32 = 1

    static func run<R>(_ body: () throws -> R) rethrows -> R {
        lock.lock()
        if depth == 0 {
            saved = openblas_get_num_threads()
            if saved > 1 { openblas_set_num_threads(1) }
        }
        depth += 1
        lock.unlock()
        defer {
            lock.lock()
            depth -= 1
            if depth == 0 && saved > 1 { openblas_set_num_threads(saved) }
            lock.unlock()
        }
        return try body()
    }
}
