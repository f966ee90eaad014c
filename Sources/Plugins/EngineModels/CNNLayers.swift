import Engine
import Foundation
import QuacPluginKit

/// The CNN's inner layers (QUAC_EXT_CLASSIFIER_LAYERS). A layer is any module of the network, named by
/// its PyTorch module path ("features.12", "classifier.0"), so names match a PyTorch copy's hooks. Its
/// activations are read, or replaced, through the module's output hook, in evaluation mode as every
/// inference call.
extension CNNClassifier: LayeredClassifierPlugin {
    var layers: [(name: String, shape: [Int])] { layerShapes }

    /// Each module's output shape for one sample, from one zero sample through the network.
    static func probeLayers(_ model: Module, sampleShape: [Int]) -> [(name: String, shape: [Int])] {
        let modules = model.namedModules()
        var shapes: [String: [Int]] = [:]
        for (name, m) in modules { m.outputHook = { y in shapes[name] = Array(y.shape.dropFirst()); return y } }
        defer { for (_, m) in modules { m.outputHook = nil } }
        model.eval()
        _ = noGrad { model(Var(NDArray.zeros([1] + sampleShape))) }
        return modules.compactMap { name, _ in shapes[name].map { (name, $0) } }
    }

    private func module(_ layer: String) throws -> Module {
        guard layerShapes.contains(where: { $0.name == layer }), let m = model.module(at: layer) else {
            throw PluginError.invalid("no layer \"\(layer)\" (layers: \(layerShapes.prefix(40).map(\.name).joined(separator: ", ")))")
        }
        return m
    }

    private func layerShape(_ layer: String, n: Int) -> [Int] { [n] + layerShapes.first { $0.name == layer }!.shape }

    private func checkActivations(_ t: Tensor, _ layer: String, n: Int, _ what: String) throws {
        let s = layerShape(layer, n: n)
        guard t.dtype == .float32, t.shape == s else {
            throw PluginError.invalid("\(what): expected float32 \(s) (layer \(layer)), got \(t.dtype.displayName) \(t.shape)")
        }
        guard t.isFinite else { throw PluginError.invalid("\(what) contains NaN or infinity") }
    }

    /// Runs the network with `hook` on the layer's module.
    private func withHook<R>(_ m: Module, _ hook: @escaping (Var) -> Var, _ body: () throws -> R) rethrows -> R {
        m.outputHook = hook
        defer { m.outputHook = nil }
        model.eval()
        return try body()
    }

    func layerForward(_ layer: String, x: Tensor) throws -> (activations: Tensor, logits: Tensor) {
        let m = try module(layer)
        let n = try check(x)
        var captured: Var?
        let logits = withHook(m, { captured = $0; return $0 }) { noGrad { model(Var(NDArray(x).copy())) } }
        return (captured.map { $0.data.contiguous().tensor } ?? Tensor(zeros: layerShape(layer, n: n)), logits.data.contiguous().tensor)
    }

    func layerVJPInput(_ layer: String, x: Tensor, gradActivations: Tensor) throws -> Tensor {
        let m = try module(layer)
        let n = try check(x)
        try checkActivations(gradActivations, layer, n: n, "grad_activations")
        guard n > 0 else { return Tensor(zeros: x.shape) }
        let xv = Var(NDArray(x).copy(), requiresGrad: true)
        var captured: Var?
        _ = withHook(m, { captured = $0; return $0 }) { model(xv) }
        let g = gradients(of: [captured!], wrt: [xv], seeds: [Var(NDArray(gradActivations).copy())])[0]
        return g.map { $0.data.contiguous().tensor } ?? Tensor(zeros: x.shape)
    }

    func layerVJPLogits(_ layer: String, x: Tensor, activations: Tensor?, gradLogits: Tensor) throws -> (logits: Tensor, gradActivations: Tensor) {
        let m = try module(layer)
        let n = try check(x)
        if let a = activations { try checkActivations(a, layer, n: n, "activations") }
        guard gradLogits.dtype == .float32, gradLogits.shape == [n, spec.numClasses], gradLogits.isFinite else {
            throw PluginError.invalid("grad_logits: expected finite float32 [\(n), \(spec.numClasses)], got \(gradLogits.dtype.displayName) \(gradLogits.shape)")
        }
        guard n > 0 else { return (Tensor(zeros: [0, spec.numClasses]), Tensor(zeros: layerShape(layer, n: 0))) }
        let given = activations.map { NDArray($0).copy() }
        var leaf: Var?
        // The layer's output becomes a leaf (its own values, or the given ones), so the gradient
        // stops there (what runs before it is recorded for the parameters, but never differentiated).
        let logits = withHook(m, { y in
            let l = Var(given ?? y.data.copy(), requiresGrad: true)
            leaf = l
            return l
        }) { model(Var(NDArray(x).copy())) }
        let g = gradients(of: [logits], wrt: [leaf!], seeds: [Var(NDArray(gradLogits).copy())])[0]
        return (logits.data.contiguous().tensor, g.map { $0.data.contiguous().tensor } ?? Tensor(zeros: layerShape(layer, n: n)))
    }
}

/// Cascading model randomisation (QUAC_EXT_CLASSIFIER_RANDOMIZE): the convolution and linear layers,
/// from the output backwards, re-drawn uniformly in +-1/sqrt(fan-in) (PyTorch's default
/// initialisation) from the seed and the layer's position; batch-norm statistics are kept.
extension CNNClassifier: RandomizableClassifierPlugin {
    var randomizableLayers: [String] {
        model.namedModules().filter { $0.1 is Conv2d || $0.1 is Linear }.map(\.0).reversed()
    }

    func randomize(count: Int, seed: UInt64) throws {
        for (v, original) in savedWeights { v.setData(original) }
        savedWeights = []
        for (i, name) in randomizableLayers.prefix(count).enumerated() {
            guard let m = model.module(at: name) else { continue }
            let weights = m.localParameters
            let fanIn = weights.first.map { $0.1.count / max($0.1.shape[0], 1) } ?? 1
            var rng = SeededRandom(seed: seed &+ UInt64(i + 1) &* 0x9E37_79B9_7F4A_7C15)
            let bound = 1 / Float(max(fanIn, 1)).squareRoot()
            for (_, p) in weights {
                savedWeights.append((p, p.data.copy()))
                p.setData(.uniform(p.shape, low: -bound, high: bound, rng: &rng))
            }
        }
        model.eval()
    }
}
