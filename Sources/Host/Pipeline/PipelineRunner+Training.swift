import Foundation

/// Training plugins before a run: a plugin use with a "train" block is trained on its own data, saved
/// under <output>/models/, and reused while nothing it depends on changed.
extension PipelineRunner {
    /// Trains (or reloads) `instance` when its manifest entry asks for it; returns a fingerprint of the
    /// trained state to fold into everything computed with it.
    func trainIfRequested(_ instance: PluginInstance, _ use: PipelineManifest.PluginUse, numClasses: Int?) throws -> String? {
        guard let spec = use.train else { return nil }
        let pointer = use.pointer + "/train"
        guard instance.manifest.trainable, instance.isTrainable else {
            throw QuacError.at(manifest.file, pointer, "\(use.plugin) is not trainable (its manifest or library offers no training)")
        }
        let trainData = try Dataset.load(try DataSpec(spec["data"] ?? .null, file: manifest.file, pointer: pointer + "/data", resolve: manifest.resolve))
        let valData = try spec["val"].map { try Dataset.load(try DataSpec($0, file: manifest.file, pointer: pointer + "/val", resolve: manifest.resolve)) }
        let classes = numClasses ?? Int((trainData.labels.int64s.max() ?? 0) + 1)
        let seed = UInt64(spec["seed"]?.intValue ?? Int64(manifest.seed))
        var files = JSONObject()
        for key in ["data", "val"] {
            guard let d = spec[key] else { continue }
            let ds = try DataSpec(d, file: manifest.file, pointer: pointer + "/" + key, resolve: manifest.resolve)
            for f in ds.files { files[f.path] = .string(try SHA256.hex(fileAt: f)) }
        }
        let fingerprint = Fingerprint.of(["plugin": .string(instance.id), "version": .string(instance.descriptor.version),
                                          "library_sha256": .string(try SHA256.hex(fileAt: instance.library.url)),
                                          "params": instance.parameters, "train": spec, "files": .object(files),
                                          "seed": .int(Int64(seed))])
        let model = store.url("models/\(use.name).safetensors")
        let record = "models/\(use.name).json"
        if let prior = store.readJSON(record), prior["fingerprint"]?.stringValue == fingerprint,
           FileManager.default.fileExists(atPath: model.path) {
            try instance.load(from: model)
            progress.note("\(use.name): reusing the trained model \(model.path)")
            return fingerprint
        }
        let stage = "train \(use.name)"
        progress.stageStarted(stage, total: 0)
        let previous = context.onProgress
        context.onProgress = { [progress] _, done, total, _ in progress.stageAdvanced(stage, done: Int(done), total: Int(total)) }
        defer { context.onProgress = previous }
        // Checkpoints belong to one fingerprint: a changed setting starts afresh instead of resuming.
        let checkpoints = store.url("models/\(use.name).checkpoints/\(fingerprint.prefix(16))")
        let start = Date()
        let out: PluginOutputs
        do {
            out = try instance.train(trainData, val: valData, numClasses: classes, checkpoints: checkpoints, seed: seed)
        } catch { throw QuacError.wrap(error, context: "\(manifest.file): \(pointer)") }
        try instance.save(to: model)
        let seconds = Date().timeIntervalSince(start)
        try store.writeJSON(record, ["plugin": .string(instance.id), "fingerprint": .string(fingerprint),
                                     "seconds": .double(seconds), "samples": .int(Int64(trainData.count)),
                                     "history": .object(out.json ?? JSONObject())])
        progress.stageFinished(stage, summary: String(format: "%d samples, %.1f s", trainData.count, seconds))
        return fingerprint
    }
}
