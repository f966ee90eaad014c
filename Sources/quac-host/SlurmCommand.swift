import ArgumentParser
import Foundation
import QuacHost

struct SlurmCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slurm",
        abstract: "Run a pipeline manifest on a Slurm cluster: a training job, a job array of shards after it, a merge after them.",
        discussion: "The scripts go to <output>/slurm/ and are submitted with sbatch --parsable; logs go to <output>/slurm/logs/. The output folder must be on a filesystem every node sees. --only resubmits failed shards (and the merge) alone.")
    @Argument(help: "Pipeline manifest (JSON).") var manifest: String
    @Option(help: "Number of shards (tasks of the job array).") var shards: Int
    @Option(help: "Slurm partition.") var partition: String?
    @Option(help: "Time limit of each job (Slurm's format, e.g. 2:00:00).") var time: String?
    @Option(name: .customLong("cpus-per-task"), help: "CPUs of each training and shard job.") var cpusPerTask: Int?
    @Option(help: "Memory of each job (Slurm's format, e.g. 16G).") var mem: String?
    @Option(help: "Resubmit only these shards (comma-separated indices from 0), and the merge after them.") var only: String?
    @Flag(name: .customLong("dry-run"), help: "Print the scripts; submit and write nothing.") var dryRun = false
    @OptionGroup var paths: PluginPathOptions
    @Option(help: "Passed on to the training and shard jobs (process or none).") var isolation: String?

    func run() throws {
        try QuacHostCommand.guarded {
            let m = try PipelineManifest.load(URL(fileURLWithPath: manifest))
            var options = SlurmJobs.Options(shards: shards)
            options.partition = partition
            options.time = time
            options.cpusPerTask = cpusPerTask
            options.mem = mem
            if let only {
                options.only = try only.split(separator: ",").map { part in
                    guard let i = Int(part.trimmingCharacters(in: .whitespaces)) else { throw QuacError("--only: expected shard indices like 1,3, got \"\(only)\"") }
                    return i
                }
            }
            if let isolation {
                guard ["process", "none"].contains(isolation) else { throw QuacError("--isolation: expected process or none, got \"\(isolation)\"") }
                options.extraArguments += ["--isolation", isolation]
            }
            options.extraArguments += paths.urls.flatMap { ["--plugin-path", $0.standardizedFileURL.path] }
            // The manifest is checked here, before anything is queued: a shard's error would come hours later.
            try PipelineRunner(manifest: m, extraPluginPaths: paths.urls, shard: try Shard(index: 0, count: max(shards, 1))).validate()
            let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            let jobs = try SlurmJobs(manifest: m, executable: executable, options: options)
            if dryRun {
                let scripts = jobs.scripts
                for (i, s) in scripts.enumerated() {
                    let after = i == 0 ? "" : " --dependency=afterok:<\(scripts[i - 1].role) job id>"
                    print("# \(s.file.path), submitted with: sbatch --parsable\(after) \(s.file.path)\n\(s.text)")
                }
                return
            }
            try OutputLock.checkWritable(m.output, force: false)
            guard let sbatch = SlurmJobs.findSbatch() else {
                throw QuacError("sbatch is not on PATH: run this on a Slurm login node, or print the scripts with --dry-run")
            }
            let submitted = try jobs.submit(sbatch: sbatch)
            for s in submitted {
                let what = s.role == "shards" ? "shard array (\(options.only.map { $0.map(String.init).joined(separator: ",") } ?? "0-\(shards - 1)"))" : "\(s.role) job"
                print("\(what): job \(s.id) (\(s.script.path))")
            }
            let ids = submitted.map(\.id).joined(separator: ",")
            print("follow: squeue -j \(ids)")
            print("        sacct -j \(ids) --format=JobID,JobName,State,Elapsed,ExitCode")
            print("logs:   \(jobs.logs.path)/")
            print("rerun a failed shard I: quac-host slurm \(manifest) --shards \(shards) --only I")
        }
    }
}
