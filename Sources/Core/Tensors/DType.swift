import QuacPluginAPI

/// Element types the host can hold. The names are safetensors' dtype strings; `abi` is the DLPack
/// (code, bits, lanes) triple that crosses the plugin boundary.
public enum DType: String, CaseIterable, Sendable {
    case float64 = "F64", float32 = "F32", float16 = "F16", bfloat16 = "BF16"
    case int64 = "I64", int32 = "I32", int16 = "I16", int8 = "I8"
    case uint64 = "U64", uint32 = "U32", uint16 = "U16", uint8 = "U8"
    case bool = "BOOL"

    public var byteSize: Int {
        switch self {
        case .float64, .int64, .uint64: return 8
        case .float32, .int32, .uint32: return 4
        case .float16, .bfloat16, .int16, .uint16: return 2
        case .int8, .uint8, .bool: return 1
        }
    }

    public var abi: quac_dtype {
        let code: Int32
        switch self {
        case .float64, .float32, .float16: code = Int32(QUAC_DTYPE_FLOAT)
        case .bfloat16: code = 4 // kDLBfloat
        case .int64, .int32, .int16, .int8: code = Int32(QUAC_DTYPE_INT)
        case .uint64, .uint32, .uint16, .uint8: code = Int32(QUAC_DTYPE_UINT)
        case .bool: code = Int32(QUAC_DTYPE_BOOL)
        }
        return quac_dtype(code: UInt8(code), bits: UInt8(byteSize * 8), lanes: 1)
    }

    public init?(abi: quac_dtype) {
        guard abi.lanes == 1,
              let match = DType.allCases.first(where: { $0.abi.code == abi.code && $0.abi.bits == abi.bits })
        else { return nil }
        self = match
    }

    /// "float32", as users and error messages say it.
    public var displayName: String {
        switch self {
        case .float64: return "float64"
        case .float32: return "float32"
        case .float16: return "float16"
        case .bfloat16: return "bfloat16"
        case .int64: return "int64"
        case .int32: return "int32"
        case .int16: return "int16"
        case .int8: return "int8"
        case .uint64: return "uint64"
        case .uint32: return "uint32"
        case .uint16: return "uint16"
        case .uint8: return "uint8"
        case .bool: return "bool"
        }
    }
}

extension quac_dtype {
    /// "float32", or "dtype(code=5,bits=16,lanes=1)" for a type the host does not know.
    public var displayName: String {
        DType(abi: self)?.displayName ?? "dtype(code=\(code),bits=\(bits),lanes=\(lanes))"
    }
}
