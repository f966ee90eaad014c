import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reads the JSON lines a child quac-host writes on its stdout (a stage worker, a `plugins check`
/// child), waiting at most a given time for each, so the parent can time out, notice cancellation or
/// notice that the child ended. Lines that are not JSON (a plugin's own prints) are skipped.
struct JSONLineReader {
    enum Event {
        case line(JSONValue)
        /// Nothing arrived within the wait.
        case idle
        /// The pipe ended: the child exited or closed its stdout.
        case end
    }

    let fd: Int32
    private var buffer: [UInt8] = []
    private var chunk = [UInt8](repeating: 0, count: 65536)

    init(_ handle: FileHandle) { fd = handle.fileDescriptor }

    /// The next JSON line, or `.idle` after `wait` seconds without one, or `.end`.
    mutating func next(wait: Double) -> Event {
        let deadline = Date().addingTimeInterval(wait)
        while true {
            while let nl = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[..<nl])
                buffer.removeSubrange(...nl)
                if let v = try? JSONParser.parse(line) { return .line(v) }
            }
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return .idle }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(min(left * 1000 + 1, Double(Int32.max))))
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 { return .idle }
            let n = read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return .end }
            buffer += chunk[0..<n]
        }
    }

    /// "3 s", "2.5 s": a timeout as messages state it.
    static func seconds(_ t: Double) -> String {
        t == t.rounded() ? "\(Int(t)) s" : String(format: "%.1f s", t)
    }
}

/// Reads a pipe (a child's stderr) to its end on a thread of its own and keeps what it read, so a
/// chatty child never blocks on a full pipe.
final class StderrCollector: @unchecked Sendable {
    private var data = Data()
    private let finished = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        let fd = handle.fileDescriptor
        let thread = Thread { [self] in
            // read(2), not FileHandle.availableData: that traps when a signal (the child's SIGCHLD)
            // interrupts it. Keep at most 64 KiB: enough for the message, bounded whatever the plugin
            // prints.
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(fd, &chunk, chunk.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                if data.count < 65536 { data.append(contentsOf: chunk[0..<min(n, 65536 - data.count)]) }
            }
            withExtendedLifetime(handle) {}
            finished.signal()
        }
        thread.start()
    }

    /// Waits for the end of the pipe; returns the text.
    func finish() -> String {
        finished.wait()
        return String(decoding: data, as: UTF8.self)
    }
}
