import Foundation

/// The batch scripts of a sharded run on Slurm (`quac-host slurm`): a training job when the manifest
/// trains anything, a job array with one task per shard that starts when training succeeded, and a
/// merge job that starts when every shard succeeded. Each job writes its log under
/// `<output>/slurm/logs/`. Resubmitting some shards (`only`) gives the array those tasks alone and a
/// merge after them.
public struct SlurmJobs {
    public struct Options {
        public var shards: Int
        public var partition: String?
        public var time: String?
        public var cpusPerTask: Int?
        public var mem: String?
        /// Shards to (re)submit alone; nil: a whole run.
        public var only: [Int]?
        /// Passed on to `run` and `train` (`--isolation`, `--plugin-path`).
        public var extraArguments: [String] = []

        public init(shards: Int) { self.shards = shards }
    }

    public struct Script {
        /// "train", "shards" or "merge".
        public let role: String
        public let file: URL
        public let text: String
    }

    public let manifest: PipelineManifest
    public let executable: URL
    public let options: Options

    public init(manifest: PipelineManifest, executable: URL, options: Options) throws {
        guard options.shards >= 1 else { throw QuacError("--shards: must be at least 1, got \(options.shards)") }
        for i in options.only ?? [] where i < 0 || i >= options.shards {
            throw QuacError("--only: shard \(i) is not one of 0..\(options.shards - 1)")
        }
        if let c = options.cpusPerTask, c < 1 { throw QuacError("--cpus-per-task: must be at least 1, got \(c)") }
        self.manifest = manifest
        self.executable = executable
        self.options = options
    }

    public static let folderName = "slurm"
    public var folder: URL { manifest.output.appendingPathComponent(Self.folderName) }
    public var logs: URL { folder.appendingPathComponent("logs") }

    /// Whether a training job runs first: some plugin of the manifest has a "train" block (and the
    /// whole run is submitted: resubmitted shards use the models trained before).
    public var trains: Bool { options.only == nil && manifest.pluginUses.contains { $0.0.train != nil } }

    /// The scripts, in submission order.
    public var scripts: [Script] {
        var out: [Script] = []
        let name = Self.jobName(manifest.name)
        let manifestPath = Self.quote(URL(fileURLWithPath: manifest.file).standardizedFileURL.path)
        let host = Self.quote(executable.path)
        let extra = options.extraArguments.map(Self.word).joined(separator: " ")
        let suffix = extra.isEmpty ? "" : " " + extra
        if trains {
            out.append(Script(role: "train", file: folder.appendingPathComponent("train.sbatch"), text: header("\(name)-train", log: "train.log")
                + "exec \(host) train \(manifestPath)\(suffix)\n"))
        }
        let array = options.only.map { $0.map(String.init).joined(separator: ",") } ?? "0-\(options.shards - 1)"
        out.append(Script(role: "shards", file: folder.appendingPathComponent("shards.sbatch"),
                          text: header("\(name)-shards", log: "shard-%a-of-\(options.shards).log", array: array)
                            + "exec \(host) run \(manifestPath) --shard \"${SLURM_ARRAY_TASK_ID}/\(options.shards)\"\(suffix)\n"))
        out.append(Script(role: "merge", file: folder.appendingPathComponent("merge.sbatch"), text: header("\(name)-merge", log: "merge.log", cpus: 1)
            + "exec \(host) merge \(Self.quote(manifest.output.standardizedFileURL.path)) --shards \(options.shards)\n"))
        return out
    }

    private func header(_ job: String, log: String, array: String? = nil, cpus: Int? = nil) -> String {
        var lines = ["#!/bin/bash", "#SBATCH --job-name=\(job)", "#SBATCH --output=\(logs.standardizedFileURL.path)/\(log)"]
        if let array { lines.append("#SBATCH --array=\(array)") }
        // A job whose predecessor failed is cancelled, not left pending for ever.
        lines.append("#SBATCH --kill-on-invalid-dep=yes")
        if let p = options.partition { lines.append("#SBATCH --partition=\(p)") }
        if let t = options.time { lines.append("#SBATCH --time=\(t)") }
        if let c = cpus ?? options.cpusPerTask { lines.append("#SBATCH --cpus-per-task=\(c)") }
        if let m = options.mem { lines.append("#SBATCH --mem=\(m)") }
        lines.append("set -euo pipefail")
        return lines.joined(separator: "\n") + "\n"
    }

    /// A job name Slurm shows: the manifest's name, letters, digits, '-', '_' and '.' kept.
    static func jobName(_ name: String) -> String {
        let kept = String(name.map { $0.isLetter || $0.isNumber || "-_.".contains($0) ? $0 : "_" })
        return "quac-" + (kept.isEmpty ? "run" : kept)
    }

    /// A shell word, quoted.
    static func quote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// A shell word, quoted when it needs to be.
    static func word(_ s: String) -> String {
        !s.isEmpty && s.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0)) }) ? s : quote(s)
    }

    public struct Submitted {
        public let role: String
        public let id: String
        public let script: URL
    }

    /// Writes the scripts and submits them with `sbatch --parsable`, each after the one before it
    /// (afterok); returns the job ids in order.
    public func submit(sbatch: URL) throws -> [Submitted] {
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        var submitted: [Submitted] = []
        for s in scripts {
            try AtomicFile.write(s.text, to: s.file)
            var args = ["--parsable"]
            if let previous = submitted.last { args.append("--dependency=afterok:\(previous.id)") }
            let id = try Self.sbatch(sbatch, args + [s.file.path])
            submitted.append(Submitted(role: s.role, id: id, script: s.file))
        }
        return submitted
    }

    static func sbatch(_ sbatch: URL, _ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = sbatch
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        do { try p.run() } catch { throw QuacError("cannot run \(sbatch.path): \(error.localizedDescription)") }
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: o, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        // --parsable prints "<id>" or "<id>;<cluster>".
        let id = String(text.split(separator: ";").first ?? "")
        guard p.terminationStatus == 0, !id.isEmpty, id.allSatisfy(\.isNumber) else {
            let why = String(decoding: e, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw QuacError("sbatch \(args.joined(separator: " ")) failed (exit \(p.terminationStatus)): \(why.isEmpty ? text : why)")
        }
        return id
    }

    /// `sbatch` on PATH.
    public static func findSbatch() -> URL? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(dir)).appendingPathComponent("sbatch")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }
}
