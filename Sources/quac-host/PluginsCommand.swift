import ArgumentParser
import Foundation
import QuacHost

struct PluginsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugins", abstract: "List, describe and check plugins.",
        subcommands: [List.self, Info.self, Check.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every plugin manifest on the search path (no plugin code is loaded).")
        @OptionGroup var paths: PluginPathOptions
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            try QuacHostCommand.guarded {
                let registry = paths.registry
                if json {
                    printJSON(["search_path": .array(registry.searchPath.map { .string($0.path) }),
                               "plugins": .array(registry.entries.map(entryJSON))])
                    return
                }
                if registry.entries.isEmpty {
                    print("no plugin manifests found in: \(registry.searchPath.map(\.path).joined(separator: ", "))")
                    return
                }
                let rows = registry.entries.map { e -> [String] in
                    [e.manifest?.id ?? e.url.lastPathComponent, e.manifest?.kind.rawValue ?? "?", e.manifest?.version ?? "?",
                     e.problem.map { "broken: \($0)" } ?? "ok"]
                }
                let widths = (0..<3).map { c in rows.map { $0[c].count }.max() ?? 0 }
                for r in rows {
                    print((0..<3).map { r[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ") + "  " + r[3])
                }
            }
        }
    }

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Describe one plugin: its manifest and parameters (no code is loaded).")
        @Argument(help: "Plugin id, e.g. org.quac.saliency.") var id: String
        @OptionGroup var paths: PluginPathOptions
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            try QuacHostCommand.guarded {
                let m = try paths.registry.manifest(id: id)
                if json {
                    printJSON(entryJSON(PluginRegistry.Entry(url: m.url, manifest: m, problem: nil)))
                    return
                }
                print("\(m.id) \(m.version): \(m.name) (\(m.kind.rawValue))")
                if !m.description.isEmpty { print(m.description) }
                print("manifest: \(m.url.path)")
                print("library:  \(m.resolvedLibraryURL()?.path ?? "\(m.library) (not found)")  ABI \(m.abiVersion)")
                if let b = m.bridge { print("run by:   \(b.plugin) with \(JSONValue.object(b.params).serialized())") }
                if !m.requires.isEmpty { print("requires: \(m.requires.map(\.rawValue).joined(separator: ", "))") }
                if let props = m.parameters["properties"]?.objectValue, !props.isEmpty {
                    print("parameters:")
                    for (name, schema) in props {
                        let type = schema["type"]?.stringValue ?? (schema["anyOf"] != nil ? "one of several" : "any")
                        let def = schema["default"].map { " = \($0.serialized())" } ?? ""
                        print("  \(name) (\(type))\(def)  \(schema["description"]?.stringValue ?? "")")
                    }
                }
            }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Conformance check: load, negotiate, create/destroy, call every function with good and bad input.",
            discussion: """
            TARGET is a plugin id, a plugin manifest (.json), or a plugin library (.so; all its plugins are checked, \
            each needing a manifest on the search path, beside the library, in its parent folder or, for a library Cargo built, in the crate above target/). Each plugin is checked in a child \
            process, so a plugin that crashes is reported as a failed check. Prints one line per check; exit code 1 \
            if any check fails.
            """)
        @Argument(help: "Plugin id, manifest path or library path.") var target: String
        @Option(help: "Classifier plugin used by the checks of attributors, scorers and converters (default: the one the plugin's manifest names under \"check\", else org.quac.mlp-classifier); sized from the plugin's own input_shape, or image_size and input_channels, and num_classes parameters when it has them.")
        var classifier: String?
        @Option(help: "JSON parameters for the plugin under test (default: the manifest's \"check\" parameters, or {}).") var params: String?
        @OptionGroup var paths: PluginPathOptions
        @Option(help: "Seconds each check may take before the plugin counts as hung and its process is killed.")
        var timeout: Double = 300
        @Flag(help: "Print JSON.") var json = false
        @Flag(name: .customLong("in-process"), help: .hidden) var inProcess = false
        @Flag(name: .customLong("jsonl"), help: .hidden) var jsonLines = false

        func run() throws {
            var failed = false
            if inProcess { IsolatedCheck.watchParent() }
            try QuacHostCommand.guarded {
                guard timeout > 0, timeout.isFinite else { throw QuacError("--timeout: must be a positive number of seconds, got \(timeout)") }
                let registry = paths.registry
                let manifests = try ConformanceChecker.manifests(for: target, registry: registry)
                var given: JSONValue?
                if let params {
                    do { given = try JSONParser.parse(params) } catch { throw QuacError("--params: malformed JSON at \(error)") }
                }
                var reports: [JSONValue] = []
                for m in manifests {
                    let show: (ConformanceChecker.Result) -> Void = { r in
                        if jsonLines { print(resultJSON(r).serialized()); fflush(stdout) }
                        else if !json { print("\(r.passed ? "PASS" : "FAIL")  \(m.id)  \(r.name)\(r.detail.isEmpty ? "" : ": \(r.detail)")"); fflush(stdout) }
                    }
                    let results = inProcess
                        ? ConformanceChecker(manifest: m, parameters: given, registry: registry, classifierID: classifier).run(onResult: show)
                        : try IsolatedCheck.run(manifest: m, options: childOptions(), timeout: timeout, onResult: show)
                    if jsonLines { print(IsolatedCheck.doneLine); fflush(stdout) }
                    if results.contains(where: { !$0.passed }) { failed = true }
                    reports.append(["plugin": .string(m.id), "passed": .bool(!results.contains { !$0.passed }),
                                    "checks": .array(results.map(resultJSON))])
                    if !json && !jsonLines {
                        let n = results.filter(\.passed).count
                        print("\(m.id): \(n) passed, \(results.count - n) failed")
                    }
                }
                if json { printJSON(["plugins": .array(reports)]) }
            }
            if failed { throw ExitCode(1) }
        }

        /// The options a child process needs to check one manifest the same way.
        func childOptions() -> [String] {
            (classifier.map { ["--classifier", $0] } ?? []) + (params.map { ["--params", $0] } ?? []) + paths.pluginPaths.flatMap { ["--plugin-path", $0] }
        }
    }
}

func resultJSON(_ r: ConformanceChecker.Result) -> JSONValue {
    ["name": .string(r.name), "passed": .bool(r.passed), "detail": .string(r.detail)]
}

func entryJSON(_ e: PluginRegistry.Entry) -> JSONValue {
    var o = JSONObject()
    o["manifest"] = .string(e.url.path)
    o["status"] = .string(e.problem == nil ? "ok" : "broken")
    if let p = e.problem { o["problem"] = .string(p) }
    if let m = e.manifest {
        o["id"] = .string(m.id)
        o["name"] = .string(m.name)
        o["version"] = .string(m.version)
        o["kind"] = .string(m.kind.rawValue)
        o["abi_version"] = .string(m.abiVersion)
        o["library"] = .string(m.resolvedLibraryURL()?.path ?? m.library)
        o["requires"] = .array(m.requires.map { .string($0.rawValue) })
        o["parameters"] = m.parameters
        if let b = m.bridge { o["bridge"] = ["plugin": .string(b.plugin), "params": .object(b.params)] }
    }
    return .object(o)
}
