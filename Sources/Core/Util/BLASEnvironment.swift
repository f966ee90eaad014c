import Foundation

/// OpenBLAS picks its kernels from the CPU model; on CPUs it does not recognise (common on cloud VMs)
/// it falls back to generic Prescott kernels, 25-75% slower here. When OPENBLAS_CORETYPE is unset, set
/// it from the CPU's flags before any library that links OpenBLAS is loaded.
public enum BLASEnvironment {
    /// The core type for this CPU's flags (nil: leave OpenBLAS's own detection alone).
    public static func coreType(cpuinfo: String) -> String? {
        guard let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(line.split(separator: " ").map(String.init))
        if flags.contains("avx512f") && flags.contains("avx512bw") && flags.contains("avx512vl") { return "SkylakeX" }
        if flags.contains("avx2") && flags.contains("fma") { return "Haswell" }
        return nil
    }

    /// Sets OPENBLAS_CORETYPE for this process unless the user did.
    public static func configure() {
        guard getenv("OPENBLAS_CORETYPE") == nil,
              let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let type = coreType(cpuinfo: info) else { return }
        setenv("OPENBLAS_CORETYPE", type, 0)
    }
}
