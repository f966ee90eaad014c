import Engine
import Foundation
import OnnxImport
import QuacPluginKit

/// A convolutional classifier on the engine: QuAC's VGG-style network by default (or any ModelFile
/// architecture), with exact gradients through the engine's autodiff and its modified backward rules
/// (DeepLift rescale with Captum's max-pooling rule, guided backpropagation). Inference runs in
/// evaluation mode (batch norm with running statistics), so a sample's logits do not depend on the
/// batch it comes in. Training is in CNNTraining.swift.
final class CNNClassifier: ClassifierPlugin {
    static let description = PluginDescription(
        id: "org.quac.cnn-classifier", name: "CNN classifier",
        summary: "VGG-style convolutional network (or any engine architecture) with exact gradients, DeepLift/guided backprop rules and training",
        kind: .classifier)

    let host: HostServices
    let parameters: Parameters
    let spec: ClassifierSpec
    /// The network's ModelFile description; model files this plugin writes carry it.
    let architecture: JSONValue
    let model: Module
    /// The network's layers and their per-sample output shapes (CNNLayers.swift).
    private(set) var layerShapes: [(name: String, shape: [Int])] = []
    /// The trained weights of layers re-drawn by `randomize` (CNNLayers.swift), to put them back.
    var savedWeights: [(Var, NDArray)] = []

    init(host: HostServices, parameters: Parameters) throws {
        self.host = host
        self.parameters = parameters
        let shape: [Int], classes: Int
        _ = try Settings(parameters)   // training settings are checked when the instance is made
        let weightsPath = try parameters.optionalString("weights"), stateDictPath = try parameters.optionalString("state_dict")
        let onnxPath = try parameters.optionalString("onnx")
        var onnxWeights: [(String, Tensor)]?
        if let onnxPath {
            guard parameters.optional("architecture") == nil, weightsPath == nil, stateDictPath == nil else {
                throw PluginError.invalid("onnx gives the network and its weights: leave out architecture, weights and state_dict")
            }
            let conversion = try Self.convertONNX(onnxPath)
            architecture = conversion.architecture
            (shape, classes) = (conversion.inputShape, conversion.numClasses)
            onnxWeights = conversion.weights
        } else if let custom = parameters.optional("architecture") {
            guard custom.objectValue != nil else { throw PluginError.invalid("architecture must be a JSON object (a ModelFile network description)") }
            architecture = custom
            shape = try parameters.ints("input_shape")
            guard !shape.isEmpty, shape.allSatisfy({ $0 >= 1 }) else {
                throw PluginError.invalid("input_shape must list positive sizes, got \(shape)")
            }
            classes = try parameters.int("num_classes")
        } else {
            let name = try parameters.string("preset")
            switch name {
            case "vgg":
                let preset = try CNNArchitecture.preset(parameters)
                architecture = CNNArchitecture.vgg(preset)
                (shape, classes) = (preset.inputShape, preset.numClasses)
            case "file":
                guard let weightsPath else { throw PluginError.invalid("preset \"file\" takes the network from the model file: give weights") }
                (architecture, shape, classes) = try Self.describedNetwork(weightsPath)
            default:
                throw PluginError.invalid("unknown preset \"\(name)\" (known: vgg, file)")
            }
        }
        spec = ClassifierSpec(numClasses: classes, sampleShape: shape)
        do {
            // Weights from a file replace every parameter (loadStateDict is strict): no need to draw them first.
            model = try ModelBuilder.build(architecture, seed: UInt64(try parameters.int("seed")),
                                           initialize: weightsPath == nil && stateDictPath == nil && onnxPath == nil)
        } catch { throw PluginError.invalid("architecture: \(error)") }
        model.eval()
        if weightsPath != nil, stateDictPath != nil {
            throw PluginError.invalid("give weights (a model file of this plugin) or state_dict (a PyTorch state dict), not both")
        }
        if let onnxWeights, let onnxPath {
            var arrays: [String: NDArray] = [:]
            for (name, t) in onnxWeights { arrays[name] = NDArray(t) }
            do { try model.loadStateDict(arrays) } catch { throw PluginError.invalid("onnx \(onnxPath): \(error)") }
            model.eval()
            try probe()
        } else if let path = weightsPath {
            try loadWeights(URL(fileURLWithPath: path))
        } else if let path = stateDictPath {
            try loadStateDict(URL(fileURLWithPath: path))
            try probe()
        } else {
            try probe()
        }
        layerShapes = Self.probeLayers(model, sampleShape: shape)
    }

    /// A PyTorch state dict (safetensors, PyTorch's names: `quac-host import` writes one from a
    /// `torch.save` file) into the network; every name and shape must match.
    private func loadStateDict(_ url: URL) throws {
        let file: SafetensorsFile
        do { file = try Safetensors.read(url) } catch { throw PluginError.io("state_dict \(url.path): \(error)") }
        do {
            try ModelFile.loadForeignStateDict(file, into: model) { $0.hasSuffix("num_batches_tracked") }
        } catch { throw PluginError.invalid("state_dict \(url.path): \(error) (check input_shape, num_classes, channels, fc or architecture)") }
        model.eval()
    }

    var supportsModifiedBackward: Bool { true }

    /// An ONNX file as the engine's network (OnnxImport): its architecture, weights, input shape and
    /// class count. Any operator or attribute the engine lacks stops it, naming the node.
    private static func convertONNX(_ path: String) throws -> OnnxConversion {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe) } catch {
            throw PluginError.io("onnx \(path): cannot read the file (\(error.localizedDescription))")
        }
        do { return try OnnxConverter.convert(data) } catch {
            throw PluginError.invalid("onnx \(path): \(error)")
        }
    }

    /// The network a model file describes (its architecture, input_shape and num_classes metadata), for
    /// preset "file": an imported ONNX network runs from its model file without repeating its architecture.
    private static func describedNetwork(_ path: String) throws -> (JSONValue, [Int], Int) {
        let file: SafetensorsFile
        do { file = try Safetensors.read(URL(fileURLWithPath: path)) } catch { throw PluginError.io("weights \(path): \(error)") }
        guard let text = file.metadata[ModelFile.architectureKey], let arch = try? JSONParser.parse(text), arch.objectValue != nil else {
            throw PluginError.io("weights \(path): no architecture in the file's metadata (not a model file of this plugin)")
        }
        guard let shapeText = file.metadata["input_shape"], let shape = try? JSONParser.parse(shapeText).arrayValue?.compactMap(\.intValue).map(Int.init),
              !shape.isEmpty, shape.allSatisfy({ $0 >= 1 }),
              let classes = file.metadata["num_classes"].flatMap(Int.init), classes >= 1 else {
            throw PluginError.io("weights \(path): no input_shape and num_classes in the file's metadata")
        }
        return (arch, shape, classes)
    }

    /// One zero sample through the network: the architecture must accept input_shape and give
    /// num_classes logits (a custom architecture is only known to fit once it ran).
    private func probe() throws {
        let out = noGrad { model(Var(NDArray.zeros([1] + spec.sampleShape))) }
        guard out.shape == [1, spec.numClasses] else {
            throw PluginError.invalid("the architecture maps an input of shape [1, \(spec.sampleShape.map(String.init).joined(separator: ", "))] to \(out.shape), expected [1, \(spec.numClasses)] (num_classes)")
        }
    }

    /// Replaces the weights by a model file's (one `save` wrote); its architecture must be this
    /// instance's.
    func loadWeights(_ url: URL) throws {
        let file: SafetensorsFile
        do { file = try Safetensors.read(url) } catch { throw PluginError.io("weights \(url.path): \(error)") }
        guard let text = file.metadata[ModelFile.architectureKey], let stored = try? JSONParser.parse(text) else {
            throw PluginError.io("weights \(url.path): no architecture in the file's metadata (not a model file of this plugin)")
        }
        guard stored == architecture else {
            throw PluginError.invalid("weights \(url.path): the file's architecture differs from the one the parameters describe (check input_shape, num_classes, channels, fc, dropout or architecture)")
        }
        do { try model.loadStateDict(ModelFile.floatArrays(file)) } catch { throw PluginError.io("weights \(url.path): \(error)") }
        model.eval()
        try probe()
    }

    // MARK: Inputs

    /// Checks a batch: float32, [N, sample shape], finite. Returns N.
    func check(_ x: Tensor, _ name: String = "x") throws -> Int {
        guard x.dtype == .float32 else { throw PluginError.invalid("\(name): expected float32, got \(x.dtype.displayName)") }
        guard x.rank == spec.sampleShape.count + 1, Array(x.shape.dropFirst()) == spec.sampleShape else {
            throw PluginError.invalid("\(name): expected shape [N, \(spec.sampleShape.map(String.init).joined(separator: ", "))], got \(x.shape)")
        }
        guard x.isFinite else { throw PluginError.invalid("\(name) contains NaN or infinity") }
        return x.shape[0]
    }

    private func checkGradLogits(_ g: Tensor, _ n: Int) throws {
        guard g.dtype == .float32, g.shape == [n, spec.numClasses] else {
            throw PluginError.invalid("grad_logits: expected float32 [\(n), \(spec.numClasses)], got \(g.dtype.displayName) \(g.shape)")
        }
        guard g.isFinite else { throw PluginError.invalid("grad_logits contains NaN or infinity") }
    }

    /// A compact engine copy of a borrowed tensor (the host's memory is read-only and only valid
    /// during the call; nothing the engine keeps may point into it).
    private func array(_ t: Tensor) -> NDArray { NDArray(t).copy() }

    /// The engine's result as a tensor the kit hands to the host.
    private func tensor(_ a: NDArray) -> Tensor { a.contiguous().tensor }

    // MARK: Classifier

    func forward(_ x: Tensor) throws -> Tensor {
        let n = try check(x)
        guard n > 0 else { return Tensor(zeros: [0, spec.numClasses]) }
        model.eval()
        return tensor(noGrad { model(Var(array(x))) }.data)
    }

    func vjp(_ x: Tensor, gradLogits: Tensor) throws -> (logits: Tensor, gradX: Tensor)? {
        let n = try check(x)
        try checkGradLogits(gradLogits, n)
        guard n > 0 else { return (Tensor(zeros: [0, spec.numClasses]), Tensor(zeros: x.shape)) }
        model.eval()
        let xv = Var(array(x), requiresGrad: true)
        let y = model(xv)
        let g = gradients(of: [y], wrt: [xv], seeds: [Var(array(gradLogits))])[0]
        return (tensor(y.data), g.map { tensor($0.data) } ?? Tensor(zeros: x.shape))
    }

    func vjpRule(_ rule: quac_backward_rule, x: Tensor, baseline: Tensor?, gradLogits: Tensor) throws -> Tensor? {
        guard let engineRule = BackwardRule(abi: rule) else { return nil }
        let n = try check(x)
        try checkGradLogits(gradLogits, n)
        var base: NDArray?
        if engineRule == .deepLiftRescale {
            guard let baseline else { throw PluginError.invalid("DeepLift needs a baseline (the reference input)") }
            guard try check(baseline, "baseline") == n else {
                throw PluginError.invalid("baseline: expected \(n) samples like x, got \(baseline.shape[0])")
            }
            base = array(baseline)
        }
        guard n > 0 else { return Tensor(zeros: x.shape) }
        model.eval()
        let g = ModifiedBackward.vjp(rule: engineRule, { self.model($0) }, x: array(x), baseline: base,
                                     gradOutput: array(gradLogits))
        return tensor(g)
    }
}
