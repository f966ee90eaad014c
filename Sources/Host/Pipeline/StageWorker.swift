import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where a run's plugins execute. `process` runs each stage that calls plugins in a worker: a child
/// quac-host (`run MANIFEST --worker-stage LABEL`) that prepares the same run, reuses every result the
/// stage needs from the results store, computes the stage and writes its results there; the parent
/// then reuses them. A plugin that crashes, aborts, exits or hangs takes down only its worker: the unit
/// fails with the signal, the status or the timeout, and the run goes on with the others. The
/// classifier and every host service are the worker's own (the worker is the same program with the
/// same run), so plugins see no difference. `none` calls plugins in the run's own process (faster to
/// start, for plugins you trust).
public enum Isolation: Sendable {
    case none
    /// `executable` is quac-host itself; `timeout` the seconds a worker may go without finishing a batch.
    case process(executable: URL, pluginPaths: [URL], timeout: Double)
}

enum StageWorker {
    /// The option a worker is started with, and the JSON lines it reports batches with.
    static let option = "--worker-stage"

    /// Runs stage `label` of the manifest in a worker; throws the unit's failure.
    static func run(_ label: String, manifestFile: String, executable: URL, pluginPaths: [URL], timeout: Double,
                    hashes: URL, progress: RunProgress) throws {
        try FileHashes.export(to: hashes)
        let p = Process()
        p.executableURL = executable
        p.arguments = ["run", manifestFile, option, label, "--isolation", "none"] + pluginPaths.flatMap { ["--plugin-path", $0.path] }
        var environment = ProcessInfo.processInfo.environment
        environment[IsolatedCheck.watchVariable] = "1"
        environment[FileHashes.variable] = hashes.path
        p.environment = environment
        let out = Pipe(), err = Pipe(), lifeline = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = lifeline
        do { try p.run() } catch { throw QuacError("\(label): cannot start a worker (\(executable.path)): \(error.localizedDescription)", category: .internal) }
        let stderrText = StderrCollector(err.fileHandleForReading)
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        let fd = out.fileHandleForReading.fileDescriptor
        var timedOut = false
        progress.stageStarted(label, total: 0)
        while true {
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
                guard let v = try? JSONParser.parse(line), let done = v["done"]?.intValue, let total = v["total"]?.intValue else { continue }
                progress.stageAdvanced(label, done: Int(done), total: Int(total))
            }
        }
        if timedOut {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            _ = stderrText.finish()
            throw QuacError("\(label): no batch finished for \(IsolatedCheck.seconds(timeout)): the worker was killed (a plugin hangs, or needs a longer --timeout)")
        }
        try? lifeline.fileHandleForWriting.close()
        p.waitUntilExit()
        let text = stderrText.finish()
        let lastError = text.split(separator: "\n").last { $0.hasPrefix("error: ") }.map { String($0.dropFirst("error: ".count)) }
        switch (p.terminationReason, p.terminationStatus) {
        case (.exit, 0):
            return
        case (.uncaughtSignal, let signal):
            let name = String(cString: strsignal(signal))
            throw QuacError("\(label): the worker crashed (signal \(signal), \(name)); a plugin of this unit \(signal == SIGABRT ? "aborted" : "crashed")")
        case (.exit, 130):
            throw QuacError.cancelled
        case (.exit, let status):
            if let lastError { throw QuacError(lastError, category: status == 2 ? .internal : .user) }
            throw QuacError("\(label): the worker ended with exit status \(status) before finishing the unit (a plugin called exit?)\(text.isEmpty ? "" : ": " + String(text.split(separator: "\n").last ?? ""))")
        @unknown default:
            throw QuacError("\(label): the worker ended unexpectedly")
        }
    }
}

/// What a worker reports to its parent: one JSON line per finished batch on stdout.
public final class WorkerProgress: RunProgress {
    public init() {}
    private func emit(_ done: Int, _ total: Int) {
        print(#"{"done":\#(done),"total":\#(total)}"#)
        fflush(stdout)
    }
    public func stageStarted(_ stage: String, total: Int) { emit(0, total) }
    public func stageAdvanced(_ stage: String, done: Int, total: Int) { emit(done, total) }
    public func stageFinished(_ stage: String, summary: String) {}
    public func note(_ message: String) {}
}
