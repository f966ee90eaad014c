import Foundation

/// A network part with named parameters (trainable `Var`s) and buffers (running statistics), named as
/// PyTorch's state_dict names them ("0.weight", "3.running_mean"), so weights move between the two.
open class Module: @unchecked Sendable {
    /// Training mode (batch statistics, dropout) or evaluation mode.
    public private(set) var training = true

    public init() {}

    open func forward(_ x: Var) -> Var { fatalError("\(type(of: self)) does not implement forward") }
    public func callAsFunction(_ x: Var) -> Var {
        let y = forward(x)
        return outputHook.map { $0(y) } ?? y
    }

    /// Sees (and may replace) this module's output on every call: how a layer's activations are read
    /// out, or swapped for other values (layer attributions). Layers with a hook are never fused.
    public var outputHook: ((Var) -> Var)?

    /// Every module below this one with its path ("features.3"), children before their parent, in the
    /// order their outputs are computed.
    public func namedModules(prefix: String = "") -> [(String, Module)] {
        children.flatMap { name, child in child.namedModules(prefix: prefix + name + ".") + [(prefix + name, child)] }
    }

    /// The module at `path` (as namedModules names it), or nil.
    public func module(at path: String) -> Module? {
        var m: Module = self
        for part in path.split(separator: ".", omittingEmptySubsequences: false) {
            guard let next = m.children.first(where: { $0.0 == part })?.1 else { return nil }
            m = next
        }
        return m
    }

    /// This module's own parameters (not its children's).
    open var localParameters: [(String, Var)] { [] }
    /// This module's own buffers: arrays updated in place, saved with the weights, not trained.
    open var localBuffers: [(String, NDArray)] { [] }
    open var children: [(String, Module)] { [] }
    /// Integer state that is neither parameter nor buffer (a dropout layer's call count); checkpoints
    /// save it so a resumed run draws the same random numbers.
    open var localCounters: [String: Int] {
        get { [:] }
        set { _ = newValue }
    }

    public func namedCounters(prefix: String = "") -> [(String, Int)] {
        localCounters.sorted { $0.key < $1.key }.map { (prefix + $0.key, $0.value) }
            + children.flatMap { $0.1.namedCounters(prefix: prefix + $0.0 + ".") }
    }

    /// Sets counters by their full names (as `namedCounters` gives them); unknown names are ignored.
    public func loadCounters(_ values: [String: Int], prefix: String = "") {
        var mine = localCounters
        for k in mine.keys { if let v = values[prefix + k] { mine[k] = v } }
        if !mine.isEmpty { localCounters = mine }
        for (name, c) in children { c.loadCounters(values, prefix: prefix + name + ".") }
    }

    public func namedParameters(prefix: String = "") -> [(String, Var)] {
        localParameters.map { (prefix + $0.0, $0.1) }
            + children.flatMap { $0.1.namedParameters(prefix: prefix + $0.0 + ".") }
    }

    public func namedBuffers(prefix: String = "") -> [(String, NDArray)] {
        localBuffers.map { (prefix + $0.0, $0.1) }
            + children.flatMap { $0.1.namedBuffers(prefix: prefix + $0.0 + ".") }
    }

    public var parameters: [Var] { namedParameters().map(\.1) }

    /// Replaces one of this module's own parameters (see `substituting`).
    open func replaceLocalParameter(_ name: String, with value: Var) {
        fatalError("\(type(of: self)) has no parameter \(name)")
    }

    /// Runs `body` with some parameters replaced by other values, restoring them afterwards. The
    /// replacements may be results of differentiable computations, e.g. one simulated SGD step
    /// theta - lr * grad (created with createGraph), so a loss computed inside differentiates
    /// through that step: the one-step meta-gradient of SMAT.
    public func substituting<R>(_ values: [String: Var], _ body: () throws -> R) rethrows -> R {
        let current = Dictionary(uniqueKeysWithValues: namedParameters())
        for (name, v) in values {
            guard let old = current[name] else { preconditionFailure("no parameter named \(name)") }
            precondition(old.shape == v.shape, "\(name): substitute \(v.shape) for \(old.shape)")
            replaceParameter(name, with: v)
        }
        defer { for name in values.keys { replaceParameter(name, with: current[name]!) } }
        return try body()
    }

    private func replaceParameter(_ path: String, with value: Var) {
        if localParameters.contains(where: { $0.0 == path }) { replaceLocalParameter(path, with: value); return }
        for (name, child) in children where path.hasPrefix(name + ".") {
            child.replaceParameter(String(path.dropFirst(name.count + 1)), with: value)
            return
        }
        preconditionFailure("no parameter named \(path)")
    }

    /// Switches this module and its children between training and evaluation.
    public func train(_ on: Bool = true) {
        training = on
        for (_, c) in children { c.train(on) }
    }

    public func eval() { train(false) }

    public func zeroGrad() { for p in parameters { p.grad = nil } }

    /// Parameters then buffers, by name.
    public func stateDict() -> [(String, NDArray)] {
        namedParameters().map { ($0.0, $0.1.data) } + namedBuffers()
    }

    /// Copies values into the parameters and buffers of the same names. Every parameter and buffer
    /// must be present with its shape; `num_batches_tracked` (a PyTorch counter) is ignored.
    public func loadStateDict(_ state: [String: NDArray]) throws {
        for (name, p) in namedParameters() {
            guard let v = state[name] else { throw EngineError.missingWeight(name) }
            guard v.shape == p.shape else { throw EngineError.shapeMismatch(name, expected: p.shape, found: v.shape) }
            p.setData(v.copy())
        }
        for (name, b) in namedBuffers() {
            guard let v = state[name] else { throw EngineError.missingWeight(name) }
            guard v.shape == b.shape else { throw EngineError.shapeMismatch(name, expected: b.shape, found: v.shape) }
            b.assign(from: v)
        }
    }
}

extension Module {
    /// Copies another network's parameters and buffers (same architecture), e.g. to start an EMA copy.
    public func copyWeights(from other: Module) throws {
        try loadStateDict(Dictionary(uniqueKeysWithValues: other.stateDict()))
    }
}

public enum EngineError: Error, CustomStringConvertible, Equatable {
    case missingWeight(String)
    case unexpectedWeight(String)
    case shapeMismatch(String, expected: [Int], found: [Int])
    case badArchitecture(String)
    case badCheckpoint(String)

    public var description: String {
        switch self {
        case .missingWeight(let n): return "weights: no tensor named \"\(n)\""
        case .unexpectedWeight(let n): return "weights: tensor \"\(n)\" is not a parameter of the network"
        case .shapeMismatch(let n, let e, let f): return "weights: \"\(n)\" has shape \(f), the network expects \(e)"
        case .badArchitecture(let s): return "architecture: \(s)"
        case .badCheckpoint(let s): return "checkpoint: \(s)"
        }
    }
}

// MARK: Layers

public final class Linear: Module, @unchecked Sendable {
    public private(set) var weight: Var
    public private(set) var bias: Var?

    /// PyTorch's default initialization (uniform in +-1/sqrt(in)); zeros when `initialize` is false (the
    /// weights come from a file next).
    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, initialize: Bool = true,
                rng: inout RandomGenerator) {
        weight = Var(.fanInUniform([outFeatures, inFeatures], fanIn: inFeatures, draw: initialize, rng: &rng), requiresGrad: true)
        self.bias = bias ? Var(.fanInUniform([outFeatures], fanIn: inFeatures, draw: initialize, rng: &rng), requiresGrad: true) : nil
    }

    public override func forward(_ x: Var) -> Var { x.linear(weight, bias) }
    public override var localParameters: [(String, Var)] { [("weight", weight)] + (bias.map { [("bias", $0)] } ?? []) }
    public override func replaceLocalParameter(_ name: String, with value: Var) {
        if name == "weight" { weight = value } else if name == "bias" { bias = value } else { super.replaceLocalParameter(name, with: value) }
    }
}

public final class Conv2d: Module, @unchecked Sendable {
    public private(set) var weight: Var
    public private(set) var bias: Var?
    public let geometry: ConvGeometry

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                dilation: Int = 1, bias: Bool = true, initialize: Bool = true, rng: inout RandomGenerator) {
        let fanIn = inChannels * kernel * kernel
        weight = Var(.fanInUniform([outChannels, inChannels, kernel, kernel], fanIn: fanIn, draw: initialize, rng: &rng),
                     requiresGrad: true)
        self.bias = bias ? Var(.fanInUniform([outChannels], fanIn: fanIn, draw: initialize, rng: &rng), requiresGrad: true) : nil
        geometry = ConvGeometry(stride: stride, padding: padding, dilation: dilation)
    }

    public override func forward(_ x: Var) -> Var { x.conv2d(weight, bias: bias, geometry) }
    public override var localParameters: [(String, Var)] { [("weight", weight)] + (bias.map { [("bias", $0)] } ?? []) }
    public override func replaceLocalParameter(_ name: String, with value: Var) {
        if name == "weight" { weight = value } else if name == "bias" { bias = value } else { super.replaceLocalParameter(name, with: value) }
    }
}

public final class ConvTranspose2d: Module, @unchecked Sendable {
    public private(set) var weight: Var
    public private(set) var bias: Var?
    public let geometry: ConvGeometry
    public let outputPadding: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                outputPadding: Int = 0, bias: Bool = true, initialize: Bool = true, rng: inout RandomGenerator) {
        // PyTorch computes fan-in from weight.shape[1] * k * k for transposed convolutions.
        let fanIn = outChannels * kernel * kernel
        weight = Var(.fanInUniform([inChannels, outChannels, kernel, kernel], fanIn: fanIn, draw: initialize, rng: &rng),
                     requiresGrad: true)
        self.bias = bias ? Var(.fanInUniform([outChannels], fanIn: fanIn, draw: initialize, rng: &rng), requiresGrad: true) : nil
        geometry = ConvGeometry(stride: stride, padding: padding)
        self.outputPadding = outputPadding
    }

    public override func forward(_ x: Var) -> Var {
        x.convTranspose2d(weight, bias: bias, geometry, outputPadding: (outputPadding, outputPadding))
    }
    public override var localParameters: [(String, Var)] { [("weight", weight)] + (bias.map { [("bias", $0)] } ?? []) }
    public override func replaceLocalParameter(_ name: String, with value: Var) {
        if name == "weight" { weight = value } else if name == "bias" { bias = value } else { super.replaceLocalParameter(name, with: value) }
    }
}

/// nn.BatchNorm1d/2d: per-channel (dimension 1) normalization with running statistics.
public final class BatchNorm: Module, @unchecked Sendable {
    public private(set) var weight: Var?, bias: Var?
    public let runningMean: NDArray, runningVar: NDArray
    public let momentum: Float, eps: Float

    public init(_ channels: Int, eps: Float = 1e-5, momentum: Float = 0.1, affine: Bool = true) {
        weight = affine ? Var(.ones([channels]), requiresGrad: true) : nil
        bias = affine ? Var(.zeros([channels]), requiresGrad: true) : nil
        runningMean = .zeros([channels])
        runningVar = .ones([channels])
        self.momentum = momentum
        self.eps = eps
    }

    public override func forward(_ x: Var) -> Var {
        x.batchNorm(runningMean: runningMean, runningVar: runningVar, weight: weight, bias: bias,
                    training: training, momentum: momentum, eps: eps)
    }
    public override var localParameters: [(String, Var)] {
        (weight.map { [("weight", $0)] } ?? []) + (bias.map { [("bias", $0)] } ?? [])
    }
    public override func replaceLocalParameter(_ name: String, with value: Var) {
        if name == "weight" { weight = value } else if name == "bias" { bias = value } else { super.replaceLocalParameter(name, with: value) }
    }
    public override var localBuffers: [(String, NDArray)] { [("running_mean", runningMean), ("running_var", runningVar)] }
}

/// nn.InstanceNorm2d without running statistics (affine optional, off by default as in PyTorch).
public final class InstanceNorm: Module, @unchecked Sendable {
    public private(set) var weight: Var?, bias: Var?
    public let eps: Float

    public init(_ channels: Int, eps: Float = 1e-5, affine: Bool = false) {
        weight = affine ? Var(.ones([channels]), requiresGrad: true) : nil
        bias = affine ? Var(.zeros([channels]), requiresGrad: true) : nil
        self.eps = eps
    }

    public override func forward(_ x: Var) -> Var { x.instanceNorm(weight: weight, bias: bias, eps: eps) }
    public override var localParameters: [(String, Var)] {
        (weight.map { [("weight", $0)] } ?? []) + (bias.map { [("bias", $0)] } ?? [])
    }
    public override func replaceLocalParameter(_ name: String, with value: Var) {
        if name == "weight" { weight = value } else if name == "bias" { bias = value } else { super.replaceLocalParameter(name, with: value) }
    }
}

/// A parameterless layer given by a function.
public final class Lambda: Module, @unchecked Sendable {
    public let name: String
    let body: (Var) -> Var
    public init(_ name: String, _ body: @escaping (Var) -> Var) {
        self.name = name
        self.body = body
    }
    public override func forward(_ x: Var) -> Var { body(x) }
}

/// A value that does not depend on the input (an ONNX initializer used as an operand): the buffer
/// "value", saved and loaded with the weights, no gradient.
public final class Constant: Module, @unchecked Sendable {
    public let value: NDArray
    public init(_ value: NDArray) { self.value = value }
    public override func forward(_ x: Var) -> Var { Var(value) }
    public override var localBuffers: [(String, NDArray)] { [("value", value)] }
}

/// Dropout whose masks come from (seed, call number), so a checkpoint's call count is all it takes to
/// resume the same sequence of masks.
public final class Dropout: Module, @unchecked Sendable {
    public let p: Float
    public let seed: UInt64
    public private(set) var calls = 0
    public init(_ p: Float, seed: UInt64 = 0) {
        self.p = p
        self.seed = seed
    }
    public override func forward(_ x: Var) -> Var {
        guard training && p > 0 else { return x }
        var rng = RandomGenerator(seed: seed ^ (UInt64(calls) &* 0x9E37_79B9_7F4A_7C15))
        calls += 1
        return x.dropout(p, training: true, rng: &rng)
    }
    public override var localCounters: [String: Int] {
        get { ["calls": calls] }
        set { calls = newValue["calls"] ?? calls }
    }
}

/// Layers applied in order, named "0", "1", ... as in nn.Sequential.
public final class Sequential: Module, @unchecked Sendable {
    public let layers: [Module]
    public init(_ layers: [Module]) { self.layers = layers }
    public override func forward(_ x: Var) -> Var {
        var y = x, i = 0
        while i < layers.count {
            if let (out, used) = ConvFusion.apply(layers, at: i, to: y) {
                (y, i) = (out, i + used)
            } else {
                (y, i) = (layers[i](y), i + 1)
            }
        }
        return y
    }
    public override var children: [(String, Module)] { layers.enumerated().map { (String($0.offset), $0.element) } }
}

/// y = body(x) + shortcut(x) (identity shortcut when none), optionally divided by `scale`
/// (StarGAN v2's residual blocks divide by sqrt(2)).
public final class Residual: Module, @unchecked Sendable {
    public let body: Module
    public let shortcut: Module?
    public let scale: Float
    public init(body: Module, shortcut: Module? = nil, scale: Float = 1) {
        self.body = body
        self.shortcut = shortcut
        self.scale = scale
    }
    public override func forward(_ x: Var) -> Var {
        let y = body(x) + (shortcut.map { $0(x) } ?? x)
        return scale == 1 ? y : y / scale
    }
    public override var children: [(String, Module)] { [("body", body)] + (shortcut.map { [("shortcut", $0)] } ?? []) }
}

/// A small graph of layers and merge operations over one input, for networks that are not a plain
/// chain (skip connections, concatenations). Nodes run in the order given; each reads earlier nodes
/// (or the input, named "input") by name; the parameters of a node's layer are named "<node>.<param>".
public final class Graph: Module, @unchecked Sendable {
    public enum Merge: String, Sendable { case add, sub, mul, concat }
    public enum Step {
        case layer(Module, input: String)
        case merge(Merge, inputs: [String], axis: Int)
    }
    public let nodes: [(String, Step)]
    public let output: String

    public init(nodes: [(String, Step)], output: String) {
        self.nodes = nodes
        self.output = output
    }

    public override func forward(_ x: Var) -> Var {
        var values: [String: Var] = ["input": x]
        for (name, step) in nodes {
            switch step {
            case .layer(let m, let input): values[name] = m(values[input]!)
            case .merge(let op, let inputs, let axis):
                let vs = inputs.map { values[$0]! }
                switch op {
                case .add: values[name] = vs.dropFirst().reduce(vs[0], +)
                case .sub: values[name] = vs.dropFirst().reduce(vs[0], -)
                case .mul: values[name] = vs.dropFirst().reduce(vs[0], *)
                case .concat: values[name] = Var.concat(vs, axis: axis)
                }
            }
        }
        return values[output]!
    }

    public override var children: [(String, Module)] {
        nodes.compactMap { name, step in if case .layer(let m, _) = step { return (name, m) } else { return nil } }
    }
}
