import Engine
import Foundation
import MetaLearning
import QuacPluginKit

/// A SMAT-style learned explainer: it mixes H candidate saliency maps ("heads") with weights
/// sparsemax(phi) into z, and explains a query by softmax(z) over the input's positions. The heads are
/// other attributors' maps (the "heads" parameter; the host computes them and passes them in every
/// batch) and the channel maps of a classifier layer ("head_layer", through the classifier's layers).
/// phi starts uniform (1/H) and is meta-learned so that a student trained on the teacher's predictions
/// and these explanations simulates the teacher better (SMATTraining.swift); the simulability study
/// that measures it is in SMATSimulability.swift.
final class SMATExplainer: AttributorPlugin {
    static let description = PluginDescription(
        id: "org.quac.smat-explainer", name: "SMAT-style explainer",
        summary: "Candidate maps mixed by meta-learned sparse weights, trained so that a student simulates the classifier",
        kind: .attributor)

    let host: HostServices
    let parameters: Parameters
    let sampleShape: [Int]
    /// The attributors whose maps are heads, in order.
    let mapHeads: [String]
    /// The classifier layer whose channels are heads, and their count.
    let headLayer: String?
    let layerChannels: Int
    /// The mixing parameters over mapHeads then the layer's channels.
    let phi: Var
    /// The simulability study of the last training (or of the loaded model).
    var study: JSONValue?

    var headNames: [String] { mapHeads + (0..<layerChannels).map { "\(headLayer!)[\($0)]" } }

    init(host: HostServices, parameters: Parameters) throws {
        self.host = host
        self.parameters = parameters
        _ = try Settings(parameters)   // training settings are checked when the instance is made
        sampleShape = try parameters.ints("input_shape")
        guard sampleShape.count == 3, sampleShape.allSatisfy({ $0 >= 1 }) else {
            throw PluginError.invalid("input_shape must be [C, H, W] with positive sizes, got \(sampleShape)")
        }
        mapHeads = try parameters.strings("heads")
        guard Set(mapHeads).count == mapHeads.count else { throw PluginError.invalid("heads names an attributor twice: \(mapHeads)") }
        let layer = try parameters.string("head_layer")
        headLayer = layer.isEmpty ? nil : layer
        if let layer = headLayer {
            let layers = try host.classifierLayers().list()
            guard let l = layers.first(where: { $0.name == layer }) else {
                throw PluginError.invalid("head_layer: the classifier has no layer \"\(layer)\" (its layers: \(layers.prefix(40).map(\.name).joined(separator: ", ")))")
            }
            guard l.shape.count == 3 else { throw PluginError.invalid("head_layer \"\(layer)\" has per-sample shape \(l.shape); its channel maps must be [C, H, W]") }
            layerChannels = l.shape[0]
        } else {
            layerChannels = 0
        }
        let count = mapHeads.count + layerChannels
        guard count >= 1 else { throw PluginError.invalid("no heads: name attributors in \"heads\" or a classifier layer in \"head_layer\"") }
        phi = Var(NDArray.full([count], 1 / Float(count)), requiresGrad: true)
        if let path = try parameters.optionalString("weights") { try load(from: URL(fileURLWithPath: path)) }
    }

    /// The learned weights sparsemax(phi), by head.
    var headWeights: [(String, Float)] { Array(zip(headNames, noGrad { phi.sparsemax() }.array)) }

    /// The heads of a batch [N, H, P], standardized per sample and head: each attributor's |map| summed
    /// over channels, then the layer's channels resized to the input.
    func heads(x: Tensor, maps: (String) throws -> Tensor) throws -> NDArray {
        let n = x.shape[0], p = sampleShape[1] * sampleShape[2]
        var parts: [NDArray] = try mapHeads.map { name in
            let m = try maps(name)
            guard m.dtype == .float32, m.shape == x.shape else {
                throw PluginError.invalid("the maps of \(name) are \(m.dtype.displayName) \(m.shape), expected float32 \(x.shape) like x")
            }
            return SMATMath.attributionHead(NDArray(m).copy()).reshaped([n, 1, p])
        }
        if let layer = headLayer {
            let (a, _) = try host.classifierLayers().forward(layer, x: x)
            parts.append(SMATMath.layerHeads(NDArray(a).copy(), height: sampleShape[1], width: sampleShape[2]))
        }
        let all = Var.concat(parts.map { Var($0) }, axis: 1)
        return noGrad { SMATMath.standardize(all) }.data.contiguous()
    }

    func attribute(_ batch: Batch) throws -> Outputs {
        let x = batch.x
        guard x.dtype == .float32, Array(x.shape.dropFirst()) == sampleShape else {
            throw PluginError.invalid("x: expected float32 [N, \(sampleShape.map(String.init).joined(separator: ", "))] (input_shape), got \(x.dtype.displayName) \(x.shape)")
        }
        // Wrapped in an object: an array as long as the batch would be taken for one entry per sample.
        let weights: JSONValue = ["heads": ["weights": .array(headWeights.map { ["name": .string($0.0), "weight": .double(Double($0.1))] })]]
        guard batch.count > 0 else { return Outputs([("attribution", Tensor(zeros: x.shape))], json: weights) }
        let h = try heads(x: x) { try batch.map($0) }
        let explanation = noGrad { SMATMath.logExplanation(SMATMath.mix(Var(h), phi.sparsemax())).exp() }.data.contiguous()
        let (n, c, p) = (batch.count, sampleShape[0], sampleShape[1] * sampleShape[2])
        let out = Tensor(zeros: x.shape)
        for s in 0..<n { for ch in 0..<c { (out.floats.baseAddress! + (s * c + ch) * p).update(from: explanation.pointer + s * p, count: p) } }
        return Outputs([("attribution", out)], json: weights)
    }
}
