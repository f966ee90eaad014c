import Foundation

/// Attributors built on other attributors' maps (a SMAT-style explainer mixes them) ask for them with a
/// parameter whose schema says `"format": "attributors"`: a list of the run's attributor names. The
/// host computes those attributors first and hands their raw maps to the plugin in every batch
/// (quac_batch.maps), and, for training, as the fields "maps.<name>" of the training data.
enum MapSources {
    /// The attributor names a plugin's parameters ask maps of, in order, each once.
    static func names(_ manifest: PluginManifest, _ parameters: JSONValue) -> [String] {
        guard let properties = manifest.parameters["properties"]?.objectValue else { return [] }
        var out: [String] = []
        for (key, schema) in properties where schema["format"]?.stringValue == "attributors" {
            for v in parameters[key]?.arrayValue ?? [] {
                if let name = v.stringValue, !out.contains(name) { out.append(name) }
            }
        }
        return out
    }

    /// The parameter of `manifest` that names attributors, for messages.
    static func parameter(_ manifest: PluginManifest) -> String {
        (manifest.parameters["properties"]?.objectValue ?? JSONObject()).first { $0.value["format"]?.stringValue == "attributors" }?.key ?? "?"
    }

    /// The training data field that holds attributor `name`'s maps.
    static func field(_ name: String) -> String { "maps.\(name)" }
}

extension PipelineRunner {
    /// Every name a plugin asks maps of is another attributor of the run; attributors do not feed on
    /// each other's maps in a circle; an attributor whose maps go into training data takes no maps
    /// itself (training data is computed one level deep).
    func checkMapSources(_ resolved: [String: ResolvedPlugin]) throws {
        // Only attributors' batches carry maps.
        for (use, kind) in manifest.pluginUses where kind != .attributor {
            guard let r = resolved[use.pointer], !MapSources.names(r.manifest, r.parameters).isEmpty else { continue }
            throw QuacError.at(manifest.file, use.pointer + "/params/" + MapSources.parameter(r.manifest), "only attributors receive other attributors' maps; this \(kind.rawValue) cannot")
        }
        var sources: [String: [String]] = [:]
        for use in manifest.attributors {
            let r = resolved[use.pointer]!
            let names = MapSources.names(r.manifest, r.parameters)
            let pointer = use.pointer + "/params/" + MapSources.parameter(r.manifest)
            for name in names {
                guard manifest.attributors.contains(where: { $0.name == name }) else {
                    let all = manifest.attributors.map(\.name).joined(separator: ", ")
                    throw QuacError.at(manifest.file, pointer, "no attributor of this pipeline is named \"\(name)\" (attributors: \(all))")
                }
                if name == use.name { throw QuacError.at(manifest.file, pointer, "\"\(name)\" cannot take its own maps") }
                let source = manifest.attributors.first { $0.name == name }!
                if resolved[source.pointer]!.manifest.explains == .concepts {
                    throw QuacError.at(manifest.file, pointer, "\"\(name)\" explains concepts; only maps over the inputs can be taken")
                }
            }
            sources[use.name] = names
        }
        // A circle of attributors each waiting for the next one's maps never starts.
        var state: [String: Int] = [:]   // 1: on the current path, 2: done
        func visit(_ name: String, _ path: [String]) throws {
            if state[name] == 2 { return }
            if state[name] == 1 {
                let use = manifest.attributors.first { $0.name == path.first! }!
                throw QuacError.at(manifest.file, use.pointer + "/params", "attributors take each other's maps in a circle (\((path + [name]).joined(separator: " -> ")))")
            }
            state[name] = 1
            for s in sources[name] ?? [] { try visit(s, path + [name]) }
            state[name] = 2
        }
        for use in manifest.attributors { try visit(use.name, []) }
        for use in manifest.attributors + manifest.scorers where use.train != nil {
            let r = resolved[use.pointer]!
            for name in MapSources.names(r.manifest, r.parameters) where !(sources[name] ?? []).isEmpty {
                throw QuacError.at(manifest.file, use.pointer + "/train", "the training data gets the maps of \"\(name)\", which takes other attributors' maps itself; training data is computed one level deep")
            }
        }
        for use in manifest.attributors + manifest.scorers {
            guard let name = use.train?["targets_from"]?.stringValue, !(sources[name] ?? []).isEmpty else { continue }
            throw QuacError.at(manifest.file, use.pointer + "/train/targets_from", "\"\(name)\" takes other attributors' maps; training data is computed one level deep")
        }
        for scorer in manifest.scorers where resolved[scorer.pointer]!.manifest.requires.contains(.methodRerun) {
            guard let method = manifest.attributors.first(where: { !(sources[$0.name] ?? []).isEmpty }) else { continue }
            throw QuacError.at(manifest.file, scorer.pointer + "/plugin", "\(scorer.plugin) re-runs the methods it scores, and \"\(method.name)\" takes other attributors' maps, which are not known for other inputs")
        }
        for c in manifest.convergence where !(sources[c.method] ?? []).isEmpty {
            throw QuacError.at(manifest.file, c.pointer + "/method", "\"\(c.method)\" takes other attributors' maps; a convergence study reruns a method on its own")
        }
    }
}
