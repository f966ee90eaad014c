import Foundation

/// The tensors of one safetensors file. Tensors read from disk view a private copy-on-write mapping:
/// writing into one changes only this process's pages, never the file.
public struct SafetensorsFile: Sendable {
    /// Tensor names in the order of their data in the file.
    public let names: [String]
    public let tensors: [String: Tensor]
    public let metadata: [String: String]

    public init(names: [String], tensors: [String: Tensor], metadata: [String: String]) {
        self.names = names
        self.tensors = tensors
        self.metadata = metadata
    }
}

/// Reads and writes the safetensors format: an 8-byte little-endian header length, a JSON header
/// mapping each name to dtype, shape and data_offsets (relative to the data section), an optional
/// `__metadata__` string map, then the tensors' bytes, which must tile the data section exactly.
public enum Safetensors {
    /// The Python and Rust libraries refuse larger headers; so do we, before parsing anything.
    public static let maxHeaderBytes = 100_000_000
    static let metadataKey = "__metadata__"

    // MARK: Reading

    public static func read(_ url: URL) throws -> SafetensorsFile {
        let path = url.path
        let mapping = try MappedFile(path: path)
        let fileSize = mapping.byteCount
        guard fileSize >= 8 else {
            throw FileError(path: path, reason: "header length: file is \(fileSize) bytes, shorter than the 8-byte header length")
        }
        let base = UnsafeRawPointer(mapping.storage.base)
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(base.load(fromByteOffset: i, as: UInt8.self)) << (8 * UInt64(i)) }
        guard headerLength <= UInt64(maxHeaderBytes) else {
            throw FileError(path: path, reason: "header length: \(headerLength) bytes exceeds the \(maxHeaderBytes)-byte limit")
        }
        guard headerLength <= UInt64(fileSize - 8) else {
            throw FileError(path: path, reason: "header length: \(headerLength) bytes but the file has only \(fileSize - 8) bytes after it")
        }
        let headerBytes = Array(UnsafeRawBufferPointer(start: base + 8, count: Int(headerLength)))
        let dataStart = 8 + Int(headerLength)
        let header = try parseHeader(headerBytes, dataSize: fileSize - dataStart, path: path)

        var tensors: [String: Tensor] = [:]
        for entry in header.entries {
            let offset = dataStart + entry.begin
            let view = Tensor(dtype: entry.dtype, shape: entry.shape, storage: mapping.storage, offset: offset)
            // Tensors are packed back to back, so one may sit at an address its element type cannot be
            // loaded from; those few are copied into aligned memory, the rest are views.
            tensors[entry.name] = offset % entry.dtype.byteSize == 0 ? view : view.copy()
        }
        return SafetensorsFile(names: header.entries.map(\.name), tensors: tensors, metadata: header.metadata)
    }

    struct Entry {
        let name: String
        let dtype: DType
        let shape: [Int]
        let begin: Int
        let end: Int
    }

    struct Header {
        /// Sorted by data offset.
        let entries: [Entry]
        let metadata: [String: String]
    }

    /// Validates a header against every rule of the format. `dataSize` is the byte count after it.
    static func parseHeader(_ bytes: [UInt8], dataSize: Int, path: String) throws -> Header {
        func fail(_ reason: String) -> FileError { FileError(path: path, reason: "header: " + reason) }

        guard String(validating: bytes, as: UTF8.self) != nil else { throw fail("not valid UTF-8") }
        // The format requires '{' first (so a file cannot also parse as something else); padding may follow.
        guard bytes.first == UInt8(ascii: "{") else {
            throw fail("must begin with '{', found \(bytes.first.map { "byte 0x" + String($0, radix: 16) } ?? "nothing")")
        }
        let json: JSONValue
        do {
            json = try JSONParser.parse(bytes)
        } catch let e as JSONParseError {
            if e.reason.hasPrefix("duplicate key") {
                throw fail("duplicate name: \(e.reason.dropFirst("duplicate key ".count)) appears twice (line \(e.line), column \(e.column))")
            }
            throw fail("not valid JSON: \(e)")
        }
        guard let object = json.objectValue else { throw fail("expected a JSON object, found \(json.typeName)") }

        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        for (name, value) in object {
            if name == metadataKey {
                guard let map = value.objectValue else {
                    throw fail("\(metadataKey) must be an object of strings, found \(value.typeName)")
                }
                for (key, item) in map {
                    guard let text = item.stringValue else {
                        throw fail("\(metadataKey) \(quoted(key)) must be a string, found \(item.typeName)")
                    }
                    metadata[key] = text
                }
                continue
            }
            entries.append(try parseEntry(name: name, value: value, dataSize: dataSize, fail: fail))
        }

        // Empty tensors share offsets with their neighbours; header order breaks ties so names stay stable.
        let ordered = entries.enumerated().sorted {
            ($0.element.begin, $0.element.end, $0.offset) < ($1.element.begin, $1.element.end, $1.offset)
        }.map(\.element)
        var expected = 0
        var previous: Entry?
        for entry in ordered {
            if entry.begin > expected {
                throw fail("bytes [\(expected), \(entry.begin)) of the data section belong to no tensor (hole before tensor \(quoted(entry.name)))")
            }
            if entry.begin < expected, let previous {
                throw fail("tensor \(quoted(entry.name)): data_offsets [\(entry.begin), \(entry.end)] overlap tensor \(quoted(previous.name)) [\(previous.begin), \(previous.end)]")
            }
            expected = entry.end
            previous = entry
        }
        if expected != dataSize {
            throw fail("\(dataSize - expected) trailing bytes in the data section (\(dataSize) bytes) after the last tensor")
        }
        return Header(entries: ordered, metadata: metadata)
    }

    private static func parseEntry(name: String, value: JSONValue, dataSize: Int,
                                   fail: (String) -> FileError) throws -> Entry {
        let what = "tensor \(quoted(name))"
        guard let info = value.objectValue else { throw fail("\(what): expected an object, found \(value.typeName)") }

        guard let dtypeValue = info["dtype"] else { throw fail("\(what): missing dtype") }
        guard let dtypeName = dtypeValue.stringValue else { throw fail("\(what): dtype must be a string, found \(dtypeValue.typeName)") }
        guard let dtype = DType(rawValue: dtypeName) else {
            throw fail("\(what): unknown dtype \(quoted(dtypeName)) (known: \(DType.allCases.map(\.rawValue).joined(separator: " ")))")
        }

        guard let shapeValue = info["shape"] else { throw fail("\(what): missing shape") }
        guard let dims = shapeValue.arrayValue else { throw fail("\(what): shape must be an array, found \(shapeValue.typeName)") }
        var shape: [Int] = []
        var count = 1
        for (i, dim) in dims.enumerated() {
            guard case .int(let d) = dim else { throw fail("\(what): shape[\(i)] must be an integer, found \(dim.typeName)") }
            guard d >= 0 else { throw fail("\(what): shape[\(i)] is negative (\(d))") }
            let (product, overflow) = count.multipliedReportingOverflow(by: Int(d))
            guard !overflow else { throw fail("\(what): shape \(dims.map { $0.serialized() }) has too many elements") }
            count = product
            shape.append(Int(d))
        }
        let (byteCount, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow else { throw fail("\(what): shape \(shape) has too many elements") }

        guard let offsetsValue = info["data_offsets"] else { throw fail("\(what): missing data_offsets") }
        guard let offsets = offsetsValue.arrayValue, offsets.count == 2,
              case .int(let begin) = offsets[0], case .int(let end) = offsets[1], begin >= 0, end >= 0 else {
            throw fail("\(what): data_offsets must be [begin, end] with non-negative integers, found \(offsetsValue.serialized())")
        }
        let shown = "data_offsets [\(begin), \(end)]"
        guard begin <= end else { throw fail("\(what): \(shown) begin is after end") }
        guard end - begin == Int64(byteCount) else {
            throw fail("\(what): \(shown) span \(end - begin) bytes but shape \(shape) of \(dtype.displayName) needs \(byteCount)")
        }
        guard end <= Int64(dataSize) else { throw fail("\(what): \(shown) end beyond the data section (\(dataSize) bytes)") }
        return Entry(name: name, dtype: dtype, shape: shape, begin: Int(begin), end: Int(end))
    }

    // MARK: Writing

    /// Writes `tensors` in the given order, contiguously, atomically. Names must be unique and non-empty.
    public static func write(_ tensors: [(String, Tensor)], metadata: [String: String] = [:], to url: URL) throws {
        let path = url.path
        var seen = Set<String>()
        var header = JSONObject()
        if !metadata.isEmpty {
            // Sorted so the same content always gives the same bytes (and the same SHA-256).
            header[metadataKey] = .object(JSONObject(metadata.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))
        }
        var offset: Int64 = 0
        for (name, tensor) in tensors {
            guard !name.isEmpty else { throw FileError(path: path, reason: "tensor name: empty names are not allowed") }
            guard name != metadataKey else { throw FileError(path: path, reason: "tensor name: \(metadataKey) is reserved for metadata") }
            guard seen.insert(name).inserted else { throw FileError(path: path, reason: "tensor name: duplicate name \(quoted(name))") }
            let end = offset + Int64(tensor.byteCount)
            header[name] = .object(JSONObject([
                ("dtype", .string(tensor.dtype.rawValue)),
                ("shape", .array(tensor.shape.map { .int(Int64($0)) })),
                ("data_offsets", .array([.int(offset), .int(end)])),
            ]))
            offset = end
        }
        var headerBytes = Array(JSONValue.object(header).serialized().utf8)
        // Spaces up to a multiple of 8, as the Python library pads, so the data section is 8-byte aligned.
        headerBytes += Array(repeating: UInt8(ascii: " "), count: (8 - headerBytes.count % 8) % 8)
        guard headerBytes.count <= maxHeaderBytes else {
            throw FileError(path: path, reason: "header: \(headerBytes.count) bytes exceeds the \(maxHeaderBytes)-byte limit")
        }
        var prefix = (0..<8).map { UInt8(truncatingIfNeeded: UInt64(headerBytes.count) >> (8 * UInt64($0))) }
        prefix += headerBytes
        try AtomicFile.write(to: url) { fd in
            try prefix.withUnsafeBytes { try AtomicFile.writeAll(fd: fd, $0.baseAddress, $0.count, path: path) }
            for (_, tensor) in tensors {
                try AtomicFile.writeAll(fd: fd, tensor.data, tensor.byteCount, path: path)
            }
        }
    }

    static func quoted(_ s: String) -> String { JSONValue.string(s).serialized() }
}

/// A whole file mapped privately (copy-on-write, the file is never written); unmapped when the last tensor viewing
/// `storage` goes away.
struct MappedFile {
    let storage: TensorStorage
    var byteCount: Int { storage.byteCount }

    init(path: String) throws {
        // Non-blocking, so a FIFO (or device) named like a data file is refused below instead of
        // blocking the open until some writer appears.
        let fd = open(path, O_RDONLY | O_NONBLOCK)
        guard fd >= 0 else { throw FileError(path: path, reason: "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileError(path: path, reason: "cannot stat: \(String(cString: strerror(errno)))") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw FileError(path: path, reason: "not a regular file") }
        let size = Int(info.st_size)
        if size == 0 {
            // mmap refuses zero-length mappings; an empty file still needs a (valid, empty) storage.
            storage = .allocate(byteCount: 0)
            return
        }
        let mapped = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0)
        guard let base = mapped, base != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw FileError(path: path, reason: "cannot map: \(String(cString: strerror(errno)))")
        }
        storage = TensorStorage(base: base, byteCount: size) { munmap(base, size) }
    }
}
