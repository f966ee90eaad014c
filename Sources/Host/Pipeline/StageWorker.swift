import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where a run's plugins execute. `process` runs the stages that call plugins in a worker: a child
/// quac-host (`run MANIFEST --worker`) that prepares the same run once, then computes the stages it is
/// sent one by one (reusing from the results store whatever a stage needs and it did not compute
/// itself) and writes their results there; the run then reuses those files. A plugin that crashes,
/// aborts, exits or hangs takes down only the worker: the unit it was computing fails with the signal,
/// the status or the timeout, a fresh worker takes the next unit, and the run goes on. The classifier
/// and every host service are the worker's own (the worker is the same program with the same run), so
/// plugins see no difference. `none` calls plugins in the run's own process.
public enum Isolation: Sendable {
    case none
    /// `executable` is quac-host itself; `timeout` the seconds a worker may go without finishing a batch.
    case process(executable: URL, pluginPaths: [URL], timeout: Double)
}

/// The parent's side of one worker process: started on first use, restarted after a failure that
/// took it down, ended with the run.
public final class StageWorker {
    /// The option a worker is started with.
    static let option = "--worker"

    let manifestFile: String
    let executable: URL
    let pluginPaths: [URL]
    let hashes: URL
    /// The parent's shard: the worker runs the same one.
    let shard: Shard?
    private var process: Process?
    private var input: FileHandle?
    private var output: JSONLineReader?
    private var errors: StderrCollector?
    /// Whether the worker was given a unit (one that never was is killed at the end, not waited for).
    private var used = false
    /// The plugin uses (JSON pointers) the current worker has created, and whether it has prepared.
    private var created: Set<String> = []
    private var prepared = false
    /// The use it was creating when it last said so (cleared once created).
    private var creating: String?
    /// What the current worker said its classifier is, once it has created it.
    private(set) var classifierInfo: ClassifierInfo?

    init(manifestFile: String, executable: URL, pluginPaths: [URL], hashes: URL, shard: Shard? = nil) {
        self.manifestFile = manifestFile
        self.shard = shard
        self.executable = executable
        self.pluginPaths = pluginPaths
        self.hashes = hashes
    }

    deinit { stop() }

    private func start() throws {
        try FileHashes.export(to: hashes)
        let p = Process()
        p.executableURL = executable
        p.arguments = ["run", manifestFile, Self.option, "--isolation", "none"] + pluginPaths.flatMap { ["--plugin-path", $0.path] }
            + (shard.map { ["--shard", $0.tag] } ?? [])
        var environment = ProcessInfo.processInfo.environment
        environment[FileHashes.variable] = hashes.path
        environment[Self.parentVariable] = String(getpid())
        p.environment = environment
        let out = Pipe(), err = Pipe(), commands = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = commands
        do { try p.run() } catch { throw QuacError("cannot start a worker (\(executable.path)): \(error.localizedDescription)", category: .internal) }
        process = p
        used = false
        created = []
        prepared = false
        creating = nil
        classifierInfo = nil
        input = commands.fileHandleForWriting
        output = JSONLineReader(out.fileHandleForReading)
        errors = StderrCollector(err.fileHandleForReading)
    }

    var isStarted: Bool { process != nil }

    /// Starts the worker now, so it prepares while the run does.
    func warmUp() throws {
        if process == nil { try start() }
    }

    /// Ends the worker (it exits when its commands end) and waits for it.
    func stop() {
        guard let p = process else { return }
        if !used { kill(p.processIdentifier, SIGKILL) }
        try? input?.close()
        p.waitUntilExit()
        _ = errors?.finish()
        process = nil
    }

    /// Has the worker compute stage `label`; throws the unit's failure.
    /// `cancelled` is polled while waiting: a cancelled run passes the interrupt on to the worker, which
    /// stops after its current batch like a run in one process.
    func run(_ label: String, timeout: Double, progress: RunProgress, cancelled: () -> Bool) throws {
        if process == nil { try start() }
        guard let p = process, let input else { throw QuacError("no worker", category: .internal) }
        used = true
        do { try input.write(contentsOf: Data((label + "\n").utf8)) } catch {
            // The worker is gone already: what it left on stderr says why.
            try fail(label, p)
        }
        var lastNews = Date(), interrupted = false
        while true {
            if !interrupted && cancelled() {
                kill(p.processIdentifier, SIGINT)
                interrupted = true
            }
            switch output?.next(wait: 0.25) ?? .end {
            case .line(let v):
                lastNews = Date()
                if let done = v["done"]?.intValue, let total = v["total"]?.intValue {
                    progress.stageAdvanced(label, done: Int(done), total: Int(total))
                } else if v["finished"]?.stringValue == label {
                    return
                } else if v["failed"]?.stringValue == label {
                    let message = v["error"]?.stringValue ?? "\(label) failed in the worker"
                    switch v["category"]?.stringValue {
                    case "cancelled": throw QuacError.cancelled
                    case "internal": throw QuacError(message, category: .internal)
                    default: throw QuacError(message)
                    }
                }
            case .end:
                try fail(label, p)
            case .idle:
                if Date().timeIntervalSince(lastNews) >= timeout {
                    killWorker(p)
                    throw QuacError("\(label): no batch finished for \(JSONLineReader.seconds(timeout)): the worker was killed (a plugin hangs, or needs a longer --timeout)")
                }
            }
        }
    }

    /// Kills the worker (hung, or the run was cancelled) and reaps it; the next unit starts a fresh one.
    private func killWorker(_ p: Process) {
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        _ = errors?.finish()
        process = nil
    }

    /// A plugin that crashed, ended the process or hung while the worker created it.
    struct CreationFailure {
        let pointer: String
        let reason: String
    }

    /// Waits until the worker has created the plugin use at `pointer` (nil: every plugin of the run),
    /// so that a plugin that crashes, aborts, exits or hangs when it is created does so in the worker
    /// and is named, instead of taking this process down when it creates the same plugin. Returns that
    /// failure; nil when the worker got there, or when it stopped on an ordinary error (this process
    /// meets the same error and reports it itself; a later unit starts a fresh worker).
    func awaitCreated(_ pointer: String?, timeout: (String?) -> Double, cancelled: () -> Bool) throws -> CreationFailure? {
        try awaitNews(pointer, until: { self.prepared || pointer.map(self.created.contains) ?? false }, timeout: timeout, cancelled: cancelled)
    }

    /// Waits until the worker has created the classifier and said what it is (`classifierInfo`), or
    /// has prepared without saying it (a foreign classifier), or stopped: as `awaitCreated`.
    func awaitClassifierInfo(_ pointer: String, timeout: (String?) -> Double, cancelled: () -> Bool) throws -> CreationFailure? {
        try awaitNews(pointer, until: { self.prepared || self.classifierInfo != nil }, timeout: timeout, cancelled: cancelled)
    }

    private func awaitNews(_ pointer: String?, until there: () -> Bool, timeout: (String?) -> Double,
                           cancelled: () -> Bool) throws -> CreationFailure? {
        if process == nil { try start() }
        guard let p = process else { throw QuacError("no worker", category: .internal) }
        var lastNews = Date()
        while !there() {
            if cancelled() {
                killWorker(p)
                throw QuacError.cancelled
            }
            switch output?.next(wait: 0.25) ?? .end {
            case .line(let v):
                lastNews = Date()
                if let c = v["creating"]?.stringValue { creating = c }
                if let c = v["created"]?.stringValue { created.insert(c); creating = nil }
                if v["prepared"]?.boolValue == true { prepared = true }
                if let info = v["classifier_info"].flatMap(ClassifierInfo.init(json:)) { classifierInfo = info }
            case .end:
                try? input?.close()
                p.waitUntilExit()
                let text = errors?.finish() ?? ""
                process = nil
                guard let use = creating else { return nil }
                switch (p.terminationReason, p.terminationStatus) {
                case (.uncaughtSignal, let signal):
                    return CreationFailure(pointer: use, reason: "crashed while being created (signal \(signal), \(String(cString: strsignal(signal))); in a worker)")
                case (.exit, 130):
                    throw QuacError.cancelled
                case (.exit, let status):
                    if text.split(separator: "\n").contains(where: { $0.hasPrefix("error: ") }) { return nil }
                    return CreationFailure(pointer: use, reason: "ended the process (exit status \(status)) while being created")
                @unknown default:
                    return CreationFailure(pointer: use, reason: "ended the process while being created")
                }
            case .idle:
                let limit = timeout(creating)
                if Date().timeIntervalSince(lastNews) >= limit {
                    killWorker(p)
                    return CreationFailure(pointer: creating ?? pointer ?? "", reason: "was not created after \(JSONLineReader.seconds(limit)) (the worker creating it was killed; a plugin hangs, or needs a longer timeout)")
                }
            }
        }
        return nil
    }

    /// The worker ended while computing `label`: the unit's error, from how it ended.
    private func fail(_ label: String, _ p: Process) throws -> Never {
        try? input?.close()
        p.waitUntilExit()
        let text = errors?.finish() ?? ""
        process = nil
        let lastError = text.split(separator: "\n").last { $0.hasPrefix("error: ") }.map { String($0.dropFirst("error: ".count)) }
        switch (p.terminationReason, p.terminationStatus) {
        case (.uncaughtSignal, let signal):
            let name = String(cString: strsignal(signal))
            throw QuacError("\(label): the worker crashed (signal \(signal), \(name)); a plugin of this unit \(signal == SIGABRT ? "aborted" : "crashed")")
        case (.exit, 130):
            throw QuacError.cancelled
        case (.exit, let status):
            if let lastError { throw QuacError(lastError, category: status == 2 ? .internal : .user) }
            throw QuacError("\(label): the worker ended (exit status \(status)) without finishing the unit: a plugin ended the process early (exit?)")
        @unknown default:
            throw QuacError("\(label): the worker ended unexpectedly")
        }
    }

    // MARK: The worker's side

    /// The variable holding the parent's pid: a worker whose parent is gone exits.
    static let parentVariable = "QUAC_WORKER_PARENT"

    /// In a worker: exits as soon as the parent is gone (checked every second), even while a plugin
    /// call is still running.
    public static func watchParent() {
        guard let parent = ProcessInfo.processInfo.environment[parentVariable].flatMap(Int32.init) else { return }
        let thread = Thread {
            while true {
                if getppid() != parent { _exit(137) }
                sleep(1)
            }
        }
        thread.start()
    }

    /// In a worker: tells the parent which plugin use it creates, has created, and that it is ready.
    static func announce(_ key: String, _ value: JSONValue) {
        var line = JSONObject()
        line[key] = value
        print(JSONValue.object(line).serialized())
        fflush(stdout)
    }

    /// In a worker: reads stage labels from stdin until it ends, computes each with `compute` and
    /// reports it on stdout.
    static func serve(_ compute: (String) throws -> Void) {
        while let line = readLine() {
            let label = line.trimmingCharacters(in: .whitespaces)
            guard !label.isEmpty else { continue }
            var reply: JSONValue = ["finished": .string(label)]
            do { try compute(label) } catch {
                let q = QuacError.wrap(error)
                reply = ["failed": .string(label), "error": .string(q.message),
                         "category": .string(q.category == .cancelled ? "cancelled" : q.category == .internal ? "internal" : "user")]
            }
            print(reply.serialized())
            fflush(stdout)
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
