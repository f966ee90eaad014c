/// Writes the samples as explained (after limit and target expansion) to inputs.safetensors, so the
/// results store is self-contained: `quac-host report` draws queries from it without the data files.
final class InputsStage: PipelineStage, StageKind {
    static func stages(for run: RunState) throws -> [PipelineStage] { [InputsStage()] }

    let label = "inputs"
    let needs: [Artifact] = []
    let produces: [Artifact] = [.inputs]
    let file = "inputs.safetensors"

    func fingerprint(_ run: RunState) throws -> String { Self.fingerprint(run) }

    /// Also what every other results file names as its inputs (ResultsStore.inputsFingerprint).
    static func fingerprint(_ run: RunState) -> String {
        Fingerprint.of(["inputs": .string(run.dataFingerprint), "targets": .string(run.manifest.data.targets.rawValue)])
    }

    func reuse(_ run: RunState, fingerprint: String) throws -> Bool { run.store.finished(file, fingerprint: fingerprint) != nil }

    func finish(_ run: RunState, outputs: [PluginOutputs], rows: [Range<Int>], fingerprint: String, seconds: Double) throws -> String {
        let d = run.samples
        var tensors: [(String, Tensor)] = [("x", d.x), ("label", d.labels)]
        if let t = d.target { tensors.append(("target", t)) }
        if let c = d.xCF { tensors.append(("x_cf", c)) }
        var metadata: [String: String] = [:]
        if let c = d.concepts {
            tensors.append(("concepts", c.values))
            metadata["concept_names"] = JSONValue.array(c.names.map { JSONValue.string($0) }).serialized()
        }
        try run.store.writeTensors(file, tensors, fingerprint: fingerprint, metadata: metadata)
        return "\(d.count) samples"
    }
}
