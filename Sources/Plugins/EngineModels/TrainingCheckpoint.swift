import Engine
import Foundation
import QuacPluginKit

/// The checkpoints the engine's trainers write after every epoch or step: networks, optimizer states and
/// metadata, stamped with the network's architecture and the training settings a resume must share
/// (`resumeKey`), so a checkpoint of another network or other settings is refused instead of resumed.
enum TrainingCheckpoint {
    static let trainingKey = "training"

    static func save(_ url: URL, architecture: JSONValue, resumeKey: String, networks: [String: Module],
                     optimizers: [String: Optimizer], metadata: [String: String]) throws {
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            var meta = metadata
            meta[ModelFile.architectureKey] = architecture.serialized()
            meta[trainingKey] = resumeKey
            try Checkpoint.save(to: url, networks: networks, optimizers: optimizers, metadata: meta)
        } catch { throw PluginError.io("checkpoint \(url.path): \(error)") }
    }

    /// Loads a checkpoint into `networks` and `optimizers`; returns its metadata.
    static func restore(_ url: URL, architecture: JSONValue, resumeKey: String, networks: [String: Module],
                        optimizers: [String: Optimizer]) throws -> [String: String] {
        do {
            let file = try Safetensors.read(url)
            guard let text = file.metadata[ModelFile.architectureKey], (try? JSONParser.parse(text)) == architecture else {
                throw PluginError.invalid("checkpoint \(url.path) belongs to another architecture; remove it to train from scratch")
            }
            guard file.metadata[trainingKey] == resumeKey else {
                throw PluginError.invalid("checkpoint \(url.path) was written with other training settings (\(file.metadata[trainingKey] ?? "none")); remove it to train from scratch")
            }
            return try Checkpoint.load(from: url, networks: networks, optimizers: optimizers)
        } catch let e as PluginError { throw e } catch { throw PluginError.io("checkpoint \(url.path): \(error)") }
    }
}
