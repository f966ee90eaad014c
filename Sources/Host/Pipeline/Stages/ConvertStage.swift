/// Counterfactuals made by the run's converter, when the data has none:
/// counterfactuals/counterfactuals.safetensors (and the converter's JSON beside it).
final class ConvertStage: PipelineStage, StageKind {
    static func stages(for run: RunState) throws -> [PipelineStage] {
        guard let use = run.manifest.converter, run.samples.xCF == nil else { return [] }
        return [ConvertStage(use, conceptModel: run.manifest.conceptModel != nil)]
    }

    let use: PipelineManifest.PluginUse
    var pluginUse: PipelineManifest.PluginUse? { use }
    let label: String
    let needs: [Artifact]
    let produces: [Artifact] = [.counterfactuals]
    let file = "counterfactuals/counterfactuals.safetensors"

    init(_ use: PipelineManifest.PluginUse, conceptModel: Bool) {
        self.use = use
        label = "convert \(use.name)"
        needs = (conceptModel ? [.concepts] : []) + (use.train == nil ? [] : [.trainedModel(use.pointer)])
    }

    func fingerprint(_ run: RunState) throws -> String {
        Fingerprint.of(["converter": try run.record(try run.instance(use)), "classifier": .string(run.classifierFingerprint),
                        "seed": .int(Int64(run.manifest.seed))])
    }

    func reuse(_ run: RunState, fingerprint: String) throws -> Bool {
        guard let done = run.store.finished(file, fingerprint: fingerprint), let cf = done.tensors["counterfactual"] else { return false }
        run.tensors[.counterfactuals] = cf
        return true
    }

    func count(_ run: RunState) -> Int { run.samples.count }

    func batch(_ run: RunState, rows: Range<Int>, seed: UInt64) throws -> PluginOutputs {
        let d = run.samples
        let batch = BatchInputs(x: d.x.rows(rows), source: d.labels.rows(rows), target: d.target?.rows(rows), seed: seed,
                                concepts: run.tensors[.concepts]?.rows(rows))
        return try run.call(use) { try $0.convert(batch) }
    }

    func finish(_ run: RunState, outputs: [PluginOutputs], rows: [Range<Int>], fingerprint: String, seconds: Double) throws -> String {
        let cf = outputs.isEmpty ? Tensor(zeros: run.samples.x.shape) : Tensor.concatenate(outputs.map { $0.tensors["counterfactual"]! })
        try run.store.writeTensors(file, [("counterfactual", cf)], fingerprint: fingerprint)
        if let doc = JSONMerge.batches(outputs.map(\.json), sizes: rows.map(\.count)) {
            try run.store.writeJSON("counterfactuals/converter.json", .object(doc))
        }
        run.tensors[.counterfactuals] = cf
        return "\(run.samples.count) counterfactuals"
    }
}
