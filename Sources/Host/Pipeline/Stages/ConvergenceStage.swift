import Foundation

/// A convergence study (the manifest's "convergence"): an attributor is run again over every sample with
/// one of its integer parameters set to each of the given values (Integrated Gradients' n_steps, Shapley
/// sampling's n_samples), and the mean squared error of those maps against the run's own maps of the
/// method says how fast it converges. Every learned explainer trained on the method's maps
/// ("targets_from") is measured the same way, with its per-sample Pearson and Spearman correlation, and
/// placed on the curve: the largest value the method needs to do no better. The reruns draw their own
/// random numbers (their seeds come from this stage), so a sampled method (Shapley sampling) rerun with
/// the run's own value shows the estimator's spread, not zero. Written to convergence/<method>.json;
/// compare and the report show it.
final class ConvergenceStage: PipelineStage, StageKind {
    static func stages(for run: RunState) throws -> [PipelineStage] {
        run.manifest.convergence.map { spec in
            ConvergenceStage(spec, method: run.manifest.attributors.first { $0.name == spec.method }!,
                             explainers: run.manifest.attributors.filter { $0.train?["targets_from"]?.stringValue == spec.method })
        }
    }

    let spec: PipelineManifest.ConvergenceSpec
    let method: PipelineManifest.PluginUse
    let explainers: [PipelineManifest.PluginUse]
    let label: String
    let needs: [Artifact]
    let produces: [Artifact]
    var file: String { "convergence/\(method.name).json" }

    init(_ spec: PipelineManifest.ConvergenceSpec, method: PipelineManifest.PluginUse, explainers: [PipelineManifest.PluginUse]) {
        self.spec = spec
        self.method = method
        self.explainers = explainers
        label = "convergence of \(method.name)"
        needs = ([method] + explainers).map { .attributions($0.name) }
        produces = [.convergence(method.name)]
    }

    /// `params` with `key` set to `value`.
    static func overriding(_ params: JSONValue, _ key: String, _ value: Int) -> JSONValue {
        var o = params.objectValue ?? JSONObject()
        o[key] = .int(Int64(value))
        return .object(o)
    }

    func fingerprint(_ run: RunState) throws -> String {
        Fingerprint.of(["method": .string(run.fingerprints[.attributions(method.name)] ?? ""), "parameter": .string(spec.parameter),
                        "values": .array(spec.values.map { .int(Int64($0)) }),
                        "explainers": .array(explainers.map { .string(run.fingerprints[.attributions($0.name)] ?? "") })])
    }

    func reuse(_ run: RunState, fingerprint: String) throws -> Bool {
        run.store.readJSON(file)?["fingerprint"]?.stringValue == fingerprint
    }

    /// A method's raw maps, as its stage wrote them.
    func rawMaps(_ run: RunState, _ name: String) throws -> [Float] {
        let url = run.store.url("attributions/\(name).safetensors")
        guard let t = try Safetensors.read(url).tensors["attribution"], t.dtype == .float32, t.shape == run.samples.x.shape else {
            throw QuacError("\(url.path): no float32 \"attribution\" tensor of the samples' shape \(run.samples.x.shape)")
        }
        return t.floatArray()
    }

    func finish(_ run: RunState, outputs: [PluginOutputs], rows: [Range<Int>], fingerprint: String, seconds: Double) throws -> String {
        let d = run.samples
        let reference = try rawMaps(run, method.name)
        var mse: [Double] = [], perSample: [Double] = []
        for (i, value) in spec.values.enumerated() {
            let variant = try run.variant(of: method, params: Self.overriding(method.params, spec.parameter, value),
                                          name: "\(method.name)@\(spec.parameter)=\(value)", pointer: "\(spec.pointer)/values/\(i)")
            let start = Date()
            let (maps, _) = try run.eachBatch("\(label): \(spec.parameter) = \(value)", count: d.count) { rows, seed in
                let batch = BatchInputs(x: d.x.rows(rows), source: d.labels.rows(rows), target: d.target?.rows(rows),
                                        xCF: run.tensors[.counterfactuals]?.rows(rows), seed: seed, concepts: run.tensors[.concepts]?.rows(rows))
                return try run.call(variant) { try $0.attribute(batch) }.tensors["attribution"]!
            }
            perSample.append(Date().timeIntervalSince(start) / Double(max(d.count, 1)))
            mse.append(Self.meanSquaredError(maps.isEmpty ? [] : Tensor.concatenate(maps).floatArray(), reference))
        }
        var doc = JSONObject([("method", .string(method.name)), ("plugin", .string(method.plugin)), ("parameter", .string(spec.parameter)),
                              ("values", .array(spec.values.map { .int(Int64($0)) })), ("mse", .array(mse.map { .double($0) })),
                              ("seconds_per_sample", .array(perSample.map { .double($0) })), ("fingerprint", .string(fingerprint))])
        var learned = JSONObject()
        let per = d.count > 0 ? reference.count / d.count : 0
        for e in explainers {
            let maps = try rawMaps(run, e.name)
            let error = Self.meanSquaredError(maps, reference)
            let pearson = (0..<d.count).map { s in Self.pearson(Array(maps[(s * per)..<((s + 1) * per)]), Array(reference[(s * per)..<((s + 1) * per)])) }
            let spearman = (0..<d.count).map { s in Self.spearman(Array(maps[(s * per)..<((s + 1) * per)]), Array(reference[(s * per)..<((s + 1) * per)])) }
            // The explainer is as good as the method run with the largest value that does no better.
            let matched = zip(spec.values, mse).filter { $0.1 >= error }.map(\.0).max()
            learned[e.name] = .object(JSONObject([("mse", .double(error)), ("pearson_median", .double(Statistics(pearson).median)),
                                                  ("spearman_median", .double(Statistics(spearman).median)),
                                                  ("as_good_as", matched.map { .int(Int64($0)) } ?? .null)]))
        }
        doc["explainers"] = .object(learned)
        try run.store.writeJSON(file, .object(doc))
        return zip(spec.values, mse).map { String(format: "%@=%d: %.3g", spec.parameter, $0, $1) }.joined(separator: ", ")
    }

    static func meanSquaredError(_ a: [Float], _ b: [Float]) -> Double {
        guard a.count == b.count, !a.isEmpty else { return .nan }
        return zip(a, b).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +) / Double(a.count)
    }

    static func pearson(_ a: [Float], _ b: [Float]) -> Double {
        let n = Double(a.count)
        guard n > 1 else { return .nan }
        let ma = a.map(Double.init).reduce(0, +) / n, mb = b.map(Double.init).reduce(0, +) / n
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for (x, y) in zip(a, b) { sab += (Double(x) - ma) * (Double(y) - mb); saa += (Double(x) - ma) * (Double(x) - ma); sbb += (Double(y) - mb) * (Double(y) - mb) }
        return saa > 0 && sbb > 0 ? sab / (saa * sbb).squareRoot() : .nan
    }

    /// Pearson's correlation of the ranks (tied values share their mean rank).
    static func spearman(_ a: [Float], _ b: [Float]) -> Double { pearson(ranks(a), ranks(b)) }

    static func ranks(_ v: [Float]) -> [Float] {
        let order = v.indices.sorted { v[$0] < v[$1] }
        var r = [Float](repeating: 0, count: v.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && v[order[j + 1]] == v[order[i]] { j += 1 }
            for k in i...j { r[order[k]] = Float(i + j) / 2 }
            i = j + 1
        }
        return r
    }
}
