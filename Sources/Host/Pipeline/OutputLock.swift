import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One writer per results folder. A run (or `train`) holds an exclusive lock on `<output>/.quac-lock`
/// for its whole life; `compare` and `report` take a shared one while they read, so they never read a
/// folder a run is writing. The holder writes its pid and start time into the file, so the one that
/// is refused can name it. The lock is the kernel's (flock): it goes away with the process, even one
/// killed with SIGKILL, so a crashed run never leaves the folder locked.
///
/// A folder that exists, is not empty and holds no results of quac-host is not written into (without
/// `force`): an output path mistyped as someone's home or data folder must not have its files
/// overwritten.
public final class OutputLock {
    public static let fileName = ".quac-lock"
    private var fd: Int32

    /// Takes the exclusive lock, creating the folder if needed.
    public init(writing root: URL, force: Bool) throws {
        let fm = FileManager.default
        try Self.checkWritable(root, force: force)
        do { try fm.createDirectory(at: root, withIntermediateDirectories: true) } catch {
            throw QuacError("output \(root.path): cannot create the folder: \(error.localizedDescription)")
        }
        let path = root.appendingPathComponent(Self.fileName).path
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw QuacError("output \(root.path): cannot open \(Self.fileName): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = Self.holder(fd)
            close(fd)
            throw QuacError("output \(root.path) is in use by another quac-host (\(holder)); wait for it to finish, or choose another output")
        }
        let note = "pid \(getpid()), started \(ISO8601DateFormatter().string(from: Date()))\n"
        _ = ftruncate(fd, 0)
        _ = note.withCString { pwrite(fd, $0, strlen($0), 0) }
    }

    /// Throws unless `root` is absent, a folder quac-host wrote, or (with `force`) any folder.
    public static func checkWritable(_ root: URL, force: Bool) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root.path, isDirectory: &isDir) else { return }
        guard isDir.boolValue else { throw QuacError("output \(root.path) exists and is not a folder") }
        if !force, try !isResultsFolder(root) {
            throw QuacError("output \(root.path) exists and is not a quac-host results folder (it has files and no run.json); choose another output, or pass --force to write into it")
        }
    }

    /// Takes a shared lock to read a finished folder; nil when the folder has no lock file (results
    /// written before locks existed, or a copy). Fails while a run holds the folder.
    public static func reading(_ root: URL) throws -> OutputLock? {
        let path = root.appendingPathComponent(fileName).path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        guard flock(fd, LOCK_SH | LOCK_NB) == 0 else {
            let holder = Self.holder(fd)
            close(fd)
            throw QuacError("\(root.path) is being written by a quac-host run (\(holder)); read it when the run has finished")
        }
        return OutputLock(fd: fd)
    }

    private init(fd: Int32) { self.fd = fd }

    /// Lets go of the lock (also done when the object goes away).
    public func release() {
        guard fd >= 0 else { return }
        close(fd)
        fd = -1
    }

    deinit { release() }

    /// What the holder wrote into the lock file.
    private static func holder(_ fd: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = pread(fd, &buffer, buffer.count, 0)
        let text = n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : ""
        return text.isEmpty ? "holder unknown" : text
    }

    /// Empty, or holding what a quac-host run writes first (its lock, its record, its inputs, its shards, its Slurm jobs).
    static func isResultsFolder(_ root: URL) throws -> Bool {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        let visible = names.filter { !$0.hasPrefix(".") || $0 == fileName }
        return visible.isEmpty || names.contains(fileName) || names.contains("run.json") || names.contains("inputs.safetensors")
            || names.contains(Shard.folder) || names.contains(SlurmJobs.folderName)
    }
}
