import Foundation

/// Builds a network from its JSON description, so a model file carries its own architecture.
///
/// A description is a layer object with a "type"; containers nest:
///   {"type": "sequential", "layers": [
///     {"type": "conv2d", "in": 3, "out": 8, "kernel": 3, "padding": 1},
///     {"type": "batch_norm", "channels": 8}, {"type": "relu"},
///     {"type": "residual", "body": {...}, "shortcut": {...}, "scale": 1.4142135},
///     {"type": "adaptive_avg_pool2d", "size": [1, 1]}, {"type": "flatten"},
///     {"type": "linear", "in": 8, "out": 4}]}
/// Parameter names follow PyTorch's nn.Sequential ("0.weight", "1.running_mean"). A "graph" wires
/// named nodes: {"type": "graph", "output": "sum", "nodes": [
///     {"name": "a", "layer": {...}, "input": "input"}, {"name": "b", "layer": {...}},
///     {"name": "sum", "op": "add", "inputs": ["a", "b"]}]}   (ops: add, sub, mul, concat with "axis";
/// add, sub and mul broadcast NumPy-style). A graph's "input_shape" and "num_classes", when present,
/// describe what it was made for (`quac-host import` of an ONNX file records them); building ignores them.
/// Layers without weights that reshape per sample (the batch dimension is kept): "reshape" with
/// "shape" (per-sample sizes, one may be -1), "pad" with "pads" ([before, after] per sample
/// dimension) and "value", "softmax" with "axis"; "constant" (a node whose value, the buffer
/// "<node>.value" of shape "shape", does not depend on the input).
/// An optional top-level "init": "kaiming_normal" draws conv and linear weights He-normal (fan-in)
/// with zero biases, as StarGAN v2 does; otherwise PyTorch's default initialization is used.
public enum ModelBuilder {
    /// Builds a layer of a registered type from its JSON object. `kaiming` says whether the file asks
    /// for He-normal initialization.
    public typealias Factory = (_ spec: JSONValue, _ rng: inout RandomGenerator, _ kaiming: Bool) throws -> Module

    private static let lock = NSLock()
    nonisolated(unsafe) private static var factories: [String: Factory] = [:]

    /// Adds a layer type (a plugin's own block, e.g. StarGAN's AdaIN residual block), so model files
    /// using it stay self-describing. Built-in types cannot be replaced.
    public static func register(_ type: String, _ factory: @escaping Factory) {
        lock.lock()
        factories[type] = factory
        lock.unlock()
    }

    static func factory(_ type: String) -> Factory? {
        lock.lock()
        defer { lock.unlock() }
        return factories[type]
    }

    /// How a network's weights start: as its architecture's "init" says (Kaiming-normal, or else each
    /// layer's PyTorch default), or as zeros when every one is loaded from a file right after.
    enum Initialization { case kaimingNormal, layerDefaults, none }

    /// `initialize: false` draws no random weights at all (the Kaiming-normal draws over QuAC's VGG take
    /// about a second, its layers' default draws a tenth of that) when the caller loads all weights from
    /// a file right after: `loadStateDict` fails on any parameter the file lacks, so no zero survives.
    public static func build(_ spec: JSONValue, seed: UInt64 = 0, initialize: Bool = true) throws -> Module {
        var rng = RandomGenerator(seed: seed)
        let mode: Initialization = !initialize ? .none
            : spec["init"]?.stringValue == "kaiming_normal" ? .kaimingNormal : .layerDefaults
        return try layer(spec, path: "", rng: &rng, initialization: mode)
    }

    /// Refuses a layer whose weights (the product of its sizes, float32) would not fit the memory budget
    /// or whose sizes are not positive, before anything is allocated.
    static func fits(_ path: String, _ sizes: [(String, Int)]) throws {
        if let bad = sizes.first(where: { $0.1 < 1 }) { throw EngineError.badArchitecture("\(path): \(bad.0) must be at least 1, got \(bad.1)") }
        if let problem = MemoryBudget.problem(sizes) { throw EngineError.badArchitecture("\(path): the weights: \(problem)") }
    }

    static func layer(_ spec: JSONValue, path: String, rng: inout RandomGenerator,
                      initialization mode: Initialization) throws -> Module {
        guard let type = spec["type"]?.stringValue else { throw EngineError.badArchitecture("\(path): layer without a \"type\"") }
        func int(_ key: String, _ def: Int? = nil) throws -> Int {
            if let v = spec[key]?.intValue { return Int(v) }
            if let def { return def }
            throw EngineError.badArchitecture("\(path): \(type) needs an integer \"\(key)\"")
        }
        func float(_ key: String, _ def: Float) -> Float { spec[key]?.doubleValue.map { Float($0) } ?? def }
        func bool(_ key: String, _ def: Bool) -> Bool { spec[key]?.boolValue ?? def }
        let draws = mode != .none
        func reinit(_ w: Var, _ b: Var?) {
            guard mode == .kaimingNormal else { return }
            w.setData(.kaimingNormal(w.shape, rng: &rng))
            b?.setData(.zeros(b!.shape))
        }

        switch type {
        case "sequential":
            guard let items = spec["layers"]?.arrayValue else { throw EngineError.badArchitecture("\(path): sequential needs \"layers\"") }
            return Sequential(try items.enumerated().map { try layer($1, path: "\(path)/layers/\($0)", rng: &rng, initialization: mode) })
        case "graph":
            guard let items = spec["nodes"]?.arrayValue, let output = spec["output"]?.stringValue else {
                throw EngineError.badArchitecture("\(path): graph needs \"nodes\" and \"output\"")
            }
            var known: Set<String> = ["input"]
            var nodes: [(String, Graph.Step)] = []
            for (i, item) in items.enumerated() {
                let p = "\(path)/nodes/\(i)"
                guard let name = item["name"]?.stringValue, !known.contains(name) else {
                    throw EngineError.badArchitecture("\(p): each node needs a new \"name\"")
                }
                if let merge = item["op"]?.stringValue {
                    guard let op = Graph.Merge(rawValue: merge) else { throw EngineError.badArchitecture("\(p): unknown op \"\(merge)\"") }
                    let inputs = item["inputs"]?.arrayValue?.compactMap(\.stringValue) ?? []
                    guard !inputs.isEmpty, inputs.allSatisfy(known.contains) else {
                        throw EngineError.badArchitecture("\(p): \"inputs\" must name earlier nodes")
                    }
                    guard op == .concat || inputs.count >= 2 else { throw EngineError.badArchitecture("\(p): \(merge) needs two or more \"inputs\"") }
                    nodes.append((name, .merge(op, inputs: inputs, axis: Int(item["axis"]?.intValue ?? 1))))
                } else {
                    guard let l = item["layer"] else { throw EngineError.badArchitecture("\(p): a node needs a \"layer\" or an \"op\"") }
                    let input = item["input"]?.stringValue ?? nodes.last?.0 ?? "input"
                    guard known.contains(input) else { throw EngineError.badArchitecture("\(p): unknown input \"\(input)\"") }
                    nodes.append((name, .layer(try layer(l, path: p + "/layer", rng: &rng, initialization: mode), input: input)))
                }
                known.insert(name)
            }
            guard known.contains(output) else { throw EngineError.badArchitecture("\(path): unknown output \"\(output)\"") }
            return Graph(nodes: nodes, output: output)
        case "residual":
            guard let body = spec["body"] else { throw EngineError.badArchitecture("\(path): residual needs a \"body\"") }
            let b = try layer(body, path: path + "/body", rng: &rng, initialization: mode)
            let s = try spec["shortcut"].map { try layer($0, path: path + "/shortcut", rng: &rng, initialization: mode) }
            return Residual(body: b, shortcut: s, scale: float("scale", 1))
        case "linear":
            try fits(path, [("in", try int("in")), ("out", try int("out"))])
            let m = Linear(try int("in"), try int("out"), bias: bool("bias", true), initialize: draws, rng: &rng)
            reinit(m.weight, m.bias)
            return m
        case "conv2d":
            try fits(path, [("in", try int("in")), ("out", try int("out")), ("kernel", try int("kernel")), ("kernel", try int("kernel"))])
            let m = Conv2d(try int("in"), try int("out"), kernel: try int("kernel"), stride: try int("stride", 1),
                           padding: try int("padding", 0), dilation: try int("dilation", 1), bias: bool("bias", true),
                           initialize: draws, rng: &rng)
            reinit(m.weight, m.bias)
            return m
        case "conv_transpose2d":
            try fits(path, [("in", try int("in")), ("out", try int("out")), ("kernel", try int("kernel")), ("kernel", try int("kernel"))])
            let m = ConvTranspose2d(try int("in"), try int("out"), kernel: try int("kernel"), stride: try int("stride", 1),
                                    padding: try int("padding", 0), outputPadding: try int("output_padding", 0),
                                    bias: bool("bias", true), initialize: draws, rng: &rng)
            reinit(m.weight, m.bias)
            return m
        case "batch_norm":
            return BatchNorm(try int("channels"), eps: float("eps", 1e-5), momentum: float("momentum", 0.1), affine: bool("affine", true))
        case "instance_norm":
            return InstanceNorm(try int("channels"), eps: float("eps", 1e-5), affine: bool("affine", false))
        case "relu": return Lambda(type) { $0.relu() }
        case "leaky_relu":
            let s = float("slope", 0.01)
            return Lambda(type) { $0.leakyRelu(s) }
        case "tanh": return Lambda(type) { $0.tanh() }
        case "sigmoid": return Lambda(type) { $0.sigmoid() }
        case "softplus":
            let (b, t) = (float("beta", 1), float("threshold", 20))
            return Lambda(type) { $0.softplus(beta: b, threshold: t) }
        case "max_pool2d":
            let (k, s, p) = (try int("kernel"), try int("stride", try int("kernel")), try int("padding", 0))
            return Lambda(type) { $0.maxPool2d(kernel: k, stride: s, padding: p) }
        case "avg_pool2d":
            let (k, s, p) = (try int("kernel"), try int("stride", try int("kernel")), try int("padding", 0))
            let inc = bool("count_include_pad", true)
            return Lambda(type) { $0.avgPool2d(kernel: k, stride: s, padding: p, countIncludePad: inc) }
        case "adaptive_avg_pool2d":
            let size = spec["size"]?.arrayValue?.compactMap(\.intValue).map(Int.init) ?? [1, 1]
            guard size.count == 2 else { throw EngineError.badArchitecture("\(path): \"size\" must be [h, w]") }
            return Lambda(type) { $0.adaptiveAvgPool2d(size[0], size[1]) }
        case "upsample":
            let s = try int("scale", 2)
            return Lambda(type) { $0.upsampleNearest(s) }
        case "flatten":
            let start = try int("start", 1)
            return Lambda(type) { $0.flatten(from: start) }
        case "dropout":
            return Dropout(float("p", 0.5), seed: UInt64(try int("seed", 0)))
        case "identity":
            return Lambda(type) { $0 }
        case "reshape":
            guard let shape = spec["shape"]?.arrayValue?.compactMap(\.intValue).map(Int.init),
                  shape.allSatisfy({ $0 >= 1 || $0 == -1 }), shape.filter({ $0 == -1 }).count <= 1 else {
                throw EngineError.badArchitecture("\(path): reshape needs \"shape\", per-sample sizes (at most one -1)")
            }
            return Lambda(type) { $0.reshape([$0.shape[0]] + shape) }
        case "pad":
            let pads = spec["pads"]?.arrayValue?.map { $0.arrayValue?.compactMap(\.intValue).map(Int.init) ?? [] } ?? []
            guard !pads.isEmpty, pads.allSatisfy({ $0.count == 2 && $0[0] >= 0 && $0[1] >= 0 }) else {
                throw EngineError.badArchitecture("\(path): pad needs \"pads\", a non-negative [before, after] per sample dimension")
            }
            let value = float("value", 0)
            return Lambda(type) { $0.pad([(0, 0)] + pads.map { ($0[0], $0[1]) }, value: value) }
        case "softmax":
            let axis = try int("axis", -1)
            return Lambda(type) { $0.softmax(axis: axis) }
        case "constant":
            guard let shape = spec["shape"]?.arrayValue?.compactMap(\.intValue).map(Int.init) else {
                throw EngineError.badArchitecture("\(path): constant needs a \"shape\"")
            }
            try fits(path, shape.enumerated().map { ("shape[\($0.offset)]", $0.element) })
            return Constant(NDArray.zeros(shape))
        default:
            if let make = factory(type) { return try make(spec, &rng, mode == .kaimingNormal) }
            throw EngineError.badArchitecture("\(path): unknown layer type \"\(type)\"")
        }
    }
}

/// Model files: safetensors with the weights (and buffers) by name, and the architecture as JSON under
/// the `architecture` key of `__metadata__`.
public enum ModelFile {
    public static let architectureKey = "architecture"

    public static func save(_ model: Module, architecture: JSONValue, to url: URL,
                            metadata: [String: String] = [:]) throws {
        var meta = metadata
        meta[architectureKey] = architecture.serialized()
        try Safetensors.write(model.stateDict().map { ($0.0, $0.1.contiguous().copy().tensor) }, metadata: meta, to: url)
    }

    /// Reads a model file and builds its network (in evaluation mode).
    public static func load(_ url: URL) throws -> (model: Module, architecture: JSONValue) {
        let file = try Safetensors.read(url)
        guard let text = file.metadata[architectureKey] else {
            throw EngineError.badArchitecture("\(url.path) has no \"\(architectureKey)\" in its metadata")
        }
        let arch = try JSONParser.parse(text)
        let model = try ModelBuilder.build(arch)
        try model.loadStateDict(floatArrays(file))
        model.eval()
        return (model, arch)
    }

    /// Loads weights saved by another framework (a PyTorch state dict written as safetensors, e.g. by
    /// `quac-host import`) into `module`: the tensors named `prefix` + a parameter or buffer name of the
    /// network, in any float dtype. A missing, mis-shaped or unexpected tensor stops the load with its
    /// name; `ignore` names tensors the network deliberately has no use for (PyTorch's BatchNorm
    /// `num_batches_tracked` counters).
    public static func loadForeignStateDict(_ file: SafetensorsFile, into module: Module, prefix: String = "",
                                            ignore: (String) -> Bool = { _ in false }) throws {
        let expected = Set(module.stateDict().map(\.0))
        for name in file.names where name.hasPrefix(prefix) {
            let local = String(name.dropFirst(prefix.count))
            if ignore(local) { continue }
            guard expected.contains(local) else { throw EngineError.unexpectedWeight(name) }
            guard let t = file.tensors[name], [.float32, .float64, .float16, .bfloat16].contains(t.dtype) else {
                throw EngineError.badCheckpoint("\(name): \(file.tensors[name]?.dtype.displayName ?? "?") where the network has float weights")
            }
        }
        var arrays: [String: NDArray] = [:]
        for (name, a) in floatArrays(file) where name.hasPrefix(prefix) { arrays[String(name.dropFirst(prefix.count))] = a }
        do { try module.loadStateDict(arrays) } catch EngineError.missingWeight(let n) {
            throw EngineError.missingWeight(prefix + n)
        } catch EngineError.shapeMismatch(let n, let e, let f) {
            throw EngineError.shapeMismatch(prefix + n, expected: e, found: f)
        }
    }

    /// The float tensors of a file as engine arrays (other dtypes, like num_batches_tracked, are skipped).
    /// Float32 tensors view the file's read-only mapping: copy one before writing into it.
    public static func floatArrays(_ file: SafetensorsFile) -> [String: NDArray] {
        var out: [String: NDArray] = [:]
        for (name, t) in file.tensors {
            switch t.dtype {
            case .float32: out[name] = NDArray(t)
            case .float64, .float16, .bfloat16: out[name] = NDArray(t.doubleArray().map { Float($0) }, shape: t.shape)
            default: continue
            }
        }
        return out
    }
}
