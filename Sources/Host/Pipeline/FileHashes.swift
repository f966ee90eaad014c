import Foundation

/// SHA-256 of files (data files, plugin libraries) as fingerprints use them, computed once and kept in
/// the results folder (`.quac-hashes.json`): a rerun and the run's workers (StageWorker) do not hash
/// gigabytes of data or a large library again. An entry is used only while the file's size and
/// modification time are the ones it was computed for.
enum FileHashes {
    /// The variable naming the file a worker reads its parent's hashes from.
    static let variable = "QUAC_FILE_HASHES"

    private struct Entry { var size: Int, mtime: Double, sha256: String }
    private static let lock = NSLock()
    nonisolated(unsafe) private static var entries: [String: Entry] = [:]
    nonisolated(unsafe) private static var loaded = false

    static func sha256(_ url: URL) throws -> String {
        let path = url.path
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        let size = (attributes?[.size] as? NSNumber)?.intValue ?? -1
        let mtime = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? -1
        lock.lock()
        if !loaded { loadInherited() }
        if let e = entries[path], e.size == size, e.mtime == mtime {
            lock.unlock()
            return e.sha256
        }
        lock.unlock()
        let h = try SHA256.hex(fileAt: url)
        lock.lock()
        entries[path] = Entry(size: size, mtime: mtime, sha256: h)
        lock.unlock()
        return h
    }

    /// Writes every hash known here to `url`, for workers.
    static func export(to url: URL) throws {
        lock.lock()
        let object = JSONObject(entries.sorted { $0.key < $1.key }.map { path, e in
            (path, ["size": .int(Int64(e.size)), "mtime": .double(e.mtime), "sha256": .string(e.sha256)] as JSONValue)
        })
        lock.unlock()
        try AtomicFile.write(JSONValue.object(object).serialized() + "\n", to: url)
    }

    /// Adds the hashes a file written by `export` holds (those of an earlier run).
    static func load(from url: URL) {
        lock.lock()
        defer { lock.unlock() }
        read(url.path)
    }

    /// Called with the lock held.
    private static func loadInherited() {
        loaded = true
        if let file = ProcessInfo.processInfo.environment[variable] { read(file) }
    }

    /// Called with the lock held.
    private static func read(_ file: String) {
        guard let data = FileManager.default.contents(atPath: file),
              let object = (try? JSONParser.parse([UInt8](data)))?.objectValue else { return }
        for (path, v) in object {
            guard let size = v["size"]?.intValue, let mtime = v["mtime"]?.doubleValue, let h = v["sha256"]?.stringValue else { continue }
            entries[path] = Entry(size: Int(size), mtime: mtime, sha256: h)
        }
    }
}
