import Foundation

/// Training checkpoints: the weights and buffers of named networks and the state of named optimizers in
/// one safetensors file, so a run resumes exactly where it stopped. Tensor names are
/// "<network>/<parameter>" and "<optimizer>/<index>.<state>"; step counts and caller metadata go to
/// `__metadata__` with module counters such as dropout call counts (the caller's keys must not start
/// with "step." or "counter.").
public enum Checkpoint {
    public static func save(to url: URL, networks: [String: Module], optimizers: [String: Optimizer] = [:],
                            metadata: [String: String] = [:]) throws {
        var tensors: [(String, Tensor)] = []
        var counters: [String: String] = [:]
        for name in networks.keys.sorted() {
            for (k, v) in networks[name]!.stateDict() { tensors.append(("\(name)/\(k)", v.copy().tensor)) }
            for (k, v) in networks[name]!.namedCounters() { counters["counter.\(name)/\(k)"] = String(v) }
        }
        var meta = metadata.merging(counters) { a, _ in a }
        for name in optimizers.keys.sorted() {
            let o = optimizers[name]!
            for (k, v) in o.stateArrays() { tensors.append(("\(name)/\(k)", v.copy().tensor)) }
            meta["step.\(name)"] = String(o.stepCount)
        }
        try Safetensors.write(tensors, metadata: meta, to: url)
    }

    /// Loads into existing networks and optimizers (built with the same architecture and parameter
    /// lists); returns the file's metadata.
    @discardableResult
    public static func load(from url: URL, networks: [String: Module], optimizers: [String: Optimizer] = [:]) throws -> [String: String] {
        let file = try Safetensors.read(url)
        let arrays = ModelFile.floatArrays(file)
        func scoped(_ prefix: String) -> [String: NDArray] {
            var out: [String: NDArray] = [:]
            for (k, v) in arrays where k.hasPrefix(prefix + "/") { out[String(k.dropFirst(prefix.count + 1))] = v }
            return out
        }
        for (name, net) in networks {
            try net.loadStateDict(scoped(name))
            var counters: [String: Int] = [:]
            for (k, v) in file.metadata where k.hasPrefix("counter.\(name)/") {
                counters[String(k.dropFirst("counter.\(name)/".count))] = Int(v)
            }
            net.loadCounters(counters)
        }
        for (name, o) in optimizers {
            guard let s = file.metadata["step.\(name)"], let steps = Int(s) else {
                throw EngineError.badCheckpoint("no step count for optimizer \"\(name)\"")
            }
            try o.loadState(arrays: scoped(name), stepCount: steps)
        }
        return file.metadata
    }
}
