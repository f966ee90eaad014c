import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `plugins check` runs each plugin's checks in a child quac-host (the running executable, with the
/// hidden `--in-process --jsonl` options) and reads its results line by line, so a plugin that
/// crashes, aborts, exits or hangs becomes a failed check instead of taking the checker down:
/// - each check has `timeout` seconds (counted from the previous result); then the child is killed;
/// - the child's stderr is drained on its own thread, so a chatty plugin cannot block the child;
/// - the child ends its results with a "done" line; a child that stops before it, whatever its exit
///   status, failed;
/// - the child watches its stdin, a pipe only the checker holds open, and exits when it closes: a
///   killed checker leaves no child behind.
public enum IsolatedCheck {
    /// The environment variable that tells a child to watch its stdin (see `watchParent`).
    static let watchVariable = "QUAC_CHECK_WATCH_PARENT"
    /// The JSON line a child prints after its last result.
    public static let doneLine = #"{"done":true}"#

    public static func run(manifest: PluginManifest, options: [String], timeout: Double = 300,
                           onResult: (ConformanceChecker.Result) -> Void) throws -> [ConformanceChecker.Result] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        p.arguments = ["plugins", "check", manifest.url.path, "--in-process", "--jsonl"] + options
        var environment = ProcessInfo.processInfo.environment
        environment[watchVariable] = "1"
        p.environment = environment
        let out = Pipe(), err = Pipe(), lifeline = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = lifeline
        try p.run()
        let stderrText = StderrCollector(err.fileHandleForReading)
        var results: [ConformanceChecker.Result] = []
        func fail(_ name: String, _ detail: String) {
            let r = ConformanceChecker.Result(name: name, passed: false, detail: detail)
            results.append(r)
            onResult(r)
        }
        var last: String { results.last.map { "after check \"\($0.name)\"" } ?? "before the first check" }

        var buffer: [UInt8] = []
        var done = false, timedOut = false
        let fd = out.fileHandleForReading.fileDescriptor
        var chunk = [UInt8](repeating: 0, count: 65536)
        reading: while true {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(min(timeout * 1000, Double(Int32.max))))
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 { timedOut = true; break }
            let n = read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            buffer += chunk[0..<n]
            while let nl = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[..<nl])
                buffer.removeSubrange(...nl)
                guard let v = try? JSONParser.parse(line) else { continue }
                if v["done"]?.boolValue == true { done = true; break reading }
                guard let name = v["name"]?.stringValue else { continue }
                let r = ConformanceChecker.Result(name: name, passed: v["passed"]?.boolValue ?? false, detail: v["detail"]?.stringValue ?? "")
                results.append(r)
                onResult(r)
            }
        }
        if timedOut {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            fail("no hang", "no result for \(Self.seconds(timeout)) \(last): the child was killed (raise --timeout for slow plugins)")
            return results
        }
        try? lifeline.fileHandleForWriting.close()
        p.waitUntilExit()
        let text = stderrText.finish()
        if p.terminationReason == .uncaughtSignal {
            fail("no crash", "the plugin crashed the process (signal \(p.terminationStatus)) \(last)")
        } else if !done {
            let firstLine = text.split(separator: "\n").first.map { ": \($0)" } ?? ""
            fail(results.isEmpty ? "run checks" : "no early exit",
                 "the process ended with exit status \(p.terminationStatus) \(last), before the checks were done\(firstLine)")
        }
        return results
    }

    static func seconds(_ t: Double) -> String {
        t == t.rounded() ? "\(Int(t)) s" : String(format: "%.1f s", t)
    }

    /// In a child started by `run`: exits as soon as stdin, the checker's end of a pipe, closes (the
    /// checker ended or was killed), even while a plugin call is still running.
    public static func watchParent() {
        guard ProcessInfo.processInfo.environment[watchVariable] == "1" else { return }
        let thread = Thread {
            var byte: UInt8 = 0
            while true {
                let n = read(0, &byte, 1)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { _exit(137) }
            }
        }
        thread.start()
    }
}

/// Reads a pipe to its end on a thread of its own and keeps what it read.
final class StderrCollector: @unchecked Sendable {
    private var data = Data()
    private let finished = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        let thread = Thread { [self] in
            // Keep at most 64 KiB: enough for the message, bounded whatever the plugin prints.
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                if data.count < 65536 { data.append(chunk.prefix(65536 - data.count)) }
            }
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
