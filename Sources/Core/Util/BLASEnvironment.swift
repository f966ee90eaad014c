import Foundation

/// OpenBLAS reads its settings from the environment once, when it is loaded; the host sets two before
/// any library that links OpenBLAS is loaded, unless the user set them:
/// - OPENBLAS_CORETYPE: OpenBLAS picks its kernels from the CPU model; on CPUs it does not recognise
///   (common on cloud VMs) it falls back to generic Prescott kernels, 25-75% slower here. It is set
///   from the CPU's flags.
/// - OPENBLAS_THREAD_TIMEOUT: OpenBLAS's worker threads poll for work with sched_yield for 2^28
///   cycles (about 0.1 s) after they start and after every threaded call before they sleep. On a
///   small machine they take that time from the host's own threads: in a QuAC evaluation, which
///   starts within that window of the process's start, the polling was 17% of the CPU time. 2^18
///   cycles (well under a millisecond) keeps them ready between the calls of one layer; waking a
///   sleeping worker costs microseconds against the milliseconds of a threaded product.
public enum BLASEnvironment {
    /// log2 of the cycles OpenBLAS's idle workers poll before they sleep.
    public static let threadTimeout = 18

    /// The core type for this CPU's flags (nil: leave OpenBLAS's own detection alone).
    public static func coreType(cpuinfo: String) -> String? {
        guard let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(line.split(separator: " ").map(String.init))
        if flags.contains("avx512f") && flags.contains("avx512bw") && flags.contains("avx512vl") { return "SkylakeX" }
        if flags.contains("avx2") && flags.contains("fma") { return "Haswell" }
        return nil
    }

    /// Sets OPENBLAS_CORETYPE and OPENBLAS_THREAD_TIMEOUT for this process (and the workers it
    /// starts) unless the user did.
    public static func configure() {
        setenv("OPENBLAS_THREAD_TIMEOUT", String(threadTimeout), 0)
        guard getenv("OPENBLAS_CORETYPE") == nil,
              let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let type = coreType(cpuinfo: info) else { return }
        setenv("OPENBLAS_CORETYPE", type, 0)
    }
}
