import Foundation

/// A finished run read back from its results folder (the files `ResultsStore` writes), without
/// recomputing anything: what `compare` and `report` work from.
public struct RunResults {
    /// One scorer's results for one method.
    public struct Scores {
        public let scorer: String
        public let plugin: String
        public let perSample: [Double]
        public let median: Double, q25: Double, q75: Double, mean: Double
        /// The scorer's curve per sample ([N, P]) and its x axis, when it has one.
        public let curves: Tensor?
        public let curveX: [Double]
        /// Everything else the scorer reported (QuAC report fields...).
        public let fields: JSONObject
    }

    /// One attribution method.
    public struct Method {
        public let name: String
        public let plugin: String
        public let seconds: Double?
        /// Per-sample fields of the method's JSON output (e.g. convergence_delta).
        public let fields: JSONObject
        public let scores: [String: Scores]
    }

    public let root: URL
    public let record: JSONValue
    public let name: String
    public let samples: Int
    public let labels: [Int64]
    public let targets: [Int64]
    public let predicted: [Int64]
    public let methods: [Method]
    /// The run's convergence studies (convergence/<method>.json), in manifest order.
    public var convergence: [JSONValue] = []
    /// The simulability studies of the run's trained explainers (a SMAT-style explainer's training
    /// history, models/<name>.json), by method, in manifest order.
    public var simulability: [(method: String, study: JSONValue)] = []

    public var scorerNames: [String] {
        var names: [String] = []
        for m in methods { for s in m.scores.keys.sorted() where !names.contains(s) { names.append(s) } }
        return names
    }

    public static func load(_ root: URL) throws -> RunResults {
        let store = ResultsStore(root: root)
        let lock = try OutputLock.reading(root)
        defer { lock?.release() }
        guard let record = store.readJSON("run.json") else {
            throw QuacError("\(root.path): not a results store (no readable run.json); run `quac-host run MANIFEST` first")
        }
        let order = (record["manifest"]?["attributors"]?.arrayValue ?? []).map { a -> String in
            a["name"]?.stringValue ?? String((a["plugin"]?.stringValue ?? "").split(separator: ".").last ?? "")
        }
        var predicted: [Int64] = [], labels: [Int64] = [], targets: [Int64] = []
        if let p = try? Safetensors.read(store.url("predictions.safetensors")) {
            predicted = p.tensors["predicted"]?.int64Array() ?? []
            labels = p.tensors["label"]?.int64Array() ?? []
            targets = p.tensors["target"]?.int64Array() ?? []
        }
        var files = ["predictions.safetensors", "counterfactuals/counterfactuals.safetensors", "concepts.safetensors"]
        for name in order {
            files.append("attributions/\(name).safetensors")
            for scorer in (store.readJSON("scores/\(name).json")?["scorers"]?.objectValue ?? JSONObject()).keys {
                files.append("scores/\(name).\(scorer).safetensors")
            }
        }
        try store.checkConsistent(files)
        var methods: [Method] = []
        for name in order {
            guard let attr = try? Safetensors.read(store.url("attributions/\(name).safetensors")) else { continue }
            let fields = store.readJSON("attributions/\(name).json")?.objectValue ?? JSONObject()
            var scores: [String: Scores] = [:]
            for (scorer, entry) in store.readJSON("scores/\(name).json")?["scorers"]?.objectValue ?? JSONObject() {
                let values = entry["score"]?.arrayValue?.compactMap(\.doubleValue) ?? []
                let tensors = try? Safetensors.read(store.url("scores/\(name).\(scorer).safetensors"))
                let curves = tensors?.tensors["curve"]
                let points = curves?.shape.last ?? 0
                // A scorer's curve axes ("curve_axes": {"x", "x_label", "y_label"}: an object, so the host does
                // not take the x values for one entry per sample); older results used "fractions".
                let axis: JSONValue? = entry["curve_axes"]?["x"] ?? entry["curve_x"] ?? entry["fractions"] ?? entry["sizes"]
                let x: [Double] = axis?.arrayValue?.compactMap(\.doubleValue)
                    ?? (0..<points).map { points > 1 ? Double($0) / Double(points - 1) : 0 }
                let stats = Statistics(values)
                scores[scorer] = Scores(scorer: scorer, plugin: entry["plugin"]?.stringValue ?? "", perSample: values,
                                        median: stats.median, q25: stats.q25, q75: stats.q75, mean: stats.mean,
                                        curves: curves, curveX: x.count == points ? x : (0..<points).map { Double($0) / Double(max(points - 1, 1)) },
                                        fields: entry.objectValue ?? JSONObject())
            }
            methods.append(Method(name: name, plugin: attr.metadata["plugin"] ?? "", seconds: store.readJSON(AttributeStage.timingFile(name))?["seconds"]?.doubleValue
                                    ?? attr.metadata["seconds"].flatMap(Double.init),
                                  fields: fields, scores: scores))
        }
        let n = predicted.count > 0 ? predicted.count : (methods.first?.scores.values.first?.perSample.count ?? 0)
        var results = RunResults(root: root, record: record, name: record["manifest"]?["name"]?.stringValue ?? root.lastPathComponent,
                                 samples: n, labels: labels, targets: targets, predicted: predicted, methods: methods)
        results.convergence = (record["manifest"]?["convergence"]?.arrayValue ?? []).compactMap { c in
            c["method"]?.stringValue.flatMap { store.readJSON("convergence/\($0).json") }
        }
        for a in record["manifest"]?["attributors"]?.arrayValue ?? [] where a["train"] != nil {
            guard let name = a["name"]?.stringValue, let study = store.readJSON("models/\(name).json")?["history"]?["simulability"],
                  study.objectValue != nil else { continue }
            results.simulability.append((name, study))
        }
        return results
    }

    /// A method's simulability at the smallest budget of the run's first study that has a condition for
    /// it: the learned explainer's own, or the static single-head condition named after the method.
    public func simulability(of method: String) -> (median: Double, budget: Int)? {
        for (owner, study) in simulability {
            for c in study["conditions"]?.arrayValue ?? [] {
                let kind = c["kind"]?.stringValue, name = c["name"]?.stringValue
                guard (kind == "learned" && owner == method) || (kind == "static" && name == method),
                      let first = c["results"]?.arrayValue?.first, let m = first["median"]?.doubleValue,
                      let b = first["budget"]?.intValue else { continue }
                return (m, Int(b))
            }
        }
        return nil
    }
}
