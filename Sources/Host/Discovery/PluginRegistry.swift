import Foundation

/// The plugins a host can see: every manifest in the search path, read without loading any code.
public struct PluginRegistry: Sendable {
    /// One manifest file found on the search path.
    public struct Entry: Sendable {
        public let url: URL
        public let manifest: PluginManifest?
        /// Why the plugin cannot be used (bad manifest, missing library, shadowed id), or nil.
        public let problem: String?
        public var isUsable: Bool { manifest != nil && problem == nil }

        public init(url: URL, manifest: PluginManifest?, problem: String?) {
            self.url = url; self.manifest = manifest; self.problem = problem
        }
    }

    public let searchPath: [URL]
    public let entries: [Entry]

    /// The search path, in priority order: folders given explicitly (a pipeline's plugin_paths, the
    /// CLI's --plugin-path), ./plugins, $QUAC_PLUGIN_PATH (colon-separated), the user's folder
    /// ($XDG_DATA_HOME/quac-host/plugins or ~/.local/share/quac-host/plugins), and last the built-in
    /// plugins that come with quac-host (see `HostResources`), so a user's manifest can replace one.
    public static func defaultSearchPath(extra: [URL] = []) -> [URL] {
        let env = ProcessInfo.processInfo.environment
        var dirs = extra
        dirs.append(URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("plugins"))
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

    public init(searchPath: [URL] = PluginRegistry.defaultSearchPath()) {
        self.searchPath = searchPath
        var entries: [Entry] = []
        var owner: [String: URL] = [:]
        var contents: [String: Data] = [:]
        for dir in searchPath {
            // Listed through the real path: Foundation does not list a folder through a symbolic link.
            let files = (try? FileManager.default.contentsOfDirectory(at: dir.resolvingSymlinksInPath(), includingPropertiesForKeys: nil)) ?? []
            for url in files.filter({ $0.pathExtension == "json" }).sorted(by: { $0.lastPathComponent < $1.lastPathComponent }) {
                // The same manifest twice (./plugins of a checkout and the built-in copy beside the
                // executable) is one plugin, not a shadowed one.
                let data = try? Data(contentsOf: url)
                let entry = PluginRegistry.entry(for: url, owner: &owner)
                if let id = entry.manifest?.id, entry.problem?.hasPrefix("shadowed") == true, let data, contents[id] == data { continue }
                if let id = entry.manifest?.id, contents[id] == nil { contents[id] = data }
                entries.append(entry)
            }
        }
        self.entries = entries
    }

    private static func entry(for url: URL, owner: inout [String: URL]) -> Entry {
        let manifest: PluginManifest
        do { manifest = try PluginManifest.load(url) } catch {
            return Entry(url: url, manifest: nil, problem: "\(error)")
        }
        if let first = owner[manifest.id] {
            return Entry(url: url, manifest: manifest, problem: "shadowed by \(first.path), which has the same id")
        }
        owner[manifest.id] = url
        if manifest.resolvedLibraryURL() == nil {
            return Entry(url: url, manifest: manifest,
                         problem: "library \"\(manifest.library)\" not found (relative to \(url.deletingLastPathComponent().path)\(manifest.library.contains("/") ? "" : " or next to quac-host"))")
        }
        return Entry(url: url, manifest: manifest, problem: nil)
    }

    /// The usable manifest with this id, or an error saying why there is none.
    public func manifest(id: String) throws -> PluginManifest {
        if let e = entries.first(where: { $0.manifest?.id == id && $0.problem?.hasPrefix("shadowed") != true }) {
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
