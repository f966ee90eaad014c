/// One scorer on one attributor's normalized maps: scores/<method>.json (an entry per scorer: score per
/// sample, median, quartiles, mean, the scorer's JSON fields) and scores/<method>.<scorer>.safetensors.
final class ScoreStage: PipelineStage, StageKind {
    static func stages(for run: RunState) throws -> [PipelineStage] {
        // A scorer scores the methods whose maps are over what it scores (inputs or concepts).
        return try run.manifest.attributors.flatMap { method in
            let explains = try run.instance(method).manifest.explains
            return try run.manifest.scorers.filter { try run.instance($0).manifest.scores == explains }.map {
                ScoreStage(method: method.name, scorer: $0, converter: run.manifest.converter != nil,
                           conceptModel: run.manifest.conceptModel != nil)
            }
        }
    }

    let method: String
    let use: PipelineManifest.PluginUse
    var pluginUse: PipelineManifest.PluginUse? { use }
    let label: String
    let needs: [Artifact]
    let produces: [Artifact]
    var jsonFile: String { "scores/\(method).json" }
    var tensorFile: String { "scores/\(method).\(use.name).safetensors" }

    init(method: String, scorer use: PipelineManifest.PluginUse, converter: Bool, conceptModel: Bool) {
        self.method = method
        self.use = use
        label = "score \(method) with \(use.name)"
        needs = [.attributions(method)] + (converter ? [.counterfactuals] : []) + (conceptModel ? [.concepts] : [])
            + (use.train == nil ? [] : [.trainedModel(use.pointer)])
        produces = [.scores(method: method, scorer: use.name)]
    }

    func fingerprint(_ run: RunState) throws -> String {
        Fingerprint.of(["scorer": try run.record(try run.instance(use)), "attribution": .string(run.fingerprints[.attributions(method)] ?? ""),
                        "classifier": .string(run.classifierFingerprint)])
    }

    func reuse(_ run: RunState, fingerprint: String) throws -> Bool {
        guard let prior = run.store.readJSON(jsonFile)?["scorers"]?[use.name], prior["fingerprint"]?.stringValue == fingerprint,
              run.store.finished(tensorFile, fingerprint: fingerprint) != nil, let median = prior["median"]?.doubleValue else { return false }
        run.summary.medians[method, default: [:]][use.name] = median
        return true
    }

    func count(_ run: RunState) -> Int { run.samples.count }

    func batch(_ run: RunState, rows: Range<Int>, seed: UInt64) throws -> PluginOutputs {
        let d = run.samples
        var batch = BatchInputs(x: d.x.rows(rows), source: d.labels.rows(rows), target: d.target?.rows(rows),
                                xCF: run.tensors[.counterfactuals]?.rows(rows), attribution: run.tensors[.attributions(method)]!.rows(rows),
                                seed: seed, concepts: run.tensors[.concepts]?.rows(rows))
        batch.methodJSON = run.methodJSON[method].map { JSONMerge.rows($0, rows, of: d.count) }
        // The method's raw map (its scale matters to some scorers), named by the method.
        if let raw = run.rawMaps[method] { batch.maps = [(method, raw.rows(rows))] }
        let attributor = try run.instance(run.manifest.attributors.first { $0.name == method }!)
        let out = try run.call(use) { scorer in try scorer.context.withScoredMethod(attributor) { try scorer.score(batch) } }
        for name in out.names where out.tensors[name]!.shape.first != rows.count {
            throw QuacError.at(run.manifest.file, use.pointer, "plugin \(use.plugin): output \"\(name)\" has shape \(out.tensors[name]!.shape); every scorer output must have one row per sample (\(rows.count))")
        }
        return out
    }

    /// The keys of a scorer's entry the host writes; the scorer's own JSON fields come after them.
    static let entryKeys: Set<String> = ["plugin", "better", "fingerprint", "median", "q25", "q75", "mean", "score", "tensors"]

    /// A scorer's entry in scores/<method>.json: its statistics over `scores` (one per sample), and the
    /// scorer's JSON fields (`extra`, merged over the batches). Merge writes the entries of shards with it.
    static func entry(plugin: String, better: String, fingerprint: String, scores: [Double], extra: JSONObject?, tensorFile: String) -> JSONObject {
        let stats = Statistics(scores)
        var entry = JSONObject()
        entry["plugin"] = .string(plugin)
        entry["better"] = .string(better)
        entry["fingerprint"] = .string(fingerprint)
        entry["median"] = .double(stats.median)
        entry["q25"] = .double(stats.q25)
        entry["q75"] = .double(stats.q75)
        entry["mean"] = .double(stats.mean)
        entry["score"] = .array(scores.map { .double($0) })
        if let extra { for (k, v) in extra where entry[k] == nil { entry[k] = v } }
        entry["tensors"] = .string(tensorFile)
        return entry
    }

    /// The scores of a scorer's merged "score" tensor.
    static func scores(_ merged: [(String, Tensor)]) -> [Double] {
        merged.first { $0.0 == "score" }?.1.floatArray().map(Double.init) ?? []
    }

    func finish(_ run: RunState, outputs: [PluginOutputs], rows: [Range<Int>], fingerprint: String, seconds: Double) throws -> String {
        // Every batch must put the same outputs, each of one dtype and one shape per sample.
        let names = outputs.first?.names ?? []
        for (o, r) in zip(outputs, rows) {
            for n in Set(names).symmetricDifference(o.names) {
                throw QuacError.at(run.manifest.file, use.pointer, "plugin \(use.plugin): output \"\(n)\" is in some batches only (samples \(r.lowerBound)..<\(r.upperBound) differ from the first batch)")
            }
            for n in names {
                let (t, first) = (o.tensors[n]!, outputs[0].tensors[n]!)
                guard t.dtype == first.dtype, t.shape.dropFirst() == first.shape.dropFirst() else {
                    throw QuacError.at(run.manifest.file, use.pointer, "plugin \(use.plugin): output \"\(n)\" is \(t.dtype.displayName) \(t.shape) for samples \(r.lowerBound)..<\(r.upperBound), \(first.dtype.displayName) \(first.shape) for the first batch")
                }
            }
        }
        let merged = names.map { n in (n, Tensor.concatenate(outputs.compactMap { $0.tensors[n] })) }
        let scores = Self.scores(merged)
        let stats = Statistics(scores)
        let entry = Self.entry(plugin: use.plugin, better: try run.instance(use).manifest.higherIsBetter ? "higher" : "lower",
                               fingerprint: fingerprint, scores: scores,
                               extra: JSONMerge.batches(outputs.map(\.json), sizes: rows.map(\.count)), tensorFile: tensorFile)
        try run.store.writeTensors(tensorFile, merged, fingerprint: fingerprint)
        var doc = run.store.readJSON(jsonFile)?.objectValue ?? JSONObject([("method", .string(method))])
        var scorers = doc["scorers"]?.objectValue ?? JSONObject()
        scorers[use.name] = .object(entry)
        doc["scorers"] = .object(scorers)
        try run.store.writeJSON(jsonFile, .object(doc))
        run.summary.medians[method, default: [:]][use.name] = stats.median
        return String(format: "median %.4f", stats.median)
    }
}
