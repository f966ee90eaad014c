import Foundation

/// `quac-host import`: weights saved by PyTorch (`torch.save` of a state dict, or of a dict of state
/// dicts as QuAC's StarGAN solver saves them) into a plugin's own model file. The checkpoint is read by
/// `TorchCheckpoint` (no Python, no code from the file runs), its tensors are handed to the plugin as
/// a safetensors file through the plugin's `state_dict` parameter, and the plugin, which checks every
/// name and shape against its network, writes its model file with its `save`. Any plugin whose
/// parameters have a `state_dict` path and that can save a model can be imported into; the host knows
/// nothing of their networks.
public enum CheckpointImport {
    public struct Summary {
        public let tensors: Int
        /// Values of the checkpoint that are not tensors (step counters, names): not imported.
        public let skipped: [String]
    }

    public static func run(checkpoint: URL, pluginID: String, params: JSONValue, output: URL, registry: PluginRegistry) throws -> Summary {
        let manifest = try registry.manifest(id: pluginID)
        guard manifest.parameters["properties"]?["state_dict"]?["format"]?.stringValue == "path" else {
            throw QuacError("\(pluginID) cannot import weights: its parameters have no \"state_dict\" path (\(manifest.url.path))")
        }
        guard manifest.trainable else {
            throw QuacError("\(pluginID) cannot import weights: it does not save models (not trainable)")
        }
        guard params.objectValue != nil else { throw QuacError("--params: expected a JSON object") }
        if params["state_dict"] != nil || params["weights"] != nil {
            throw QuacError("--params: leave out state_dict and weights: the checkpoint is the weights")
        }
        let file: TorchCheckpoint
        do { file = try TorchCheckpoint.read(checkpoint) } catch { throw QuacError.wrap(error) }
        let (named, others) = file.tensors()
        guard !named.isEmpty else { throw QuacError("\(checkpoint.path): no tensors in the checkpoint") }
        var seen = Set<String>()
        for (name, _) in named where !seen.insert(name).inserted {
            throw QuacError("\(checkpoint.path): two tensors are named \(name)")
        }
        // The tensors as safetensors, beside the output (removed whatever happens).
        let folder = output.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let staged = folder.appendingPathComponent(".\(output.lastPathComponent).import-\(getpid()).safetensors")
        defer { try? FileManager.default.removeItem(at: staged) }
        try Safetensors.write(named, metadata: ["source": checkpoint.path], to: staged)
        var p = params.objectValue!
        p["state_dict"] = .string(staged.path)
        do {
            let instance = try PluginInstance(manifest: manifest, params: .object(p), paramsSource: "--params")
            try instance.save(to: output)
        } catch {
            // The plugin names the staged file; the user knows the checkpoint.
            let q = QuacError.wrap(error)
            throw QuacError(q.message.replacingOccurrences(of: "state_dict " + staged.path, with: checkpoint.path)
                .replacingOccurrences(of: staged.path, with: checkpoint.path))
        }
        return Summary(tensors: named.count, skipped: others)
    }
}
