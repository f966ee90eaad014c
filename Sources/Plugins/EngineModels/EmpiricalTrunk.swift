import Engine
import Foundation
import QuacPluginKit

/// The empirical explainer's encoder taken from the explained classifier: its convolutional trunk (the
/// layers before the first flatten, cut into levels at each 2x2 max pooling), weights copied, under the
/// explainer's decoder. Only a classifier that hands out an engine model description
/// (QUAC_EXT_CLASSIFIER_WEIGHTS, "quac.engine-model/1") whose trunk is a plain chain of same-size
/// convolutions, batch norms and ReLUs between the poolings can be used; any other leaves the fresh
/// encoder.
struct ClassifierTrunk {
    /// Per level, the trunk's layers (without the pooling) with their index in the trunk's sequential.
    let levels: [[(index: Int, layer: JSONValue)]]
    /// The trunk's path in the classifier's state dict ("features" for the vgg preset's graph).
    let prefix: String
    /// Feature maps at the end of each level.
    let channels: [Int]

    /// The trunk of `network`, or why it cannot be used.
    static func parse(_ network: JSONValue, inputChannels: Int) -> Result<ClassifierTrunk, TrunkProblem> {
        let (chain, prefix): ([JSONValue], String)
        switch network["type"]?.stringValue {
        case "graph":
            guard let first = network["nodes"]?.arrayValue?.first, let name = first["name"]?.stringValue,
                  first["layer"]?["type"]?.stringValue == "sequential", let layers = first["layer"]?["layers"]?.arrayValue else {
                return .failure(TrunkProblem("its network's first node is not a sequential chain of layers"))
            }
            (chain, prefix) = (layers, name)
        case "sequential":
            (chain, prefix) = (network["layers"]?.arrayValue ?? [], "")
        default:
            return .failure(TrunkProblem("its network is neither a graph nor a sequential chain"))
        }
        var levels: [[(index: Int, layer: JSONValue)]] = [[]]
        var channels: [Int] = [], current = inputChannels
        for (i, layer) in chain.enumerated() {
            let type = layer["type"]?.stringValue ?? ""
            if type == "flatten" || type == "linear" || type == "global_avg_pool" { break }
            switch type {
            case "conv2d":
                guard layer["in"]?.intValue.map(Int.init) == current, let out = layer["out"]?.intValue, let k = layer["kernel"]?.intValue,
                      (layer["stride"]?.intValue ?? 1) == 1, (layer["dilation"]?.intValue ?? 1) == 1, k % 2 == 1,
                      (layer["padding"]?.intValue ?? 0) == k / 2 else {
                    return .failure(TrunkProblem("layer \(i) of its trunk is not a same-size convolution from \(current) channels"))
                }
                current = Int(out)
                levels[levels.count - 1].append((i, layer))
            case "batch_norm", "relu", "leaky_relu":
                levels[levels.count - 1].append((i, layer))
            case "max_pool2d" where (layer["kernel"]?.intValue ?? 0) == 2 && (layer["stride"]?.intValue ?? 2) == 2:
                guard levels[levels.count - 1].contains(where: { $0.layer["type"]?.stringValue == "conv2d" }) else {
                    return .failure(TrunkProblem("a level of its trunk has no convolution"))
                }
                channels.append(current)
                levels.append([])
            default:
                return .failure(TrunkProblem("layer \(i) of its trunk (\(type)) is not a convolution, batch norm, ReLU or 2x2 pooling"))
            }
        }
        // Layers after the last pooling make a last level when they hold a convolution.
        if levels[levels.count - 1].contains(where: { $0.layer["type"]?.stringValue == "conv2d" }) { channels.append(current) } else { levels.removeLast() }
        guard !levels.isEmpty else { return .failure(TrunkProblem("its trunk has no convolution")) }
        return .success(ClassifierTrunk(levels: levels, prefix: prefix, channels: channels))
    }

    /// The explainer's network on this trunk, and for each of the trunk's layers with weights, its path
    /// in the explainer and in the classifier. Level 0 runs at full resolution; each further level sits in
    /// a block that adds a 1x1 convolution of its input (the skip at this resolution) to [2x2 max
    /// pooling, the level's trunk layers, the next level's block, 2x nearest upsampling, conv3x3-ReLU
    /// back to this level's width]; last a 1x1 convolution to the input's channels.
    func network(inputChannels: Int) -> (architecture: JSONValue, copies: [(explainer: String, classifier: String)]) {
        func int(_ v: Int) -> JSONValue { .int(Int64(v)) }
        func conv(_ i: Int, _ o: Int, _ k: Int) -> JSONValue { ["type": "conv2d", "in": int(i), "out": int(o), "kernel": int(k), "padding": int(k / 2)] }
        var copies: [(String, String)] = []
        func classifierPath(_ index: Int) -> String { prefix.isEmpty ? "\(index)" : "\(prefix).\(index)" }
        /// The layers of level `i`, to sit at positions `offset...` of the sequential at `path`.
        func trunkLayers(_ i: Int, path: String, offset: Int) -> [JSONValue] {
            levels[i].enumerated().map { k, item in
                if ["conv2d", "batch_norm"].contains(item.layer["type"]?.stringValue ?? "") {
                    copies.append(("\(path)\(offset + k)", classifierPath(item.index)))
                }
                return item.layer
            }
        }
        func block(_ i: Int, path: String) -> JSONValue {
            let body = path + "body."
            var layers: [JSONValue] = [["type": "max_pool2d", "kernel": 2]] + trunkLayers(i, path: body, offset: 1)
            if i + 1 < levels.count { layers.append(block(i + 1, path: body + "\(layers.count).")) }
            layers += [["type": "upsample", "scale": 2], conv(channels[i], channels[i - 1], 3), ["type": "relu"]]
            return ["type": "residual", "body": ["type": "sequential", "layers": .array(layers)], "shortcut": conv(channels[i - 1], channels[i - 1], 1)]
        }
        var top = trunkLayers(0, path: "", offset: 0)
        if levels.count > 1 { top.append(block(1, path: "\(top.count).")) }
        top.append(conv(channels[0], inputChannels, 1))
        return (["type": "sequential", "init": "kaiming_normal", "layers": .array(top)], copies)
    }
}

struct TrunkProblem: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

extension EmpiricalExplainer {
    /// With "encoder": "classifier", the network rebuilt on the run's classifier's trunk and its weights
    /// copied in; the fresh network stays, with a log line saying why, when the classifier does not hand
    /// out a trunk this explainer can use.
    func adoptClassifierTrunk() throws {
        guard let service = host.classifierWeights(), let description = try service.describe() else {
            host.log("encoder: fresh (the run's classifier does not hand out its weights)")
            return
        }
        guard description.format == engineModelFormat else {
            host.log("encoder: fresh (the classifier describes its network as \(description.format ?? "nothing"), not \(engineModelFormat))")
            return
        }
        let trunk: ClassifierTrunk
        switch ClassifierTrunk.parse(description.network, inputChannels: sampleShape[0]) {
        case .success(let t): trunk = t
        case .failure(let why):
            host.log("encoder: fresh (the classifier's trunk cannot be used: \(why))")
            return
        }
        let levels = 1 << (trunk.levels.count - 1)
        guard sampleShape[1] % levels == 0, sampleShape[2] % levels == 0 else {
            host.log("encoder: fresh (input_shape \(sampleShape): H and W are not multiples of \(levels) for the trunk's \(trunk.levels.count) levels)")
            return
        }
        let (network, copies) = trunk.network(inputChannels: sampleShape[0])
        let built: Module
        do { built = try ModelBuilder.build(network, seed: UInt64(try parameters.int("seed"))) } catch { throw PluginError.invalid("the classifier trunk's network: \(error)") }
        let fresh = built.stateDict()
        var state = Dictionary(uniqueKeysWithValues: fresh)
        let shapes = Dictionary(description.tensors.map { ($0.name, $0.shape) }, uniquingKeysWith: { a, _ in a })
        var copied: [String] = []
        // In the state dict's own order, so that the first mismatch named is always the same one.
        for (mine, theirs) in copies {
            for (key, value) in fresh where key.hasPrefix(mine + ".") && !key.dropFirst(mine.count + 1).contains(".") {
                let name = theirs + key.dropFirst(mine.count)
                guard shapes[name] == value.shape else {
                    throw PluginError.invalid("the classifier's weight \"\(name)\" is \(shapes[name].map { "\($0)" } ?? "missing"), its trunk needs \(value.shape): the classifier's description and its weights disagree")
                }
                state[key] = NDArray(try service.get(name)).copy()
                copied.append(key)
            }
        }
        do { try built.loadStateDict(state) } catch { throw PluginError.invalid("the classifier's weights: \(error)") }
        built.eval()
        architecture = network
        model = built
        encoderKeys = Set(copied)
        encoderSource = "classifier trunk: \(trunk.levels.count) levels, \(trunk.channels.map(String.init).joined(separator: "-")) feature maps"
        host.log("encoder: the classifier's \(encoderSource) (\(copied.count) tensors copied)")
    }
}
