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

        var reader = JSONLineReader(out.fileHandleForReading)
        var done = false, timedOut = false
        reading: while true {
            switch reader.next(wait: timeout) {
            case .idle: timedOut = true; break reading
            case .end: break reading
            case .line(let v):
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
            fail("no hang", "no result for \(JSONLineReader.seconds(timeout)) \(last): the child was killed (raise --timeout for slow plugins)")
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
