import Foundation

/// A pipeline manifest, read and checked: data, classifier, converter, attributors, scorers, output.
/// Relative paths are resolved against the manifest's folder.
public struct PipelineManifest {
    /// One plugin entry: where it is in the manifest (for messages), which plugin, its name and params.
    public struct PluginUse {
        public let pointer: String
        public let plugin: String
        public let name: String
        public let params: JSONValue
        /// The "train" block, when the plugin is to be trained before the run.
        public let train: JSONValue?
        /// Seconds a worker running this plugin may go without finishing a batch (process isolation).
        public var timeout: Double? = nil
    }

    /// A plain C function used as a forward-only classifier through libffi.
    public struct ForeignClassifierSpec {
        public let pointer: String
        public let library: String
        public let symbol: String
        public let signature: String
        public let numClasses: Int
        public let inputShape: [Int]
    }

    public enum ClassifierUse {
        case plugin(PluginUse)
        case foreign(ForeignClassifierSpec)
    }

    public let url: URL
    public let raw: JSONValue
    public let name: String
    public let output: URL
    public let seed: UInt64
    public let batchSize: Int
    public let pluginPaths: [URL]
    public let data: DataSpec
    public let classifier: ClassifierUse?
    /// A classifier plugin whose activated outputs are the samples' concepts.
    public let conceptModel: PluginUse?
    /// "sigmoid" or "softmax": how the concept model's outputs become concepts in [0, 1].
    public let conceptActivation: String
    public let conceptNames: [String]?
    public let converter: PluginUse?
    public let attributors: [PluginUse]
    public let scorers: [PluginUse]
    /// Convergence studies of attributors over one of their integer parameters.
    public let convergence: [ConvergenceSpec]

    /// One convergence study: `method` (an attributor's name) rerun with `parameter` = each of `values`.
    public struct ConvergenceSpec {
        public let pointer: String
        public let method: String
        public let parameter: String
        public let values: [Int]
    }

    public var file: String { url.path }
    /// Makes a manifest-relative path absolute.
    public let resolve: (String) -> URL
    public var directory: URL { url.deletingLastPathComponent() }

    public static func load(_ url: URL) throws -> PipelineManifest {
        let value = try ManifestFile.readJSON(url)
        let violations = ManifestSchemas.pipelineManifest.validate(value)
        if let v = violations.first { throw QuacError.at(url.path, v.pointer, v.message) }
        return try PipelineManifest(url: url, value: ManifestSchemas.pipelineManifest.applyingDefaults(to: value))
    }

    init(url: URL, value: JSONValue) throws {
        self.url = url
        raw = value
        let file = url.path
        let dir = url.deletingLastPathComponent()
        func resolve(_ p: String) -> URL { p.hasPrefix("/") ? URL(fileURLWithPath: p) : dir.appendingPathComponent(p).standardizedFileURL }
        name = value["name"]?.stringValue ?? "run"
        output = resolve(value["output"]?.stringValue ?? "runs/\(name)")
        seed = UInt64(value["seed"]?.intValue ?? 0)
        batchSize = Int(value["batch_size"]?.intValue ?? 16)
        pluginPaths = (value["plugin_paths"]?.arrayValue ?? []).compactMap(\.stringValue).map(resolve)
        data = try DataSpec(value["data"] ?? .null, file: file, pointer: "/data", resolve: resolve)
        self.resolve = resolve

        func use(_ v: JSONValue, _ pointer: String, defaultName: Bool) -> PluginUse {
            let plugin = v["plugin"]?.stringValue ?? ""
            let short = plugin.split(separator: ".").last.map(String.init) ?? plugin
            return PluginUse(pointer: pointer, plugin: plugin, name: v["name"]?.stringValue ?? short,
                             params: v["params"] ?? .object(JSONObject()), train: v["train"], timeout: v["timeout"]?.doubleValue)
        }
        if let c = value["classifier"] {
            if let f = c["foreign"] {
                classifier = .foreign(ForeignClassifierSpec(
                    pointer: "/classifier/foreign", library: resolve(f["library"]?.stringValue ?? "").path,
                    symbol: f["symbol"]?.stringValue ?? "",
                    // The documented default shape of a C model's entry point.
                    signature: f["signature"]?.stringValue ?? "void \(f["symbol"]?.stringValue ?? "predict")(const float *x, int64_t n, float *logits)",
                    numClasses: Int(f["num_classes"]?.intValue ?? 0),
                    inputShape: (f["input_shape"]?.arrayValue ?? []).compactMap { $0.intValue.map(Int.init) }))
            } else {
                classifier = .plugin(use(c, "/classifier", defaultName: true))
            }
        } else { classifier = nil }
        conceptModel = value["concept_model"].map { use($0, "/concept_model", defaultName: true) }
        conceptActivation = value["concept_model"]?["activation"]?.stringValue ?? "sigmoid"
        conceptNames = value["concept_model"]?["names"]?.arrayValue?.compactMap(\.stringValue)
        if conceptModel != nil, data.concepts != nil {
            throw QuacError.at(file, "/concept_model", "the data has concepts already (/data/concepts): give concepts in the data or a concept_model, not both")
        }
        converter = value["converter"].map { use($0, "/converter", defaultName: true) }
        attributors = (value["attributors"]?.arrayValue ?? []).enumerated().map { use($1, "/attributors/\($0)", defaultName: true) }
        scorers = (value["scorers"]?.arrayValue ?? []).enumerated().map { use($1, "/scorers/\($0)", defaultName: true) }
        convergence = (value["convergence"]?.arrayValue ?? []).enumerated().map { i, c in
            ConvergenceSpec(pointer: "/convergence/\(i)", method: c["method"]?.stringValue ?? "", parameter: c["parameter"]?.stringValue ?? "",
                            values: (c["values"]?.arrayValue ?? []).compactMap { $0.intValue.map(Int.init) })
        }

        // Names become file names in the results store: they must be unique per stage.
        for (list, what) in [(attributors, "attributor"), (scorers, "scorer")] {
            var seen: [String: String] = [:]
            for u in list {
                if let first = seen[u.name] {
                    throw QuacError.at(file, u.pointer + "/name", "\(what) name \"\(u.name)\" is already used by \(first); give each a distinct \"name\"")
                }
                seen[u.name] = u.pointer
            }
        }
    }
}

/// The JSON Schemas of the two manifest kinds, shipped as resources (and in schemas/ for editors).
public enum ManifestSchemas {
    public static let pluginManifest = load("plugin-manifest.schema.json")
    public static let pipelineManifest = load("pipeline-manifest.schema.json")

    private static func load(_ name: String) -> JSONSchema {
        let url = HostResources.schemas.appendingPathComponent(name)
        guard let data = try? Data(contentsOf: url),
              let value = try? JSONParser.parse([UInt8](data)),
              let schema = try? JSONSchema(value, source: name)
        else { fatalError("the host's bundled schema \(name) is missing or invalid: the build is broken") }
        return schema
    }
}
