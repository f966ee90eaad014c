import Foundation

/// How much memory one allocation sized by user numbers (parameters, data sizes) may take before it is
/// refused with a message instead of ending the process: the machine's physical memory, or
/// $QUAC_MEMORY_BUDGET_MB when set (tests, shared machines).
public enum MemoryBudget {
    public static var bytes: Int {
        if let mb = ProcessInfo.processInfo.environment["QUAC_MEMORY_BUDGET_MB"].flatMap(Int.init), mb > 0 {
            return mb.multipliedReportingOverflow(by: 1 << 20).overflow ? Int.max : mb << 20
        }
        return Int(ProcessInfo.processInfo.physicalMemory)
    }

    /// Nil when `factors` (named counts) times `bytesEach` fit the budget; else why not, e.g.
    /// "n_steps 100000 x 64 samples x 16384 values x 4 bytes = 391 GiB, more than the memory budget (23.4 GiB)".
    /// Counts that overflow 64 bits are reported the same way.
    public static func problem(_ factors: [(String, Int)], bytesEach: Int = 4) -> String? {
        var total = bytesEach, overflow = false
        for (_, n) in factors {
            let (p, o) = total.multipliedReportingOverflow(by: max(n, 0))
            if o { overflow = true; break }
            total = p
        }
        let budget = bytes
        guard overflow || total > budget else { return nil }
        let product = (factors.map { "\($0.0) \($0.1)" } + ["\(bytesEach) bytes"]).joined(separator: " x ")
        return "\(product) = \(overflow ? "more than 2^63 bytes" : describe(Double(total))), more than the memory budget (\(describe(Double(budget))); set QUAC_MEMORY_BUDGET_MB to change it)"
    }

    static func describe(_ b: Double) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var v = b, i = 0
        while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
        return i == 0 ? "\(Int(v)) bytes" : String(format: "%.1f %@", v, units[i])
    }
}
