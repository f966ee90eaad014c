import ArgumentParser
import Foundation
import QuacHost

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Join the shards of a run (quac-host run --shard I/N) into the results an unsharded run writes.",
        discussion: "The shards must all have finished, come from the same manifest, plugins, trained models and data, and cover every sample once; otherwise the merge names the ones that do not, exits 1 and writes nothing.")
    @Argument(help: "The run's output folder (it holds shards/<I>-of-<N>/).") var output: String
    @Option(help: "Merge the run of this many shards, when shards of several runs are there.") var shards: Int?
    @Flag(name: .shortAndLong, help: "No summary line.") var quiet = false

    func run() throws {
        try QuacHostCommand.guarded {
            let result = try ShardMerge.merge(output: URL(fileURLWithPath: output), count: shards)
            if !quiet { print("merged \(result.shards) shards (\(result.samples) samples, \(result.files.count) files) into \(result.output.path)") }
        }
    }
}
