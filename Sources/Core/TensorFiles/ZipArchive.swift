import Foundation

/// The entries of a zip archive whose members are stored uncompressed, as `torch.save` writes them:
/// read from the central directory (zip64 records included), each entry's data located through its
/// local header and bounds-checked against the file. Compressed or encrypted entries are refused.
struct ZipArchive {
    struct Entry {
        let name: String
        let offset: Int
        let size: Int
    }

    let bytes: UnsafeRawBufferPointer
    let path: String
    private(set) var entries: [String: Entry] = [:]
    /// Entry names in central-directory order.
    private(set) var names: [String] = []

    static func isZip(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 4 && bytes[0] == 0x50 && bytes[1] == 0x4B && bytes[2] == 0x03 && bytes[3] == 0x04
    }

    init(_ bytes: UnsafeRawBufferPointer, path: String) throws {
        self.bytes = bytes
        self.path = path
        func fail(_ reason: String) -> FileError { FileError(path: path, reason: "zip: \(reason)") }
        func u16(_ at: Int) throws -> Int {
            guard at >= 0, at <= bytes.count - 2 else { throw fail("truncated (offset \(at))") }
            return Int(bytes[at]) | Int(bytes[at + 1]) << 8
        }
        func u32(_ at: Int) throws -> Int { let low = try u16(at), high = try u16(at + 2); return low | high << 16 }
        func u64(_ at: Int) throws -> Int {
            let low = try u32(at), high = try u32(at + 4)
            guard high < 0x8000_0000 else { throw fail("64-bit value out of range at offset \(at)") }
            return low | high << 32
        }
        // The end-of-central-directory record: its signature within the last 64 KiB + 22 bytes.
        guard bytes.count >= 22 else { throw fail("file of \(bytes.count) bytes is too short for a zip archive") }
        var eocd = -1
        var i = bytes.count - 22
        let lowest = max(0, bytes.count - 22 - 65_535)
        while i >= lowest {
            if bytes[i] == 0x50, bytes[i + 1] == 0x4B, bytes[i + 2] == 0x05, bytes[i + 3] == 0x06 { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else { throw fail("no end-of-central-directory record (truncated file?)") }
        var count = try u16(eocd + 10)
        var dirSize = try u32(eocd + 12)
        var dirOffset = try u32(eocd + 16)
        if count == 0xFFFF || dirSize == 0xFFFF_FFFF || dirOffset == 0xFFFF_FFFF {
            // zip64: the locator sits right before the record and points at the zip64 record.
            let locator = eocd - 20
            guard locator >= 0, try u32(locator) == 0x0706_4B50 else { throw fail("zip64 locator missing") }
            let record = try u64(locator + 8)
            guard try u32(record) == 0x0606_4B50 else { throw fail("zip64 end-of-central-directory record missing at offset \(record)") }
            count = try u64(record + 32)
            dirSize = try u64(record + 40)
            dirOffset = try u64(record + 48)
        }
        guard dirOffset >= 0, dirSize >= 0, dirOffset <= bytes.count, dirSize <= bytes.count - dirOffset else {
            throw fail("central directory (offset \(dirOffset), \(dirSize) bytes) lies outside the file")
        }
        guard count <= dirSize / 46 else { throw fail("\(count) entries cannot fit a central directory of \(dirSize) bytes") }
        var at = dirOffset
        for _ in 0..<count {
            guard try u32(at) == 0x0201_4B50 else { throw fail("bad central directory entry at offset \(at)") }
            let flags = try u16(at + 8), method = try u16(at + 10)
            var compressed = try u32(at + 20), size = try u32(at + 24)
            let nameLength = try u16(at + 28), extraLength = try u16(at + 30), commentLength = try u16(at + 32)
            var local = try u32(at + 42)
            guard at + 46 + nameLength <= bytes.count else { throw fail("truncated entry name at offset \(at)") }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(at + 46)..<(at + 46 + nameLength)]), as: UTF8.self)
            // zip64 extra field: the 64-bit sizes and offset, in that order, for the fields that are 0xFFFFFFFF.
            var extra = at + 46 + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let id = try u16(extra), length = try u16(extra + 2)
                if id == 0x0001 {
                    var field = extra + 4
                    if size == 0xFFFF_FFFF { size = try u64(field); field += 8 }
                    if compressed == 0xFFFF_FFFF { compressed = try u64(field); field += 8 }
                    if local == 0xFFFF_FFFF { local = try u64(field); field += 8 }
                }
                extra += 4 + length
            }
            guard flags & 1 == 0 else { throw fail("entry \(name) is encrypted") }
            guard method == 0 else { throw fail("entry \(name) is compressed (method \(method)); torch.save stores entries uncompressed") }
            guard compressed == size else { throw fail("entry \(name): stored size \(compressed) differs from its size \(size)") }
            guard try u32(local) == 0x0403_4B50 else { throw fail("entry \(name): no local header at offset \(local)") }
            let localName = try u16(local + 26), localExtra = try u16(local + 28)
            let data = local + 30 + localName + localExtra
            guard data <= bytes.count, size <= bytes.count - data else {
                throw fail("entry \(name) (\(size) bytes at offset \(data)) runs past the end of the file (truncated?)")
            }
            if entries[name] == nil { names.append(name) }
            entries[name] = Entry(name: name, offset: data, size: size)
            at += 46 + nameLength + extraLength + commentLength
        }
    }

    func data(_ entry: Entry) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[entry.offset..<(entry.offset + entry.size)])
    }
}
