import Engine
import Foundation
import QuacPluginKit

/// An empirical explainer: a network g that maps an input to an attribution map in one forward pass,
/// trained to reproduce an expensive method's maps (the pipeline computes them over the training split:
/// the train block's "targets_from"). g is a convolutional encoder-decoder with a skip at every
/// resolution, one value per input position and channel. Its encoder is, with "encoder": "classifier"
/// (the default), the explained classifier's own convolutional trunk with its trained weights, when the
/// classifier hands them out (EmpiricalTrunk.swift); otherwise a fresh small CNN (see `network`).
/// Targets are divided by their root mean square over the training set, and g's outputs multiplied
/// back by it. Training is in EmpiricalTraining.swift.
final class EmpiricalExplainer: AttributorPlugin {
    static let description = PluginDescription(
        id: "org.quac.empirical-explainer", name: "Empirical explainer",
        summary: "A network trained to reproduce another method's attribution maps in one forward pass", kind: .attributor)
    let host: HostServices
    let parameters: Parameters
    let sampleShape: [Int]
    var architecture: JSONValue
    var model: Module
    /// "classifier" (start from the classifier's trunk when it can) or "fresh".
    let encoderMode: String
    /// What the encoder started from, as the model file and the training record say.
    var encoderSource = "fresh"
    /// The state-dict names of the layers copied from the classifier (trained at encoder_learning_rate).
    var encoderKeys: Set<String> = []
    /// Whether the network came from a `weights` file: training then continues from it rather than
    /// starting again from the classifier.
    var weightsLoaded = false
    /// The scale of the targets g was trained on (their root mean square); 1 before training.
    var targetScale: Float = 1

    init(host: HostServices, parameters: Parameters) throws {
        self.host = host
        self.parameters = parameters
        _ = try Settings(parameters)   // training settings are checked when the instance is made
        encoderMode = try parameters.string("encoder")
        guard ["classifier", "fresh"].contains(encoderMode) else {
            throw PluginError.invalid("encoder must be \"classifier\" or \"fresh\", got \"\(encoderMode)\"")
        }
        sampleShape = try parameters.ints("input_shape")
        let channels = try parameters.ints("channels")
        guard sampleShape.count == 3, sampleShape.allSatisfy({ $0 >= 1 }) else {
            throw PluginError.invalid("input_shape must be [C, H, W] with positive sizes, got \(sampleShape)")
        }
        guard (1...8).contains(channels.count), channels.allSatisfy({ $0 >= 1 }) else {
            throw PluginError.invalid("channels must list 1 to 8 positive feature-map counts")
        }
        let levels = 1 << (channels.count - 1)
        guard sampleShape[1] % levels == 0, sampleShape[2] % levels == 0 else {
            throw PluginError.invalid("input_shape \(sampleShape): H and W must be multiples of \(levels) for \(channels.count - 1) pooling levels")
        }
        architecture = Self.network(inputChannels: sampleShape[0], channels: channels)
        do {
            model = try ModelBuilder.build(architecture, seed: UInt64(try parameters.int("seed")), initialize: parameters.optional("weights") == nil)
        } catch { throw PluginError.invalid("architecture: \(error)") }
        model.eval()
        if let path = try parameters.optionalString("weights") { try load(from: URL(fileURLWithPath: path)) }
    }

    /// The network as a ModelFile description: conv3x3-ReLU to channels[0]; then, per further level,
    /// a block that adds a 1x1 convolution of its input (the skip at this resolution) to
    /// [2x2 max pooling, conv3x3-ReLU to the next width, the next level's block, 2x nearest upsampling,
    /// conv3x3-ReLU back]; last a 1x1 convolution to the input's channels. Every resolution keeps a
    /// path to the output, so fine detail survives the pooling.
    static func network(inputChannels: Int, channels: [Int]) -> JSONValue {
        func int(_ v: Int) -> JSONValue { .int(Int64(v)) }
        func conv(_ i: Int, _ o: Int, _ k: Int) -> JSONValue { ["type": "conv2d", "in": int(i), "out": int(o), "kernel": int(k), "padding": int(k / 2)] }
        func level(_ i: Int) -> [JSONValue] {
            guard i + 1 < channels.count else { return [] }
            let (c, d) = (channels[i], channels[i + 1])
            let body: [JSONValue] = [["type": "max_pool2d", "kernel": 2], conv(c, d, 3), ["type": "relu"]] + level(i + 1)
                + [["type": "upsample", "scale": 2], conv(d, c, 3), ["type": "relu"]]
            return [["type": "residual", "body": ["type": "sequential", "layers": .array(body)], "shortcut": conv(c, c, 1)]]
        }
        let layers = [conv(inputChannels, channels[0], 3), ["type": "relu"]] + level(0) + [conv(channels[0], inputChannels, 1)]
        return ["type": "sequential", "init": "kaiming_normal", "layers": .array(layers)]
    }

    func attribute(_ batch: Batch) throws -> Outputs {
        let x = batch.x
        guard x.dtype == .float32, Array(x.shape.dropFirst()) == sampleShape else {
            throw PluginError.invalid("x: expected float32 [N, \(sampleShape.map(String.init).joined(separator: ", "))] (input_shape), got \(x.dtype.displayName) \(x.shape)")
        }
        guard x.isFinite else { throw PluginError.invalid("x contains NaN or infinity") }
        guard batch.count > 0 else { return Outputs([("attribution", Tensor(zeros: x.shape))]) }
        model.eval()
        let out = noGrad { model(Var(NDArray(x).copy())) }.data.contiguous()
        let p = out.pointer
        for i in 0..<out.count { p[i] *= targetScale }
        return Outputs([("attribution", out.tensor)])
    }
}
