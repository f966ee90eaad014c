import Foundation

/// Trains a plugin that has a "train" block (a converter, an attributor such as a learned explainer, a
/// scorer) on its own data, saves it under models/<name>.safetensors and reuses it while nothing it
/// depends on changed. The training data may hold fields other parts of the run compute over the
/// training and validation samples: another attributor's maps ("targets_from"), the classifier's
/// outputs ("teacher"), counterfactuals ("counterfactuals"), concepts (when the run has a concept
/// model). Those fields are computed here and kept under models/<name>.data/ with a fingerprint of
/// their own inputs. The run's classifier is trained by this stage too, when it is created, before
/// anything else: its training data has no computed fields.
final class TrainStage: PipelineStage, StageKind {
    static func stages(for run: RunState) throws -> [PipelineStage] {
        let uses = [run.manifest.conceptModel, run.manifest.converter].compactMap { $0 } + run.manifest.attributors + run.manifest.scorers
        return uses.filter { $0.train != nil }.map { TrainStage($0, in: run.manifest, mapSources: run.mapSources($0)) }
    }

    let use: PipelineManifest.PluginUse
    var pluginUse: PipelineManifest.PluginUse? { use }
    let spec: JSONValue
    let label: String
    let needs: [Artifact]
    let produces: [Artifact]
    /// The run's classifier: trained first, on its data alone.
    let isClassifier: Bool
    /// The run's concept model: trained on its splits' own concepts.
    let isConceptModel: Bool
    /// The attributors whose maps the training data gets as "maps.<name>" (MapSources).
    let mapSources: [String]
    var pointer: String { use.pointer + "/train" }
    var model: String { "models/\(use.name).safetensors" }
    var recordFile: String { "models/\(use.name).json" }

    init(_ use: PipelineManifest.PluginUse, in m: PipelineManifest, mapSources: [String] = []) {
        self.use = use
        self.mapSources = mapSources
        spec = use.train ?? .null
        label = "train \(use.name)"
        isClassifier = use.pointer == "/classifier"
        isConceptModel = use.pointer == "/concept_model"
        produces = [.trainedModel(use.pointer)]
        // Plugins this one's training data comes from are trained first.
        let maps = mapSources.compactMap { name in m.attributors.first { $0.name == name } }
        // The concept model, when it is trained, gives the concepts of splits that have none.
        let conceptModel = isClassifier || isConceptModel ? nil : m.conceptModel
        let sources = isClassifier || isConceptModel ? [] : ([Self.targetsSource(spec, m), m.converter, conceptModel].compactMap { $0 } + maps)
        needs = sources.filter { $0.train != nil && $0.pointer != use.pointer }.map { .trainedModel($0.pointer) }
    }

    /// The attributor whose maps are the targets, by name.
    static func targetsSource(_ spec: JSONValue, _ m: PipelineManifest) -> PipelineManifest.PluginUse? {
        spec["targets_from"]?.stringValue.flatMap { name in m.attributors.first { $0.name == name } }
    }

    func targetsSource(_ m: PipelineManifest) -> PipelineManifest.PluginUse? { Self.targetsSource(spec, m) }
    /// The attributors whose maps become fields, in order.
    func mapUses(_ m: PipelineManifest) -> [PipelineManifest.PluginUse] {
        mapSources.compactMap { name in m.attributors.first { $0.name == name } }
    }
    var wantsTeacher: Bool { spec["teacher"]?.boolValue ?? false }
    var wantsCounterfactuals: Bool { spec["counterfactuals"]?.boolValue ?? false }
    /// The concept model whose concepts the training data gets, when the split has none of its own.
    func conceptModel(_ m: PipelineManifest) -> PipelineManifest.PluginUse? { isClassifier || isConceptModel ? nil : m.conceptModel }

    func dataSpec(_ m: PipelineManifest, _ key: String) throws -> DataSpec? {
        try spec[key].map { try DataSpec($0, file: m.file, pointer: pointer + "/" + key, resolve: m.resolve) }
    }

    func seed(_ m: PipelineManifest) -> UInt64 { UInt64(spec["seed"]?.intValue ?? Int64(m.seed)) }

    /// Everything the computed fields depend on: the splits' files, the plugins that compute them, and
    /// the seeds and batches of their calls. Empty when nothing is computed.
    func fieldsFingerprint(_ run: RunState) throws -> String? {
        let m = run.manifest
        let source = targetsSource(m)
        let maps = mapUses(m)
        guard wantsTeacher || wantsCounterfactuals || source != nil || !maps.isEmpty || conceptModel(m) != nil else { return nil }
        var inputs = JSONObject([("files", .object(try splitFiles(m))), ("run_seed", .int(Int64(m.seed))),
                                 ("batch_size", .int(Int64(m.batchSize))), ("train", spec)])
        let attributors = (source.map { [$0] } ?? []) + maps
        if wantsTeacher || wantsCounterfactuals || !attributors.isEmpty { inputs["classifier"] = run.classifierRecord }
        if let source { inputs["targets_from"] = try run.record(try run.instance(source)) }
        if !maps.isEmpty { inputs["maps"] = .array(try maps.map { try run.record(try run.instance($0)) }) }
        if wantsCounterfactuals || !attributors.isEmpty, let c = m.converter { inputs["converter"] = try run.record(try run.instance(c)) }
        if let c = conceptModel(m) {
            inputs["concept_model"] = try run.record(try run.instance(c))
            inputs["concept_activation"] = .string(m.conceptActivation)
        }
        return Fingerprint.of(.object(inputs))
    }

    func splitFiles(_ m: PipelineManifest) throws -> JSONObject {
        var files = JSONObject()
        for key in ["data", "val"] { for f in try dataSpec(m, key)?.files ?? [] { files[f.path] = .string(try FileHashes.sha256(f)) } }
        return files
    }

    func fingerprint(_ run: RunState) throws -> String {
        let m = run.manifest
        let instance = try run.instance(use)
        var record = JSONObject([("plugin", .string(instance.id)), ("version", .string(instance.descriptor.version)),
                                 ("library_sha256", .string(try run.libraryHash(instance))),
                                 ("params", instance.parameters), ("train", spec), ("files", .object(try splitFiles(m))),
                                 ("seed", .int(Int64(seed(m))))])
        if let fields = try fieldsFingerprint(run) { record["fields"] = .string(fields) }
        return Fingerprint.of(.object(record))
    }

    func reuse(_ run: RunState, fingerprint: String) throws -> Bool {
        let url = run.modelStore.url(model)
        guard let prior = run.modelStore.readJSON(recordFile), prior["fingerprint"]?.stringValue == fingerprint,
              FileManager.default.fileExists(atPath: url.path) else { return false }
        try run.call(use, at: pointer) { try $0.load(from: url) }
        run.progress.note("\(use.name): reusing the trained model \(url.path)")
        return true
    }

    func finish(_ run: RunState, outputs: [PluginOutputs], rows: [Range<Int>], fingerprint: String, seconds _: Double) throws -> String {
        let m = run.manifest
        let instance = try run.instance(use)
        guard let trainSpec = try dataSpec(m, "data") else { throw QuacError.at(m.file, pointer + "/data", "missing the training data") }
        let trainData = try Dataset.load(trainSpec)
        // The run's classes; the classifier, trained before the run knows them, takes them from its labels.
        let classes = run.classifierInfo?.numClasses ?? Int((trainData.labels.int64s.max() ?? 0) + 1)
        let fieldsFP = try fieldsFingerprint(run)
        let train = try fields(run, trainData, split: "data", classes: classes, fingerprint: fieldsFP)
        let val = try dataSpec(m, "val").map { try fields(run, Dataset.load($0), split: "val", classes: classes, fingerprint: fieldsFP) }
        let previous = run.context.onProgress
        run.context.onProgress = { [progress = run.progress, label] _, done, total, _ in progress.stageAdvanced(label, done: Int(done), total: Int(total)) }
        defer { run.context.onProgress = previous }
        // Checkpoints belong to one fingerprint: a changed setting starts afresh instead of resuming.
        let checkpoints = run.modelStore.url("models/\(use.name).checkpoints/\(fingerprint.prefix(16))")
        // The record goes first: a model saved without its record is never reused.
        try? FileManager.default.removeItem(at: run.modelStore.url(recordFile))
        let start = Date()
        let out = try run.call(use, at: pointer) { p in
            let out = try p.train(fields: train.fields, val: val?.fields, numClasses: classes, checkpoints: checkpoints, seed: seed(m))
            try p.save(to: run.modelStore.url(model))
            return out
        }
        let seconds = Date().timeIntervalSince(start)
        try run.modelStore.writeJSON(recordFile, ["plugin": .string(instance.id), "fingerprint": .string(fingerprint),
                                             "seconds": .double(seconds), "samples": .int(Int64(train.count)),
                                             "fields": .array(train.fields.map { .string($0.0) }),
                                             "history": .object(out.json ?? JSONObject())])
        return String(format: "%d samples, %.1f s", train.count, seconds)
    }

    /// A split's dataset fields: "x", "label", "target", the data's "x_cf" and "concepts", and the fields
    /// the train block asks other parts of the run for, computed in batches (and kept for a rerun).
    /// `split` is the train block's key ("data" or "val").
    func fields(_ run: RunState, _ data: Dataset, split: String, classes: Int, fingerprint: String?) throws -> (fields: [(String, Tensor)], count: Int) {
        let m = run.manifest
        let at = pointer + "/" + split
        if let bad = data.labels.int64s.first(where: { $0 >= classes }) {
            throw QuacError.at(m.file, at + "/label", "label \(bad) is not a class of the classifier (it has \(classes))")
        }
        let d = data.withTargets(mode: .next, numClasses: classes)
        var out: [(String, Tensor)] = [("x", d.x), ("label", d.labels), ("target", d.target!)]
        if let c = d.concepts {
            if let names = run.context.conceptNames, names != c.names {
                throw QuacError.at(m.file, at + "/concepts", "concepts named \(c.names), the run's are \(names): the columns must be the same concepts in the same order")
            }
            out.append(("concepts", c.values))
        } else if isConceptModel {
            throw QuacError.at(m.file, at, "the concept model learns its splits' own concepts: give this split \"concepts\"")
        } else if !isClassifier && run.samples.concepts != nil {
            throw QuacError.at(m.file, at, "the run's data has concepts, this training data has none: give it \"concepts\" too")
        }
        if let c = d.xCF, !wantsCounterfactuals { out.append(("x_cf", c)) }
        guard let fingerprint else { return (out, d.count) }
        let cache = "models/\(use.name).data/\(split).safetensors"
        if let done = run.modelStore.finished(cache, fingerprint: fingerprint) {
            return (out + done.names.compactMap { n in done.tensors[n].map { (n, $0) } }, d.count)
        }
        var computed: [(String, Tensor)] = []
        /// One field over the split's batches. Failures are reported at the split, with the train
        /// block's key the field is for.
        func batches(_ what: String, _ body: (Range<Int>, UInt64) throws -> Tensor) throws -> Tensor {
            let stage = "\(label): \(what) of \(split)"
            let (pieces, _) = try run.eachBatch(stage, count: d.count, body)
            run.progress.stageFinished(stage, summary: "\(d.count) samples")
            return pieces.isEmpty ? Tensor(zeros: [0]) : Tensor.concatenate(pieces)
        }
        if wantsTeacher {
            let logits = try batches("teacher") { r, _ in
                do { return try run.classifier!.forward(d.x.rows(r)) } catch {
                    throw QuacError.wrap(error, context: "\(m.file): \(at) (teacher)")
                }
            }
            computed += [("teacher_logits", logits), ("teacher", PredictStage.argmax(logits))]
        }
        var concepts = d.concepts?.values
        if concepts == nil, let model = conceptModel(m) {
            let logits = try batches("concepts") { r, _ in try run.call(model, at: "\(at) (concept_model)") { try $0.forward(d.x.rows(r)) } }
            concepts = try ConceptStage.activate(logits, m.conceptActivation, file: m.file, pointer: model.pointer)
            computed.append(("concepts", concepts!))
        }
        var cf = d.xCF
        let source = targetsSource(m)
        let maps = mapUses(m)
        let sourceNeedsCF = ((source.map { [$0] } ?? []) + maps).contains { (try? run.instance($0))?.manifest.requires.contains(.counterfactual) ?? false }
        if cf == nil, wantsCounterfactuals || sourceNeedsCF, let converter = m.converter {
            cf = try batches("counterfactuals") { [concepts] r, seed in
                let b = BatchInputs(x: d.x.rows(r), source: d.labels.rows(r), target: d.target!.rows(r), seed: seed, concepts: concepts?.rows(r))
                return try run.call(converter, at: "\(at) (counterfactuals)") { try $0.convert(b).tensors["counterfactual"]! }
            }
        }
        if wantsCounterfactuals {
            guard let cf else { throw QuacError.at(m.file, at, "this data has no x_cf and the pipeline has no converter to make them") }
            computed.append(("x_cf", cf))
        }
        if let source {
            let targets = try batches("targets from \(source.name)") { [cf, concepts] r, seed in
                let b = BatchInputs(x: d.x.rows(r), source: d.labels.rows(r), target: d.target!.rows(r), xCF: cf?.rows(r),
                                    seed: seed, concepts: concepts?.rows(r))
                return try run.call(source, at: "\(at) (targets_from)") { try $0.attribute(b).tensors["attribution"]! }
            }
            computed.append(("targets", targets))
        }
        for map in maps {
            let values = try batches("maps of \(map.name)") { [cf, concepts] r, seed in
                let b = BatchInputs(x: d.x.rows(r), source: d.labels.rows(r), target: d.target!.rows(r), xCF: cf?.rows(r),
                                    seed: seed, concepts: concepts?.rows(r))
                return try run.call(map, at: "\(at) (maps of \(map.name))") { try $0.attribute(b).tensors["attribution"]! }
            }
            computed.append((MapSources.field(map.name), values))
        }
        try run.modelStore.writeTensors(cache, computed, fingerprint: fingerprint)
        return (out + computed, d.count)
    }
}
