import Foundation

/// Writes files so a reader never sees half of one: the bytes go to a temporary file in the same
/// directory, are flushed, and the file is renamed into place. A failure leaves the old file (or none).
public enum AtomicFile {
    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { fd in
            try data.withUnsafeBytes { raw in
                try writeAll(fd: fd, raw.baseAddress, raw.count, path: url.path)
            }
        }
    }

    public static func write(_ text: String, to url: URL) throws { try write(Data(text.utf8), to: url) }

    /// Streams into a temporary file through `body(fd)`, then renames it over `url`.
    public static func write(to url: URL, _ body: (Int32) throws -> Void) throws {
        let dir = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var template = Array(dir.appendingPathComponent(".\(url.lastPathComponent).tmp-XXXXXX").path.utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw FileError(path: url.path, reason: "cannot create a temporary file: \(String(cString: strerror(errno)))") }
        let tmpPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        var committed = false
        defer {
            if !committed { close(fd); unlink(tmpPath) }
        }
        try body(fd)
        guard fsync(fd) == 0 else { throw FileError(path: url.path, reason: "fsync failed: \(String(cString: strerror(errno)))") }
        fchmod(fd, 0o644)
        close(fd)
        committed = true
        guard rename(tmpPath, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(tmpPath)
            throw FileError(path: url.path, reason: "cannot rename into place: \(reason)")
        }
        syncFolder(dir)
    }

    /// A rename lives in its folder: flush the folder too, or a power cut may forget the renamed file.
    public static func syncFolder(_ dir: URL) {
        let dirFD = open(dir.path, O_RDONLY | O_DIRECTORY)
        if dirFD >= 0 { _ = fsync(dirFD); close(dirFD) }
    }

    public static func writeAll(fd: Int32, _ pointer: UnsafeRawPointer?, _ count: Int, path: String) throws {
        var done = 0
        while done < count {
            let n = Foundation.write(fd, pointer! + done, count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError(path: path, reason: "write failed: \(String(cString: strerror(errno)))")
            }
            done += n
        }
    }
}

/// An error about one file: printed as "path: reason".
public struct FileError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let reason: String
    public init(path: String, reason: String) { self.path = path; self.reason = reason }
    public var description: String { "\(path): \(reason)" }
}
