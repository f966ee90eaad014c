import Foundation
import QuacPluginAPI

/// One inner layer a classifier names (QUAC_EXT_CLASSIFIER_LAYERS), with its per-sample shape.
public struct ClassifierLayer: Equatable, Sendable {
    public var name: String
    public var shape: [Int]
}

/// The unchecked calls of a classifier's layer extension; `CheckedLayers` wraps them.
public protocol ClassifierLayerCalls {
    func list() throws -> [ClassifierLayer]
    func forward(_ layer: String, x: Tensor) throws -> (activations: Tensor, logits: Tensor)
    func vjpInput(_ layer: String, x: Tensor, gradActivations: Tensor) throws -> Tensor
    func vjpLogits(_ layer: String, x: Tensor, activations: Tensor?, gradLogits: Tensor) throws -> (logits: Tensor, gradActivations: Tensor)
}

extension Classifier {
    /// No layers unless the classifier implements the extension.
    public func rawLayers() -> ClassifierLayerCalls? { nil }

    /// The classifier's layers with every call checked, or an error saying it has none.
    public func layers() throws -> CheckedLayers {
        guard let calls = rawLayers() else {
            throw QuacError("classifier \(label) does not offer the extension \(QUAC_EXT_CLASSIFIER_LAYERS) (its inner layers)", category: .user)
        }
        return CheckedLayers(classifier: self, calls: calls, layers: try calls.list())
    }
}

/// Layer calls whose inputs are checked before the classifier sees them and whose results are checked
/// before anyone else does (as `Classifier`'s own calls).
public struct CheckedLayers {
    let classifier: Classifier
    let calls: ClassifierLayerCalls
    public let layers: [ClassifierLayer]

    func shape(_ layer: String) throws -> [Int] {
        guard let l = layers.first(where: { $0.name == layer }) else {
            let names = layers.map(\.name)
            throw QuacError("classifier \(classifier.label) has no layer \"\(layer)\" (it has: \(names.prefix(40).joined(separator: ", "))\(names.count > 40 ? ", ..." : ""))", category: .user)
        }
        return l.shape
    }

    private func checkX(_ x: Tensor, _ info: ClassifierInfo) throws {
        if let p = info.problem(withBatch: x) { throw QuacError("classifier \(classifier.label): \(p)") }
    }

    private func expect(_ t: Tensor, _ shape: [Int], _ what: String) throws {
        guard t.dtype == .float32, t.shape == shape else {
            throw QuacError("classifier \(classifier.label): \(what) is \(t.dtype.displayName) \(t.shape), expected float32 \(shape)")
        }
    }

    public func forward(_ layer: String, x: Tensor) throws -> (activations: Tensor, logits: Tensor) {
        let info = try classifier.info(), s = try shape(layer)
        try checkX(x, info)
        let r = try calls.forward(layer, x: x)
        try expect(r.activations, [x.shape[0]] + s, "layer \(layer)'s activations")
        try expect(r.logits, [x.shape[0], info.numClasses], "the logits")
        return r
    }

    public func vjpInput(_ layer: String, x: Tensor, gradActivations: Tensor) throws -> Tensor {
        let info = try classifier.info(), s = try shape(layer)
        try checkX(x, info)
        guard gradActivations.dtype == .float32, gradActivations.shape == [x.shape[0]] + s else {
            throw QuacError("classifier \(classifier.label): grad_activations must be float32 \([x.shape[0]] + s), got \(gradActivations.dtype.displayName) \(gradActivations.shape)")
        }
        let g = try calls.vjpInput(layer, x: x, gradActivations: gradActivations)
        try expect(g, x.shape, "vjp_input's gradient")
        return g
    }

    public func vjpLogits(_ layer: String, x: Tensor, activations: Tensor?, gradLogits: Tensor) throws -> (logits: Tensor, gradActivations: Tensor) {
        let info = try classifier.info(), s = try shape(layer)
        try checkX(x, info)
        let n = x.shape[0]
        if let a = activations, a.dtype != .float32 || a.shape != [n] + s {
            throw QuacError("classifier \(classifier.label): activations must be float32 \([n] + s), got \(a.dtype.displayName) \(a.shape)")
        }
        guard gradLogits.dtype == .float32, gradLogits.shape == [n, info.numClasses] else {
            throw QuacError("classifier \(classifier.label): grad_logits must be float32 [\(n), \(info.numClasses)], got \(gradLogits.dtype.displayName) \(gradLogits.shape)")
        }
        let r = try calls.vjpLogits(layer, x: x, activations: activations, gradLogits: gradLogits)
        try expect(r.logits, [n, info.numClasses], "the logits")
        try expect(r.gradActivations, [n] + s, "vjp_logits's gradient")
        return r
    }
}

/// A plugin's QUAC_EXT_CLASSIFIER_LAYERS table, called with the instance's own locking and error
/// reporting.
struct PluginLayerCalls: ClassifierLayerCalls {
    let instance: PluginInstance
    let table: UnsafePointer<quac_classifier_layers>

    func list() throws -> [ClassifierLayer] {
        guard let raw = table.pointee.list_json?(instance.plugin) else {
            throw QuacError("classifier \(instance.label): list_json returned NULL")
        }
        guard let items = try? JSONParser.parse(String(cString: raw)).arrayValue else {
            throw QuacError("classifier \(instance.label): list_json is not a JSON array")
        }
        return try items.map { item in
            guard let name = item["name"]?.stringValue, let dims = item["shape"]?.arrayValue,
                  case let shape = dims.compactMap({ $0.intValue }).map(Int.init), shape.count == dims.count, shape.allSatisfy({ $0 >= 1 }) else {
                throw QuacError("classifier \(instance.label): list_json has an entry without a name and a shape of positive sizes: \(item.serialized())")
            }
            return ClassifierLayer(name: name, shape: shape)
        }
    }

    private func adopt(_ m: UnsafeMutablePointer<quac_managed_tensor>?, _ function: String) throws -> Tensor {
        guard let m else { throw QuacError("classifier \(instance.label): \(function) returned ok but no tensor") }
        do { return try Tensor(adopting: m) } catch { throw QuacError("classifier \(instance.label): \(function): \(error)") }
    }

    /// Both outputs of a call, or neither: what the plugin handed out is released when the call failed
    /// or the other output is missing or bad.
    private func adoptBoth(_ a: UnsafeMutablePointer<quac_managed_tensor>?, _ b: UnsafeMutablePointer<quac_managed_tensor>?,
                           failed: Error?, _ function: String) throws -> (Tensor, Tensor) {
        func release(_ m: UnsafeMutablePointer<quac_managed_tensor>?) { if let m { m.pointee.deleter?(m) } }
        if let failed { release(a); release(b); throw failed }
        let first: Tensor
        do { first = try adopt(a, function) } catch { release(b); throw error }
        return (first, try adopt(b, function))
    }

    func forward(_ layer: String, x: Tensor) throws -> (activations: Tensor, logits: Tensor) {
        var a: UnsafeMutablePointer<quac_managed_tensor>?, l: UnsafeMutablePointer<quac_managed_tensor>?
        var failed: Error?
        do {
            try x.withABITensor { xp in
                try instance.invoke("layers.forward") { layer.withCString { table.pointee.forward!(instance.plugin, $0, xp, &a, &l) } }
            }
        } catch { failed = error }
        return try adoptBoth(a, l, failed: failed, "layers.forward")
    }

    func vjpInput(_ layer: String, x: Tensor, gradActivations: Tensor) throws -> Tensor {
        var g: UnsafeMutablePointer<quac_managed_tensor>?
        let views = [x, gradActivations].map(ABITensorView.init)
        do {
            try withExtendedLifetime(views) {
                try instance.invoke("layers.vjp_input") {
                    layer.withCString { table.pointee.vjp_input!(instance.plugin, $0, views[0].pointer, views[1].pointer, &g) }
                }
            }
        } catch {
            if let g { g.pointee.deleter?(g) }
            throw error
        }
        return try adopt(g, "layers.vjp_input")
    }

    func vjpLogits(_ layer: String, x: Tensor, activations: Tensor?, gradLogits: Tensor) throws -> (logits: Tensor, gradActivations: Tensor) {
        var l: UnsafeMutablePointer<quac_managed_tensor>?, g: UnsafeMutablePointer<quac_managed_tensor>?
        let views = [x, gradLogits].map(ABITensorView.init), a = activations.map(ABITensorView.init)
        var failed: Error?
        do {
            try withExtendedLifetime((views, a)) {
                try instance.invoke("layers.vjp_logits") {
                    layer.withCString {
                        table.pointee.vjp_logits!(instance.plugin, $0, views[0].pointer, a.map { UnsafePointer($0.pointer) }, views[1].pointer, &l, &g)
                    }
                }
            }
        } catch { failed = error }
        let (logits, grad) = try adoptBoth(l, g, failed: failed, "layers.vjp_logits")
        return (logits, grad)
    }
}
