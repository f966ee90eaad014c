/// A C function declaration of the small family a foreign classifier may have, e.g.
/// `void predict(const float *x, int64_t n, float *logits)`: one `const float *` input, one `float *`
/// output, at most one integer batch count, returning void or an int status (non-zero = failure).
public struct CSignature: Equatable {
    public enum IntegerType: String, CaseIterable {
        case int, int32 = "int32_t", int64 = "int64_t", long, size = "size_t", uint32 = "uint32_t", uint64 = "uint64_t"
        public var bits: Int { [.int, .int32, .uint32].contains(self) ? 32 : 64 }
        public var signed: Bool { ![.size, .uint32, .uint64].contains(self) }
    }
    public enum Argument: Equatable {
        case input, output, count(IntegerType)
    }

    public let name: String
    public let returnsStatus: Bool
    public let returnType: IntegerType?
    public let arguments: [Argument]

    public var hasCount: Bool { arguments.contains { if case .count = $0 { return true }; return false } }

    public static func parse(_ text: String) throws -> CSignature {
        func fail(_ why: String) -> QuacError { QuacError("signature \"\(text)\": \(why)") }
        var s = text.trimmingCharacters(in: .whitespaces)
        if s.hasSuffix(";") { s.removeLast() }
        guard let open = s.firstIndex(of: "("), s.hasSuffix(")") else { throw fail("expected `return_type name(arguments)`") }
        let head = s[..<open].split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard head.count == 2 else { throw fail("expected a return type and a function name before '('") }
        let returnType: IntegerType?
        if head[0] == "void" { returnType = nil } else if let t = IntegerType(rawValue: head[0]) { returnType = t } else {
            throw fail("return type must be void or an integer status, found \"\(head[0])\"")
        }
        let name = head[1]
        guard name.first.map({ $0.isLetter || $0 == "_" }) == true, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
            throw fail("\"\(name)\" is not a C identifier")
        }
        let inner = s[s.index(after: open)..<s.index(before: s.endIndex)].trimmingCharacters(in: .whitespaces)
        var args: [Argument] = []
        for (i, part) in inner.split(separator: ",").enumerated() {
            let tokens = part.replacingOccurrences(of: "*", with: " * ").split(separator: " ").map(String.init)
            let isConst = tokens.contains("const")
            let isPointer = tokens.contains("*")
            let typeTokens = tokens.filter { $0 != "const" && $0 != "*" }
            guard let type = typeTokens.first else { throw fail("argument \(i + 1) has no type") }
            guard typeTokens.count <= 2 else { throw fail("argument \(i + 1) \"\(part.trimmingCharacters(in: .whitespaces))\" is not `type [*] [name]`") }
            if type == "float" {
                guard isPointer else { throw fail("argument \(i + 1): a float is passed by pointer (`const float *` input, `float *` output)") }
                args.append(isConst ? .input : .output)
            } else if let t = IntegerType(rawValue: type), !isPointer {
                args.append(.count(t))
            } else {
                throw fail("argument \(i + 1): unsupported type \"\(part.trimmingCharacters(in: .whitespaces))\" (allowed: const float *, float *, \(IntegerType.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
        }
        guard args.filter({ $0 == .input }).count == 1 else { throw fail("needs exactly one `const float *` input argument") }
        guard args.filter({ $0 == .output }).count == 1 else { throw fail("needs exactly one `float *` output argument") }
        guard args.filter({ if case .count = $0 { return true }; return false }).count <= 1 else { throw fail("has more than one integer argument; only a batch count is supported") }
        return CSignature(name: name, returnsStatus: returnType != nil, returnType: returnType, arguments: args)
    }
}
