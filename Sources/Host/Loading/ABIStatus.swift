import QuacPluginAPI

/// Names of the ABI's status codes, for messages.
public enum ABIStatus {
    public static let ok = quac_status(QUAC_OK)

    public static func name(_ status: quac_status) -> String {
        switch Int(status) {
        case Int(QUAC_OK): return "ok"
        case Int(QUAC_ERR_INVALID_ARGUMENT): return "invalid argument"
        case Int(QUAC_ERR_UNSUPPORTED): return "unsupported"
        case Int(QUAC_ERR_OUT_OF_MEMORY): return "out of memory"
        case Int(QUAC_ERR_CANCELLED): return "cancelled"
        case Int(QUAC_ERR_IO): return "i/o error"
        case Int(QUAC_ERR_VERSION): return "version mismatch"
        case Int(QUAC_ERR_INTERNAL): return "internal error"
        default: return "unknown status \(status)"
        }
    }
}
