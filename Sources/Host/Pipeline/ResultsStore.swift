import Foundation

/// The results folder of a run (see "The results store" in the README). Every file is written atomically and
/// carries the fingerprint of everything it was computed from, so a rerun reuses exactly the work
/// whose inputs did not change. Every tensor file also carries the fingerprint of the run's inputs
/// (`inputsKey`), so a folder whose files were computed on different samples is caught when read.
public final class ResultsStore {
    public let root: URL
    static let fingerprintKey = "quac.fingerprint"
    /// The metadata entry naming the inputs a file was computed on: inputs.safetensors' fingerprint.
    static let inputsKey = "quac.inputs"
    /// The fingerprint of the run's inputs, once known (set before any stage writes).
    public var inputsFingerprint: String?
    /// The metadata entry naming the shard ("I/N") a file of a shard's folder holds the samples of.
    static let shardKey = "quac.shard"
    /// The shard this store holds (nil: a whole run). A shard's files carry the fingerprints an
    /// unsharded run gives the same units, so merge can write them unchanged; the shard entry keeps a
    /// file of one shard from being reused as another's.
    public let shard: Shard?

    public init(root: URL, shard: Shard? = nil) {
        self.root = root
        self.shard = shard
    }

    public func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }

    /// The tensors of a finished unit, if its file exists with this fingerprint.
    public func finished(_ relative: String, fingerprint: String) -> SafetensorsFile? {
        let u = url(relative)
        guard FileManager.default.fileExists(atPath: u.path),
              let f = try? Safetensors.read(u), f.metadata[Self.fingerprintKey] == fingerprint,
              f.metadata[Self.shardKey] == shard?.tag else { return nil }
        return f
    }

    public func writeTensors(_ relative: String, _ tensors: [(String, Tensor)], fingerprint: String,
                             metadata: [String: String] = [:]) throws {
        var meta = metadata
        meta[Self.fingerprintKey] = fingerprint
        if let inputsFingerprint { meta[Self.inputsKey] = inputsFingerprint }
        if let shard { meta[Self.shardKey] = shard.tag }
        try Safetensors.write(tensors, metadata: meta, to: url(relative))
    }

    public func writeJSON(_ relative: String, _ value: JSONValue) throws {
        try AtomicFile.write(value.serialized(pretty: true) + "\n", to: url(relative))
    }

    /// Checks that every results file was computed on the samples in inputs.safetensors; throws naming
    /// the first that was not (two runs with different data wrote into one folder).
    public func checkConsistent(_ files: [String]) throws {
        guard let inputs = try? Safetensors.read(url("inputs.safetensors")), let expected = inputs.metadata[Self.fingerprintKey] else { return }
        for relative in files {
            guard let f = try? Safetensors.read(url(relative)), let got = f.metadata[Self.inputsKey] else { continue }
            if got != expected {
                throw QuacError("\(url(relative).path): computed on other samples than \(url("inputs.safetensors").path) (another run with different data wrote into this folder); rerun the pipeline to bring the folder up to date")
            }
        }
    }

    public func readJSON(_ relative: String) -> JSONValue? {
        guard let data = try? Data(contentsOf: url(relative)) else { return nil }
        return try? JSONParser.parse([UInt8](data))
    }
}

/// Fingerprints: SHA-256 of a canonical JSON description of a unit of work and its inputs.
public enum Fingerprint {
    public static func of(_ value: JSONValue) -> String {
        SHA256.hex(Data(value.serialized(sortKeys: true).utf8))
    }
}
