import Foundation
import Logging
import QuacPluginAPI

/// Runs a pipeline manifest. It resolves every plugin use once, loads the data, creates the classifier
/// and the plugins, then runs the stages the manifest asks for (see `StageKinds`) in the order their
/// dependencies give, reusing every stage whose fingerprint is unchanged.
public final class PipelineRunner {
    public let manifest: PipelineManifest
    public let registry: PluginRegistry
    public let store: ResultsStore
    /// Where trained models are: the output folder (a shard's own results go to its shard folder).
    let modelStore: ResultsStore
    /// The slice of the samples this run explains (`--shard I/N`); nil: all of them.
    public let shard: Shard?
    let progress: RunProgress
    let context: RunContext
    /// Every plugin use of the manifest, resolved, by manifest pointer.
    var resolved: [String: ResolvedPlugin] = [:]

    public static let toolVersion = "0.1.0"

    /// Write into an existing folder that does not look like a results folder (OutputLock).
    let force: Bool
    /// Where stages that call plugins run (StageWorker).
    let isolation: Isolation
    /// Set in a worker: it computes the stages its parent sends (StageWorker).
    let isWorker: Bool
    /// The parent's worker, started on first use.
    private var worker: StageWorker?

    public init(manifest: PipelineManifest, extraPluginPaths: [URL] = [], progress: RunProgress = SilentProgress(),
                context: RunContext = RunContext(), force: Bool = false, isolation: Isolation = .none, isWorker: Bool = false,
                shard: Shard? = nil) {
        self.manifest = manifest
        self.shard = shard
        self.force = force
        self.isolation = isolation
        self.isWorker = isWorker
        registry = PluginRegistry(searchPath: PluginRegistry.defaultSearchPath(extra: manifest.pluginPaths + extraPluginPaths))
        store = ResultsStore(root: shard?.root(in: manifest.output) ?? manifest.output, shard: shard)
        modelStore = shard == nil ? store : ResultsStore(root: manifest.output)
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

    /// Everything `quac-host validate` checks: the schema (done when loading), plugin ids and kinds,
    /// parameters against each plugin's schema, the train blocks, and what each plugin requires.
    public func validate() throws {
        let resolver = PluginResolver(registry: registry, manifest: manifest)
        if case .foreign(let f) = manifest.classifier {
            // The signature is checked without loading the library.
            do { _ = try CSignature.parse(f.signature) } catch let e as QuacError {
                throw QuacError.at(manifest.file, f.pointer + "/signature", e.message)
            }
        }
        var trainedNames: [String: String] = [:]
        for (use, kind) in manifest.pluginUses {
            let r = try resolver.resolve(use, kind: kind)
            resolved[use.pointer] = r
            try checkRequirements(r.manifest, use: use, classifierInfo: nil)
            try checkTrainBlock(use, kind: kind)
            // A trained model is saved as models/<name>: one name per trained plugin.
            if use.train != nil {
                if let first = trainedNames[use.name] {
                    throw QuacError.at(manifest.file, use.pointer + "/name", "the trained plugin at \(first) is named \"\(use.name)\" too; trained plugins need distinct names (their models are saved by name)")
                }
                trainedNames[use.name] = use.pointer
            }
        }
        try checkMapSources(resolved)
        // Every scorer scores some method: its maps are over what the scorer scores.
        for use in manifest.scorers {
            let domain = resolved[use.pointer]!.manifest.scores
            if !manifest.attributors.isEmpty, !manifest.attributors.contains(where: { resolved[$0.pointer]!.manifest.explains == domain }) {
                throw QuacError.at(manifest.file, use.pointer + "/plugin", "\(use.plugin) scores maps over the \(domain.rawValue), and no attributor of this pipeline explains the \(domain.rawValue)")
            }
        }
        for use in manifest.attributors where resolved[use.pointer]!.manifest.explains == .concepts {
            guard manifest.data.concepts != nil || manifest.conceptModel != nil else {
                throw QuacError.at(manifest.file, use.pointer + "/plugin", "\(use.plugin) explains concepts, and the run has none: give the data \"concepts\" or the pipeline a \"concept_model\"")
            }
        }
        if shard != nil, !manifest.convergence.isEmpty {
            throw QuacError.at(manifest.file, "/convergence", "a convergence study compares maps over all the samples and is not split into shards: run the manifest without --shard, or without \"convergence\"")
        }
        var studied: [String: String] = [:]
        for c in manifest.convergence {
            try checkConvergence(c)
            // A study is written to convergence/<method>.json: one per method.
            if let first = studied[c.method] {
                throw QuacError.at(manifest.file, c.pointer + "/method", "\(first) studies \"\(c.method)\" already; give each method one study")
            }
            studied[c.method] = c.pointer
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
            case .classifierLayers:
                if manifest.classifier == nil { throw fail("needs a classifier, and the pipeline has none") }
                if case .foreign = manifest.classifier { throw fail("needs the classifier extension \(QUAC_EXT_CLASSIFIER_LAYERS) (its inner layers), which a foreign C function cannot offer") }
                if let info = classifierInfo, !info.hasLayers { throw fail("needs the classifier extension \(QUAC_EXT_CLASSIFIER_LAYERS) (its inner layers), which the classifier does not offer") }
            case .classifierRandomize:
                if manifest.classifier == nil { throw fail("needs a classifier, and the pipeline has none") }
                if case .foreign = manifest.classifier { throw fail("needs the classifier extension \(QUAC_EXT_CLASSIFIER_RANDOMIZE) (re-drawing its layers), which a foreign C function cannot offer") }
                if let info = classifierInfo, !info.hasRandomize { throw fail("needs the classifier extension \(QUAC_EXT_CLASSIFIER_RANDOMIZE) (re-drawing its layers), which the classifier does not offer") }
            case .methodRerun:
                // Checked per scored method in checkMapSources: a map-taking method cannot be re-run.
                break
            case .counterfactual:
                if manifest.converter == nil && !manifest.data.hasCounterfactuals {
                    throw fail("needs counterfactuals: add a \"converter\" or give the data an \"x_cf\"")
                }
            case .converter:
                if manifest.converter == nil { throw fail("needs a converter, and the pipeline has none") }
            }
        }
    }

    /// A train block names only what the run has: a trainable plugin, an attributor to take targets
    /// from, a classifier for the teacher's outputs.
    func checkTrainBlock(_ use: PipelineManifest.PluginUse, kind: PluginKind) throws {
        guard let spec = use.train else { return }
        let pointer = use.pointer + "/train"
        let m = resolved[use.pointer]!.manifest
        guard m.trainable else { throw QuacError.at(manifest.file, pointer, "\(use.plugin) is not trainable (its manifest does not say \"trainable\": true)") }
        let derived = spec["targets_from"] != nil || spec["teacher"]?.boolValue == true || spec["counterfactuals"]?.boolValue == true
        if use.pointer == "/concept_model" && derived {
            throw QuacError.at(manifest.file, pointer, "the concept model learns its splits' own concepts: it cannot train on targets_from, teacher or counterfactuals")
        }
        if use.pointer == "/classifier" && derived {
            throw QuacError.at(manifest.file, pointer, "the classifier is trained before anything else of the run: it cannot train on targets_from, teacher or counterfactuals")
        }
        if let name = spec["targets_from"]?.stringValue {
            guard let source = manifest.attributors.first(where: { $0.name == name }) else {
                let names = manifest.attributors.map(\.name).joined(separator: ", ")
                throw QuacError.at(manifest.file, pointer + "/targets_from", "no attributor of this pipeline is named \"\(name)\" (attributors: \(names.isEmpty ? "none" : names))")
            }
            // Follow the chain of explainers learning from each other's maps: it must end.
            var chain = [use.name], next: PipelineManifest.PluginUse? = source
            while let s = next {
                if s.pointer == use.pointer {
                    throw QuacError.at(manifest.file, pointer + "/targets_from", "explainers cannot learn from each other's maps in a circle (\((chain + [use.name]).joined(separator: " -> ")))")
                }
                chain.append(s.name)
                next = TrainStage.targetsSource(s.train ?? .null, manifest)
                if chain.count > manifest.attributors.count + 1 { break }
            }
        }
        if derived && manifest.classifier == nil { throw QuacError.at(manifest.file, pointer, "training on targets_from, teacher or counterfactuals needs the pipeline's classifier") }
    }

    /// A convergence study names an attributor of the run and an integer parameter of its plugin.
    func checkConvergence(_ c: PipelineManifest.ConvergenceSpec) throws {
        guard let use = manifest.attributors.first(where: { $0.name == c.method }) else {
            throw QuacError.at(manifest.file, c.pointer + "/method", "no attributor of this pipeline is named \"\(c.method)\" (attributors: \(manifest.attributors.map(\.name).joined(separator: ", ")))")
        }
        guard use.train == nil else {
            throw QuacError.at(manifest.file, c.pointer + "/method", "\"\(c.method)\" is trained in this run: a convergence study reruns a method with new settings, which a trained model does not have")
        }
        let schema = resolved[use.pointer]!.manifest.parameters
        guard schema["properties"]?[c.parameter]?["type"]?.stringValue == "integer" else {
            let ints = (schema["properties"]?.objectValue ?? JSONObject()).filter { $0.value["type"]?.stringValue == "integer" }.map(\.key)
            throw QuacError.at(manifest.file, c.pointer + "/parameter", "\(use.plugin) has no integer parameter \"\(c.parameter)\" (it has: \(ints.isEmpty ? "none" : ints.joined(separator: ", ")))")
        }
        for (i, v) in c.values.enumerated() {
            let violations = try resolved[use.pointer]!.manifest.parameterSchema().validate(ConvergenceStage.overriding(use.params, c.parameter, v))
            if let bad = violations.first { throw QuacError.at(manifest.file, c.pointer + "/values/\(i)", "\(c.parameter) = \(v): \(bad.message)") }
        }
    }

    // MARK: Running

    /// `quac-host train`: trains (or reloads) every plugin of the manifest that has a "train" block,
    /// and nothing else. Returns the names of the trained plugins.
    public func trainOnly() throws -> [String] {
        let state = try prepare()
        defer { state.outputLock?.release() }
        defer { worker?.stop() }
        var trained: [String] = []
        if case .plugin(let u) = manifest.classifier, u.train != nil { trained.append(u.name) }
        let stages = try plannedStages(state)
        let wanted = stages.filter { $0 is TrainStage }
        try execute(Self.closure(of: wanted, in: stages), state)
        trained += wanted.compactMap { ($0 as? TrainStage)?.use.name }
        return trained
    }

    public func run() throws -> Summary {
        let state = try prepare()
        defer { state.outputLock?.release() }
        if isWorker {
            // Each stage sent, with what it needs and this worker did not do yet (reused from the store).
            let stages = try plannedStages(state)
            var done = Set<ObjectIdentifier>()
            StageWorker.serve { label in
                guard let target = stages.first(where: { $0.label == label }) else {
                    throw QuacError("\(manifest.file): no stage \"\(label)\" in this run", category: .internal)
                }
                let todo = Self.closure(of: [target], in: stages).filter { !done.contains(ObjectIdentifier($0)) || $0 === target }
                for stage in try Self.ordered(todo, available: Set(state.fingerprints.keys)) {
                    try state.checkCancelled()
                    try run(stage, state)
                    done.insert(ObjectIdentifier(stage))
                }
            }
            return state.summary
        }
        defer { worker?.stop() }
        let start = Date()
        // A shard's record says it finished: gone until it has, again.
        if shard != nil { try? FileManager.default.removeItem(at: store.url(Shard.recordFile)) }
        try writeRunRecord(state, data: (state.dataFiles, state.dataFingerprint))
        try execute(try plannedStages(state), state)
        // Trained models' fingerprints are known now.
        try writeRunRecord(state, data: (state.dataFiles, state.dataFingerprint))
        try? FileHashes.export(to: store.url(Self.hashesFile))
        if let shard { try ShardRecord.write(state, shard: shard, seconds: Date().timeIntervalSince(start)) }
        return state.summary
    }

    /// Validates, loads the data, creates (and if asked trains) the classifier and creates every other
    /// plugin, checked against the run.
    private func prepare() throws -> RunState {
        try validate()
        guard let classifierUse = manifest.classifier else { throw QuacError.at(manifest.file, "", "missing required property \"classifier\"") }
        let data = try Dataset.load(manifest.data)
        guard data.count > 0 else {
            throw QuacError.at(manifest.file, "/data", "the data has no samples: there is nothing to explain")
        }
        progress.note("data: \(data.count) samples of shape \(Array(data.x.shape.dropFirst()))")
        // Hashes of files an earlier run of this folder computed (unchanged files are not hashed again).
        FileHashes.load(from: store.url(Self.hashesFile))
        let hashes = try dataHashes()
        let dataFP = hashes.fingerprint
        // Nothing is written before the folder is ours (a worker's parent holds it). A shard holds its
        // own folder, so the shards of a run write at once; the output folder around it must be one
        // quac-host may write into.
        if let shard, !isWorker {
            try OutputLock.checkWritable(manifest.output, force: force)
            // Without target expansion the samples are known now: a shard that would be empty is
            // refused before its folder exists.
            if data.target != nil || manifest.data.targets == .next { try Self.checkNotEmpty(shard, total: data.count) }
        }
        let lock = isWorker ? nil : try OutputLock(writing: store.root, force: force)
        let state = RunState(manifest: manifest, store: store, modelStore: modelStore, progress: progress, context: context, samples: data,
                             dataFingerprint: dataFP)
        state.dataFiles = hashes.files
        state.outputLock = lock
        store.inputsFingerprint = InputsStage.fingerprint(state)
        // With process isolation the worker prepares the same run meanwhile (it loads the classifier's
        // weights while this process does), unless the classifier is trained first: the worker must
        // find its model finished.
        if case .process = isolation, !isWorker {
            if case .plugin(let u) = classifierUse, u.train != nil {} else { try stageWorker()?.warmUp() }
        }

        // Classifier (created by the worker first, when it is already started: see awaitWorker). When
        // the worker says what it is, this process takes its word and does not create it again.
        let classifier: Classifier
        if let announced = try announcedClassifier(classifierUse, state) {
            classifier = announced
        } else {
            try awaitWorker(manifest.classifierPointer, startIfNeeded: false)
            classifier = try makeClassifier(classifierUse, state)
        }
        context.classifier = classifier
        state.classifier = classifier
        let info: ClassifierInfo
        do { info = try classifier.info() } catch { throw QuacError.wrap(error, context: "\(manifest.file): \(manifest.classifierPointer)") }
        if isWorker, case .plugin = classifierUse { StageWorker.announce("classifier_info", info.json) }
        if let p = info.problem(withBatch: data.x) {
            throw QuacError.at(manifest.file, manifest.classifierPointer, "the data does not fit the classifier: \(p)")
        }
        if let bad = data.labels.int64s.first(where: { $0 >= info.numClasses }) {
            throw QuacError.at(manifest.file, "/data/label", "label \(bad) is not a class of the classifier (it has \(info.numClasses))")
        }
        state.classifierInfo = info
        state.samples = data.withTargets(mode: manifest.data.targets, numClasses: info.numClasses)
        state.totalSamples = state.samples.count
        if let shard {
            let total = state.samples.count
            try Self.checkNotEmpty(shard, total: total)
            let rows = shard.rows(of: total)
            state.samples = state.samples.rows(rows)
            state.rowOffset = rows.lowerBound
            progress.note("shard \(shard.tag): samples \(rows.lowerBound)..<\(rows.upperBound) of \(total)")
            state.summary.output = store.root
        }
        state.summary.samples = state.samples.count
        state.classifierFingerprint = Fingerprint.of(["classifier": state.classifierRecord, "data": .string(dataFP)])
        // Counterfactuals that come with the data; a converter stage makes them when there are none.
        if let cf = state.samples.xCF {
            state.tensors[.counterfactuals] = cf
            state.fingerprints[.counterfactuals] = Fingerprint.of(["data_counterfactuals": .string(dataFP)])
        }
        // Concepts that come with the data; a concept model's stage makes them otherwise.
        if let c = state.samples.concepts {
            state.tensors[.concepts] = c.values
            state.fingerprints[.concepts] = Fingerprint.of(["data_concepts": .string(dataFP)])
            context.conceptNames = c.names
        }

        // Every other plugin, created (and checked against the run) before any work starts.
        try awaitWorker(nil, startIfNeeded: true)
        for (use, _) in manifest.pluginUses where use.pointer != "/classifier" {
            try checkRequirements(resolved[use.pointer]!.manifest, use: use, classifierInfo: info)
            state.instances[use.pointer] = try create(use)
        }
        if isWorker { StageWorker.announce("prepared", true) }
        context.converter = manifest.converter.flatMap { state.instances[$0.pointer] }
        if let use = manifest.conceptModel {
            // The concepts' names are known before any stage runs (a trained explainer's data needs them).
            let k = try state.call(use) { try $0.info() }.numClasses
            let names = manifest.conceptNames ?? (0..<k).map { "c\($0)" }
            guard names.count == k else {
                throw QuacError.at(manifest.file, use.pointer + "/names", "\(names.count) names for the concept model's \(k) outputs")
            }
            context.conceptNames = names
        }
        return state
    }

    static func checkNotEmpty(_ shard: Shard, total: Int) throws {
        guard shard.count <= total else {
            throw QuacError("--shard \(shard.tag): \(shard.count) shards of \(total) samples would leave some empty; use at most \(total) shards")
        }
    }

    /// With a worker already started and a plugin classifier that is not trained here: the classifier
    /// as the worker announced it once it created it (`AnnouncedClassifier`), its library loaded but no
    /// instance created in this process. Nil when the worker did not say (it stopped, or failed on an
    /// ordinary error this process then meets and reports itself).
    private func announcedClassifier(_ use: PipelineManifest.ClassifierUse, _ state: RunState) throws -> Classifier? {
        guard case .process(_, _, let timeout) = isolation, !isWorker, let worker = stageWorker(), worker.isStarted,
              case .plugin(let u) = use, u.train == nil else { return nil }
        if let f = try worker.awaitClassifierInfo(u.pointer, timeout: { _ in u.timeout ?? timeout }, cancelled: { [context] in context.isCancelled }) {
            throw creationError(f)
        }
        guard let info = worker.classifierInfo else { return nil }
        let r = resolved[u.pointer]!
        let (library, descriptor): (PluginLibrary, PluginLibrary.Descriptor)
        do { (library, descriptor) = try PluginInstance.openLibrary(r.manifest) } catch {
            throw QuacError.wrap(error, context: "\(manifest.file): \(u.pointer)")
        }
        let identity = PluginIdentity(manifest: r.manifest, library: library, descriptor: descriptor, name: r.name, parameters: r.parameters)
        state.classifierRecord = try state.record(identity, pointer: u.pointer)
        return AnnouncedClassifier(identity: identity, info: info) { [unowned self] in try self.create(u) }
    }

    private func makeClassifier(_ use: PipelineManifest.ClassifierUse, _ state: RunState) throws -> Classifier {
        switch use {
        case .plugin(let u):
            let instance = try create(u)
            state.instances[u.pointer] = instance
            if u.train != nil { try execute([TrainStage(u, in: manifest)], state) }
            state.classifierRecord = try state.record(instance)
            return instance
        case .foreign(let spec):
            if isWorker { StageWorker.announce("creating", .string(manifest.classifierPointer)) }
            let c = try ForeignClassifier(spec: spec, manifestFile: manifest.file)
            if isWorker { StageWorker.announce("created", .string(manifest.classifierPointer)) }
            state.classifierRecord = c.record
            return c
        }
    }

    private func create(_ use: PipelineManifest.PluginUse) throws -> PluginInstance {
        let r = resolved[use.pointer]!
        let instance: PluginInstance
        if isWorker { StageWorker.announce("creating", .string(use.pointer)) }
        do { instance = try PluginInstance(r, run: context) } catch let e as QuacError where e.message.hasPrefix(manifest.file) {
            throw e
        } catch {
            throw QuacError.wrap(error, context: "\(manifest.file): \(use.pointer)")
        }
        if isWorker { StageWorker.announce("created", .string(use.pointer)) }
        if use.train != nil && !instance.isTrainable {
            throw QuacError.at(manifest.file, use.pointer + "/train", "\(use.plugin) is not trainable (its library offers no \(QUAC_EXT_TRAINER))")
        }
        return instance
    }

    // MARK: Stages

    private func plannedStages(_ state: RunState) throws -> [PipelineStage] {
        try StageKinds.all.flatMap { try $0.stages(for: state) }
    }

    /// `wanted` and every stage that produces something they need, transitively.
    static func closure(of wanted: [PipelineStage], in stages: [PipelineStage]) -> [PipelineStage] {
        var chosen: [ObjectIdentifier] = wanted.map(ObjectIdentifier.init)
        var queue = wanted
        while let s = queue.popLast() {
            for need in s.needs {
                for p in stages where p.produces.contains(need) && !chosen.contains(ObjectIdentifier(p)) {
                    chosen.append(ObjectIdentifier(p))
                    queue.append(p)
                }
            }
        }
        return stages.filter { chosen.contains(ObjectIdentifier($0)) }
    }

    /// The stages in an order where each runs after the stages that produce what it needs. Among the
    /// stages that can run, the one using the most recent result goes first (a method's scores right
    /// after its maps, so a failure later keeps whole methods), then the order given. A need no stage
    /// produces must already be in the run.
    static func ordered(_ stages: [PipelineStage], available: Set<Artifact>) throws -> [PipelineStage] {
        var producedAt: [Artifact: Int] = [:]
        var out: [PipelineStage] = [], rest = stages
        let producible = Set(stages.flatMap(\.produces))
        // What a stage here produces counts only once it has run, even when the run has a version of it.
        for a in available where !producible.contains(a) { producedAt[a] = 0 }
        for s in stages { for n in s.needs where !producible.contains(n) && !available.contains(n) {
            throw QuacError("stage \"\(s.label)\" needs \(n), which no stage of this run produces", category: .internal)
        } }
        while !rest.isEmpty {
            let ready = rest.indices.filter { i in rest[i].needs.allSatisfy { producedAt[$0] != nil || !producible.contains($0) } }
            guard !ready.isEmpty else {
                throw QuacError("the stages \(rest.map(\.label).joined(separator: ", ")) need each other's results", category: .internal)
            }
            func recency(_ i: Int) -> Int { rest[i].needs.compactMap { producedAt[$0] }.max() ?? 0 }
            let pick = ready.max { recency($0) < recency($1) || (recency($0) == recency($1) && $0 > $1) }!
            let s = rest.remove(at: pick)
            out.append(s)
            for a in s.produces { producedAt[a] = out.count }
        }
        return out
    }

    /// Runs stages in dependency order: reuse when the fingerprint is unchanged, else the batches (with
    /// progress, cancellation between batches and a seed per call) and the stage's merge-and-write.
    private func execute(_ stages: [PipelineStage], _ state: RunState) throws {
        // A unit that fails (a plugin's error, or its worker's crash or timeout) does not stop the
        // others: what does not need its results still runs, and the run ends with an error listing
        // the failures. A rerun retries exactly those (everything else is reused).
        var failures: [(label: String, error: Error)] = []
        var skipped: [String] = []
        var lost = Set<Artifact>()
        for stage in try Self.ordered(stages, available: Set(state.fingerprints.keys)) {
            try state.checkCancelled()
            if stage.needs.contains(where: lost.contains) {
                skipped.append(stage.label)
                lost.formUnion(stage.produces)
                continue
            }
            do {
                try run(stage, state)
            } catch let e as QuacError where e.category == .cancelled || e.category == .internal {
                throw e
            } catch {
                failures.append((stage.label, error))
                lost.formUnion(stage.produces)
                progress.note("\(stage.label): failed: \(QuacError.wrap(error).message)")
            }
        }
        guard let first = failures.first else { return }
        let firstError = QuacError.wrap(first.error)
        guard failures.count > 1 || !skipped.isEmpty else { throw firstError }
        let others = failures.dropFirst().map { "\($0.label): \(QuacError.wrap($0.error).message)" }
        var message = firstError.message
        if !others.isEmpty { message += "; also failed: " + others.joined(separator: "; ") }
        if !skipped.isEmpty { message += "; not run because they need a failed unit's results: " + skipped.joined(separator: ", ") }
        throw QuacError(message, category: firstError.category)
    }

    /// With process isolation, waits until the worker has created the plugin use at `pointer` (nil:
    /// all of them) before this process creates it: a plugin that crashes, exits or hangs while being
    /// created then stops the run with its name and what happened, instead of killing it. Only a
    /// worker already started is waited for unless `startIfNeeded`; the classifier trained first is
    /// created and trained in this process, before any worker.
    private func awaitWorker(_ pointer: String?, startIfNeeded: Bool) throws {
        guard case .process(_, _, let timeout) = isolation, !isWorker, let worker = stageWorker(),
              startIfNeeded || worker.isStarted else { return }
        let uses = manifest.pluginUses.map(\.0)
        func use(_ p: String?) -> PipelineManifest.PluginUse? { uses.first { $0.pointer == p } }
        if let f = try worker.awaitCreated(pointer, timeout: { use($0)?.timeout ?? timeout }, cancelled: { [context] in context.isCancelled }) {
            throw creationError(f)
        }
    }

    /// A plugin that crashed, ended the worker or hung while the worker created it, named by its use.
    private func creationError(_ f: StageWorker.CreationFailure) -> QuacError {
        let plugin = manifest.pluginUses.first { $0.0.pointer == f.pointer }?.0.plugin
            ?? (f.pointer == "/classifier/foreign" ? "the foreign classifier" : "a plugin")
        return QuacError.at(manifest.file, f.pointer, "plugin \(plugin) \(f.reason): nothing ran")
    }

    /// Where the run keeps the SHA-256 of its data files and plugin libraries (FileHashes).
    static let hashesFile = ".quac-hashes.json"

    /// The run's worker (created, not started, on first use); nil without process isolation.
    private func stageWorker() -> StageWorker? {
        guard case .process(let executable, let paths, _) = isolation, !isWorker else { return nil }
        if worker == nil {
            worker = StageWorker(manifestFile: manifest.file, executable: executable, pluginPaths: paths, hashes: store.url(Self.hashesFile),
                                 shard: shard)
        }
        return worker
    }

    /// Stages that call plugins, except the classifier's training: the classifier is made before the
    /// stages are planned (every other stage needs it), in the run's own process.
    static func runsInWorker(_ stage: PipelineStage) -> Bool {
        if stage is InputsStage { return false }
        if let t = stage as? TrainStage, t.isClassifier { return false }
        return true
    }

    /// One stage: reused when its fingerprint is unchanged, else its batches and its merge-and-write,
    /// here or in a worker (then reused from what the worker wrote).
    private func run(_ stage: PipelineStage, _ state: RunState) throws {
        let fingerprint = try stage.fingerprint(state)
        let reported = stage.produces.filter { $0 != .inputs && !($0.isTrainedModel) }.map(\.description)
        if try stage.reuse(state, fingerprint: fingerprint) {
            state.summary.reused += reported
        } else if shard != nil, let train = stage as? TrainStage {
            // Training is a job of its own that every shard waits for: a shard never trains.
            throw QuacError.at(manifest.file, train.pointer, "a shard does not train: the model \(modelStore.url(train.model).path) is missing or was trained on other settings; run `quac-host train \(manifest.file)` first (the training job of `quac-host slurm`)")
        } else if case .process(_, _, let timeout) = isolation, !isWorker, Self.runsInWorker(stage) {
            let start = Date()
            progress.stageStarted(stage.label, total: 0)
            try stageWorker()!.run(stage.label, timeout: stage.pluginUse?.timeout ?? timeout, progress: progress) { [context] in context.isCancelled }
            guard try stage.reuse(state, fingerprint: fingerprint) else {
                throw QuacError("\(stage.label): the worker ended (exit status 0) without writing the unit's results: a plugin ended the process early (exit?)")
            }
            progress.stageFinished(stage.label, summary: String(format: "in a worker, %.1f s", Date().timeIntervalSince(start)))
            state.summary.computed += reported
        } else {
            let start = Date()
            let (outputs, parts) = try state.eachBatch(stage.label, count: stage.count(state), offset: state.rowOffset) { rows, seed in
                try stage.batch(state, rows: rows, seed: seed)
            }
            let line = try stage.finish(state, outputs: outputs, rows: parts, fingerprint: fingerprint,
                                        seconds: Date().timeIntervalSince(start))
            progress.stageFinished(stage.label, summary: line)
            state.summary.computed += reported
        }
        for a in stage.produces { state.fingerprints[a] = fingerprint }
    }

    // MARK: Provenance

    /// The SHA-256 of every data file, and the data's fingerprint (the spec and those hashes): computed
    /// once per run.
    private func dataHashes() throws -> (files: JSONObject, fingerprint: String) {
        var files = JSONObject()
        for f in manifest.data.files { files[f.path] = .string(try FileHashes.sha256(f)) }
        return (files, Fingerprint.of(["spec": manifest.raw["data"] ?? .null, "files": .object(files)]))
    }

    private func writeRunRecord(_ state: RunState, data: (files: JSONObject, fingerprint: String)) throws {
        var plugins = [state.classifierRecord]
        for (use, _) in manifest.pluginUses where use.pointer != "/classifier" { plugins.append(try state.record(try state.instance(use))) }
        let record: JSONValue = [
            "tool": "quac-host", "tool_version": .string(Self.toolVersion),
            "abi_version": .string("\(QUAC_ABI_VERSION_MAJOR).\(QUAC_ABI_VERSION_MINOR)"),
            "manifest_path": .string(manifest.file), "manifest": manifest.raw,
            "seed": .int(Int64(manifest.seed)), "seed_rule": "each call's seed is the first 8 bytes of SHA-256(\"<seed>/<stage>\"), big endian; plugins draw each sample's random numbers from it and the sample",
            "data_files_sha256": .object(data.files), "data_fingerprint": .string(data.fingerprint),
            "plugins": .array(plugins),
        ]
        var object = record.objectValue!
        if let shard {
            let rows = state.rowOffset..<(state.rowOffset + state.samples.count)
            object["shard"] = ["index": .int(Int64(shard.index)), "count": .int(Int64(shard.count)),
                               "rows": [.int(Int64(rows.lowerBound)), .int(Int64(rows.upperBound))]]
        }
        try store.writeJSON("run.json", .object(object))
    }
}

let QUAC_EXT_MODIFIED_BACKWARD_NAME = "quac.classifier.modified-backward/1"

extension Artifact {
    var isTrainedModel: Bool { if case .trainedModel = self { return true } else { return false } }
}

extension PipelineManifest {
    /// Every plugin use with the kind it must have, in manifest order.
    var pluginUses: [(PluginUse, PluginKind)] {
        var uses: [(PluginUse, PluginKind)] = []
        if case .plugin(let c) = classifier { uses.append((c, .classifier)) }
        if let c = conceptModel { uses.append((c, .classifier)) }
        if let c = converter { uses.append((c, .converter)) }
        return uses + attributors.map { ($0, .attributor) } + scorers.map { ($0, .scorer) }
    }

    var classifierPointer: String {
        if case .foreign = classifier { return "/classifier/foreign" }
        return "/classifier"
    }
}

extension DataSpec {
    var hasCounterfactuals: Bool {
        switch source {
        case .safetensors(_, _, _, let cf, _): return cf != nil
        case .npy(_, _, let cf, _): return cf != nil
        default: return false
        }
    }
}
