import Foundation
import QuacPluginAPI

/// A plugin's manifest: everything the host knows about a plugin without loading its code.
public struct PluginManifest: Sendable {
    public let url: URL
    public let id: String
    public let name: String
    public let version: String
    public let kind: PluginKind
    public let abiMajor: UInt32
    public let abiMinor: UInt32
    /// As written in the manifest.
    public let library: String
    public let sha256: String?
    public let description: String
    public let requires: [PluginRequirement]
    public let trainable: Bool
    /// What an attributor's maps are over, and what a scorer scores: the inputs (the default) or the
    /// concepts ("explains": "concepts", "scores": "concepts"). Scorers only score methods of their kind.
    public enum Domain: String, Sendable { case inputs, concepts }
    public let explains: Domain
    public let scores: Domain
    /// Scorers: whether a higher score is better (the default) or a lower one (a rule's literal count).
    public let higherIsBetter: Bool
    /// JSON Schema of the plugin's parameters.
    public let parameters: JSONValue
    /// Parameters `plugins check` uses when it is given none (the manifest's "check"."params").
    public let checkParameters: JSONValue?
    /// The helper classifier `plugins check` runs this plugin with (the manifest's "check"."classifier":
    /// plugin id and parameters), when it is not the default one.
    public let checkClassifier: (plugin: String, params: JSONValue)?
    /// For a scorer of another method's JSON: the JSON `plugins check` hands it as that method's
    /// (arrays with 4 entries are per sample of the checker's 4-sample batch).
    public let checkMethodJSON: JSONObject?

    /// A method another plugin of the library runs (a Python method through org.quac.python): the
    /// library's plugin `plugin` is created in place of `id`, with `params` (paths made absolute
    /// against the manifest's folder) added to the use's parameters.
    public struct Bridge: Sendable {
        public let plugin: String
        public let params: JSONObject
        /// The regular files `params` names through its "paths" keys (a Python method's module).
        public let files: [String]
    }
    public let bridge: Bridge?

    /// The library's plugin this manifest creates: its own id, or the bridged plugin's.
    public var descriptorID: String { bridge?.plugin ?? id }

    public var abiVersion: String { "\(abiMajor).\(abiMinor)" }

    /// Reads and validates a manifest. Errors name the file and the JSON pointer.
    public static func load(_ url: URL) throws -> PluginManifest {
        let file = url.path
        let value = try ManifestFile.readJSON(url)
        for v in ManifestSchemas.pluginManifest.validate(value) {
            throw QuacError.at(file, v.pointer, v.message)
        }
        return try PluginManifest(url: url, value: value)
    }

    init(url: URL, value: JSONValue) throws {
        let file = url.path
        guard let o = value.objectValue else { throw QuacError.at(file, "", "expected a JSON object") }
        func string(_ key: String, required: Bool = true) throws -> String? {
            guard let v = o[key] else {
                if required { throw QuacError.at(file, "", "missing required property \"\(key)\"") }
                return nil
            }
            guard let s = v.stringValue else { throw QuacError.at(file, "/\(key)", "expected string, found \(v.typeName)") }
            return s
        }
        self.url = url
        id = try string("id")!
        name = try string("name")!
        version = try string("version")!
        let kindText = try string("kind")!
        guard let kind = PluginKind(rawValue: kindText) else {
            throw QuacError.at(file, "/kind", "must be one of classifier, converter, attributor, scorer, found \"\(kindText)\"")
        }
        self.kind = kind
        let abi = try string("abi_version")!
        let parts = abi.split(separator: ".").compactMap { UInt32($0) }
        guard parts.count == 2 else { throw QuacError.at(file, "/abi_version", "expected \"MAJOR.MINOR\", found \"\(abi)\"") }
        abiMajor = parts[0]
        abiMinor = parts[1]
        library = try string("library")!
        sha256 = try string("sha256", required: false)?.lowercased()
        description = try string("description", required: false) ?? ""
        var reqs: [PluginRequirement] = []
        for (i, r) in (o["requires"]?.arrayValue ?? []).enumerated() {
            guard let s = r.stringValue, let req = PluginRequirement(rawValue: s) else {
                throw QuacError.at(file, "/requires/\(i)", "unknown requirement \(r.serialized()) (known: \(PluginRequirement.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            reqs.append(req)
        }
        requires = reqs
        trainable = o["trainable"]?.boolValue ?? false
        explains = o["explains"]?.stringValue.flatMap(Domain.init) ?? .inputs
        scores = o["scores"]?.stringValue.flatMap(Domain.init) ?? .inputs
        higherIsBetter = o["better"]?.stringValue != "lower"
        checkParameters = o["check"]?["params"]
        checkMethodJSON = o["check"]?["method_json"]?.objectValue
        checkClassifier = o["check"]?["classifier"]?["plugin"]?.stringValue.map { ($0, o["check"]?["classifier"]?["params"] ?? .object(JSONObject())) }
        bridge = try Self.bridge(o["bridge"], folder: url.deletingLastPathComponent(), file: file)
        parameters = o["parameters"] ?? ["type": "object"]
        do {
            _ = try JSONSchema(parameters, source: "\(file)#/parameters")
        } catch {
            throw QuacError.at(file, "/parameters", "not a usable JSON Schema: \(error)")
        }
    }

    /// The "bridge" block (already checked against the manifest schema), its "paths" made absolute.
    static func bridge(_ value: JSONValue?, folder: URL, file: String) throws -> Bridge? {
        guard let b = value?.objectValue, let plugin = b["plugin"]?.stringValue else { return nil }
        var params = b["params"]?.objectValue ?? JSONObject()
        var files: [String] = []
        func absolute(_ s: String) -> String {
            let path = s.hasPrefix("/") ? s : folder.appendingPathComponent(s).standardizedFileURL.path
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue { files.append(path) }
            return path
        }
        for case .string(let key) in b["paths"]?.arrayValue ?? [] {
            switch params[key] {
            case .string(let s)?: params[key] = .string(absolute(s))
            case .array(let items)?: params[key] = .array(items.map { $0.stringValue.map { .string(absolute($0)) } ?? $0 })
            case nil: throw QuacError.at(file, "/bridge/paths", "\"\(key)\" is not a key of /bridge/params")
            default: throw QuacError.at(file, "/bridge/params/\(key)", "a path: expected a string or an array of strings")
            }
        }
        return Bridge(plugin: plugin, params: params, files: files.sorted())
    }

    /// Where the library is: relative to the manifest's folder, or, for a bare file name not found
    /// there, in the folders of `LibrarySearch` (next to the executable, where SwiftPM puts the
    /// built-in bundles; an install's lib/quac-host).
    public func resolvedLibraryURL() -> URL? {
        let dir = url.deletingLastPathComponent()
        let candidate = library.hasPrefix("/") ? URL(fileURLWithPath: library) : dir.appendingPathComponent(library)
        if FileManager.default.fileExists(atPath: candidate.path) { return candidate.standardizedFileURL }
        if !library.contains("/") {
            for d in LibrarySearch.fallbackDirectories {
                let u = d.appendingPathComponent(library)
                if FileManager.default.fileExists(atPath: u.path) { return u.standardizedFileURL }
            }
        }
        return nil
    }

    /// The parameters' schema, compiled.
    public func parameterSchema() throws -> JSONSchema {
        try JSONSchema(parameters, source: "\(url.path)#/parameters")
    }
}

/// Folders searched for a library named by a bare file name.
public enum LibrarySearch {
    /// $QUAC_PLUGIN_LIB_PATH (colon-separated), the folder of the running executable (a build tree),
    /// then `<prefix>/lib/quac-host` beside an installed `<prefix>/bin/quac-host`.
    public static var fallbackDirectories: [URL] {
        var dirs: [URL] = []
        // getenv, not ProcessInfo's environment: that copies every variable, once per manifest here.
        if let env = getenv("QUAC_PLUGIN_LIB_PATH").map({ String(cString: $0) }) {
            dirs += env.split(separator: ":").map { URL(fileURLWithPath: String($0)) }
        }
        if let exe = executableDirectory {
            dirs.append(exe)
            dirs.append(exe.deletingLastPathComponent().appendingPathComponent("lib/quac-host"))
        }
        return dirs
    }

    /// Found once: it does not change while the process runs.
    public static let executableDirectory: URL? = {
        guard let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else {
            return Bundle.main.executableURL?.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: path).deletingLastPathComponent()
    }()
}

/// Reading JSON files with errors that say which file and where.
public enum ManifestFile {
    public static func readJSON(_ url: URL) throws -> JSONValue {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw QuacError("\(url.path): cannot read: \((error as NSError).localizedDescription)")
        }
        do { return try JSONParser.parse([UInt8](data)) } catch let e as JSONParseError {
            throw QuacError("\(url.path): malformed JSON at \(e)")
        }
    }
}
