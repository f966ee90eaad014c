import Foundation

/// One attributor over every sample: attributions/<name>.safetensors with the raw maps and the
/// per-sample normalized maps the scorers get, and the method's JSON output beside it.
final class AttributeStage: PipelineStage, StageKind {
    static func stages(for run: RunState) throws -> [PipelineStage] {
        run.manifest.attributors.map {
            AttributeStage($0, converter: run.manifest.converter != nil, conceptModel: run.manifest.conceptModel != nil,
                           mapSources: run.mapSources($0))
        }
    }

    let use: PipelineManifest.PluginUse
    var pluginUse: PipelineManifest.PluginUse? { use }
    let label: String
    let needs: [Artifact]
    let produces: [Artifact]
    /// The attributors whose maps this one takes (MapSources).
    let mapSources: [String]
    var file: String { "attributions/\(use.name).safetensors" }
    /// How long the method took over the samples: {"seconds", "samples"}.
    static func timingFile(_ method: String) -> String { "timings/\(method).json" }

    init(_ use: PipelineManifest.PluginUse, converter: Bool, conceptModel: Bool, mapSources: [String]) {
        self.use = use
        self.mapSources = mapSources
        label = "attribute \(use.name)"
        needs = (converter ? [.counterfactuals] : []) + (conceptModel ? [.concepts] : []) + (use.train == nil ? [] : [.trainedModel(use.pointer)])
            + mapSources.map { .attributions($0) }
        produces = [.attributions(use.name)]
    }

    func fingerprint(_ run: RunState) throws -> String {
        var inputs = JSONObject([("attributor", try run.record(try run.instance(use))), ("classifier", .string(run.classifierFingerprint)),
                                 ("counterfactuals", .string(run.fingerprints[.counterfactuals] ?? "")), ("seed", .int(Int64(run.manifest.seed))),
                                 ("batch_size", .int(Int64(run.manifest.batchSize)))])
        if let c = run.fingerprints[.concepts] { inputs["concepts"] = .string(c) }
        if !mapSources.isEmpty {
            inputs["maps"] = .object(JSONObject(mapSources.map { ($0, .string(run.fingerprints[.attributions($0)] ?? "")) }))
        }
        return Fingerprint.of(.object(inputs))
    }

    func reuse(_ run: RunState, fingerprint: String) throws -> Bool {
        guard let done = run.store.finished(file, fingerprint: fingerprint), let n = done.tensors["normalized"] else { return false }
        run.tensors[.attributions(use.name)] = n
        run.rawMaps[use.name] = done.tensors["attribution"]
        run.methodJSON[use.name] = run.store.readJSON("attributions/\(use.name).json")?.objectValue
        return true
    }

    func count(_ run: RunState) -> Int { run.samples.count }

    func batch(_ run: RunState, rows: Range<Int>, seed: UInt64) throws -> PluginOutputs {
        let d = run.samples
        var batch = BatchInputs(x: d.x.rows(rows), source: d.labels.rows(rows), target: d.target?.rows(rows),
                                xCF: run.tensors[.counterfactuals]?.rows(rows), seed: seed, concepts: run.tensors[.concepts]?.rows(rows))
        batch.maps = try run.maps(mapSources, rows: rows)
        return try run.call(use) { try $0.attribute(batch) }
    }

    func finish(_ run: RunState, outputs: [PluginOutputs], rows: [Range<Int>], fingerprint: String, seconds: Double) throws -> String {
        let d = run.samples
        let raw = outputs.isEmpty ? Tensor(zeros: d.x.shape) : Tensor.concatenate(outputs.map { $0.tensors["attribution"]! })
        let normalized = AttributionMaps.normalizedPerSample(raw)
        // The JSON first and the tensors (which carry the fingerprint) last: a run stopped in between
        // recomputes instead of pairing new maps with an old JSON; a method that puts none leaves none.
        let jsonFile = "attributions/\(use.name).json"
        if let doc = JSONMerge.batches(outputs.map(\.json), sizes: rows.map(\.count)) {
            try run.store.writeJSON(jsonFile, .object(doc))
            run.methodJSON[use.name] = doc
        } else {
            try? FileManager.default.removeItem(at: run.store.url(jsonFile))
            run.methodJSON[use.name] = nil
        }
        // The time goes beside the maps, not into their file: the maps' bytes depend on their inputs
        // alone, so a merge of shards writes the same file as one run.
        try run.store.writeJSON(Self.timingFile(use.name), ["seconds": .double(seconds), "samples": .int(Int64(d.count))])
        try run.store.writeTensors(file, [("attribution", raw), ("normalized", normalized)], fingerprint: fingerprint,
                                   metadata: ["method": use.name, "plugin": use.plugin])
        run.tensors[.attributions(use.name)] = normalized
        run.rawMaps[use.name] = raw
        return String(format: "%.2f s (%.1f ms/sample)", seconds, 1000 * seconds / Double(max(d.count, 1)))
    }
}
