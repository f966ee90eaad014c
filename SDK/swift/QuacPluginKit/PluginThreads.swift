import Foundation

/// How many threads a plugin may use for its own parallel loops: the host's thread setting
/// (QUAC_ENGINE_THREADS, which the engine and its BLAS follow too), else every core.
public enum PluginThreads {
    public static var count: Int {
        if let s = ProcessInfo.processInfo.environment["QUAC_ENGINE_THREADS"], let n = Int(s), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }
}
