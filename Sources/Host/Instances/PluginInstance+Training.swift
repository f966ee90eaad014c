import Foundation
import QuacPluginAPI

/// The training capability (QUAC_EXT_TRAINER) as the host calls it.
extension PluginInstance {
    public var isTrainable: Bool { table(QUAC_EXT_TRAINER, quac_trainer.self) != nil }

    private func trainer() throws -> UnsafePointer<quac_trainer> {
        guard let t = table(QUAC_EXT_TRAINER, quac_trainer.self) else {
            throw QuacError("plugin \(name) (\(id)) is not trainable: it offers no \(QUAC_EXT_TRAINER) table")
        }
        return t
    }

    /// Trains on `train` (validating on `val`), checkpointing into `checkpoints` and resuming from it.
    public func train(_ train: Dataset, val: Dataset?, numClasses: Int, checkpoints: URL, seed: UInt64) throws -> PluginOutputs {
        try self.train(fields: HostDataset.fields(of: train), val: val.map(HostDataset.fields(of:)), numClasses: numClasses,
                       checkpoints: checkpoints, seed: seed)
    }

    /// Trains on named per-sample fields ("x", "label", and whatever else the run computed for it).
    public func train(fields train: [(String, Tensor)], val: [(String, Tensor)]?, numClasses: Int, checkpoints: URL,
                      seed: UInt64) throws -> PluginOutputs {
        let t = try trainer()
        try FileManager.default.createDirectory(at: checkpoints, withIntermediateDirectories: true)
        let trainSet = HostDataset(fields: train, numClasses: numClasses, context: context)
        let valSet = val.map { HostDataset(fields: $0, numClasses: numClasses, context: context) }
        let collector = OutputCollector()
        try withExtendedLifetime((trainSet, valSet)) {
            try invoke("train", violation: { collector.violation }) {
                checkpoints.path.withCString { dir in
                    t.pointee.train!(plugin, trainSet.raw, valSet.map { UnsafePointer($0.raw) }, dir, seed, collector.sink)
                }
            }
        }
        if let v = collector.violation { throw QuacError("plugin \(name) (\(id)): train: \(v)") }
        return collector.outputs
    }

    /// Saves the trained model atomically: the plugin writes a temporary file the host renames.
    public func save(to url: URL) throws {
        let t = try trainer()
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        defer { try? FileManager.default.removeItem(at: tmp) }
        try invoke("save") { tmp.path.withCString { t.pointee.save!(plugin, $0) } }
        guard rename(tmp.path, url.path) == 0 else { throw QuacError("\(url.path): cannot rename the saved model into place") }
        AtomicFile.syncFolder(url.deletingLastPathComponent())
    }

    public func load(from url: URL) throws {
        let t = try trainer()
        try invoke("load") { url.path.withCString { t.pointee.load!(plugin, $0) } }
    }
}
