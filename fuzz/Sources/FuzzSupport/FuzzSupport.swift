import Foundation

/// A scratch file for readers that take a path: one per process (parallel jobs do not collide), in
/// /dev/shm where it exists so each execution costs a memory write, not a disk write.
public final class ScratchFile {
    public let url: URL
    let fd: Int32

    public init(suffix: String) {
        let dir = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let dirURL = URL(fileURLWithPath: dir).appendingPathComponent("quac-fuzz-\(getpid())")
        try? FileManager.default.createDirectory(at: dirURL, withIntermediateDirectories: true)
        url = dirURL.appendingPathComponent("input" + suffix)
        fd = open(url.path, O_RDWR | O_CREAT | O_TRUNC, 0o600)
        precondition(fd >= 0, "cannot create \(url.path)")
        // Remove the scratch folder when the fuzzer exits normally.
        let path = dirURL.path
        atexit_paths.append(path)
        if atexit_paths.count == 1 { atexit { for p in atexit_paths { try? FileManager.default.removeItem(atPath: p) } } }
    }

    /// Replaces the file's contents with `size` bytes at `data`.
    public func write(_ data: UnsafePointer<UInt8>, _ size: Int) {
        precondition(ftruncate(fd, 0) == 0)
        var done = 0
        while done < size {
            let n = pwrite(fd, data + done, size - done, off_t(done))
            precondition(n > 0, "cannot write \(url.path)")
            done += n
        }
    }
}

nonisolated(unsafe) var atexit_paths: [String] = []

/// QUAC_FUZZ_VERBOSE=1 prints each input's outcome (accepted, or the reader's error): for checking
/// that the seeds are valid, or what a reader says about a finding.
public let verbose = getenv("QUAC_FUZZ_VERBOSE") != nil

/// Runs one reader call; errors are expected (the reader refused the input) and only printed if verbose.
public func attempt<T>(_ body: () throws -> T) -> T? {
    do {
        let value = try body()
        if verbose { print("accepted") }
        return value
    } catch {
        if verbose { print("error: \(error)") }
        return nil
    }
}
