import Foundation

/// What the stages of one run share: the manifest and results store, the samples, the classifier, the
/// resolved and created plugins, and every artifact produced so far with its fingerprint.
public final class RunState {
    public let manifest: PipelineManifest
    public let store: ResultsStore
    /// Where trained models are kept: the output folder, also for a shard (whose own results go to
    /// `store`, its shard folder).
    public let modelStore: ResultsStore
    /// The first of the run's samples among all the manifest resolves to (a shard's; 0 otherwise).
    public internal(set) var rowOffset = 0
    /// How many samples the manifest resolves to (a shard's `samples` are some of them).
    public internal(set) var totalSamples = 0
    /// The run's hold on its output folder (released when the run ends).
    var outputLock: OutputLock?
    public let progress: RunProgress
    public let context: RunContext
    /// The samples as explained (after limit and target expansion).
    public internal(set) var samples: Dataset
    public internal(set) var dataFingerprint: String
    /// The SHA-256 of each data file, by path.
    var dataFiles = JSONObject()
    /// The run's classifier (set when it is created, before any stage runs).
    public internal(set) var classifier: Classifier?
    public internal(set) var classifierInfo: ClassifierInfo?
    /// The classifier's provenance record (run.json) and its fingerprint.
    var classifierRecord: JSONValue = .null
    var classifierFingerprint: String = ""
    /// Created plugins by manifest pointer ("/attributors/0").
    var instances: [String: PluginInstance] = [:]
    /// Tensors stages published: counterfactuals, normalized maps.
    public internal(set) var tensors: [Artifact: Tensor] = [:]
    public internal(set) var fingerprints: [Artifact: String] = [:]
    /// Each attributor's raw maps, by name, for the attributors built on them (MapSources).
    var rawMaps: [String: Tensor] = [:]
    /// Each attributor's JSON output (merged over its batches), by name, for the scorers.
    var methodJSON: [String: JSONObject] = [:]
    var summary: PipelineRunner.Summary
    /// SHA-256 of each plugin library, by path: hashed once per run (libraries are megabytes).
    private var libraryHashes: [String: String] = [:]

    init(manifest: PipelineManifest, store: ResultsStore, modelStore: ResultsStore? = nil, progress: RunProgress, context: RunContext,
         samples: Dataset, dataFingerprint: String) {
        self.manifest = manifest
        self.store = store
        self.modelStore = modelStore ?? store
        self.progress = progress
        self.context = context
        self.samples = samples
        self.dataFingerprint = dataFingerprint
        summary = PipelineRunner.Summary(output: manifest.output, samples: samples.count)
    }

    /// The plugin of a manifest entry.
    func instance(_ use: PipelineManifest.PluginUse) throws -> PluginInstance {
        guard let p = instances[use.pointer] else { throw QuacError("internal: no plugin was created for \(use.pointer)", category: .internal) }
        return p
    }

    /// The one way stages call plugins: a failure is reported against the manifest entry that asked
    /// for the call (`at`, a JSON pointer; the plugin's own entry by default).
    func call<T>(_ use: PipelineManifest.PluginUse, at: String? = nil, _ body: (PluginInstance) throws -> T) throws -> T {
        let p = try instance(use)
        do { return try body(p) } catch let e as QuacError where e.category == .cancelled { throw e } catch {
            throw QuacError.wrap(error, context: "\(manifest.file): \(at ?? use.pointer)")
        }
    }

    /// The attributor names a plugin use asks maps of (MapSources).
    func mapSources(_ use: PipelineManifest.PluginUse) -> [String] {
        guard let p = instances[use.pointer] else { return [] }
        return MapSources.names(p.manifest, p.parameters)
    }

    /// The maps of `names` for `rows` of the run's samples.
    func maps(_ names: [String], rows: Range<Int>) throws -> [(String, Tensor)] {
        try names.map { name in
            guard let t = rawMaps[name] else { throw QuacError("internal: the maps of \(name) were not computed before they were needed", category: .internal) }
            return (name, t.rows(rows))
        }
    }

    /// The SHA-256 of a plugin's library.
    func libraryHash(_ p: PluginInstance) throws -> String { try libraryHash(p.library) }

    func libraryHash(_ library: PluginLibrary) throws -> String {
        if let h = libraryHashes[library.url.path] { return h }
        let h = try FileHashes.sha256(library.url)
        libraryHashes[library.url.path] = h
        return h
    }

    /// A plugin use like `use` with other parameters, created for this run (a convergence study runs an
    /// attributor again with other settings); its calls are reported at `pointer`.
    func variant(of use: PipelineManifest.PluginUse, params: JSONValue, name: String, pointer: String) throws -> PipelineManifest.PluginUse {
        let v = PipelineManifest.PluginUse(pointer: pointer, plugin: use.plugin, name: name, params: params, train: nil)
        let m = try instance(use).manifest
        do {
            instances[pointer] = try PluginInstance(try ResolvedPlugin.resolve(m, params: params, name: name, base: manifest.directory,
                                                                               paramsSource: "\(manifest.file): \(pointer)"), run: context)
        } catch { throw QuacError.wrap(error, context: "\(manifest.file): \(pointer)") }
        return v
    }

    /// A plugin's provenance: id, version, library and its hash, parameters, the hashes of the files its
    /// path parameters name (when there are any: editing a Python method's module or replacing a
    /// weights file changes the fingerprint of what depends on the plugin), and its trained model.
    func record(_ p: PluginInstance) throws -> JSONValue {
        try record(p.identity, pointer: instances.first { $0.value === p }?.key)
    }

    /// The record of a plugin use at `pointer` (nil: not one of the run's uses), created or not.
    func record(_ p: PluginIdentity, pointer: String?) throws -> JSONValue {
        let trained = pointer.flatMap { fingerprints[.trainedModel($0)] }
        var r: JSONObject = JSONObject([
            ("name", .string(p.name)), ("plugin", .string(p.id)), ("kind", .string(p.kind.rawValue)),
            ("version", .string(p.manifest.bridge == nil ? p.descriptor.version : p.manifest.version)), ("library", .string(p.library.url.path)),
            ("library_sha256", .string(try libraryHash(p.library))),
            ("abi_version", .string("\(p.library.abiMajor).\(p.library.abiMinor)")), ("params", p.parameters),
            ("trained_model", trained.map { .string($0) } ?? .null),
        ])
        let files = PathParameters.files(p.parameters, schema: p.manifest.parameters) + (p.manifest.bridge?.files ?? [])
        if let bridge = p.manifest.bridge {
            r["bridge"] = .object(JSONObject([("plugin", .string(bridge.plugin)), ("version", .string(p.descriptor.version)), ("params", .object(bridge.params))]))
        }
        if !files.isEmpty {
            r["param_files_sha256"] = .object(JSONObject(try files.map { ($0, .string(try FileHashes.sha256(URL(fileURLWithPath: $0)))) }))
        }
        return .object(r)
    }

    /// The seed of every call of a stage: derived from the run's seed and the stage alone, not from the
    /// batch, so a sample's results do not depend on which batch or shard it is in. Plugins draw each
    /// sample's random numbers from this seed and the sample (SampleNoise), so they are per sample.
    func callSeed(_ stage: String) -> UInt64 {
        let digest = SHA256.hex(Data("\(manifest.seed)/\(stage)".utf8))
        return UInt64(digest.prefix(16), radix: 16) ?? 0
    }

    func checkCancelled() throws {
        if context.isCancelled { throw QuacError.cancelled }
    }

    /// The batches of `n` samples whose first is sample `offset` of the whole run: cut where a batch of
    /// the manifest's size starts in the whole run, so a shard's batches are those of an unsharded run
    /// (the shard's first and last may be parts of one).
    private func batches(_ n: Int, offset: Int) -> [Range<Int>] {
        let b = manifest.batchSize
        var out: [Range<Int>] = [], start = 0
        while start < n {
            let end = min(n, start + b - (offset + start) % b)
            out.append(start..<end)
            start = end
        }
        return out
    }

    /// Runs `body(rows, seed)` over the batches of `count` samples (the first being sample `offset` of
    /// the whole run), with progress under `label`, cancellation between batches and the stage's seed;
    /// returns the results and the batches. The caller ends the progress line.
    func eachBatch<T>(_ label: String, count: Int, offset: Int = 0, _ body: (Range<Int>, UInt64) throws -> T) throws -> ([T], [Range<Int>]) {
        let parts = batches(count, offset: offset)
        progress.stageStarted(label, total: parts.count)
        var results: [T] = []
        let seed = callSeed(label)
        for (i, rows) in parts.enumerated() {
            try checkCancelled()
            results.append(try body(rows, seed))
            progress.stageAdvanced(label, done: i + 1, total: parts.count)
        }
        return (results, parts)
    }
}
