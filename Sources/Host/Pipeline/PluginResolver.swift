import Foundation

/// One plugin use, resolved once before any code is loaded: its manifest, and its parameters validated
/// against the manifest's JSON Schema, every default filled in from the schema and `"format": "path"`
/// values made absolute. Stages, fingerprints, run.json and the plugin's `create` all read this value;
/// nothing validates or fills the parameters again.
public struct ResolvedPlugin: Sendable {
    public let manifest: PluginManifest
    /// The name the run knows it by (file names in the results store, messages).
    public let name: String
    /// Exactly what `create` receives.
    public let parameters: JSONValue
    /// Where its parameters were written ("<file>: /attributors/0/params"), for messages.
    public let source: String

    public var id: String { manifest.id }
    public var kind: PluginKind { manifest.kind }

    /// Resolves `params` for `manifest` outside a pipeline (the conformance check, tests): relative
    /// paths against `base`; a violation of the schema is reported as "<paramsSource><pointer>: why".
    public static func resolve(_ manifest: PluginManifest, params: JSONValue, name: String? = nil, base: URL,
                               paramsSource: String? = nil) throws -> ResolvedPlugin {
        let where_ = paramsSource ?? "parameters of \(manifest.id)"
        let schema = try manifest.parameterSchema()
        if let v = schema.validate(params).first { throw QuacError("\(where_)\(v.pointer): \(v.message)") }
        let filled = PathParameters.resolve(schema.applyingDefaults(to: params), schema: manifest.parameters, base: base)
        return ResolvedPlugin(manifest: manifest, name: name ?? manifest.id, parameters: filled, source: where_)
    }
}

/// Finds and resolves the plugin uses of a pipeline manifest against a registry.
public struct PluginResolver {
    public let registry: PluginRegistry
    public let manifest: PipelineManifest

    public init(registry: PluginRegistry, manifest: PipelineManifest) {
        self.registry = registry
        self.manifest = manifest
    }

    /// The use's plugin, checked to be of `kind`, with its parameters resolved.
    public func resolve(_ use: PipelineManifest.PluginUse, kind: PluginKind) throws -> ResolvedPlugin {
        let m: PluginManifest
        do { m = try registry.manifest(id: use.plugin) } catch let e as QuacError {
            throw QuacError.at(manifest.file, use.pointer + "/plugin", e.message)
        }
        guard m.kind == kind else {
            throw QuacError.at(manifest.file, use.pointer + "/plugin", "\(use.plugin) is a \(m.kind.rawValue), expected a \(kind.rawValue)")
        }
        return try ResolvedPlugin.resolve(m, params: use.params, name: use.name, base: manifest.directory,
                                          paramsSource: "\(manifest.file): \(use.pointer)/params")
    }
}
