import QuacPluginKit

/// What layer methods share: choosing the layer, and turning a layer map [N, 1, h, w] into a map shaped
/// like the input, the way Captum's LayerAttribution.interpolate does (torch.nn.functional.interpolate
/// to the input's H x W), repeated over the input's channels.
enum LayerMaps {
    enum Interpolation: String { case nearest, bilinear }

    /// The layer named by the "layer" parameter: "auto" picks the last layer with a [C, H, W] output.
    static func layer(_ name: String, of layers: [(name: String, shape: [Int])]) throws -> (name: String, shape: [Int]) {
        if name == "auto" {
            guard let l = layers.last(where: { $0.shape.count == 3 }) else {
                throw PluginError.invalid("layer \"auto\": the classifier has no layer with a [C, H, W] output")
            }
            return l
        }
        guard let l = layers.first(where: { $0.name == name }) else {
            throw PluginError.invalid("the classifier has no layer \"\(name)\" (its layers: \(layers.prefix(40).map(\.name).joined(separator: ", ")))")
        }
        guard l.shape.count == 3 else {
            throw PluginError.invalid("layer \"\(name)\" has per-sample shape \(l.shape); a layer map needs a [C, H, W] output")
        }
        return l
    }

    /// [N, h, w] values (one map per sample) resized to `xShape`'s H x W and repeated over its channels.
    static func toInput(_ maps: [Float], n: Int, h: Int, w: Int, xShape: [Int], mode: Interpolation) -> Tensor {
        let (c, H, W) = (xShape[1], xShape[2], xShape[3])
        let out = Tensor(zeros: xShape)
        let o = out.floats
        // PyTorch's source coordinates: nearest takes floor(dst * in / out); bilinear (align_corners
        // false) samples (dst + 0.5) * in / out - 0.5, clamped at 0.
        let sy = Float(h) / Float(H), sx = Float(w) / Float(W)
        for s in 0..<n {
            let m = s * h * w
            for Y in 0..<H {
                for X in 0..<W {
                    let v: Float
                    switch mode {
                    case .nearest:
                        let y = min(Int((Float(Y) * sy).rounded(.down)), h - 1), x = min(Int((Float(X) * sx).rounded(.down)), w - 1)
                        v = maps[m + y * w + x]
                    case .bilinear:
                        let fy = max((Float(Y) + 0.5) * sy - 0.5, 0), fx = max((Float(X) + 0.5) * sx - 0.5, 0)
                        let y0 = min(Int(fy), h - 1), x0 = min(Int(fx), w - 1)
                        let y1 = min(y0 + 1, h - 1), x1 = min(x0 + 1, w - 1)
                        let ly = fy - Float(y0), lx = fx - Float(x0)
                        let top = (1 - lx) * maps[m + y0 * w + x0] + lx * maps[m + y0 * w + x1]
                        let bottom = (1 - lx) * maps[m + y1 * w + x0] + lx * maps[m + y1 * w + x1]
                        v = (1 - ly) * top + ly * bottom
                    }
                    for ch in 0..<c { o[((s * c + ch) * H + Y) * W + X] = v }
                }
            }
        }
        return out
    }

    static func interpolation(_ p: Parameters) throws -> Interpolation {
        let name = try p.string("interpolate_mode")
        guard let mode = Interpolation(rawValue: name) else { throw PluginError.invalid("interpolate_mode must be nearest or bilinear, got \"\(name)\"") }
        return mode
    }

    /// What both layer methods start from: images, their source classes as one-hot grad_logits, the
    /// run's classifier's layers and the chosen one ([C, H, W]).
    struct Call {
        let layers: HostClassifierLayers
        let layer: (name: String, shape: [Int])
        let oneHot: Tensor
        let classes: Int
        var c: Int { layer.shape[0] }
        var h: Int { layer.shape[1] }
        var w: Int { layer.shape[2] }
    }

    static func call(_ host: HostServices, _ batch: Batch, layer name: String) throws -> Call {
        guard batch.x.rank == 4 else {
            throw PluginError.invalid("x: a layer map is resized to images [N, C, H, W], got \(batch.x.shape)")
        }
        let labels = try batch.requireSource()
        let layers = try host.classifierLayers()
        let layer = try Self.layer(name, of: try layers.list())
        let (spec, _) = try host.classifierInfo()
        return Call(layers: layers, layer: layer, oneHot: try HostServices.oneHot(labels, classes: spec.numClasses), classes: spec.numClasses)
    }
}

/// Grad-CAM (Captum's LayerGradCam): per sample, the layer's activations A [c, h, w] weighted by the
/// spatial mean of d f_y / d A per channel, summed over channels; optionally through a ReLU
/// (relu_attributions); then resized to the input as LayerAttribution.interpolate does.
final class GradCAM: AttributorPlugin {
    static let description = PluginDescription(
        id: "org.quac.grad-cam", name: "Grad-CAM",
        summary: "Channel-weighted activations of a classifier layer (Captum's LayerGradCam), resized to the input",
        kind: .attributor)
    let host: HostServices
    let layerName: String
    let relu: Bool
    let mode: LayerMaps.Interpolation

    init(host: HostServices, parameters: Parameters) throws {
        self.host = host
        layerName = try parameters.string("layer")
        relu = try parameters.bool("relu_attributions")
        mode = try LayerMaps.interpolation(parameters)
    }

    func attribute(_ batch: Batch) throws -> Outputs {
        let call = try LayerMaps.call(host, batch, layer: layerName)
        let (n, c, h, w, layer) = (batch.count, call.c, call.h, call.w, call.layer)
        guard n > 0 else { return Outputs([("attribution", Tensor(zeros: batch.x.shape))]) }
        let (activations, _) = try call.layers.forward(layer.name, x: batch.x)
        let grads = try call.layers.vjpLogits(layer.name, x: batch.x, activations: activations, gradLogits: call.oneHot).gradActivations
        let a = activations.floats, g = grads.floats
        var cam = [Float](repeating: 0, count: n * h * w)
        for s in 0..<n {
            for ch in 0..<c {
                let base = (s * c + ch) * h * w
                var mean: Float = 0
                for i in 0..<(h * w) { mean += g[base + i] }
                mean /= Float(h * w)
                for i in 0..<(h * w) { cam[s * h * w + i] += mean * a[base + i] }
            }
        }
        if relu { for i in cam.indices { cam[i] = max(cam[i], 0) } }
        return Outputs([("attribution", LayerMaps.toInput(cam, n: n, h: h, w: w, xShape: batch.x.shape, mode: mode))],
                       json: ["layer": .string(layer.name)])
    }
}

/// Layer Integrated Gradients (Captum's LayerIntegratedGradients): Integrated Gradients in a layer's
/// activation space, from the activations of an all-zero input to those of x, with the network run
/// from the interpolated activations onwards. The layer attribution [c, h, w] is summed over channels
/// and resized to the input. Puts JSON {"convergence_delta": [per sample]} (sum of the layer
/// attribution minus f_y(x) - f_y(0)).
final class LayerIntegratedGradients: AttributorPlugin {
    static let description = PluginDescription(
        id: "org.quac.layer-integrated-gradients", name: "Layer Integrated Gradients",
        summary: "Integrated Gradients over a classifier layer's activations (Captum's LayerIntegratedGradients), summed over channels and resized to the input",
        kind: .attributor)
    let host: HostServices
    let layerName: String
    let quadrature: PathQuadrature
    let mode: LayerMaps.Interpolation

    init(host: HostServices, parameters: Parameters) throws {
        self.host = host
        layerName = try parameters.string("layer")
        let name = try parameters.string("method")
        guard let method = PathQuadrature.Method(rawValue: name) else {
            throw PluginError.invalid("method must be one of \(PathQuadrature.Method.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(name)\"")
        }
        quadrature = try PathQuadrature(method: method, steps: try parameters.int("n_steps"))
        mode = try LayerMaps.interpolation(parameters)
    }

    func attribute(_ batch: Batch) throws -> Outputs {
        let call = try LayerMaps.call(host, batch, layer: layerName)
        let (n, c, h, w, layer, layers) = (batch.count, call.c, call.h, call.w, call.layer, call.layers)
        guard n > 0 else { return Outputs([("attribution", Tensor(zeros: batch.x.shape))], json: ["convergence_delta": .array([])]) }
        let labels = try batch.requireSource()
        let (ax, fx) = try layers.forward(layer.name, x: batch.x)
        let (ab, fb) = try layers.forward(layer.name, x: Tensor(zeros: batch.x.shape))
        let d = c * h * w
        let xa = ax.floats, ba = ab.floats
        var total = [Double](repeating: 0, count: n * d)
        for (k, alpha) in quadrature.alphas.enumerated() {
            try host.checkCancelled()
            let point = Tensor(zeros: ax.shape)
            let p = point.floats
            for i in 0..<(n * d) { p[i] = ba[i] + Float(alpha) * (xa[i] - ba[i]) }
            let g = try layers.vjpLogits(layer.name, x: batch.x, activations: point, gradLogits: call.oneHot).gradActivations.floats
            for i in 0..<(n * d) { total[i] += quadrature.weights[k] * Double(g[i]) }
            host.progress(k + 1, of: quadrature.alphas.count, "path steps")
        }
        var summed = [Float](repeating: 0, count: n * h * w)
        var deltas: [JSONValue] = []
        let classes = call.classes
        for s in 0..<n {
            var sum = 0.0
            for ch in 0..<c {
                for i in 0..<(h * w) {
                    let k = s * d + ch * h * w + i
                    let v = total[k] * (Double(xa[k]) - Double(ba[k]))
                    summed[s * h * w + i] += Float(v)
                    sum += v
                }
            }
            let y = Int(labels[s])
            deltas.append(.double(sum - (Double(fx.floats[s * classes + y]) - Double(fb.floats[s * classes + y]))))
        }
        return Outputs([("attribution", LayerMaps.toInput(summed, n: n, h: h, w: w, xShape: batch.x.shape, mode: mode))],
                       json: ["convergence_delta": .array(deltas), "layer": .string(layer.name)])
    }
}
