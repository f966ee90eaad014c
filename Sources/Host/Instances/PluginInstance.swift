import Foundation
import QuacPluginAPI

/// A live plugin instance created through the ABI. Every call goes through here: inputs are passed as
/// borrowed views, outputs are collected from the sink and checked against the kind's contract, and a
/// failure becomes a QuacError naming the plugin, the function and the plugin's own reason.
public final class PluginInstance: @unchecked Sendable {
    public let manifest: PluginManifest
    public let library: PluginLibrary
    public let descriptor: PluginLibrary.Descriptor
    /// The name the run knows it by (e.g. an attributor's "name" in the pipeline manifest).
    public let name: String
    /// Parameters as passed to create (defaults filled in).
    public let parameters: JSONValue
    let context: PluginContext
    let plugin: UnsafePointer<quac_plugin>
    /// Serialises calls unless the plugin declares itself reentrant.
    private let callLock = NSRecursiveLock()
    /// The classifier-weights extension's checked calls, made once per instance (ClassifierWeights.swift).
    let weightCalls = WeightCallsSlot()

    public var id: String { manifest.id }
    public var kind: PluginKind { manifest.kind }
    /// What a run's records say of the plugin (RunState.record).
    var identity: PluginIdentity {
        PluginIdentity(manifest: manifest, library: library, descriptor: descriptor, name: name, parameters: parameters)
    }

    /// Resolves `params` (validated against the manifest's schema, defaults filled, relative paths
    /// against the working folder) and creates the instance: for the conformance check and tests. A
    /// pipeline resolves its uses once (`PluginResolver`) and creates them with `init(_:run:)`.
    public convenience init(manifest: PluginManifest, params: JSONValue = .object(JSONObject()), name: String? = nil,
                            run: RunContext? = nil, paramsSource: String? = nil) throws {
        try self.init(ResolvedPlugin.resolve(manifest, params: params, name: name,
                                             base: URL(fileURLWithPath: FileManager.default.currentDirectoryPath),
                                             paramsSource: paramsSource), run: run)
    }

    /// Loads the manifest's library, checks that it describes itself as the manifest says and creates
    /// the instance with the resolved parameters, as they are.
    public init(_ resolved: ResolvedPlugin, run: RunContext? = nil) throws {
        let manifest = resolved.manifest
        let where_ = "plugin \(manifest.id) (\(manifest.url.path))"
        let (library, d) = try Self.openLibrary(manifest)
        let filled = resolved.parameters
        // A bridged method: the bridge's own parameters (fixed by the manifest) join the method's.
        var created = filled
        if let bridge = manifest.bridge, var o = filled.objectValue {
            for (k, v) in bridge.params { o[k] = v }
            created = .object(o)
        }
        self.manifest = manifest
        self.library = library
        self.descriptor = d
        self.name = resolved.name
        self.parameters = filled
        let context = PluginContext(label: resolved.name, run: run)
        self.context = context
        var out: UnsafePointer<quac_plugin>?
        context.beginCall()
        let status = created.serialized().withCString { json in
            manifest.descriptorID.withCString { pid in
                library.factory.pointee.create!(library.factory, UnsafePointer(context.host), pid, json, &out)
            }
        }
        let message = context.endCall()
        guard status == ABIStatus.ok, let instance = out else {
            throw QuacError("\(where_): create failed (\(ABIStatus.name(status))): \(message)")
        }
        guard instance.pointee.destroy != nil, instance.pointee.get_extension != nil else {
            throw QuacError("\(where_): create returned an instance without destroy or get_extension")
        }
        plugin = instance
    }

    /// The manifest's library, loaded and checked: its sha256 pin, ABI version, and the plugin the
    /// manifest names, of the manifest's kind. Creates nothing.
    static func openLibrary(_ manifest: PluginManifest) throws -> (PluginLibrary, PluginLibrary.Descriptor) {
        guard let libURL = manifest.resolvedLibraryURL() else {
            throw QuacError("\(manifest.url.path): /library: \"\(manifest.library)\" not found")
        }
        if let pin = manifest.sha256 {
            let actual = try SHA256.hex(fileAt: libURL)
            guard actual == pin else {
                throw QuacError("\(manifest.url.path): /sha256: library \(libURL.path) has sha256 \(actual), the manifest pins \(pin)")
            }
        }
        let library = try PluginLibrary.load(libURL)
        guard "\(library.abiMajor).\(library.abiMinor)" == manifest.abiVersion else {
            throw QuacError("\(manifest.url.path): /abi_version: manifest says \(manifest.abiVersion), the library was built for \(library.abiMajor).\(library.abiMinor)")
        }
        let pointer = manifest.bridge == nil ? "/id" : "/bridge/plugin"
        guard let d = library.descriptor(id: manifest.descriptorID) else {
            let ids = library.descriptors.map(\.id).joined(separator: ", ")
            throw QuacError("\(manifest.url.path): \(pointer): library \(libURL.lastPathComponent) has no plugin \"\(manifest.descriptorID)\" (it offers: \(ids.isEmpty ? "none" : ids))")
        }
        guard d.kind == manifest.kind else {
            throw QuacError("\(manifest.url.path): /kind: manifest says \(manifest.kind.rawValue), the library describes \(manifest.descriptorID) as \(d.kind?.rawValue ?? "unknown kind \(d.rawKind)")")
        }
        return (library, d)
    }

    deinit { plugin.pointee.destroy!(plugin) }

    /// Attaches the instance to a run (its classifier and converter services).
    public func attach(to run: RunContext) { context.run = run }

    // MARK: Tables

    /// The table registered under `id`, checked to be at least as large as this host's version of it.
    func table<T>(_ id: String, _ type: T.Type) -> UnsafePointer<T>? {
        guard let raw = id.withCString({ plugin.pointee.get_extension!(plugin, $0) }) else { return nil }
        let size = raw.load(as: UInt32.self)
        guard Int(size) >= MemoryLayout<T>.size else { return nil }
        return raw.assumingMemoryBound(to: T.self)
    }

    public func hasExtension(_ id: String) -> Bool {
        id.withCString { plugin.pointee.get_extension!(plugin, $0) } != nil
    }

    func kindTable<T>(_ type: T.Type) throws -> UnsafePointer<T> {
        guard let t = table(kind.tableID, type) else {
            throw QuacError("plugin \(id): get_extension(\"\(kind.tableID)\") returned NULL or a table smaller than ABI \(QUAC_ABI_VERSION_MAJOR).\(QUAC_ABI_VERSION_MINOR)'s")
        }
        return t
    }

    // MARK: Calls

    /// Runs one ABI call with the error protocol: reset, call, and on failure throw the plugin's reason.
    /// `violation` is what the host itself saw go wrong during the call (a sink protocol violation): the
    /// header promises that the host reports those, so it outranks the plugin's own message.
    func invoke(_ function: String, violation: () -> String? = { nil }, _ body: () -> quac_status) throws {
        if !descriptor.reentrant { callLock.lock() }
        defer { if !descriptor.reentrant { callLock.unlock() } }
        context.beginCall()
        let status = body()
        let message = context.endCall()
        guard status == ABIStatus.ok else {
            if status == quac_status(QUAC_ERR_CANCELLED), context.run?.isCancelled == true { throw QuacError.cancelled }
            let reason = violation() ?? message
            throw QuacError("plugin \(name) (\(id)): \(function) failed (\(ABIStatus.name(status))): \(reason)")
        }
    }

    private func callWithSink(_ function: String, _ batch: BatchInputs, checkInputs: Bool,
                              _ body: (UnsafePointer<quac_batch>, UnsafePointer<quac_output_sink>) -> quac_status) throws -> PluginOutputs {
        if checkInputs { try Self.checkBatch(batch, plugin: name) }
        let collector = OutputCollector()
        try batch.withABIBatch { b in
            try invoke(function, violation: { collector.violation }) { body(b, UnsafePointer(collector.sink)) }
        }
        if let v = collector.violation { throw QuacError("plugin \(name) (\(id)): \(function): \(v)") }
        return collector.outputs
    }

    /// checkInputs: false only for the conformance check, which feeds plugins bad input on purpose.
    public func attribute(_ batch: BatchInputs, checkInputs: Bool = true) throws -> PluginOutputs {
        let t = try kindTable(quac_attributor.self)
        let out = try callWithSink("attribute", batch, checkInputs: checkInputs) { b, s in t.pointee.attribute!(plugin, b, s) }
        // A concept explainer's maps are over the concepts.
        let shape = manifest.explains == .concepts ? (batch.concepts?.shape ?? [batch.count, 0]) : batch.x.shape
        try requireOutput(out, "attribution", function: "attribute", shape: shape)
        return out
    }

    /// checkInputs: false only for the conformance check, which feeds plugins bad input on purpose.
    public func score(_ batch: BatchInputs, checkInputs: Bool = true) throws -> PluginOutputs {
        let t = try kindTable(quac_scorer.self)
        let out = try callWithSink("score", batch, checkInputs: checkInputs) { b, s in t.pointee.score!(plugin, b, s) }
        try requireOutput(out, "score", function: "score", shape: [batch.count])
        return out
    }

    /// checkInputs: false only for the conformance check, which feeds plugins bad input on purpose.
    public func convert(_ batch: BatchInputs, checkInputs: Bool = true) throws -> PluginOutputs {
        let t = try kindTable(quac_converter.self)
        let out = try callWithSink("convert", batch, checkInputs: checkInputs) { b, s in t.pointee.convert!(plugin, b, s) }
        try requireOutput(out, "counterfactual", function: "convert", shape: batch.x.shape)
        return out
    }

    /// The kind's contract on its main output: present, float32, the expected shape, finite.
    func requireOutput(_ out: PluginOutputs, _ output: String, function: String, shape: [Int]) throws {
        let prefix = "plugin \(name) (\(id)): \(function)"
        guard let t = out.tensors[output] else {
            throw QuacError("\(prefix) put no \"\(output)\" tensor (it put: \(out.names.isEmpty ? "nothing" : out.names.joined(separator: ", ")))")
        }
        guard t.dtype == .float32 else { throw QuacError("\(prefix): output \"\(output)\" is \(t.dtype.displayName), expected float32") }
        guard t.shape == shape else { throw QuacError("\(prefix): output \"\(output)\" has shape \(t.shape), expected \(shape)") }
        guard t.isFinite else { throw QuacError("\(prefix): output \"\(output)\" contains NaN or infinity") }
    }

    /// Host-side checks of what the host itself passes, so plugins can rely on the documented shapes.
    static func checkBatch(_ b: BatchInputs, plugin: String) throws {
        func fail(_ s: String) -> QuacError { QuacError("inputs for \(plugin): \(s)") }
        guard b.x.dtype == .float32, b.x.rank >= 1 else { throw fail("x must be float32 [N, ...], got \(b.x.dtype.displayName) \(b.x.shape)") }
        let n = b.count
        for (label, t) in [("source", b.source), ("target", b.target)] {
            if let t, t.dtype != .int64 || t.shape != [n] { throw fail("\(label) must be int64 [\(n)], got \(t.dtype.displayName) \(t.shape)") }
        }
        if let t = b.xCF, t.dtype != .float32 || t.shape != b.x.shape { throw fail("x_cf must be float32 \(b.x.shape), got \(t.dtype.displayName) \(t.shape)") }
        // A map over the concepts (a concept explainer's) is shaped like them.
        if let t = b.attribution, t.dtype != .float32 || (t.shape != b.x.shape && t.shape != b.concepts?.shape) {
            throw fail("attribution must be float32 \(b.x.shape) (or like the concepts), got \(t.dtype.displayName) \(t.shape)")
        }
        if let c = b.concepts, c.dtype != .float32 || c.rank != 2 || c.shape[0] != n {
            throw fail("concepts must be float32 [\(n), k], got \(c.dtype.displayName) \(c.shape)")
        }
        // A scorer gets the scored method's raw map here, so a concept explainer's is shaped like the
        // concepts (the attribute stage never passes one: concept explainers are no map sources).
        for (name, t) in b.maps where t.dtype != .float32 || (t.shape != b.x.shape && t.shape != b.concepts?.shape) {
            throw fail("the map of \(name) must be float32 \(b.x.shape) (or like the concepts), got \(t.dtype.displayName) \(t.shape)")
        }
    }
}

// MARK: - A classifier plugin is a Classifier.

extension PluginInstance: Classifier {
    public var label: String { "\(name == id ? id : "\(name) (\(id))")" }

    public func info() throws -> ClassifierInfo {
        let t = try kindTable(quac_classifier.self)
        var raw = quac_classifier_info()
        raw.struct_size = UInt32(MemoryLayout<quac_classifier_info>.size)
        try invoke("get_info") { t.pointee.get_info!(plugin, &raw) }
        guard raw.num_classes >= 1, raw.input_ndim >= 0, raw.input_ndim <= 4 else {
            throw QuacError("plugin \(id): get_info returned \(raw.num_classes) classes and input rank \(raw.input_ndim)")
        }
        let dims = withUnsafeBytes(of: raw.input_shape) { Array($0.bindMemory(to: Int64.self)) }
        var info = ClassifierInfo(numClasses: Int(raw.num_classes),
                              sampleShape: dims.prefix(Int(raw.input_ndim)).map { Int($0) },
                              hasVJP: raw.has_vjp && t.pointee.vjp != nil,
                              hasModifiedBackward: table(QUAC_EXT_MODIFIED_BACKWARD, quac_modified_backward.self) != nil,
                              hasLayers: rawLayers() != nil)
        info.hasRandomize = table(QUAC_EXT_CLASSIFIER_RANDOMIZE, quac_classifier_randomize.self)?.pointee.randomize != nil
        return info
    }

    public func rawForward(_ x: Tensor) throws -> Tensor {
        let t = try kindTable(quac_classifier.self)
        var out: UnsafeMutablePointer<quac_managed_tensor>?
        try x.withABITensor { xp in try invoke("forward") { t.pointee.forward!(plugin, xp, &out) } }
        return try adopt(out, "forward", "logits")
    }

    public func rawVJP(_ x: Tensor, gradLogits: Tensor, wantLogits: Bool) throws -> (logits: Tensor?, gradX: Tensor) {
        let t = try kindTable(quac_classifier.self)
        guard let vjp = t.pointee.vjp else { throw QuacError("classifier \(label) has no vjp") }
        var logits: UnsafeMutablePointer<quac_managed_tensor>?
        var grad: UnsafeMutablePointer<quac_managed_tensor>?
        try x.withABITensor { xp in
            try gradLogits.withABITensor { gp in
                try invoke("vjp") {
                    wantLogits ? vjp(plugin, xp, gp, &logits, &grad) : vjp(plugin, xp, gp, nil, &grad)
                }
            }
        }
        let l = wantLogits ? try adopt(logits, "vjp", "logits") : nil
        return (l, try adopt(grad, "vjp", "grad_x"))
    }

    public func rawVJPRule(_ rule: quac_backward_rule, x: Tensor, baseline: Tensor?, gradLogits: Tensor) throws -> Tensor {
        guard let ext = table(QUAC_EXT_MODIFIED_BACKWARD, quac_modified_backward.self) else {
            throw QuacError("classifier \(label) does not offer the extension \(QUAC_EXT_MODIFIED_BACKWARD)")
        }
        var grad: UnsafeMutablePointer<quac_managed_tensor>?
        let views = [x, gradLogits].map(ABITensorView.init)
        let b = baseline.map(ABITensorView.init)
        try withExtendedLifetime((views, b)) {
            try invoke("vjp_rule") {
                ext.pointee.vjp_rule!(plugin, rule, views[0].pointer, b.map { UnsafePointer($0.pointer) }, views[1].pointer, &grad)
            }
        }
        return try adopt(grad, "vjp_rule", "grad_x")
    }

    public func rawLayers() -> ClassifierLayerCalls? {
        // A table with a missing function is no extension (the host never calls through NULL).
        guard let t = table(QUAC_EXT_CLASSIFIER_LAYERS, quac_classifier_layers.self), t.pointee.list_json != nil, t.pointee.forward != nil,
              t.pointee.vjp_input != nil, t.pointee.vjp_logits != nil else { return nil }
        return PluginLayerCalls(instance: self, table: t)
    }

    private func adopt(_ m: UnsafeMutablePointer<quac_managed_tensor>?, _ function: String, _ what: String) throws -> Tensor {
        guard let m else { throw QuacError("plugin \(id): \(function) returned ok but no \(what) tensor") }
        do { return try Tensor(adopting: m) } catch { throw QuacError("plugin \(id): \(function): \(what): \(error)") }
    }
}
