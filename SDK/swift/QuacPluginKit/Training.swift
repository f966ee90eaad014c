import Foundation

/// A plugin that learns (quac.trainer/1). The kit exposes the table when the plugin conforms.
public protocol TrainablePlugin: QuacPlugin {
    /// Trains the instance; checkpoints go into `checkpoints` and training resumes from the newest one.
    func train(_ train: TrainingData, val: TrainingData?, checkpoints: URL, seed: UInt64) throws -> Outputs
    /// Writes the trained model (a safetensors file) to `url`.
    func save(to url: URL) throws
    /// Replaces the model by one `save` wrote.
    func load(from url: URL) throws
}

/// A host dataset (quac_dataset): named per-sample fields gathered in batches.
public struct TrainingData {
    let raw: UnsafePointer<quac_dataset>
    public var count: Int { Int(raw.pointee.count) }
    public var numClasses: Int { Int(raw.pointee.num_classes) }
    public var fields: [String] {
        guard let j = raw.pointee.fields_json, let v = try? JSONParser.parse(String(cString: j)) else { return [] }
        return v.arrayValue?.compactMap(\.stringValue) ?? []
    }

    /// `field` for the samples at `indices`, as a tensor [indices.count, ...].
    public func get(_ field: String, _ indices: [Int]) throws -> Tensor {
        var out: UnsafeMutablePointer<quac_managed_tensor>?
        let idx = indices.map(Int64.init)
        let s = idx.withUnsafeBufferPointer { raw.pointee.get!(raw, field, $0.baseAddress, Int64(indices.count), &out) }
        guard s == quac_status(QUAC_OK), let m = out else { throw PluginError(s, "dataset field \"\(field)\" could not be read") }
        return try Tensor(adopting: m)
    }
}

enum TrainerTable {
    static let table: UnsafeMutablePointer<quac_trainer> = {
        let p = UnsafeMutablePointer<quac_trainer>.allocate(capacity: 1)
        p.initialize(to: quac_trainer(struct_size: UInt32(MemoryLayout<quac_trainer>.size),
                                      train: trainerTrain, save: trainerSave, load: trainerLoad))
        return p
    }()
}

private func trainable(_ p: UnsafePointer<quac_plugin>?) throws -> (TrainablePlugin, HostServices) {
    guard let box = InstanceBox.from(p), let t = box.plugin as? TrainablePlugin else {
        throw PluginError(quac_status(QUAC_ERR_INTERNAL), "instance is not trainable")
    }
    return (t, box.host)
}

private let trainerTrain: @convention(c) (UnsafePointer<quac_plugin>?, UnsafePointer<quac_dataset>?, UnsafePointer<quac_dataset>?, UnsafePointer<CChar>?, UInt64, UnsafePointer<quac_output_sink>?) -> quac_status = { p, train, val, dir, seed, sink in
    guarded(InstanceBox.from(p)?.host) {
        let (t, host) = try trainable(p)
        guard let train, let dir else { throw PluginError.invalid("train: dataset and checkpoint folder are required") }
        let out = try t.train(TrainingData(raw: train), val: val.map { TrainingData(raw: $0) },
                              checkpoints: URL(fileURLWithPath: String(cString: dir)), seed: seed)
        try putOutputs(out, sink, host)
    }
}

private let trainerSave: @convention(c) (UnsafePointer<quac_plugin>?, UnsafePointer<CChar>?) -> quac_status = { p, path in
    guarded(InstanceBox.from(p)?.host) {
        guard let path else { throw PluginError.invalid("save: path is NULL") }
        try trainable(p).0.save(to: URL(fileURLWithPath: String(cString: path)))
    }
}

private let trainerLoad: @convention(c) (UnsafePointer<quac_plugin>?, UnsafePointer<CChar>?) -> quac_status = { p, path in
    guarded(InstanceBox.from(p)?.host) {
        guard let path else { throw PluginError.invalid("load: path is NULL") }
        try trainable(p).0.load(from: URL(fileURLWithPath: String(cString: path)))
    }
}
