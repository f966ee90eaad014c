import Foundation

/// The samples' concepts from the run's concept model: its outputs through a sigmoid (independent
/// concepts) or a softmax, written to concepts.safetensors with the names in its metadata, and handed to
/// every later call (quac_batch.concepts, the host's concepts service).
final class ConceptStage: PipelineStage, StageKind {
    static func stages(for run: RunState) throws -> [PipelineStage] {
        guard let use = run.manifest.conceptModel else { return [] }
        return [ConceptStage(use)]
    }

    let use: PipelineManifest.PluginUse
    var pluginUse: PipelineManifest.PluginUse? { use }
    let label: String
    let needs: [Artifact]
    let produces: [Artifact] = [.concepts]
    let file = "concepts.safetensors"

    init(_ use: PipelineManifest.PluginUse) {
        self.use = use
        needs = use.train == nil ? [] : [.trainedModel(use.pointer)]
        label = "concepts \(use.name)"
    }

    func fingerprint(_ run: RunState) throws -> String {
        Fingerprint.of(["concept_model": try run.record(try run.instance(use)), "data": .string(run.dataFingerprint),
                        "targets": .string(run.manifest.data.targets.rawValue), "activation": .string(run.manifest.conceptActivation),
                        "names": .array((run.manifest.conceptNames ?? []).map { .string($0) })])
    }

    func reuse(_ run: RunState, fingerprint: String) throws -> Bool {
        guard let done = run.store.finished(file, fingerprint: fingerprint), let c = done.tensors["concepts"] else { return false }
        publish(run, c, names: done.metadata["concept_names"].map(Concepts.parseNames) ?? [])
        return true
    }

    func count(_ run: RunState) -> Int { run.samples.count }

    func batch(_ run: RunState, rows: Range<Int>, seed: UInt64) throws -> PluginOutputs {
        let out = try run.call(use) { PluginOutputs(names: ["logits"], tensors: ["logits": try $0.forward(run.samples.x.rows(rows))]) }
        return out
    }

    func finish(_ run: RunState, outputs: [PluginOutputs], rows: [Range<Int>], fingerprint: String, seconds: Double) throws -> String {
        let logits = outputs.isEmpty ? Tensor(zeros: [0, try run.instance(use).info().numClasses])
                                     : Tensor.concatenate(outputs.map { $0.tensors["logits"]! })
        let concepts = try Self.activate(logits, run.manifest.conceptActivation, file: run.manifest.file, pointer: use.pointer)
        let names = run.context.conceptNames ?? []
        try run.store.writeTensors(file, [("concepts", concepts)], fingerprint: fingerprint,
                                   metadata: ["concept_names": JSONValue.array(names.map { JSONValue.string($0) }).serialized()])
        publish(run, concepts, names: names)
        return "\(names.count) concepts of \(concepts.shape[0]) samples"
    }

    private func publish(_ run: RunState, _ concepts: Tensor, names: [String]) {
        run.tensors[.concepts] = concepts
        run.context.conceptNames = names
    }

    /// Outputs [N, k] to concepts in [0, 1]: a sigmoid per output, or a softmax over each row. A
    /// non-finite output is refused, naming the concept model's entry.
    static func activate(_ logits: Tensor, _ mode: String, file: String, pointer: String) throws -> Tensor {
        if let i = logits.floats.firstIndex(where: { !$0.isFinite }) {
            let k = max(logits.shape.last ?? 1, 1)
            throw QuacError.at(file, pointer, "output \(i % k) of sample \(i / k) is \(logits.floats[i]): concepts need finite outputs")
        }
        let out = Tensor(zeros: logits.shape)
        let (n, k) = (logits.shape[0], logits.shape[1])
        let src = logits.floats, dst = out.floats
        for s in 0..<n {
            let row = (s * k)..<(s * k + k)
            if mode == "softmax" {
                let top = src[row].max() ?? 0
                var sum: Float = 0
                for i in row { dst[i] = exp(src[i] - top); sum += dst[i] }
                for i in row { dst[i] /= sum }
            } else {
                for i in row { dst[i] = 1 / (1 + exp(-src[i])) }
            }
        }
        return out
    }
}
