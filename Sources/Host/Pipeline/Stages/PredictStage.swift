/// The classifier's logits and predicted class of every sample: predictions.safetensors.
final class PredictStage: PipelineStage, StageKind {
    static func stages(for run: RunState) throws -> [PipelineStage] { [PredictStage()] }

    let label = "classify"
    let needs: [Artifact] = []
    let produces: [Artifact] = [.predictions]
    let file = "predictions.safetensors"

    func fingerprint(_ run: RunState) throws -> String { run.classifierFingerprint }

    func reuse(_ run: RunState, fingerprint: String) throws -> Bool {
        guard let done = run.store.finished(file, fingerprint: fingerprint), let logits = done.tensors["logits"] else { return false }
        run.tensors[.predictions] = logits
        return true
    }

    func count(_ run: RunState) -> Int { run.samples.count }

    func batch(_ run: RunState, rows: Range<Int>, seed: UInt64) throws -> PluginOutputs {
        let logits: Tensor
        do { logits = try run.classifier!.forward(run.samples.x.rows(rows)) } catch {
            throw QuacError.wrap(error, context: "\(run.manifest.file): \(run.manifest.classifierPointer)")
        }
        return PluginOutputs(names: ["logits"], tensors: ["logits": logits])
    }

    func finish(_ run: RunState, outputs: [PluginOutputs], rows: [Range<Int>], fingerprint: String, seconds: Double) throws -> String {
        let d = run.samples
        let k = run.classifierInfo!.numClasses
        let logits = outputs.isEmpty ? Tensor(zeros: [0, k]) : Tensor.concatenate(outputs.map { $0.tensors["logits"]! })
        let predicted = Self.argmax(logits)
        var tensors: [(String, Tensor)] = [("logits", logits), ("predicted", predicted), ("label", d.labels)]
        if let t = d.target { tensors.append(("target", t)) }
        try run.store.writeTensors(file, tensors, fingerprint: fingerprint)
        run.tensors[.predictions] = logits
        let accuracy = zip(predicted.int64s, d.labels.int64s).filter { $0 == $1 }.count
        return "accuracy \(accuracy)/\(d.count)"
    }

    /// The class with the highest logit of each row (the first on a tie).
    static func argmax(_ logits: Tensor) -> Tensor {
        let (n, k) = (logits.shape[0], logits.shape[1])
        return Tensor((0..<n).map { s -> Int64 in
            let row = logits.floats[(s * k)..<(s * k + k)]
            return Int64(row.indices.max { row[$0] < row[$1] }! - s * k)
        }, shape: [n])
    }
}
