import ArgumentParser
import Foundation
import QuacHost

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a pipeline manifest: classify, make counterfactuals, attribute, score; write the results store.",
        discussion: "Finished work whose inputs did not change is reused on a rerun; every file is written atomically.")
    @Argument(help: "Pipeline manifest (JSON).") var manifest: String
    @OptionGroup var paths: PluginPathOptions
    @Flag(help: "Print a JSON summary on stdout.") var json = false
    @Flag(name: .shortAndLong, help: "No progress output.") var quiet = false
    @Flag(help: "Write into an existing output folder that is not a quac-host results folder.") var force = false
    @OptionGroup var isolation: IsolationOptions
    @Option(help: "Run shard I of N (I from 0): samples [I*n/N, (I+1)*n/N) of the n the manifest resolves to, into <output>/shards/I-of-N/; trained models must exist (quac-host train). Join the shards with quac-host merge.")
    var shard: String?

    func run() throws {
        try QuacHostCommand.guarded {
            let m = try PipelineManifest.load(URL(fileURLWithPath: manifest))
            let slice = try shard.map { try Shard(parsing: $0) }
            let progress: RunProgress = isolation.worker ? WorkerProgress() : (quiet || json ? SilentProgress() as RunProgress : TerminalProgress())
            if isolation.worker { StageWorker.watchParent() }
            let context = RunContext()
            Signals.cancelOnInterrupt(context)
            let summary = try PipelineRunner(manifest: m, extraPluginPaths: paths.urls, progress: progress, context: context, force: force,
                                         isolation: try isolation.mode(paths.urls), isWorker: isolation.worker, shard: slice).run()
            // A worker's stdout carries only its progress; its results are on disk, so it ends at once
            // (no teardown of the run for its parent to wait on).
            if isolation.worker { fflush(stdout); Foundation.exit(0) }
            if json {
                var medians = JSONObject()
                for (method, byScorer) in summary.medians.sorted(by: { $0.key < $1.key }) {
                    medians[method] = .object(JSONObject(byScorer.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.double($0.value)) }))
                }
                printJSON(["output": .string(summary.output.path), "shard": slice.map { .string($0.tag) } ?? .null, "samples": .int(Int64(summary.samples)),
                           "computed": .array(summary.computed.map { .string($0) }),
                           "reused": .array(summary.reused.map { .string($0) }), "median_scores": .object(medians)])
            } else if !quiet {
                if !summary.reused.isEmpty { print("reused: \(summary.reused.joined(separator: ", "))") }
                for (method, byScorer) in summary.medians.sorted(by: { $0.key < $1.key }) {
                    print("\(method): " + byScorer.sorted { $0.key < $1.key }.map { String(format: "%@ median %.4f", $0.key, $0.value) }.joined(separator: ", "))
                }
                print("results: \(summary.output.path)")
            }
        }
    }
}
