import ArgumentParser
import Foundation
import QuacHost

@main
struct QuacHostCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quac-host",
        abstract: "Explain image and concept classifiers with plugins: attribution methods, counterfactuals, scorers.",
        discussion: """
        Exit codes: 0 success; 1 bad input (a manifest, a data file, a plugin that refused or misbehaved), \
        with a one-line message naming the file and field; 2 an internal error of quac-host; 130 a run \
        stopped with Ctrl-C (finished work is kept).
        Plugins are found in --plugin-path folders, a pipeline's "plugin_paths", $QUAC_PLUGIN_PATH \
        (colon-separated), ~/.local/share/quac-host/plugins (or $XDG_DATA_HOME/quac-host/plugins), and the \
        built-in plugins installed with quac-host; not in the working directory unless it is named \
        (--plugin-path .). Plugin files anyone may write to are refused (--allow-writable-plugins).
        """,
        version: PipelineRunner.toolVersion,
        subcommands: [PluginsCommand.self, ValidateCommand.self, RunCommand.self, TrainCommand.self, MergeCommand.self, SlurmCommand.self, CompareCommand.self, ReportCommand.self, DataCommand.self, ImportCommand.self])

    /// Entry point: the OpenBLAS kernel choice must be made before any engine plugin is loaded.
    static func main() {
        // Past a file-size limit (ulimit -f) a write should fail with EFBIG and a message, not kill
        // the process with SIGXFSZ and leave a temporary file behind.
        signal(SIGXFSZ, SIG_IGN)
        BLASEnvironment.configure()
        main(nil)
    }

    /// Runs a command body with the CLI's error contract: one line on stderr, exit code 1 or 2.
    static func guarded(_ body: () throws -> Void) throws {
        do { try body() } catch let e as ExitCode {
            throw e
        } catch {
            let q = QuacError.wrap(error)
            FileHandle.standardError.write(Data("error: \(q.message)\n".utf8))
            throw ExitCode(q.exitCode)
        }
    }
}

/// Options every command that looks up plugins shares.
struct PluginPathOptions: ParsableArguments {
    @Option(name: .customLong("plugin-path"), help: "An extra folder of plugin manifests (searched first; repeatable).")
    var pluginPaths: [String] = []

    @Flag(name: .customLong("allow-writable-plugins"), help: "Load plugin manifests and libraries that anyone may write to (the file or its folder).")
    var allowWritable = false

    /// The extra folders (every command that finds plugins asks for them first, so the flag below
    /// takes effect there).
    var urls: [URL] {
        allowWritableIfAsked()
        return pluginPaths.map { URL(fileURLWithPath: $0) }
    }
    var registry: PluginRegistry { PluginRegistry(searchPath: PluginRegistry.defaultSearchPath(extra: urls)) }

    /// The flag travels as the environment variable, so child processes (plugins check) honour it.
    func allowWritableIfAsked() {
        if allowWritable { setenv(PluginRegistry.allowWritableVariable, "1", 1) }
    }
}

/// Where plugins run during `run` and `train`.
struct IsolationOptions: ParsableArguments {
    @Option(help: "process: each unit's plugins run in a worker process, so a crash, abort, exit or hang fails only that unit; none: in this process (trusted plugins, no worker start-up).")
    var isolation: String = "process"
    @Option(help: "With process isolation: seconds a worker may go without finishing a batch before it is killed and its unit fails.")
    var timeout: Double = 1800
    @Flag(name: .customLong("worker"), help: .hidden) var worker = false

    func mode(_ pluginPaths: [URL]) throws -> Isolation {
        guard timeout > 0, timeout.isFinite else { throw QuacError("--timeout: must be a positive number of seconds, got \(timeout)") }
        switch isolation {
        case "none": return .none
        case "process":
            return .process(executable: URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath(), pluginPaths: pluginPaths, timeout: timeout)
        default: throw QuacError("--isolation: expected process or none, got \"\(isolation)\"")
        }
    }
}

/// Writes machine output as JSON on stdout.
func printJSON(_ value: JSONValue) {
    print(value.serialized(pretty: true))
}
