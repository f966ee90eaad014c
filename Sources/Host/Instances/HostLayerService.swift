import Foundation
import QuacPluginAPI

// The host service QUAC_HOST_EXT_CLASSIFIER_LAYERS: an attributor's calls into the run's classifier's
// layers, checked like every classifier call (CheckedLayers) and failing with the classifier's reason.

let hostClassifierLayersTable: UnsafeMutablePointer<quac_host_classifier_layers> = {
    let t = UnsafeMutablePointer<quac_host_classifier_layers>.allocate(capacity: 1)
    t.initialize(to: quac_host_classifier_layers(struct_size: UInt32(MemoryLayout<quac_host_classifier_layers>.size),
                                                 list_json: hostLayersList, forward: hostLayersForward,
                                                 vjp_input: hostLayersVJPInput, vjp_logits: hostLayersVJPLogits))
    return t
}()

private func layers(_ ctx: PluginContext) throws -> CheckedLayers {
    guard let c = ctx.run?.classifier else { throw QuacError("this run has no classifier") }
    return try c.layers()
}

private func borrowedTensor(_ t: UnsafePointer<quac_tensor>?, _ name: String) throws -> Tensor {
    guard let t else { throw QuacError("\(name) is NULL") }
    do { return try Tensor(borrowing: t.pointee) } catch { throw QuacError("\(name): \(error)") }
}

private func name(_ p: UnsafePointer<CChar>?) throws -> String {
    guard let p else { throw QuacError("layer is NULL") }
    return String(cString: p)
}

/// Hands out `first` (required) and `second` (when its pointer is given), or neither; a NULL output
/// pointer is refused with a reason.
private func give(_ ctx: PluginContext, _ first: Tensor, _ out1: UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?,
                  _ second: Tensor?, _ out2: UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?) -> quac_status {
    guard let out1 else { ctx.setError("the output pointer is NULL"); return quac_status(QUAC_ERR_INVALID_ARGUMENT) }
    guard let a = first.managedCopy() else { return quac_status(QUAC_ERR_OUT_OF_MEMORY) }
    if let out2, let second {
        guard let b = second.managedCopy() else { a.pointee.deleter?(a); return quac_status(QUAC_ERR_OUT_OF_MEMORY) }
        out2.pointee = b
    }
    out1.pointee = a
    return ABIStatus.ok
}

private let hostLayersList: @convention(c) (UnsafePointer<quac_host>?) -> UnsafePointer<CChar>? = { host in
    guard let ctx = PluginContext.from(host), let l = try? layers(ctx) else { return nil }
    // Keyed by the classifier: an instance may serve runs with different classifiers.
    return ctx.cachedString("layers of \(ctx.run?.classifier?.label ?? "")") {
        JSONValue.array(l.layers.map { ["name": .string($0.name), "shape": .array($0.shape.map { .int(Int64($0)) })] }).serialized()
    }
}

private let hostLayersForward: @convention(c) (UnsafePointer<quac_host>?, UnsafePointer<CChar>?, UnsafePointer<quac_tensor>?, UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?, UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?) -> quac_status = { host, layer, x, activations, logits in
    guard let ctx = PluginContext.from(host) else { return quac_status(QUAC_ERR_INVALID_ARGUMENT) }
    do {
        let r = try layers(ctx).forward(try name(layer), x: try borrowedTensor(x, "x"))
        return give(ctx, r.activations, activations, r.logits, logits)
    } catch { return ctx.serviceFailure(error) }
}

private let hostLayersVJPInput: @convention(c) (UnsafePointer<quac_host>?, UnsafePointer<CChar>?, UnsafePointer<quac_tensor>?, UnsafePointer<quac_tensor>?, UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?) -> quac_status = { host, layer, x, g, out in
    guard let ctx = PluginContext.from(host) else { return quac_status(QUAC_ERR_INVALID_ARGUMENT) }
    do {
        let r = try layers(ctx).vjpInput(try name(layer), x: try borrowedTensor(x, "x"), gradActivations: try borrowedTensor(g, "grad_activations"))
        return give(ctx, r, out, nil, nil)
    } catch { return ctx.serviceFailure(error) }
}

private let hostLayersVJPLogits: @convention(c) (UnsafePointer<quac_host>?, UnsafePointer<CChar>?, UnsafePointer<quac_tensor>?, UnsafePointer<quac_tensor>?, UnsafePointer<quac_tensor>?, UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?, UnsafeMutablePointer<UnsafeMutablePointer<quac_managed_tensor>?>?) -> quac_status = { host, layer, x, a, g, logits, gradA in
    guard let ctx = PluginContext.from(host) else { return quac_status(QUAC_ERR_INVALID_ARGUMENT) }
    do {
        let r = try layers(ctx).vjpLogits(try name(layer), x: try borrowedTensor(x, "x"),
                                          activations: try a.map { try borrowedTensor($0, "activations") },
                                          gradLogits: try borrowedTensor(g, "grad_logits"))
        return give(ctx, r.gradActivations, gradA, r.logits, logits)
    } catch { return ctx.serviceFailure(error) }
}
