import Foundation

/// Trains a plugin that has a "train" block (a converter, an attributor such as a learned explainer, a
/// scorer) on its own data, saves it under models/<name>.safetensors and reuses it while nothing it
/// depends on changed. The training data may hold fields other parts of the run compute over the
/// training and validation samples: another attributor's maps ("targets_from"), the classifier's
/// outputs ("teacher"), counterfactuals ("counterfactuals"). Those fields are computed here and kept
/// under models/<name>.data/ with their fingerprint. (The classifier itself is trained when it is
/// created: every other stage depends on it.)
final class TrainStage: PipelineStage, StageKind {
    static func stages(for run: RunState) throws -> [PipelineStage] {
        guard run.classifier != nil else { return [] }
        let uses = [run.manifest.conceptModel, run.manifest.converter].compactMap { $0 } + run.manifest.attributors + run.manifest.scorers
        return uses.filter { $0.train != nil }.map { TrainStage($0, in: run.manifest) }
    }

    let use: PipelineManifest.PluginUse
    let spec: JSONValue
    let label: String
    let needs: [Artifact]
    let produces: [Artifact]
    var pointer: String { use.pointer + "/train" }
    var model: String { "models/\(use.name).safetensors" }
    var recordFile: String { "models/\(use.name).json" }

    init(_ use: PipelineManifest.PluginUse, in m: PipelineManifest) {
        self.use = use
        spec = use.train ?? .null
        label = "train \(use.name)"
        produces = [.trainedModel(use.name)]
        // Plugins this one's training data comes from are trained first.
        let sources = [Self.targetsSource(spec, m), m.converter, m.conceptModel].compactMap { $0 }.filter { $0.train != nil && $0.pointer != use.pointer }
        needs = sources.map { .trainedModel($0.name) }
    }

    /// The attributor whose maps are the targets, by name.
    static func targetsSource(_ spec: JSONValue, _ m: PipelineManifest) -> PipelineManifest.PluginUse? {
        spec["targets_from"]?.stringValue.flatMap { name in m.attributors.first { $0.name == name } }
    }

    func targetsSource(_ m: PipelineManifest) -> PipelineManifest.PluginUse? { Self.targetsSource(spec, m) }

    var wantsTeacher: Bool { spec["teacher"]?.boolValue ?? false }
    var wantsCounterfactuals: Bool { spec["counterfactuals"]?.boolValue ?? false }

    func dataSpec(_ m: PipelineManifest, _ key: String) throws -> DataSpec? {
        try spec[key].map { try DataSpec($0, file: m.file, pointer: pointer + "/" + key, resolve: m.resolve) }
    }

    func fingerprint(_ run: RunState) throws -> String {
        let m = run.manifest
        let instance = try run.instance(use)
        var files = JSONObject()
        for key in ["data", "val"] { for f in try dataSpec(m, key)?.files ?? [] { files[f.path] = .string(try SHA256.hex(fileAt: f)) } }
        var record = JSONObject([("plugin", .string(instance.id)), ("version", .string(instance.descriptor.version)),
                                 ("library_sha256", .string(try run.libraryHash(instance))),
                                 ("params", instance.parameters), ("train", spec), ("files", .object(files)), ("seed", .int(Int64(seed(m))))])
        // Fields computed by other parts of the run depend on them too.
        if wantsTeacher || wantsCounterfactuals || targetsSource(m) != nil { record["classifier"] = .string(run.classifierFingerprint) }
        if let source = targetsSource(m) { record["targets_from"] = try run.record(try run.instance(source)) }
        if wantsCounterfactuals || targetsSource(m) != nil, let c = m.converter { record["converter"] = try run.record(try run.instance(c)) }
        if let c = m.conceptModel, c.pointer != use.pointer {
            record["concept_model"] = try run.record(try run.instance(c))
            record["concept_activation"] = .string(m.conceptActivation)
        }
        return Fingerprint.of(.object(record))
    }

    func seed(_ m: PipelineManifest) -> UInt64 { UInt64(spec["seed"]?.intValue ?? Int64(m.seed)) }

    func reuse(_ run: RunState, fingerprint: String) throws -> Bool {
        let url = run.store.url(model)
        guard let prior = run.store.readJSON(recordFile), prior["fingerprint"]?.stringValue == fingerprint,
              FileManager.default.fileExists(atPath: url.path) else { return false }
        try run.call(use) { try $0.load(from: url); return PluginOutputs() }
        run.progress.note("\(use.name): reusing the trained model \(url.path)")
        return true
    }

    func finish(_ run: RunState, outputs: [PluginOutputs], rows: [Range<Int>], fingerprint: String, seconds _: Double) throws -> String {
        let m = run.manifest
        let instance = try run.instance(use)
        guard let trainSpec = try dataSpec(m, "data") else { throw QuacError.at(m.file, pointer + "/data", "missing the training data") }
        let trainData = try Dataset.load(trainSpec)
        // The run's classes; a classifier trained before it has any takes them from its labels.
        let classes = run.classifierInfo?.numClasses ?? Int((trainData.labels.int64s.max() ?? 0) + 1)
        let train = try fields(run, trainData, split: "train", classes: classes, fingerprint: fingerprint)
        let val = try dataSpec(m, "val").map { try fields(run, Dataset.load($0), split: "val", classes: classes, fingerprint: fingerprint) }
        let previous = run.context.onProgress
        run.context.onProgress = { [progress = run.progress, label] _, done, total, _ in progress.stageAdvanced(label, done: Int(done), total: Int(total)) }
        defer { run.context.onProgress = previous }
        // Checkpoints belong to one fingerprint: a changed setting starts afresh instead of resuming.
        let checkpoints = run.store.url("models/\(use.name).checkpoints/\(fingerprint.prefix(16))")
        let start = Date()
        let out = try run.call(use) {
            try $0.train(fields: train.fields, val: val?.fields, numClasses: classes, checkpoints: checkpoints, seed: seed(m))
        }
        let url = run.store.url(model)
        do { try instance.save(to: url) } catch { throw QuacError.wrap(error, context: "\(m.file): \(pointer)") }
        let seconds = Date().timeIntervalSince(start)
        try run.store.writeJSON(recordFile, ["plugin": .string(instance.id), "fingerprint": .string(fingerprint),
                                             "seconds": .double(seconds), "samples": .int(Int64(train.count)),
                                             "fields": .array(train.fields.map { .string($0.0) }),
                                             "history": .object(out.json ?? JSONObject())])
        return String(format: "%d samples, %.1f s", train.count, seconds)
    }

    /// A split's dataset fields: "x", "label", "target", the data's "x_cf", and the fields the train
    /// block asks other parts of the run for, computed in batches (and kept for a rerun).
    func fields(_ run: RunState, _ data: Dataset, split: String, classes: Int, fingerprint: String) throws -> (fields: [(String, Tensor)], count: Int) {
        let m = run.manifest
        let d = data.withTargets(mode: .next, numClasses: classes)
        var out: [(String, Tensor)] = [("x", d.x), ("label", d.labels), ("target", d.target!)]
        if let c = d.concepts { out.append(("concepts", c.values)) }
        if let c = d.xCF, !wantsCounterfactuals { out.append(("x_cf", c)) }
        let source = targetsSource(m)
        let conceptModel = d.concepts == nil ? m.conceptModel.flatMap { $0.pointer == use.pointer ? nil : $0 } : nil
        guard wantsTeacher || wantsCounterfactuals || source != nil || conceptModel != nil else { return (out, d.count) }
        let cache = "models/\(use.name).data/\(split).safetensors"
        if let done = run.store.finished(cache, fingerprint: fingerprint) {
            return (out + done.names.compactMap { n in done.tensors[n].map { (n, $0) } }, d.count)
        }
        var computed: [(String, Tensor)] = []
        /// One field over the split's batches, each call seeded by this stage, the split and the field.
        func batches(_ what: String, _ body: (Range<Int>, UInt64) throws -> Tensor) throws -> Tensor {
            let stage = "\(label): \(what) of \(split)"
            let (pieces, _) = try run.eachBatch(stage, count: d.count, body)
            run.progress.stageFinished(stage, summary: "\(d.count) samples")
            return pieces.isEmpty ? Tensor(zeros: [0]) : Tensor.concatenate(pieces)
        }
        if wantsTeacher {
            let logits = try batches("teacher") { r, _ in
                do { return try run.classifier!.forward(d.x.rows(r)) } catch {
                    throw QuacError.wrap(error, context: "\(m.file): \(m.classifierPointer)")
                }
            }
            computed += [("teacher_logits", logits), ("teacher", PredictStage.argmax(logits))]
        }
        var concepts = d.concepts?.values
        if let conceptModel {
            let logits = try batches("concepts") { r, _ in
                try run.call(conceptModel) { PluginOutputs(names: ["logits"], tensors: ["logits": try $0.forward(d.x.rows(r))]) }.tensors["logits"]!
            }
            concepts = ConceptStage.activate(logits, m.conceptActivation)
            computed.append(("concepts", concepts!))
        }
        var cf = d.xCF
        let sourceNeedsCF = source.flatMap { try? run.instance($0) }?.manifest.requires.contains(.counterfactual) ?? false
        if cf == nil, wantsCounterfactuals || sourceNeedsCF, let converter = m.converter {
            cf = try batches("counterfactuals") { r, seed in
                let b = BatchInputs(x: d.x.rows(r), source: d.labels.rows(r), target: d.target!.rows(r), seed: seed)
                return try run.call(converter) { try $0.convert(b) }.tensors["counterfactual"]!
            }
        }
        if wantsCounterfactuals {
            guard let cf else { throw QuacError.at(m.file, pointer + "/counterfactuals", "the \(split) data has no x_cf and the pipeline has no converter") }
            computed.append(("x_cf", cf))
        }
        if let source {
            let targets = try batches("targets from \(source.name)") { r, seed in
                let b = BatchInputs(x: d.x.rows(r), source: d.labels.rows(r), target: d.target!.rows(r), xCF: cf?.rows(r),
                                    seed: seed, concepts: concepts?.rows(r))
                return try run.call(source) { try $0.attribute(b) }.tensors["attribution"]!
            }
            computed.append(("targets", targets))
        }
        try run.store.writeTensors(cache, computed, fingerprint: fingerprint)
        return (out + computed, d.count)
    }
}
