import Foundation

#if _endian(big)
#error("NPY and safetensors I/O assume a little-endian host")
#endif

/// Reads and writes numpy's NPY format (versions 1.0, 2.0 and 3.0): the magic "\x93NUMPY", a version,
/// a header length (u16 in 1.0, u32 after), a Python dict literal giving 'descr', 'fortran_order' and
/// 'shape', then the raw elements. Tensors come back little-endian and in C order whatever the file held.
public enum NPY {
    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
    /// numpy aligns the data to 64 bytes so it can be memory-mapped for any element type.
    static let alignment = 64

    // MARK: Reading

    public static func read(_ url: URL) throws -> Tensor {
        let path = url.path
        let file = try MappedFile(path: path)
        let size = file.byteCount
        let bytes = UnsafeRawBufferPointer(start: file.storage.base, count: size)
        func fail(_ reason: String) -> FileError { FileError(path: path, reason: reason) }

        guard size >= 10, Array(bytes[0..<6]) == magic else {
            throw fail("magic: not an NPY file (it does not start with \\x93NUMPY)")
        }
        let (major, minor) = (bytes[6], bytes[7])
        guard (1...3).contains(major), minor == 0 else { throw fail("version: unsupported NPY version \(major).\(minor)") }
        let lengthBytes = major == 1 ? 2 : 4
        let headerStart = 8 + lengthBytes
        guard size >= headerStart else { throw fail("header length: file ends inside the header length field") }
        var headerLength = 0
        for i in 0..<lengthBytes { headerLength |= Int(bytes[8 + i]) << (8 * i) }
        guard headerLength <= size - headerStart else {
            throw fail("header length: \(headerLength) bytes but the file has only \(size - headerStart) bytes after it")
        }
        let raw = bytes[headerStart..<headerStart + headerLength]
        let text: String
        if major == 3 {
            guard let utf8 = String(validating: raw, as: UTF8.self) else { throw fail("header: not valid UTF-8") }
            text = utf8
        } else {
            // Versions 1 and 2 store the header in latin-1: every byte is one character.
            text = String(String.UnicodeScalarView(raw.map { Unicode.Scalar($0) }))
        }
        let header = try parseHeader(text, path: path)

        let dataStart = headerStart + headerLength
        let (count, overflow) = header.shape.reduce((1, false)) { acc, d in
            let (p, o) = acc.0.multipliedReportingOverflow(by: d)
            return (p, acc.1 || o)
        }
        let (byteCount, overflow2) = count.multipliedReportingOverflow(by: header.dtype.byteSize)
        guard !overflow, !overflow2 else { throw fail("header: shape \(pythonTuple(header.shape)) has too many elements") }
        let available = size - dataStart
        let what = "shape \(pythonTuple(header.shape)) of \(header.dtype.displayName)"
        guard available >= byteCount else {
            throw fail("data: truncated: \(available) bytes, expected \(byteCount) for \(what)")
        }
        guard available == byteCount else {
            throw fail("data: \(available - byteCount) trailing bytes after the \(byteCount) bytes of \(what)")
        }

        let tensor = Tensor(zeros: header.shape, dtype: header.dtype)
        let source = UnsafeRawPointer(file.storage.base) + dataStart
        if header.fortranOrder && header.shape.count > 1 {
            copyFortranToC(from: source, to: tensor.data, shape: header.shape, elementSize: header.dtype.byteSize)
        } else {
            tensor.data.copyMemory(from: source, byteCount: byteCount)
        }
        if header.bigEndian { swapBytes(tensor.data, count: count, elementSize: header.dtype.byteSize) }
        return tensor
    }

    struct Header {
        let dtype: DType
        let bigEndian: Bool
        let fortranOrder: Bool
        let shape: [Int]
    }

    static func parseHeader(_ text: String, path: String) throws -> Header {
        func fail(_ reason: String) -> FileError { FileError(path: path, reason: "header: " + reason) }
        let value: PythonLiteral
        do {
            value = try PythonLiteral.parse(text)
        } catch let e as PythonLiteral.ParseError {
            throw fail("not a valid dict literal: \(e.reason) at character \(e.position + 1)")
        }
        guard case .dict(let entries) = value else { throw fail("expected a dict, found \(value)") }
        var dict: [String: PythonLiteral] = [:]
        for (key, item) in entries { dict[key] = item }
        let expectedKeys: Set = ["descr", "fortran_order", "shape"]
        let keys = Set(dict.keys)
        if let missing = expectedKeys.subtracting(keys).sorted().first { throw fail("missing key '\(missing)'") }
        if let extra = keys.subtracting(expectedKeys).sorted().first {
            throw fail("unexpected key '\(extra)' (numpy writes only 'descr', 'fortran_order' and 'shape')")
        }

        guard case .string(let descr) = dict["descr"]! else {
            throw fail("unsupported dtype \(dict["descr"]!) (structured)")
        }
        let (dtype, bigEndian) = try elementType(descr, fail: fail)

        guard case .bool(let fortranOrder) = dict["fortran_order"]! else {
            throw fail("'fortran_order' must be True or False, found \(dict["fortran_order"]!)")
        }
        guard case .tuple(let dims) = dict["shape"]! else {
            throw fail("'shape' must be a tuple of integers, found \(dict["shape"]!)")
        }
        var shape: [Int] = []
        for (i, dim) in dims.enumerated() {
            guard case .int(let d) = dim else { throw fail("'shape'[\(i)] must be an integer, found \(dim)") }
            guard d >= 0 else { throw fail("'shape'[\(i)] is negative (\(d))") }
            shape.append(d)
        }
        return Header(dtype: dtype, bigEndian: bigEndian, fortranOrder: fortranOrder, shape: shape)
    }

    /// Maps a descr such as '<f4' to a DType and whether its bytes need swapping.
    static func elementType(_ descr: String, fail: (String) -> FileError) throws -> (DType, Bool) {
        var rest = Substring(descr)
        var order: Character = "="
        if let first = rest.first, "<>=|".contains(first) { order = first; rest = rest.dropFirst() }
        let kind = rest.first.map(String.init) ?? ""
        let size = Int(rest.dropFirst()) ?? 0
        let dtype: DType?
        switch (kind, size) {
        case ("f", 2): dtype = .float16
        case ("f", 4): dtype = .float32
        case ("f", 8): dtype = .float64
        case ("i", 1): dtype = .int8
        case ("i", 2): dtype = .int16
        case ("i", 4): dtype = .int32
        case ("i", 8): dtype = .int64
        case ("u", 1): dtype = .uint8
        case ("u", 2): dtype = .uint16
        case ("u", 4): dtype = .uint32
        case ("u", 8): dtype = .uint64
        case ("b", 1), ("?", 0): dtype = .bool
        default: dtype = nil
        }
        guard let dtype else {
            throw fail("unsupported dtype '\(descr)' (\(unsupportedName(kind: kind, size: size)))")
        }
        // '=' is the writer's native order and '|' means "not applicable"; numpy reads both as native.
        return (dtype, order == ">" && dtype.byteSize > 1)
    }

    static func unsupportedName(kind: String, size: Int) -> String {
        switch kind {
        case "c": return size > 0 ? "complex\(size * 8)" : "complex"
        case "f": return size > 0 ? "float\(size * 8)" : "float of unknown size"
        case "i", "u", "b": return "\(kind == "u" ? "unsigned " : "")integer of \(size) bytes"
        case "O": return "Python objects"
        case "S", "a": return "byte string"
        case "U": return "unicode string"
        case "V": return "void/structured"
        case "M": return "datetime64"
        case "m": return "timedelta64"
        default: return "unrecognised"
        }
    }

    /// Fortran order stores the first index fastest; walk the output in C order and gather.
    static func copyFortranToC(from source: UnsafeRawPointer, to dest: UnsafeMutableRawPointer, shape: [Int], elementSize: Int) {
        let count = shape.reduce(1, *)
        guard count > 0 else { return }
        var fortranStrides = [Int](repeating: 1, count: shape.count)
        for k in 1..<shape.count { fortranStrides[k] = fortranStrides[k - 1] * shape[k - 1] }
        var index = [Int](repeating: 0, count: shape.count)
        var sourceElement = 0
        for o in 0..<count {
            (dest + o * elementSize).copyMemory(from: source + sourceElement * elementSize, byteCount: elementSize)
            // Advance the C-order odometer (last index fastest), keeping the Fortran offset in step.
            var k = shape.count - 1
            while k >= 0 {
                index[k] += 1
                sourceElement += fortranStrides[k]
                if index[k] < shape[k] { break }
                sourceElement -= fortranStrides[k] * shape[k]
                index[k] = 0
                k -= 1
            }
        }
    }

    static func swapBytes(_ p: UnsafeMutableRawPointer, count: Int, elementSize: Int) {
        let bytes = UnsafeMutableBufferPointer(start: p.assumingMemoryBound(to: UInt8.self), count: count * elementSize)
        for base in stride(from: 0, to: bytes.count, by: elementSize) {
            for i in 0..<elementSize / 2 { bytes.swapAt(base + i, base + elementSize - 1 - i) }
        }
    }

    // MARK: Writing

    /// Writes C-order little-endian data, version 1.0 unless the header needs 2.0, atomically.
    public static func write(_ t: Tensor, to url: URL) throws {
        let path = url.path
        guard let descr = descr(for: t.dtype) else {
            throw FileError(path: path, reason: "dtype: \(t.dtype.displayName) has no NPY equivalent (numpy has no such type)")
        }
        // Keys in sorted order, with the trailing ", " numpy writes.
        let dict = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(pythonTuple(t.shape)), }"
        var version: UInt8 = 1
        var lengthBytes = 2
        var padded = paddedHeader(dict, prefixLength: 8 + lengthBytes)
        if padded.count > Int(UInt16.max) {
            version = 2
            lengthBytes = 4
            padded = paddedHeader(dict, prefixLength: 8 + lengthBytes)
            guard padded.count <= Int(UInt32.max) else {
                throw FileError(path: path, reason: "header: \(padded.count) bytes is too long even for NPY 2.0")
            }
        }
        var prefix = magic + [version, 0]
        prefix += (0..<lengthBytes).map { UInt8(truncatingIfNeeded: padded.count >> (8 * $0)) }
        prefix += padded
        try AtomicFile.write(to: url) { fd in
            try prefix.withUnsafeBytes { try AtomicFile.writeAll(fd: fd, $0.baseAddress, $0.count, path: path) }
            try AtomicFile.writeAll(fd: fd, t.data, t.byteCount, path: path)
        }
    }

    /// The dict, spaces, and a final newline, so the data starts at a multiple of 64 bytes.
    static func paddedHeader(_ dict: String, prefixLength: Int) -> [UInt8] {
        let unpadded = prefixLength + dict.utf8.count + 1
        let spaces = (alignment - unpadded % alignment) % alignment
        return Array(dict.utf8) + Array(repeating: UInt8(ascii: " "), count: spaces) + [UInt8(ascii: "\n")]
    }

    static func descr(for dtype: DType) -> String? {
        switch dtype {
        case .float64: return "<f8"
        case .float32: return "<f4"
        case .float16: return "<f2"
        case .bfloat16: return nil
        case .int64: return "<i8"
        case .int32: return "<i4"
        case .int16: return "<i2"
        case .int8: return "|i1"
        case .uint64: return "<u8"
        case .uint32: return "<u4"
        case .uint16: return "<u2"
        case .uint8: return "|u1"
        case .bool: return "|b1"
        }
    }

    /// "()", "(3,)", "(3, 4)": Python's repr of a tuple, which numpy's reader expects.
    static func pythonTuple(_ shape: [Int]) -> String {
        shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    }
}

/// The subset of Python literals an NPY header uses (dict, tuple, list, str, int, True/False/None),
/// parsed the way `ast.literal_eval` would read them.
indirect enum PythonLiteral: CustomStringConvertible {
    case dict([(String, PythonLiteral)])
    case tuple([PythonLiteral])
    case list([PythonLiteral])
    case string(String)
    case int(Int)
    case bool(Bool)
    case none

    struct ParseError: Error {
        let reason: String
        let position: Int
    }

    static func parse(_ text: String) throws -> PythonLiteral {
        var parser = Parser(chars: Array(text.unicodeScalars))
        parser.skipSpace()
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        if parser.pos < parser.chars.count { throw parser.error("unexpected text after the literal") }
        return value
    }

    /// Python's repr, for error messages.
    var description: String {
        switch self {
        case .dict(let items): return "{" + items.map { "'\($0.0)': \($0.1)" }.joined(separator: ", ") + "}"
        case .tuple(let items): return items.count == 1 ? "(\(items[0]),)" : "(" + items.map(\.description).joined(separator: ", ") + ")"
        case .list(let items): return "[" + items.map(\.description).joined(separator: ", ") + "]"
        case .string(let s): return "'\(s)'"
        case .int(let i): return String(i)
        case .bool(let b): return b ? "True" : "False"
        case .none: return "None"
        }
    }

    private struct Parser {
        let chars: [Unicode.Scalar]
        var pos = 0
        static let maxDepth = 64

        func error(_ reason: String) -> ParseError { ParseError(reason: reason, position: pos) }
        var next: Unicode.Scalar? { pos < chars.count ? chars[pos] : nil }
        var shownNext: String { next.map { "'\(Character($0))'" } ?? "end of header" }

        mutating func skipSpace() {
            while let c = next, c == " " || c == "\t" || c == "\n" || c == "\r" { pos += 1 }
        }

        mutating func expect(_ c: Unicode.Scalar) throws {
            guard next == c else { throw error("expected '\(Character(c))', found \(shownNext)") }
            pos += 1
        }

        mutating func value(depth: Int) throws -> PythonLiteral {
            guard depth < Self.maxDepth else { throw error("nesting deeper than \(Self.maxDepth)") }
            guard let c = next else { throw error("expected a value, found end of header") }
            switch c {
            case "{": return try dict(depth: depth)
            case "(":
                let (items, sawComma) = try sequence(open: "(", close: ")", depth: depth)
                // "(3)" is just 3 in Python; only a comma (or emptiness) makes a tuple.
                return items.count == 1 && !sawComma ? items[0] : .tuple(items)
            case "[": return .list(try sequence(open: "[", close: "]", depth: depth).items)
            case "'", "\"": return .string(try string())
            case "-", "0"..."9": return .int(try integer())
            default:
                for (word, literal) in [("True", PythonLiteral.bool(true)), ("False", .bool(false)), ("None", .none)]
                where chars[pos...].starts(with: word.unicodeScalars) {
                    pos += word.unicodeScalars.count
                    return literal
                }
                throw error("expected a value, found \(shownNext)")
            }
        }

        mutating func dict(depth: Int) throws -> PythonLiteral {
            try expect("{")
            var items: [(String, PythonLiteral)] = []
            while true {
                skipSpace()
                if next == "}" { pos += 1; return .dict(items) }
                let keyStart = pos
                guard case .string(let key) = try value(depth: depth + 1) else {
                    pos = keyStart
                    throw error("dict keys must be strings")
                }
                if items.contains(where: { $0.0 == key }) { pos = keyStart; throw error("duplicate key '\(key)'") }
                skipSpace()
                try expect(":")
                skipSpace()
                items.append((key, try value(depth: depth + 1)))
                skipSpace()
                if next == "," { pos += 1; continue }
                guard next == "}" else { throw error("expected ',' or '}', found \(shownNext)") }
            }
        }

        mutating func sequence(open: Unicode.Scalar, close: Unicode.Scalar, depth: Int) throws -> (items: [PythonLiteral], sawComma: Bool) {
            try expect(open)
            var items: [PythonLiteral] = []
            var sawComma = false
            while true {
                skipSpace()
                if next == close { pos += 1; return (items, sawComma) }
                items.append(try value(depth: depth + 1))
                skipSpace()
                if next == "," { pos += 1; sawComma = true; continue }
                guard next == close else { throw error("expected ',' or '\(Character(close))', found \(shownNext)") }
            }
        }

        mutating func string() throws -> String {
            let quote = chars[pos]
            let start = pos
            pos += 1
            var out = String.UnicodeScalarView()
            while true {
                guard let c = next else { pos = start; throw error("unterminated string") }
                pos += 1
                if c == quote { return String(out) }
                if c == "\\" {
                    guard let e = next else { pos = start; throw error("unterminated string") }
                    pos += 1
                    switch e {
                    case "n": out.append("\n")
                    case "t": out.append("\t")
                    case "r": out.append("\r")
                    default: out.append(e)   // \\, \', \" stand for themselves; descr strings need no more
                    }
                } else {
                    out.append(c)
                }
            }
        }

        mutating func integer() throws -> Int {
            let start = pos
            if next == "-" { pos += 1 }
            while let c = next, ("0"..."9").contains(c) { pos += 1 }
            let digits = String(String.UnicodeScalarView(chars[start..<pos]))
            guard let v = Int(digits) else { pos = start; throw error("invalid or out-of-range integer") }
            // Python 2 wrote long integers with an L suffix ("(3L, 4L)"); numpy still reads them.
            if next == "L" { pos += 1 }
            return v
        }
    }
}
