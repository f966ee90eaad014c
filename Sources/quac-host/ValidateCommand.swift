import ArgumentParser
import Foundation
import QuacHost

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a pipeline manifest without running it: schema, plugin ids and kinds, parameters, requirements.")
    @Argument(help: "Pipeline manifest (JSON).") var manifest: String
    @OptionGroup var paths: PluginPathOptions
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        do {
            let m = try PipelineManifest.load(URL(fileURLWithPath: manifest))
            try PipelineRunner(manifest: m, extraPluginPaths: paths.urls).validate()
            if json { printJSON(["valid": true, "manifest": .string(m.file)]) } else { print("\(m.file): valid") }
        } catch {
            let q = QuacError.wrap(error)
            if json { printJSON(["valid": false, "error": .string(q.message)]) }
            FileHandle.standardError.write(Data("error: \(q.message)\n".utf8))
            throw ExitCode(q.exitCode)
        }
    }
}
