import Foundation

/// Whether one of the engine's specialized kernels runs: where its own rule says so, always, or never
/// (its fallback then). Each kernel reads its setting once from an environment variable, so
/// benchmarks can compare the paths; tests change it in place.
public enum KernelChoice: Sendable {
    case automatic, always, never

    /// `always` or `never` when `variable` holds that word (QUAC_ENGINE_CONV=direct, =gemm, ...), else
    /// automatic.
    static func fromEnvironment(_ variable: String, always: String, never: String) -> KernelChoice {
        switch ProcessInfo.processInfo.environment[variable] {
        case always: return .always
        case never: return .never
        default: return .automatic
        }
    }
}
