import ArgumentParser
import Foundation
import QuacHost

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train the plugins of a pipeline manifest that have a \"train\" block, and nothing else.",
        discussion: "Models are saved under <output>/models/<name>.safetensors and reused while nothing they depend on changed; an interrupted training resumes from its last checkpoint.")
    @Argument(help: "Pipeline manifest (JSON).") var manifest: String
    @OptionGroup var paths: PluginPathOptions
    @Flag(name: .shortAndLong, help: "No progress output.") var quiet = false
    @Flag(help: "Write into an existing output folder that is not a quac-host results folder.") var force = false
    @OptionGroup var isolation: IsolationOptions

    func run() throws {
        try QuacHostCommand.guarded {
            let m = try PipelineManifest.load(URL(fileURLWithPath: manifest))
            let context = RunContext()
            Signals.cancelOnInterrupt(context)
            let runner = PipelineRunner(manifest: m, extraPluginPaths: paths.urls,
                                        progress: quiet ? SilentProgress() : TerminalProgress(), context: context, force: force,
                                        isolation: try isolation.mode(paths.urls))
            let trained = try runner.trainOnly()
            if !quiet { print(trained.isEmpty ? "nothing to train: no plugin of \(m.file) has a \"train\" block" : "trained: \(trained.joined(separator: ", ")); models in \(m.output.appendingPathComponent("models").path)") }
        }
    }
}
