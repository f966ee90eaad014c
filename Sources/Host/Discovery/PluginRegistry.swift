import Foundation

/// The plugins a host can see: every manifest in the search path, read without loading any code.
public struct PluginRegistry: Sendable {
    /// One manifest file found on the search path.
    public struct Entry: Sendable {
        public let url: URL
        public let manifest: PluginManifest?
        /// Why the plugin cannot be used (bad manifest, missing library, duplicate id, world-writable), or nil.
        public let problem: String?
        public var isUsable: Bool { manifest != nil && problem == nil }

        public init(url: URL, manifest: PluginManifest?, problem: String?) {
            self.url = url; self.manifest = manifest; self.problem = problem
        }
    }

    public let searchPath: [URL]
    public let entries: [Entry]

    /// The search path, in order: folders given explicitly (a pipeline's plugin_paths, the CLI's
    /// --plugin-path), $QUAC_PLUGIN_PATH (colon-separated), the user's folder
    /// ($XDG_DATA_HOME/quac-host/plugins or ~/.local/share/quac-host/plugins), and last the built-in
    /// plugins that come with quac-host (see `HostResources`). The working directory is not searched
    /// unless named (`--plugin-path .`): code must not run because of where a command was started.
    public static func defaultSearchPath(extra: [URL] = []) -> [URL] {
        let env = ProcessInfo.processInfo.environment
        var dirs = extra
        if let p = env["QUAC_PLUGIN_PATH"] {
            dirs += p.split(separator: ":").map { URL(fileURLWithPath: String($0)) }
        }
        let dataHome = env["XDG_DATA_HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".local/share")
        dirs.append(dataHome.appendingPathComponent("quac-host/plugins"))
        dirs.append(HostResources.builtinPlugins)
        var seen = Set<String>()
        return dirs.map(\.standardizedFileURL).filter { seen.insert($0.resolvingSymlinksInPath().path).inserted }
    }

    /// Why an entry is not the plugin of its id: another manifest earlier on the path has that id.
    static let duplicatePrefix = "duplicate id"
    /// The environment variable that lets world-writable plugin files load (see `writableProblem`).
    public static let allowWritableVariable = "QUAC_ALLOW_WRITABLE_PLUGINS"
    public static var allowWritableFromEnvironment: Bool { ProcessInfo.processInfo.environment[allowWritableVariable] == "1" }

    public init(searchPath: [URL] = PluginRegistry.defaultSearchPath(), allowWritable: Bool = PluginRegistry.allowWritableFromEnvironment) {
        self.searchPath = searchPath
        var entries: [Entry] = []
        var owner: [String: URL] = [:]
        var contents: [String: (Data?, String?)] = [:]
        for dir in searchPath {
            // Listed through the real path: Foundation does not list a folder through a symbolic link.
            let files = (try? FileManager.default.contentsOfDirectory(at: dir.resolvingSymlinksInPath(), includingPropertiesForKeys: nil)) ?? []
            for url in files.filter({ $0.pathExtension == "json" }).sorted(by: { $0.lastPathComponent < $1.lastPathComponent }) {
                // The same manifest twice, naming the same library (a checkout's plugins/ and the
                // built-in copy beside the executable), is one plugin, not a duplicate.
                let data = try? Data(contentsOf: url)
                let entry = PluginRegistry.entry(for: url, owner: &owner, allowWritable: allowWritable)
                let library = entry.manifest?.resolvedLibraryURL()?.resolvingSymlinksInPath().path
                if let id = entry.manifest?.id, entry.problem?.hasPrefix(Self.duplicatePrefix) == true, let data,
                   contents[id]?.0 == data, contents[id]?.1 == library { continue }
                if let id = entry.manifest?.id, contents[id] == nil { contents[id] = (data, library) }
                entries.append(entry)
            }
        }
        self.entries = entries
    }

    private static func entry(for url: URL, owner: inout [String: URL], allowWritable: Bool) -> Entry {
        let manifest: PluginManifest
        do { manifest = try PluginManifest.load(url) } catch {
            return Entry(url: url, manifest: nil, problem: "\(error)")
        }
        if let first = owner[manifest.id] {
            return Entry(url: url, manifest: manifest, problem: "\(duplicatePrefix): \(first.path) has the same id (using it is an error until one is removed)")
        }
        owner[manifest.id] = url
        guard let library = manifest.resolvedLibraryURL() else {
            return Entry(url: url, manifest: manifest,
                         problem: "library \"\(manifest.library)\" not found (relative to \(url.deletingLastPathComponent().path)\(manifest.library.contains("/") ? "" : " or next to quac-host"))")
        }
        if !allowWritable, let problem = writableProblem([url, library]) {
            return Entry(url: url, manifest: manifest, problem: problem)
        }
        return Entry(url: url, manifest: manifest, problem: nil)
    }

    /// A manifest or library that anyone on the machine may change, or that sits in a folder where
    /// anyone may replace it, runs whatever its last writer wanted: such plugins are refused unless
    /// $QUAC_ALLOW_WRITABLE_PLUGINS is 1 (the CLI's --allow-writable-plugins).
    static func writableProblem(_ files: [URL]) -> String? {
        for file in files {
            let real = file.resolvingSymlinksInPath()
            for path in [real.path, real.deletingLastPathComponent().path] {
                var st = stat()
                guard stat(path, &st) == 0, st.st_mode & 0o002 != 0 else { continue }
                return "\(path) is world-writable (anyone could change this plugin's code); run chmod o-w \(path), or allow it with --allow-writable-plugins or \(allowWritableVariable)=1"
            }
        }
        return nil
    }

    /// The usable manifest with this id, or an error saying why there is none.
    public func manifest(id: String) throws -> PluginManifest {
        let same = entries.filter { $0.manifest?.id == id }
        if same.count > 1 {
            throw QuacError("plugin id \(id) is defined twice, by \(same[0].url.path) and \(same[1].url.path): remove one, or give one another id")
        }
        if let e = same.first {
            if let problem = e.problem { throw QuacError("plugin \(id) is broken: \(problem)") }
            return e.manifest!
        }
        let known = entries.compactMap(\.manifest?.id)
        let close = known.filter { $0.hasSuffix("." + (id.split(separator: ".").last.map(String.init) ?? id)) || $0.contains(id) }
        var msg = "unknown plugin id \"\(id)\" (searched \(searchPath.map(\.path).joined(separator: ", ")))"
        if let guess = close.first { msg += "; did you mean \"\(guess)\"?" }
        else { msg += "; to add a folder of plugin manifests, pass --plugin-path DIR, list it in the pipeline's \"plugin_paths\", or add it to QUAC_PLUGIN_PATH" }
        throw QuacError(msg)
    }
}
