import Foundation
import QuacCore
import SwiftProtobuf

/// An ONNX classifier turned into the engine's network: the architecture JSON (a "graph", with the
/// input shape and class count it was exported for) and its weights by parameter name.
public struct OnnxConversion {
    public let architecture: JSONValue
    public let weights: [(String, Tensor)]
    public let inputShape: [Int]
    public let numClasses: Int
    public let opset: Int
}

/// Converts an ONNX graph (opsets 11 to 18) into an engine network, statically: every value's shape is
/// inferred per sample (the batch dimension may be symbolic), shape arithmetic over constants is
/// evaluated here, and each operator becomes an engine layer or merge. Anything outside the supported
/// set stops the conversion naming the node, its operator and what is supported. docs/onnx.md.
public enum OnnxConverter {
    /// The operators that become layers of the network.
    public static let networkOperators = [
        "Conv", "ConvTranspose", "BatchNormalization", "InstanceNormalization", "Relu", "LeakyRelu", "Sigmoid",
        "Tanh", "Softmax", "MaxPool", "AveragePool", "GlobalAveragePool", "Gemm", "MatMul", "Add", "Sub", "Mul",
        "Div", "Flatten", "Reshape", "Concat", "Pad", "Dropout", "Identity", "Unsqueeze", "Squeeze",
    ]
    /// Operators evaluated while converting, on constants only (shape arithmetic).
    public static let constantOperators = [
        "Constant", "Shape", "Gather", "Cast", "ConstantOfShape", "Slice", "Transpose",
    ]
    public static var supportedOperators: [String] { networkOperators + constantOperators }
    public static let opsets = 11...18

    public static func convert(_ data: Data) throws -> OnnxConversion {
        let model: Onnx_ModelProto
        do { model = try Onnx_ModelProto(serializedBytes: data) } catch {
            throw OnnxImportError("not an ONNX model (protobuf: \(error))")
        }
        guard model.hasGraph else { throw OnnxImportError("not an ONNX model (no graph)") }
        let opset = model.opsetImport.first { $0.domain == "" || $0.domain == "ai.onnx" }.map { Int($0.version) } ?? 0
        guard opsets.contains(opset) else {
            throw OnnxImportError("opset \(opset) is not supported (opsets \(opsets.lowerBound) to \(opsets.upperBound) are; re-export with torch.onnx.export(..., opset_version=17))")
        }
        var c = Converter(opset: opset)
        return try c.run(model.graph)
    }
}

/// What an ONNX value is while converting: a tensor of the network (the engine node computing it and
/// its per-sample shape), or a constant.
enum OnnxValue {
    case tensor(node: String, shape: [Int])
    case constant(OnnxConstant)
}

struct Converter {
    let opset: Int
    var values: [String: OnnxValue] = [:]
    var net = OnnxNetwork()
    var declaredBatch: Int?

    init(opset: Int) { self.opset = opset }

    mutating func run(_ graph: Onnx_GraphProto) throws -> OnnxConversion {
        for t in graph.initializer { values[t.name] = .constant(try OnnxTensorDecoding.decode(t)) }
        let inputs = graph.input.filter { values[$0.name] == nil }
        guard inputs.count == 1, let input = inputs.first else {
            throw OnnxImportError("the graph has \(inputs.count) inputs (\(inputs.map(\.name).joined(separator: ", "))); a classifier takes one batch of images")
        }
        let dims = input.type.tensorType.shape.dim
        guard input.type.tensorType.elemType == Int32(OnnxTensorDecoding.float) else {
            throw OnnxImportError("input \"\(input.name)\": element type \(input.type.tensorType.elemType), expected float")
        }
        guard dims.count >= 2, dims.dropFirst().allSatisfy({ $0.dimValue > 0 }) else {
            throw OnnxImportError("input \"\(input.name)\": expected [N, sample shape...] with fixed sample sizes, got \(dims.map { $0.dimValue > 0 ? String($0.dimValue) : ($0.dimParam.isEmpty ? "?" : $0.dimParam) })")
        }
        guard dims.count <= 5, dims.dropFirst().allSatisfy({ $0.dimValue <= 65536 }),
              let perSample = OnnxConstant.product(dims.dropFirst().map { Int($0.dimValue) }), perSample <= 1 << 28 else {
            throw OnnxImportError("input \"\(input.name)\": at most 4 dimensions per sample, each at most 65536, 2^28 values in all")
        }
        if dims[0].dimValue > 0 { declaredBatch = Int(dims[0].dimValue) }
        let sample = dims.dropFirst().map { Int($0.dimValue) }
        values[input.name] = .tensor(node: "input", shape: sample)

        for node in graph.node { try convert(node) }

        guard graph.output.count == 1 else {
            throw OnnxImportError("the graph has \(graph.output.count) outputs; a classifier gives one tensor of logits")
        }
        let outName = graph.output[0].name
        guard case .tensor(let outNode, let outShape)? = values[outName], outNode != "input" else {
            throw OnnxImportError("output \"\(outName)\" is not computed from the input")
        }
        guard outShape.count == 1 else {
            throw OnnxImportError("output \"\(outName)\" has per-sample shape \(outShape); a classifier gives [N, classes]")
        }
        let (arch, weights) = net.description(output: outNode, extra: [
            ("input_shape", .array(sample.map { .int(Int64($0)) })), ("num_classes", .int(Int64(outShape[0]))),
            ("source", "onnx"), ("opset", .int(Int64(opset))),
        ])
        return OnnxConversion(architecture: arch, weights: weights.map { ($0.0, Tensor($0.1.floats, shape: $0.1.shape)) },
                              inputShape: sample, numClasses: outShape[0], opset: opset)
    }

    // MARK: Helpers

    struct NodeContext {
        let node: Onnx_NodeProto
        var label: String { "node \"\(node.name.isEmpty ? node.output.first ?? "?" : node.name)\" (\(node.opType))" }

        func fail(_ why: String) -> OnnxImportError { OnnxImportError("\(label): \(why)") }

        func attribute(_ name: String) -> Onnx_AttributeProto? { node.attribute.first { $0.name == name } }
        // Integers beyond +-2^31 read as Int32.min, which every check refuses (OnnxConstant.clamped).
        func int(_ name: String, _ def: Int) -> Int { attribute(name).map { OnnxConstant.clamped(Double($0.i)) } ?? def }
        func float(_ name: String, _ def: Float) -> Float { attribute(name).map { $0.f } ?? def }
        func ints(_ name: String) -> [Int]? { attribute(name).map { $0.ints.map { OnnxConstant.clamped(Double($0)) } } }
        func string(_ name: String) -> String? { attribute(name).map { String(decoding: $0.s, as: UTF8.self) } }

        /// Refuses attributes the conversion does not read (unknown ones could change the meaning).
        func only(_ known: [String]) throws {
            if let a = node.attribute.first(where: { !known.contains($0.name) }) {
                throw fail("attribute \"\(a.name)\" is not supported (supported: \(known.isEmpty ? "none" : known.joined(separator: ", ")))")
            }
        }
    }

    func value(_ name: String, _ ctx: NodeContext) throws -> OnnxValue {
        guard !name.isEmpty, let v = values[name] else { throw ctx.fail("input \"\(name)\" is not defined before the node") }
        return v
    }

    func tensor(_ name: String, _ ctx: NodeContext) throws -> (node: String, shape: [Int]) {
        switch try value(name, ctx) {
        case .tensor(let node, let shape): return (node, shape)
        case .constant: throw ctx.fail("input \"\(name)\" is a constant where the network's values are expected")
        }
    }

    func constant(_ name: String, _ ctx: NodeContext, _ what: String) throws -> OnnxConstant {
        guard case .constant(let c) = try value(name, ctx) else {
            throw ctx.fail("\(what) (input \"\(name)\") must be a constant (an initializer), not computed from the input")
        }
        return c
    }

    func optionalConstant(_ ctx: NodeContext, _ index: Int, _ what: String) throws -> OnnxConstant? {
        guard ctx.node.input.count > index, !ctx.node.input[index].isEmpty else { return nil }
        return try constant(ctx.node.input[index], ctx, what)
    }

    mutating func layer(_ ctx: NodeContext, _ spec: JSONValue, input: String, shape: [Int],
                        weights: [(String, OnnxConstant)] = []) {
        let name = net.name(for: ctx.node.name.isEmpty ? ctx.node.opType : ctx.node.name)
        net.add(name, .layer(spec, input: input, weights: weights))
        values[ctx.node.output[0]] = .tensor(node: name, shape: shape)
    }

    /// A 2-D window attribute given as [a, a] (the engine's layers take square kernels, strides, dilations).
    func square(_ ctx: NodeContext, _ name: String, _ def: Int, minimum: Int = 1) throws -> Int {
        guard let v = ctx.ints(name) else { return def }
        guard v.count == 2, v[0] == v[1], v[0] >= minimum, v[0] <= 65536 else {
            throw ctx.fail("attribute \(name) = \(v) is not supported (equal sizes in both dimensions, at least \(minimum), are)")
        }
        return v[0]
    }

    /// pads [top, left, bottom, right] (ONNX's order) as ((top, bottom), (left, right)).
    func pads2d(_ ctx: NodeContext) throws -> ((Int, Int), (Int, Int)) {
        if let auto = ctx.string("auto_pad"), auto != "NOTSET", auto != "VALID" {
            throw ctx.fail("attribute auto_pad = \(auto) is not supported (NOTSET and VALID are; re-export with explicit pads)")
        }
        let p = ctx.ints("pads") ?? [0, 0, 0, 0]
        guard p.count == 4, p.allSatisfy({ $0 >= 0 && $0 <= 65536 }) else { throw ctx.fail("attribute pads = \(p) is not supported") }
        return ((p[0], p[2]), (p[1], p[3]))
    }

    func spatial(_ ctx: NodeContext, _ shape: [Int]) throws -> (Int, Int, Int) {
        guard shape.count == 3 else { throw ctx.fail("expected an input [N, C, H, W], got per-sample shape \(shape)") }
        return (shape[0], shape[1], shape[2])
    }

    static func ints(_ v: [Int]) -> JSONValue { .array(v.map { .int(Int64($0)) }) }

    /// Puts a zero-padding layer before a window op whose padding is not the same on every side.
    mutating func padFirst(_ ctx: NodeContext, _ input: (node: String, shape: [Int]), _ pads: ((Int, Int), (Int, Int)),
                           value: Float = 0) -> (node: String, shape: [Int]) {
        let ((t, b), (l, r)) = pads
        let name = net.name(for: (ctx.node.name.isEmpty ? ctx.node.opType : ctx.node.name) + "_pad")
        let shape = [input.shape[0], input.shape[1] + t + b, input.shape[2] + l + r]
        net.add(name, .layer(["type": "pad", "pads": [[0, 0], Self.ints([t, b]), Self.ints([l, r])], "value": .double(Double(value))],
                             input: input.node, weights: []))
        return (name, shape)
    }

    // MARK: Operators

    /// Inputs each operator cannot do without (so no node with fewer is looked into).
    static let minimumInputs: [String: Int] = [
        "Conv": 2, "ConvTranspose": 2, "BatchNormalization": 5, "InstanceNormalization": 3, "Gemm": 2, "MatMul": 2,
        "Add": 2, "Sub": 2, "Mul": 2, "Div": 2, "Reshape": 2, "Gather": 2, "Concat": 1, "Relu": 1, "LeakyRelu": 1,
        "Sigmoid": 1, "Tanh": 1, "Softmax": 1, "MaxPool": 1, "AveragePool": 1, "GlobalAveragePool": 1, "Flatten": 1,
        "Pad": 1, "Dropout": 1, "Identity": 1, "Unsqueeze": 1, "Squeeze": 1, "Shape": 1, "Cast": 1,
        "ConstantOfShape": 1, "Slice": 1, "Transpose": 1,
    ]

    mutating func convert(_ node: Onnx_NodeProto) throws {
        let ctx = NodeContext(node: node)
        guard node.domain.isEmpty || node.domain == "ai.onnx" else {
            throw ctx.fail("operators of domain \"\(node.domain)\" are not supported (the default ONNX domain is)")
        }
        guard !node.output.isEmpty else { throw ctx.fail("no output") }
        if let needed = Self.minimumInputs[node.opType], node.input.count < needed || node.input.prefix(needed).contains("") {
            throw ctx.fail("expects at least \(needed) inputs, has \(node.input.filter { !$0.isEmpty }.count)")
        }
        let supported = OnnxConverter.supportedOperators
        // Shape arithmetic over constants: evaluated now, nothing enters the network.
        if OnnxConverter.constantOperators.contains(node.opType) || allInputsConstant(node) {
            if let folded = try fold(ctx) {
                values[node.output[0]] = .constant(folded)
                return
            }
        }
        switch node.opType {
        case "Identity", "Dropout":
            try ctx.only(["seed", "ratio"])
            if node.opType == "Dropout", node.input.count > 2, !node.input[2].isEmpty,
               case .constant(let training) = try value(node.input[2], ctx), training.values.first != 0 {
                throw ctx.fail("training_mode is true; export the model in evaluation mode (model.eval())")
            }
            values[node.output[0]] = try value(node.input[0], ctx)
        case "Conv": try conv(ctx)
        case "ConvTranspose": try convTranspose(ctx)
        case "BatchNormalization":
            try ctx.only(["epsilon", "momentum", "training_mode", "spatial"])
            guard ctx.int("training_mode", 0) == 0 else { throw ctx.fail("training_mode = 1; export the model in evaluation mode") }
            let x = try tensor(node.input[0], ctx)
            guard x.shape.count == 1 || x.shape.count == 3 else { throw ctx.fail("expected [N, C] or [N, C, H, W], got per-sample shape \(x.shape)") }
            let c = x.shape[0]
            let names = ["weight", "bias", "running_mean", "running_var"]
            var weights: [(String, OnnxConstant)] = []
            for (i, n) in names.enumerated() {
                guard node.input.count > i + 1 else { throw ctx.fail("needs scale, B, mean and var") }
                let w = try constant(node.input[i + 1], ctx, n)
                guard w.count == c else { throw ctx.fail("\(n) has \(w.count) values for \(c) channels") }
                weights.append((n, OnnxConstant(shape: [c], values: w.values, isInteger: false)))
            }
            layer(ctx, ["type": "batch_norm", "channels": .int(Int64(c)), "eps": .double(Double(ctx.float("epsilon", 1e-5)))],
                  input: x.node, shape: x.shape, weights: weights)
        case "InstanceNormalization":
            try ctx.only(["epsilon"])
            let x = try tensor(node.input[0], ctx)
            guard x.shape.count == 3 else { throw ctx.fail("expected [N, C, H, W], got per-sample shape \(x.shape)") }
            let c = x.shape[0]
            guard node.input.count >= 3 else { throw ctx.fail("needs scale and B") }
            let scale = try constant(node.input[1], ctx, "scale"), bias = try constant(node.input[2], ctx, "B")
            guard scale.count == c, bias.count == c else { throw ctx.fail("scale and B need \(c) values") }
            layer(ctx, ["type": "instance_norm", "channels": .int(Int64(c)), "affine": true, "eps": .double(Double(ctx.float("epsilon", 1e-5)))],
                  input: x.node, shape: x.shape,
                  weights: [("weight", OnnxConstant(shape: [c], values: scale.values, isInteger: false)),
                            ("bias", OnnxConstant(shape: [c], values: bias.values, isInteger: false))])
        case "Relu", "Sigmoid", "Tanh":
            try ctx.only([])
            let x = try tensor(node.input[0], ctx)
            layer(ctx, ["type": .string(node.opType.lowercased())], input: x.node, shape: x.shape)
        case "LeakyRelu":
            try ctx.only(["alpha"])
            let x = try tensor(node.input[0], ctx)
            layer(ctx, ["type": "leaky_relu", "slope": .double(Double(ctx.float("alpha", 0.01)))], input: x.node, shape: x.shape)
        case "Softmax":
            try ctx.only(["axis"])
            let x = try tensor(node.input[0], ctx)
            let rank = x.shape.count + 1
            var axis = ctx.int("axis", opset < 13 ? 1 : -1)
            if axis < 0 { axis += rank }
            guard axis >= 1, axis < rank else { throw ctx.fail("axis \(ctx.int("axis", 0)) is not supported (a per-sample axis is)") }
            if opset < 13, axis != rank - 1 { throw ctx.fail("axis \(axis) before opset 13 flattens the trailing dimensions, which is not supported (the last axis is)") }
            layer(ctx, ["type": "softmax", "axis": .int(Int64(axis))], input: x.node, shape: x.shape)
        case "MaxPool", "AveragePool": try pool(ctx)
        case "GlobalAveragePool":
            try ctx.only([])
            let x = try tensor(node.input[0], ctx)
            let (c, _, _) = try spatial(ctx, x.shape)
            layer(ctx, ["type": "adaptive_avg_pool2d", "size": [1, 1]], input: x.node, shape: [c, 1, 1])
        case "Gemm": try gemm(ctx)
        case "MatMul":
            try ctx.only([])
            let x = try tensor(node.input[0], ctx)
            let b = try constant(node.input[1], ctx, "the second operand")
            guard x.shape.count == 1, b.shape.count == 2, b.shape[0] == x.shape[0] else {
                throw ctx.fail("only [N, in] x [in, out] with a constant [in, out] is supported, got per-sample \(x.shape) x \(b.shape)")
            }
            layer(ctx, ["type": "linear", "in": .int(Int64(b.shape[0])), "out": .int(Int64(b.shape[1])), "bias": false],
                  input: x.node, shape: [b.shape[1]], weights: [("weight", b.transposed([1, 0]))])
        case "Add", "Sub", "Mul", "Div": try binary(ctx)
        case "Flatten":
            try ctx.only(["axis"])
            let x = try tensor(node.input[0], ctx)
            var axis = ctx.int("axis", 1)
            if axis < 0 { axis += x.shape.count + 1 }
            guard axis == 1 else { throw ctx.fail("axis \(ctx.int("axis", 1)) is not supported (1 is: [N, ...] to [N, features])") }
            layer(ctx, ["type": "flatten"], input: x.node, shape: [x.shape.reduce(1, *)])
        case "Reshape":
            try ctx.only(["allowzero"])
            guard ctx.int("allowzero", 0) == 0 else { throw ctx.fail("allowzero = 1 is not supported") }
            let x = try tensor(node.input[0], ctx)
            guard node.input.count > 1 else { throw ctx.fail("needs a shape") }
            let target = try constant(node.input[1], ctx, "the shape")
            try reshape(ctx, x, to: perSampleShape(ctx, target.ints, input: x.shape))
        case "Unsqueeze", "Squeeze":
            let x = try tensor(node.input[0], ctx)
            var axes = ctx.ints("axes") ?? []
            if let a = try optionalConstant(ctx, 1, "axes") { axes = a.ints }
            try ctx.only(["axes"])
            let full = [1] + x.shape
            var out: [Int]
            if node.opType == "Unsqueeze" {
                let rank = full.count + axes.count
                let norm = Set(axes.map { $0 < 0 ? $0 + rank : $0 })
                guard norm.count == axes.count, norm.allSatisfy({ $0 >= 0 && $0 < rank }) else { throw ctx.fail("axes \(axes) are not distinct axes of the result") }
                guard !norm.contains(0) else { throw ctx.fail("a new axis 0 would move the batch dimension") }
                var it = full.makeIterator()
                out = (0..<rank).map { norm.contains($0) ? 1 : it.next()! }
            } else {
                let norm = Set((axes.isEmpty ? full.indices.filter { full[$0] == 1 && $0 > 0 } : axes).map { $0 < 0 ? $0 + full.count : $0 })
                guard !norm.contains(0), norm.allSatisfy({ full.indices.contains($0) && full[$0] == 1 }) else {
                    throw ctx.fail("axes \(axes) is not supported for per-sample shape \(x.shape)")
                }
                out = full.enumerated().filter { !norm.contains($0.offset) }.map(\.element)
            }
            try reshape(ctx, x, to: Array(out.dropFirst()))
        case "Concat":
            try ctx.only(["axis"])
            let parts = try node.input.map { try tensor($0, ctx) }
            let rank = parts[0].shape.count + 1
            var axis = ctx.int("axis", 1)
            if axis < 0 { axis += rank }
            guard axis >= 1, axis < rank else { throw ctx.fail("axis \(ctx.int("axis", 1)) is not supported (a per-sample axis is)") }
            for p in parts where p.shape.count != rank - 1 || (0..<(rank - 1)).contains(where: { $0 != axis - 1 && p.shape[$0] != parts[0].shape[$0] }) {
                throw ctx.fail("inputs of per-sample shapes \(parts.map(\.shape)) do not concatenate along axis \(axis)")
            }
            var shape = parts[0].shape
            shape[axis - 1] = parts.map { $0.shape[axis - 1] }.reduce(0, +)
            let name = net.name(for: node.name.isEmpty ? "concat" : node.name)
            net.add(name, .merge("concat", inputs: parts.map(\.node), axis: axis))
            values[node.output[0]] = .tensor(node: name, shape: shape)
        case "Pad": try pad(ctx)
        default:
            if OnnxConverter.constantOperators.contains(node.opType) {
                throw ctx.fail("is supported only on constants (shape arithmetic), and here it reads the network's values")
            }
            throw ctx.fail("is not supported; supported operators: \(supported.joined(separator: ", "))")
        }
    }

    func allInputsConstant(_ node: Onnx_NodeProto) -> Bool {
        node.input.allSatisfy { n in
            if n.isEmpty { return true }
            if case .constant? = values[n] { return true }
            return false
        }
    }

    /// Per-sample shape of a Reshape: the target's first entry must be the batch (0, the batch size
    /// as Shape read it, the file's own batch size, or -1 when nothing else is inferred).
    func perSampleShape(_ ctx: NodeContext, _ target: [Int], input: [Int]) throws -> [Int] {
        guard let first = target.first else { throw ctx.fail("empty target shape") }
        let batch = Int(OnnxConstant.batch)
        let rest = Array(target.dropFirst())
        let keepsBatch = first == 0 || first == batch || (declaredBatch != nil && first == declaredBatch!) || (first == -1 && !rest.contains(-1))
        guard keepsBatch else {
            throw ctx.fail("target shape \(target.map { $0 == batch ? "N" : String($0) }) does not keep the batch dimension first, which is not supported")
        }
        var out = rest.enumerated().map { i, d in d == 0 ? (i < input.count ? input[i] : 0) : d }
        guard out.allSatisfy({ $0 >= 1 || $0 == -1 }), out.filter({ $0 == -1 }).count <= 1 else {
            throw ctx.fail("target shape \(target) is not supported")
        }
        let count = OnnxConstant.product(input) ?? -1
        if let i = out.firstIndex(of: -1) {
            guard let known = OnnxConstant.product(out.filter { $0 != -1 }), known > 0, count % known == 0 else {
                throw ctx.fail("cannot reshape per-sample \(input) to \(target)")
            }
            out[i] = count / known
        }
        guard OnnxConstant.product(out) == count else { throw ctx.fail("cannot reshape per-sample \(input) to \(target)") }
        return out
    }

    mutating func reshape(_ ctx: NodeContext, _ x: (node: String, shape: [Int]), to out: [Int]) throws {
        if out == x.shape {
            values[ctx.node.output[0]] = .tensor(node: x.node, shape: x.shape)
        } else if out.count == 1 {
            layer(ctx, ["type": "flatten"], input: x.node, shape: out)
        } else {
            layer(ctx, ["type": "reshape", "shape": Self.ints(out)], input: x.node, shape: out)
        }
    }

    mutating func conv(_ ctx: NodeContext) throws {
        try ctx.only(["kernel_shape", "strides", "pads", "dilations", "group", "auto_pad"])
        let node = ctx.node
        var x = try tensor(node.input[0], ctx)
        let (c, _, _) = try spatial(ctx, x.shape)
        let (k, out, weights) = try convWeights(ctx, channels: c, channelAxis: 1)
        let s = try square(ctx, "strides", 1), d = try square(ctx, "dilations", 1)
        var ((t, b), (l, r)) = try pads2d(ctx)
        if !(t == b && l == r && t == l) {
            x = padFirst(ctx, x, ((t, b), (l, r)))
            (t, b, l, r) = (0, 0, 0, 0)
        }
        let (hp, wp) = (x.shape[1], x.shape[2])
        let oh = (hp + 2 * t - d * (k - 1) - 1) / s + 1, ow = (wp + 2 * l - d * (k - 1) - 1) / s + 1
        guard oh >= 1, ow >= 1 else { throw ctx.fail("the input \(x.shape) is smaller than the kernel") }
        layer(ctx, ["type": "conv2d", "in": .int(Int64(c)), "out": .int(Int64(out)), "kernel": .int(Int64(k)),
                    "stride": .int(Int64(s)), "padding": .int(Int64(t)), "dilation": .int(Int64(d)), "bias": .bool(weights.count == 2)],
              input: x.node, shape: [out, oh, ow], weights: weights)
    }

    /// A (transposed) convolution's weight and bias, checked: one group, square kernels, input channels
    /// on `channelAxis` of the weight (1 for Conv, 0 for ConvTranspose), kernel_shape agreeing.
    func convWeights(_ ctx: NodeContext, channels c: Int, channelAxis: Int) throws -> (k: Int, out: Int, weights: [(String, OnnxConstant)]) {
        let weight = try constant(ctx.node.input[1], ctx, "the weight")
        guard ctx.int("group", 1) == 1 else { throw ctx.fail("attribute group = \(ctx.int("group", 1)) is not supported (1 is)") }
        guard weight.shape.count == 4, weight.shape[channelAxis] == c, weight.shape[2] == weight.shape[3] else {
            throw ctx.fail("weight of shape \(weight.shape) is not supported for \(c) input channels (square kernels are)")
        }
        let k = weight.shape[2], out = weight.shape[1 - channelAxis]
        if let ks = ctx.ints("kernel_shape"), ks != [k, k] { throw ctx.fail("kernel_shape \(ks) disagrees with the weight \(weight.shape)") }
        var weights = [("weight", weight)]
        if let bias = try optionalConstant(ctx, 2, "the bias") {
            guard bias.count == out else { throw ctx.fail("bias of \(bias.count) values for \(out) channels") }
            weights.append(("bias", OnnxConstant(shape: [out], values: bias.values, isInteger: false)))
        }
        return (k, out, weights)
    }

    mutating func convTranspose(_ ctx: NodeContext) throws {
        try ctx.only(["kernel_shape", "strides", "pads", "dilations", "group", "auto_pad", "output_padding"])
        let node = ctx.node
        let x = try tensor(node.input[0], ctx)
        let (c, h, w) = try spatial(ctx, x.shape)
        let (k, out, weights) = try convWeights(ctx, channels: c, channelAxis: 0)
        let s = try square(ctx, "strides", 1)
        guard try square(ctx, "dilations", 1) == 1 else { throw ctx.fail("dilations other than 1 are not supported") }
        let op = try square(ctx, "output_padding", 0, minimum: 0)
        let ((t, b), (l, r)) = try pads2d(ctx)
        guard t == b, l == r, t == l else { throw ctx.fail("pads \(ctx.ints("pads") ?? []) are not supported (the same on every side is)") }
        let oh = (h - 1) * s - 2 * t + k + op, ow = (w - 1) * s - 2 * t + k + op
        guard oh >= 1, ow >= 1 else {
            throw ctx.fail("the input \(x.shape) gives an empty output (\(oh)x\(ow)) with kernel \(k), stride \(s), pads \(t)")
        }
        layer(ctx, ["type": "conv_transpose2d", "in": .int(Int64(c)), "out": .int(Int64(out)), "kernel": .int(Int64(k)),
                    "stride": .int(Int64(s)), "padding": .int(Int64(t)), "output_padding": .int(Int64(op)),
                    "bias": .bool(weights.count == 2)],
              input: x.node, shape: [out, oh, ow], weights: weights)
    }

    mutating func pool(_ ctx: NodeContext) throws {
        let isMax = ctx.node.opType == "MaxPool"
        try ctx.only(["kernel_shape", "strides", "pads", "auto_pad", "ceil_mode"] + (isMax ? ["dilations", "storage_order"] : ["count_include_pad"]))
        let x = try tensor(ctx.node.input[0], ctx)
        guard ctx.node.output.count == 1 else { throw ctx.fail("the Indices output is not supported") }
        let (c, h, w) = try spatial(ctx, x.shape)
        guard let ks = ctx.ints("kernel_shape"), ks.count == 2, ks[0] == ks[1], ks[0] >= 1, ks[0] <= 65536 else {
            throw ctx.fail("kernel_shape \(ctx.ints("kernel_shape") ?? []) is not supported (square kernels are)")
        }
        let k = ks[0], s = try square(ctx, "strides", 1)
        guard ctx.int("ceil_mode", 0) == 0 else { throw ctx.fail("ceil_mode = 1 is not supported") }
        if isMax { guard try square(ctx, "dilations", 1) == 1 else { throw ctx.fail("dilations other than 1 are not supported") } }
        let ((t, b), (l, r)) = try pads2d(ctx)
        guard t == b, l == r, t == l, 2 * t <= k else { throw ctx.fail("pads \(ctx.ints("pads") ?? []) are not supported (the same on every side, at most half the kernel, is)") }
        let oh = (h + 2 * t - k) / s + 1, ow = (w + 2 * t - k) / s + 1
        guard oh >= 1, ow >= 1 else { throw ctx.fail("the input \(x.shape) is smaller than the window") }
        var spec: JSONObject = JSONObject([("type", .string(isMax ? "max_pool2d" : "avg_pool2d")), ("kernel", .int(Int64(k))),
                                           ("stride", .int(Int64(s))), ("padding", .int(Int64(t)))])
        if !isMax { spec["count_include_pad"] = .bool(ctx.int("count_include_pad", 0) != 0) }
        layer(ctx, .object(spec), input: x.node, shape: [c, oh, ow])
    }

    mutating func gemm(_ ctx: NodeContext) throws {
        try ctx.only(["alpha", "beta", "transA", "transB"])
        let x = try tensor(ctx.node.input[0], ctx)
        guard ctx.int("transA", 0) == 0 else { throw ctx.fail("transA = 1 is not supported") }
        guard x.shape.count == 1 else { throw ctx.fail("expected an input [N, features], got per-sample shape \(x.shape)") }
        let b = try constant(ctx.node.input[1], ctx, "B")
        guard b.shape.count == 2 else { throw ctx.fail("B must be a matrix, got shape \(b.shape)") }
        var weight = ctx.int("transB", 0) != 0 ? b : b.transposed([1, 0])   // [out, in]
        guard weight.shape[1] == x.shape[0] else { throw ctx.fail("B of shape \(b.shape) does not fit \(x.shape[0]) input features") }
        let out = weight.shape[0]
        let alpha = Double(ctx.float("alpha", 1)), beta = Double(ctx.float("beta", 1))
        if alpha != 1 { weight.values = weight.values.map { $0 * alpha } }
        var weights = [("weight", weight)]
        if let c = try optionalConstant(ctx, 2, "C") {
            guard c.count == out || c.count == 1, c.shape.last.map({ $0 == out || $0 == 1 }) ?? true, c.shape.count <= 2,
                  c.shape.count < 2 || c.shape[0] == 1 else {
                throw ctx.fail("C of shape \(c.shape) is not supported (a bias [\(out)] is)")
            }
            let v = c.count == 1 ? [Double](repeating: c.values[0], count: out) : c.values
            weights.append(("bias", OnnxConstant(shape: [out], values: v.map { $0 * beta }, isInteger: false)))
        }
        layer(ctx, ["type": "linear", "in": .int(Int64(x.shape[0])), "out": .int(Int64(out)), "bias": .bool(weights.count == 2)],
              input: x.node, shape: [out], weights: weights)
    }

    mutating func binary(_ ctx: NodeContext) throws {
        try ctx.only([])
        let node = ctx.node
        guard node.input.count == 2 else { throw ctx.fail("expected two inputs") }
        let a = try value(node.input[0], ctx), b = try value(node.input[1], ctx)
        if node.opType == "Div", case .tensor = b { throw ctx.fail("only division by a constant is supported") }
        var operands: [(node: String, full: [Int])] = []
        for (i, v) in [a, b].enumerated() {
            switch v {
            case .tensor(let n, let shape): operands.append((n, [1] + shape))
            case .constant(var c):
                guard !c.isInteger || !c.dependsOnBatch else { throw ctx.fail("operand \(i + 1) depends on the batch size") }
                if node.opType == "Div" {
                    guard i == 1, c.values.allSatisfy({ $0 != 0 }) else { throw ctx.fail("only division by a constant without zeros is supported") }
                    c.values = c.values.map { 1 / $0 }
                }
                let name = net.name(for: (node.name.isEmpty ? node.opType : node.name) + "_const\(i + 1)")
                net.add(name, .layer(["type": "constant", "shape": Self.ints(c.shape)], input: "input",
                                     weights: [("value", OnnxConstant(shape: c.shape, values: c.values, isInteger: false))]))
                operands.append((name, c.shape))
            }
        }
        // The batch dimension must line up: network operands of one rank, constants of no higher rank.
        let tensorRanks = Set([a, b].compactMap { v -> Int? in if case .tensor(_, let s) = v { return s.count + 1 } else { return nil } })
        guard tensorRanks.count == 1, let tensorRank = tensorRanks.first, operands.allSatisfy({ $0.full.count <= tensorRank }) else {
            throw ctx.fail("operands of shapes \(operands.map(\.full)) (1 standing for the batch) would not keep the batch dimension first")
        }
        guard let full = OnnxConstant.broadcast(operands[0].full, operands[1].full), full.count == tensorRank, full[0] == 1 else {
            throw ctx.fail("shapes \(operands.map(\.full)) do not broadcast per sample (the batch dimension must stay)")
        }
        for (i, v) in [a, b].enumerated() {
            if case .constant(let c) = v, c.shape.count == full.count, c.shape.first.map({ $0 != 1 }) ?? false {
                throw ctx.fail("operand \(i + 1) of shape \(c.shape) would broadcast over the batch")
            }
        }
        let op = ["Add": "add", "Sub": "sub", "Mul": "mul", "Div": "mul"][node.opType]!
        let name = net.name(for: node.name.isEmpty ? node.opType : node.name)
        net.add(name, .merge(op, inputs: operands.map(\.node), axis: nil))
        values[node.output[0]] = .tensor(node: name, shape: Array(full.dropFirst()))
    }

    mutating func pad(_ ctx: NodeContext) throws {
        try ctx.only(["mode", "pads", "value"])
        let mode = ctx.string("mode") ?? "constant"
        guard mode == "constant" else { throw ctx.fail("mode \"\(mode)\" is not supported (constant is)") }
        let x = try tensor(ctx.node.input[0], ctx)
        let rank = x.shape.count + 1
        var pads = ctx.ints("pads") ?? []
        if let p = try optionalConstant(ctx, 1, "pads") { pads = p.ints }
        var value = ctx.float("value", 0)
        if let v = try optionalConstant(ctx, 2, "constant_value") { value = v.floats.first ?? 0 }
        if ctx.node.input.count > 3, !ctx.node.input[3].isEmpty { throw ctx.fail("the axes input is not supported") }
        guard pads.count == 2 * rank, pads.allSatisfy({ $0 >= 0 }) else {
            throw ctx.fail("pads \(pads) are not supported (non-negative, two per dimension)")
        }
        guard pads[0] == 0, pads[rank] == 0 else { throw ctx.fail("padding the batch dimension is not supported") }
        let perSample = (1..<rank).map { [pads[$0], pads[$0 + rank]] }
        let shape = (0..<x.shape.count).map { x.shape[$0] + perSample[$0][0] + perSample[$0][1] }
        layer(ctx, ["type": "pad", "pads": .array(perSample.map(Self.ints)), "value": .double(Double(value))],
              input: x.node, shape: shape)
    }
}
