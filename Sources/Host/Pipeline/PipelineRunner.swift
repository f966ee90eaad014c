import Foundation
import Logging
import QuacPluginAPI

/// Runs a pipeline manifest: data -> classifier -> converter -> attributors -> scorers, writing the
/// results store. Stages a manifest leaves out are skipped; finished units are reused on a rerun.
public final class PipelineRunner {
    public let manifest: PipelineManifest
    public let registry: PluginRegistry
    public let store: ResultsStore
    let progress: RunProgress
    let context: RunContext
    /// Fingerprints of the trained state of plugins trained before the run, by manifest pointer.
    var trainedStates: [String: String] = [:]

    public static let toolVersion = "0.1.0"

    public init(manifest: PipelineManifest, extraPluginPaths: [URL] = [], progress: RunProgress = SilentProgress(),
                context: RunContext = RunContext()) {
        self.manifest = manifest
        registry = PluginRegistry(searchPath: PluginRegistry.defaultSearchPath(extra: manifest.pluginPaths + extraPluginPaths))
        store = ResultsStore(root: manifest.output)
        self.progress = progress
        self.context = context
    }

    /// What a run produced, for the CLI's summary and --json.
    public struct Summary {
        public var output: URL
        public var samples: Int
        public var computed: [String] = []
        public var reused: [String] = []
        /// Per attributor, per scorer: median score.
        public var medians: [String: [String: Double]] = [:]
    }

    // MARK: Resolution (no code loaded)

    func manifestFor(_ use: PipelineManifest.PluginUse, kind: PluginKind) throws -> PluginManifest {
        let m: PluginManifest
        do { m = try registry.manifest(id: use.plugin) } catch let e as QuacError {
            throw QuacError.at(manifest.file, use.pointer + "/plugin", e.message)
        }
        guard m.kind == kind else {
            throw QuacError.at(manifest.file, use.pointer + "/plugin", "\(use.plugin) is a \(m.kind.rawValue), expected a \(kind.rawValue)")
        }
        let violations = try m.parameterSchema().validate(use.params)
        if let v = violations.first { throw QuacError.at(manifest.file, use.pointer + "/params" + v.pointer, v.message) }
        return m
    }

    /// Everything `quac-host validate` checks: the schema (done when loading), plugin ids and kinds,
    /// parameters against each plugin's schema, and what each plugin requires of the run.
    public func validate() throws {
        var uses: [(PipelineManifest.PluginUse, PluginKind)] = []
        if case .plugin(let c) = manifest.classifier { uses.append((c, .classifier)) }
        if case .foreign(let f) = manifest.classifier {
            // The signature is checked without loading the library.
            do { _ = try CSignature.parse(f.signature) } catch let e as QuacError {
                throw QuacError.at(manifest.file, f.pointer + "/signature", e.message)
            }
        }
        if let c = manifest.converter { uses.append((c, .converter)) }
        uses += manifest.attributors.map { ($0, .attributor) } + manifest.scorers.map { ($0, .scorer) }
        for (use, kind) in uses {
            let m = try manifestFor(use, kind: kind)
            try checkRequirements(m, use: use, classifierInfo: nil)
        }
        if manifest.classifier == nil && !(manifest.attributors.isEmpty && manifest.scorers.isEmpty && manifest.converter == nil) {
            let needing = (manifest.attributors + manifest.scorers).first
            throw QuacError.at(manifest.file, needing?.pointer ?? "/classifier", "the pipeline has plugins to run but no \"classifier\"")
        }
    }

    func checkRequirements(_ m: PluginManifest, use: PipelineManifest.PluginUse, classifierInfo: ClassifierInfo?) throws {
        func fail(_ why: String) -> QuacError { QuacError.at(manifest.file, use.pointer, "\(use.plugin) \(why)") }
        for r in m.requires {
            switch r {
            case .classifier:
                if manifest.classifier == nil { throw fail("needs a classifier, and the pipeline has none") }
            case .classifierVJP:
                if manifest.classifier == nil { throw fail("needs a classifier, and the pipeline has none") }
                if case .foreign = manifest.classifier {
                    throw fail("needs gradients (classifier.vjp), but the classifier is a foreign C function, which is forward-only")
                }
                if let info = classifierInfo, !info.hasVJP { throw fail("needs gradients (classifier.vjp), but the classifier is forward-only") }
            case .classifierModifiedBackward:
                if case .foreign = manifest.classifier { throw fail("needs the classifier extension \(QUAC_EXT_MODIFIED_BACKWARD_NAME), which a foreign C function cannot offer") }
                if let info = classifierInfo, !info.hasModifiedBackward { throw fail("needs the classifier extension \(QUAC_EXT_MODIFIED_BACKWARD_NAME), which the classifier does not offer") }
            case .counterfactual:
                if manifest.converter == nil && !manifest.data.hasCounterfactuals {
                    throw fail("needs counterfactuals: add a \"converter\" or give the data an \"x_cf\"")
                }
            case .converter:
                if manifest.converter == nil { throw fail("needs a converter, and the pipeline has none") }
            }
        }
    }

    // MARK: Running

    /// `quac-host train`: trains (or reloads) every plugin of the manifest that has a "train" block,
    /// and nothing else. Returns the names of the trained plugins.
    public func trainOnly() throws -> [String] {
        try validate()
        var trained: [String] = []
        var info: ClassifierInfo?
        if let c = manifest.classifier {
            let (classifier, _) = try makeClassifier(c)
            context.classifier = classifier
            info = try classifier.info()
            if case .plugin(let u) = c, u.train != nil { trained.append(u.name) }
        }
        let uses = [manifest.converter].compactMap { $0 } + manifest.attributors + manifest.scorers
        for u in uses where u.train != nil {
            guard let info else { throw QuacError.at(manifest.file, u.pointer + "/train", "training needs the pipeline's classifier") }
            let kind: PluginKind = u.pointer.hasPrefix("/converter") ? .converter : u.pointer.hasPrefix("/attributors") ? .attributor : .scorer
            _ = try makePlugin(u, kind: kind, info: info)
            trained.append(u.name)
        }
        return trained
    }

    public func run() throws -> Summary {
        try validate()
        let data = try Dataset.load(manifest.data)
        progress.note("data: \(data.count) samples of shape \(Array(data.x.shape.dropFirst()))")
        var summary = Summary(output: manifest.output, samples: data.count)
        guard let classifierUse = manifest.classifier else {
            try writeRunRecord(plugins: [], dataFingerprint: try dataFingerprint())
            return summary
        }

        // Classifier.
        let (classifier, classifierRecord) = try makeClassifier(classifierUse)
        context.classifier = classifier
        let info: ClassifierInfo
        do { info = try classifier.info() } catch { throw QuacError.wrap(error, context: "\(manifest.file): \(classifierPointer)") }
        if let p = info.problem(withBatch: data.x) {
            throw QuacError.at(manifest.file, classifierPointer, "the data does not fit the classifier: \(p)")
        }
        if let bad = data.labels.int64s.first(where: { $0 >= info.numClasses }) {
            throw QuacError.at(manifest.file, "/data/label", "label \(bad) is not a class of the classifier (it has \(info.numClasses))")
        }
        let samples = data.withTargets(mode: manifest.data.targets, numClasses: info.numClasses)
        summary.samples = samples.count
        let dataFP = try dataFingerprint()
        let classifierFP = Fingerprint.of(["classifier": classifierRecord, "data": .string(dataFP)])
        var records: [JSONValue] = [classifierRecord]

        // Plugins, all created (and checked against the run) before any work starts.
        let converter = try manifest.converter.map { try makePlugin($0, kind: .converter, info: info) }
        context.converter = converter
        let attributors = try manifest.attributors.map { try makePlugin($0, kind: .attributor, info: info) }
        let scorers = try manifest.scorers.map { try makePlugin($0, kind: .scorer, info: info) }
        for p in [converter].compactMap({ $0 }) + attributors + scorers { records.append(try pluginRecord(p)) }
        try writeRunRecord(plugins: records, dataFingerprint: dataFP)

        try writeInputs(samples, fingerprint: Fingerprint.of(["inputs": .string(dataFP), "targets": .string(manifest.data.targets.rawValue)]))
        _ = try predict(samples, classifier: classifier, fingerprint: classifierFP, summary: &summary)

        // Counterfactuals: from the data, or from the converter.
        var cf = samples.xCF
        var cfFP = Fingerprint.of(["data_counterfactuals": .string(dataFP)])
        if let converter, cf == nil {
            cfFP = Fingerprint.of(["converter": try pluginRecord(converter), "classifier": .string(classifierFP), "seed": .int(Int64(manifest.seed))])
            cf = try convert(samples, converter: converter, fingerprint: cfFP, summary: &summary)
        }

        // Attributions, then every scorer on every attribution.
        for (use, attributor) in zip(manifest.attributors, attributors) {
            let fp = Fingerprint.of(["attributor": try pluginRecord(attributor), "classifier": .string(classifierFP),
                                     "counterfactuals": .string(cfFP), "seed": .int(Int64(manifest.seed)),
                                     "batch_size": .int(Int64(manifest.batchSize))])
            let normalized = try attribute(samples, cf: cf, use: use, attributor: attributor, fingerprint: fp, summary: &summary)
            for (scorerUse, scorer) in zip(manifest.scorers, scorers) {
                let sfp = Fingerprint.of(["scorer": try pluginRecord(scorer), "attribution": .string(fp), "classifier": .string(classifierFP)])
                let median = try scoreMethod(samples, cf: cf, map: normalized, method: use.name, scorerUse: scorerUse,
                                             scorer: scorer, fingerprint: sfp, summary: &summary)
                summary.medians[use.name, default: [:]][scorerUse.name] = median
            }
        }
        return summary
    }

    var classifierPointer: String {
        if case .foreign = manifest.classifier { return "/classifier/foreign" }
        return "/classifier"
    }

    private func makeClassifier(_ use: PipelineManifest.ClassifierUse) throws -> (Classifier, JSONValue) {
        switch use {
        case .plugin(let u):
            let m = try manifestFor(u, kind: .classifier)
            let instance = try create(m, u)
            var record = try pluginRecord(instance)
            if let trained = try trainIfRequested(instance, u, numClasses: nil) {
                record = .object({ var o = record.objectValue!; o["trained_model"] = .string(trained); return o }())
            }
            return (instance, record)
        case .foreign(let spec):
            let c = try ForeignClassifier(spec: spec, manifestFile: manifest.file)
            return (c, c.record)
        }
    }

    private func makePlugin(_ use: PipelineManifest.PluginUse, kind: PluginKind, info: ClassifierInfo) throws -> PluginInstance {
        let m = try manifestFor(use, kind: kind)
        try checkRequirements(m, use: use, classifierInfo: info)
        let instance = try create(m, use)
        if let trained = try trainIfRequested(instance, use, numClasses: info.numClasses) { trainedStates[use.pointer] = trained }
        return instance
    }

    private func create(_ m: PluginManifest, _ use: PipelineManifest.PluginUse) throws -> PluginInstance {
        do {
            return try PluginInstance(manifest: m, params: PathParameters.resolve(use.params, schema: m.parameters, base: manifest.directory),
                                      name: use.name, run: context, paramsSource: "\(manifest.file): \(use.pointer)/params")
        } catch let e as QuacError where e.message.hasPrefix(manifest.file) {
            throw e
        } catch {
            throw QuacError.wrap(error, context: "\(manifest.file): \(use.pointer)")
        }
    }

    private func pluginRecord(_ p: PluginInstance) throws -> JSONValue {
        let trained = manifestPointer(of: p).flatMap { trainedStates[$0] }
        return [
            "name": .string(p.name), "plugin": .string(p.id), "kind": .string(p.kind.rawValue),
            "version": .string(p.descriptor.version), "library": .string(p.library.url.path),
            "library_sha256": .string(try SHA256.hex(fileAt: p.library.url)),
            "abi_version": .string("\(p.library.abiMajor).\(p.library.abiMinor)"), "params": p.parameters,
            "trained_model": trained.map { .string($0) } ?? .null,
        ]
    }

    private func manifestPointer(of p: PluginInstance) -> String? {
        let uses = [manifest.converter].compactMap { $0 } + manifest.attributors + manifest.scorers
        return uses.first { $0.name == p.name && $0.plugin == p.id }?.pointer
    }

    private func dataFingerprint() throws -> String {
        var files = JSONObject()
        for f in manifest.data.files { files[f.path] = .string(try SHA256.hex(fileAt: f)) }
        return Fingerprint.of(["spec": manifest.raw["data"] ?? .null, "files": .object(files)])
    }

    private func writeRunRecord(plugins: [JSONValue], dataFingerprint: String) throws {
        var files = JSONObject()
        for f in manifest.data.files { files[f.path] = .string((try? SHA256.hex(fileAt: f)) ?? "") }
        let record: JSONValue = [
            "tool": "quac-host", "tool_version": .string(Self.toolVersion),
            "abi_version": .string("\(QUAC_ABI_VERSION_MAJOR).\(QUAC_ABI_VERSION_MINOR)"),
            "manifest_path": .string(manifest.file), "manifest": manifest.raw,
            "seed": .int(Int64(manifest.seed)), "seed_rule": "each call's seed is the first 8 bytes of SHA-256(\"<seed>/<stage>/<batch index>\"), little endian",
            "data_files_sha256": .object(files), "data_fingerprint": .string(dataFingerprint),
            "plugins": .array(plugins),
        ]
        try store.writeJSON("run.json", record)
    }

    /// The seed of one call: derived from the run's seed, so every call is replayable.
    func callSeed(_ stage: String, _ batch: Int) -> UInt64 {
        let digest = SHA256.hex(Data("\(manifest.seed)/\(stage)/\(batch)".utf8))
        return UInt64(digest.prefix(16), radix: 16) ?? 0
    }

    func batches(_ n: Int) -> [Range<Int>] {
        stride(from: 0, to: n, by: manifest.batchSize).map { $0..<min($0 + manifest.batchSize, n) }
    }

    /// Runs `body(batch index, rows)` over the batches of `count` samples, with progress and
    /// cancellation between batches; returns the batch ranges.
    @discardableResult
    func forEachBatch(_ stage: String, count: Int, _ body: (Int, Range<Int>) throws -> Void) throws -> [Range<Int>] {
        let parts = batches(count)
        progress.stageStarted(stage, total: parts.count)
        for (i, r) in parts.enumerated() {
            try checkCancelled()
            try body(i, r)
            progress.stageAdvanced(stage, done: i + 1, total: parts.count)
        }
        return parts
    }

    // MARK: Stages

    /// The samples as explained (after limit and target expansion), so the results store is
    /// self-contained: `quac-host report` draws queries from it without the original data files.
    private func writeInputs(_ d: Dataset, fingerprint: String) throws {
        let file = "inputs.safetensors"
        if store.finished(file, fingerprint: fingerprint) != nil { return }
        var tensors: [(String, Tensor)] = [("x", d.x), ("label", d.labels)]
        if let t = d.target { tensors.append(("target", t)) }
        if let c = d.xCF { tensors.append(("x_cf", c)) }
        try store.writeTensors(file, tensors, fingerprint: fingerprint)
    }

    private func predict(_ d: Dataset, classifier: Classifier, fingerprint: String, summary: inout Summary) throws -> Tensor {
        let file = "predictions.safetensors"
        if let done = store.finished(file, fingerprint: fingerprint), let logits = done.tensors["logits"] {
            summary.reused.append("predictions")
            return logits
        }
        let stage = "classify"
        var outs: [Tensor] = []
        try forEachBatch(stage, count: d.count) { _, r in
            do { outs.append(try classifier.forward(d.x.rows(r))) } catch { throw QuacError.wrap(error, context: "\(manifest.file): \(classifierPointer)") }
        }
        let logits = outs.isEmpty ? Tensor(zeros: [0, try classifier.info().numClasses]) : Tensor.concatenate(outs)
        let k = logits.shape[1]
        let predicted = Tensor((0..<d.count).map { s -> Int64 in
            let row = logits.floats[(s * k)..<(s * k + k)]
            return Int64(row.indices.max { row[$0] < row[$1] }! - s * k)
        }, shape: [d.count])
        var tensors: [(String, Tensor)] = [("logits", logits), ("predicted", predicted), ("label", d.labels)]
        if let t = d.target { tensors.append(("target", t)) }
        try store.writeTensors(file, tensors, fingerprint: fingerprint)
        let accuracy = zip(predicted.int64s, d.labels.int64s).filter { $0 == $1 }.count
        progress.stageFinished(stage, summary: "accuracy \(accuracy)/\(d.count)")
        summary.computed.append("predictions")
        return logits
    }

    private func convert(_ d: Dataset, converter: PluginInstance, fingerprint: String, summary: inout Summary) throws -> Tensor {
        let file = "counterfactuals/counterfactuals.safetensors"
        if let done = store.finished(file, fingerprint: fingerprint), let cf = done.tensors["counterfactual"] {
            summary.reused.append("counterfactuals")
            return cf
        }
        let stage = "convert \(converter.name)"
        var outs: [Tensor] = [], docs: [JSONObject?] = []
        let parts = try forEachBatch(stage, count: d.count) { i, r in
            let batch = BatchInputs(x: d.x.rows(r), source: d.labels.rows(r), target: d.target?.rows(r), seed: callSeed(stage, i))
            let out = try call(converter, pointer: manifest.converter!.pointer) { try converter.convert(batch) }
            outs.append(out.tensors["counterfactual"]!)
            docs.append(out.json)
        }
        let cf = Tensor.concatenate(outs)
        try store.writeTensors(file, [("counterfactual", cf)], fingerprint: fingerprint)
        if let doc = JSONMerge.batches(docs, sizes: parts.map(\.count)) { try store.writeJSON("counterfactuals/converter.json", .object(doc)) }
        progress.stageFinished(stage, summary: "\(d.count) counterfactuals")
        summary.computed.append("counterfactuals")
        return cf
    }

    /// Runs one attributor over all samples; returns the per-sample normalized maps the scorers get.
    private func attribute(_ d: Dataset, cf: Tensor?, use: PipelineManifest.PluginUse, attributor: PluginInstance,
                           fingerprint: String, summary: inout Summary) throws -> Tensor {
        let file = "attributions/\(use.name).safetensors"
        if let done = store.finished(file, fingerprint: fingerprint), let n = done.tensors["normalized"] {
            summary.reused.append("attributions/\(use.name)")
            return n
        }
        let stage = "attribute \(use.name)"
        var outs: [Tensor] = [], docs: [JSONObject?] = []
        let start = Date()
        let parts = try forEachBatch(stage, count: d.count) { i, r in
            let batch = BatchInputs(x: d.x.rows(r), source: d.labels.rows(r), target: d.target?.rows(r),
                                    xCF: cf?.rows(r), seed: callSeed(stage, i))
            let out = try call(attributor, pointer: use.pointer) { try attributor.attribute(batch) }
            outs.append(out.tensors["attribution"]!)
            docs.append(out.json)
        }
        let seconds = Date().timeIntervalSince(start)
        let raw = outs.isEmpty ? Tensor(zeros: d.x.shape) : Tensor.concatenate(outs)
        let normalized = AttributionMaps.normalizedPerSample(raw)
        try store.writeTensors(file, [("attribution", raw), ("normalized", normalized)], fingerprint: fingerprint,
                               metadata: ["method": use.name, "plugin": use.plugin, "seconds": String(format: "%.6f", seconds)])
        if let doc = JSONMerge.batches(docs, sizes: parts.map(\.count)) { try store.writeJSON("attributions/\(use.name).json", .object(doc)) }
        progress.stageFinished(stage, summary: String(format: "%.2f s (%.1f ms/sample)", seconds, 1000 * seconds / Double(max(d.count, 1))))
        summary.computed.append("attributions/\(use.name)")
        return normalized
    }

    private func scoreMethod(_ d: Dataset, cf: Tensor?, map: Tensor, method: String, scorerUse: PipelineManifest.PluginUse,
                             scorer: PluginInstance, fingerprint: String, summary: inout Summary) throws -> Double {
        let jsonFile = "scores/\(method).json"
        let tensorFile = "scores/\(method).\(scorerUse.name).safetensors"
        var doc = store.readJSON(jsonFile)?.objectValue ?? JSONObject([("method", .string(method))])
        var scorers = doc["scorers"]?.objectValue ?? JSONObject()
        if let prior = scorers[scorerUse.name], prior["fingerprint"]?.stringValue == fingerprint,
           store.finished(tensorFile, fingerprint: fingerprint) != nil, let median = prior["median"]?.doubleValue {
            summary.reused.append("scores/\(method)/\(scorerUse.name)")
            return median
        }
        let stage = "score \(method) with \(scorerUse.name)"
        var tensors: [String: [Tensor]] = [:], names: [String] = [], docs: [JSONObject?] = []
        let parts = try forEachBatch(stage, count: d.count) { i, r in
            let batch = BatchInputs(x: d.x.rows(r), source: d.labels.rows(r), target: d.target?.rows(r),
                                    xCF: cf?.rows(r), attribution: map.rows(r), seed: callSeed(stage, i))
            let out = try call(scorer, pointer: scorerUse.pointer) { try scorer.score(batch) }
            for name in out.names {
                let t = out.tensors[name]!
                guard t.shape.first == r.count else {
                    throw QuacError.at(manifest.file, scorerUse.pointer, "plugin \(scorer.id): output \"\(name)\" has shape \(t.shape); every scorer output must have one row per sample (\(r.count))")
                }
                if tensors[name] == nil { names.append(name) }
                tensors[name, default: []].append(t)
            }
            docs.append(out.json)
        }
        let merged = names.map { ($0, Tensor.concatenate(tensors[$0]!)) }
        let scores = merged.first { $0.0 == "score" }?.1.floatArray().map(Double.init) ?? []
        let stats = Statistics(scores)
        var entry = JSONObject()
        entry["plugin"] = .string(scorer.id)
        entry["fingerprint"] = .string(fingerprint)
        entry["median"] = .double(stats.median)
        entry["q25"] = .double(stats.q25)
        entry["q75"] = .double(stats.q75)
        entry["mean"] = .double(stats.mean)
        entry["score"] = .array(scores.map { .double($0) })
        if let extra = JSONMerge.batches(docs, sizes: parts.map(\.count)) { for (k, v) in extra where entry[k] == nil { entry[k] = v } }
        entry["tensors"] = .string(tensorFile)
        try store.writeTensors(tensorFile, merged, fingerprint: fingerprint)
        scorers[scorerUse.name] = .object(entry)
        doc["scorers"] = .object(scorers)
        try store.writeJSON(jsonFile, .object(doc))
        progress.stageFinished(stage, summary: String(format: "median %.4f", stats.median))
        summary.computed.append("scores/\(method)/\(scorerUse.name)")
        return stats.median
    }

    /// A plugin call whose failure is reported against the manifest entry that asked for it.
    private func call(_ p: PluginInstance, pointer: String, _ body: () throws -> PluginOutputs) throws -> PluginOutputs {
        do { return try body() } catch { throw QuacError.wrap(error, context: "\(manifest.file): \(pointer)") }
    }

    private func checkCancelled() throws {
        if context.isCancelled { throw QuacError.cancelled }
    }
}

let QUAC_EXT_MODIFIED_BACKWARD_NAME = "quac.classifier.modified-backward/1"

extension DataSpec {
    var hasCounterfactuals: Bool {
        switch source {
        case .safetensors(_, _, _, let cf, _): return cf != nil
        case .npy(_, _, let cf, _): return cf != nil
        default: return false
        }
    }
}
