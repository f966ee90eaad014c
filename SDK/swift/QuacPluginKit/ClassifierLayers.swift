import Foundation

/// A classifier that exposes its inner layers (QUAC_EXT_CLASSIFIER_LAYERS): their activations and the
/// gradients through them, for layer methods such as Grad-CAM and for explainers whose candidate maps
/// are a layer's channels.
public protocol LayeredClassifierPlugin: ClassifierPlugin {
    /// The layers a caller may name, in the order the network runs them, with their per-sample shapes.
    var layers: [(name: String, shape: [Int])] { get }
    /// The layer's activations for x and the logits of the same pass.
    func layerForward(_ layer: String, x: Tensor) throws -> (activations: Tensor, logits: Tensor)
    /// (d a(x) / d x)^T grad_activations, shaped like x.
    func layerVJPInput(_ layer: String, x: Tensor, gradActivations: Tensor) throws -> Tensor
    /// The pass with the layer's output replaced by `activations` (nil: its own): its logits and
    /// (d f / d a)^T grad_logits.
    func layerVJPLogits(_ layer: String, x: Tensor, activations: Tensor?, gradLogits: Tensor) throws -> (logits: Tensor, gradActivations: Tensor)
}

enum ClassifierLayersTable {
    static let table: UnsafeMutablePointer<quac_classifier_layers> = {
        let p = UnsafeMutablePointer<quac_classifier_layers>.allocate(capacity: 1)
        p.initialize(to: quac_classifier_layers(struct_size: UInt32(MemoryLayout<quac_classifier_layers>.size),
                                                list_json: layersList, forward: layersForward,
                                                vjp_input: layersVJPInput, vjp_logits: layersVJPLogits))
        return p
    }()
}

private func layered(_ p: UnsafePointer<quac_plugin>?) throws -> (LayeredClassifierPlugin, HostServices, InstanceBox) {
    guard let box = InstanceBox.from(p), let c = box.plugin as? LayeredClassifierPlugin else {
        throw PluginError(quac_status(QUAC_ERR_INTERNAL), "instance is not a classifier with layers")
    }
    return (c, box.host, box)
}

private func borrowTensor(_ t: UnsafePointer<quac_tensor>?, _ name: String) throws -> Tensor {
    guard let t else { throw PluginError.invalid("\(name) is NULL") }
    do { return try Tensor(borrowing: t.pointee) } catch { throw PluginError.invalid("\(name): \(error)") }
}

private func layerName(_ p: UnsafePointer<CChar>?) throws -> String {
    guard let p else { throw PluginError.invalid("layer is NULL") }
    return String(cString: p)
}

/// Hands both results out, or neither (the first is released when the second fails).
private func giveBoth(_ a: Tensor, _ outA: UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?,
                      _ b: Tensor, _ outB: UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?, _ host: HostServices) throws {
    guard let outA else { throw PluginError.invalid("output pointer is NULL") }
    outA.pointee = try host.managedCopy(a)
    guard let outB else { return }
    do { outB.pointee = try host.managedCopy(b) } catch {
        outA.pointee.map { $0.pointee.deleter?($0) }
        outA.pointee = nil
        throw error
    }
}

private let layersList: @convention(c) (UnsafePointer<quac_plugin>?) -> UnsafePointer<CChar>? = { p in
    guard let (c, _, box) = try? layered(p) else { return nil }
    return box.cachedString("layers") {
        JSONValue.array(c.layers.map { ["name": .string($0.name), "shape": .array($0.shape.map { .int(Int64($0)) })] }).serialized()
    }
}

private let layersForward: @convention(c) (UnsafePointer<quac_plugin>?, UnsafePointer<CChar>?, UnsafePointer<quac_tensor>?, UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?, UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?) -> quac_status = { p, layer, x, activations, logits in
    guarded(InstanceBox.from(p)?.host) {
        let (c, h, _) = try layered(p)
        let r = try c.layerForward(try layerName(layer), x: try borrowTensor(x, "x"))
        try giveBoth(r.activations, activations, r.logits, logits, h)
    }
}

private let layersVJPInput: @convention(c) (UnsafePointer<quac_plugin>?, UnsafePointer<CChar>?, UnsafePointer<quac_tensor>?, UnsafePointer<quac_tensor>?, UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?) -> quac_status = { p, layer, x, g, out in
    guarded(InstanceBox.from(p)?.host) {
        let (c, h, _) = try layered(p)
        guard let out else { throw PluginError.invalid("output pointer is NULL") }
        let r = try c.layerVJPInput(try layerName(layer), x: try borrowTensor(x, "x"), gradActivations: try borrowTensor(g, "grad_activations"))
        out.pointee = try h.managedCopy(r)
    }
}

private let layersVJPLogits: @convention(c) (UnsafePointer<quac_plugin>?, UnsafePointer<CChar>?, UnsafePointer<quac_tensor>?, UnsafePointer<quac_tensor>?, UnsafePointer<quac_tensor>?, UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?, UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?) -> quac_status = { p, layer, x, a, g, logits, gradA in
    guarded(InstanceBox.from(p)?.host) {
        let (c, h, _) = try layered(p)
        let r = try c.layerVJPLogits(try layerName(layer), x: try borrowTensor(x, "x"),
                                     activations: try a.map { try borrowTensor($0, "activations") },
                                     gradLogits: try borrowTensor(g, "grad_logits"))
        try giveBoth(r.gradActivations, gradA, r.logits, logits, h)
    }
}

/// The run's classifier's layers, through the host (QUAC_HOST_EXT_CLASSIFIER_LAYERS).
public struct HostClassifierLayers: @unchecked Sendable {
    let host: HostServices
    let table: UnsafePointer<quac_host_classifier_layers>

    /// The layers by name with their per-sample shapes; an error when the classifier offers none.
    public func list() throws -> [(name: String, shape: [Int])] {
        guard let raw = table.pointee.list_json?(host.raw) else {
            throw PluginError.unsupported("the run's classifier does not offer its layers (\(QUAC_EXT_CLASSIFIER_LAYERS))")
        }
        guard let items = try? JSONParser.parse(String(cString: raw)).arrayValue else {
            throw PluginError.invalid("the classifier's layer list is not a JSON array")
        }
        return try items.map { item in
            guard let name = item["name"]?.stringValue, let shape = item["shape"]?.arrayValue?.compactMap({ $0.intValue }) else {
                throw PluginError.invalid("the classifier's layer list has an entry without name and shape")
            }
            return (name, shape.map { Int($0) })
        }
    }

    public func forward(_ layer: String, x: Tensor) throws -> (activations: Tensor, logits: Tensor) {
        var a: UnsafeMutablePointer<quac_managed_tensor>?, l: UnsafeMutablePointer<quac_managed_tensor>?
        try x.withABITensor { xp in try check(layer.withCString { table.pointee.forward!(host.raw, $0, xp, &a, &l) }, "layer forward") }
        guard let a, let l else { throw PluginError(quac_status(QUAC_ERR_INTERNAL), "the host's layer forward returned no tensors") }
        return (try Tensor(adopting: a), try Tensor(adopting: l))
    }

    public func vjpInput(_ layer: String, x: Tensor, gradActivations: Tensor) throws -> Tensor {
        var g: UnsafeMutablePointer<quac_managed_tensor>?
        let xv = x.abiView(), gv = gradActivations.abiView()
        try withExtendedLifetime((xv, gv)) {
            try check(layer.withCString { table.pointee.vjp_input!(host.raw, $0, xv.pointer, gv.pointer, &g) }, "layer vjp_input")
        }
        guard let g else { throw PluginError(quac_status(QUAC_ERR_INTERNAL), "the host's layer vjp_input returned no tensor") }
        return try Tensor(adopting: g)
    }

    public func vjpLogits(_ layer: String, x: Tensor, activations: Tensor?, gradLogits: Tensor) throws -> (logits: Tensor, gradActivations: Tensor) {
        var l: UnsafeMutablePointer<quac_managed_tensor>?, g: UnsafeMutablePointer<quac_managed_tensor>?
        let xv = x.abiView(), av = activations?.abiView(), gv = gradLogits.abiView()
        try withExtendedLifetime((xv, av, gv)) {
            try check(layer.withCString {
                table.pointee.vjp_logits!(host.raw, $0, xv.pointer, av.map { UnsafePointer($0.pointer) }, gv.pointer, &l, &g)
            }, "layer vjp_logits")
        }
        guard let l, let g else { throw PluginError(quac_status(QUAC_ERR_INTERNAL), "the host's layer vjp_logits returned no tensors") }
        return (try Tensor(adopting: l), try Tensor(adopting: g))
    }

    private func check(_ status: quac_status, _ what: String) throws {
        guard status == quac_status(QUAC_OK) else { throw PluginError(status, "classifier \(what) failed") }
    }
}

extension HostServices {
    /// The run's classifier's layers; an error when this host is older than ABI 1.2.
    public func classifierLayers() throws -> HostClassifierLayers {
        let hasExtensions = Int(raw.pointee.struct_size) >= MemoryLayout<quac_host>.offset(of: \quac_host.get_extension)! + MemoryLayout<UnsafeRawPointer>.size
        guard hasExtensions, let t = raw.pointee.get_extension?(raw, QUAC_HOST_EXT_CLASSIFIER_LAYERS) else {
            throw PluginError.unsupported("this host does not offer \(QUAC_HOST_EXT_CLASSIFIER_LAYERS) (it is older than ABI 1.2)")
        }
        return HostClassifierLayers(host: self, table: t.assumingMemoryBound(to: quac_host_classifier_layers.self))
    }
}
