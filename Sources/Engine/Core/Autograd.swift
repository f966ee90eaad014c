import Foundation

/// A value in a differentiable computation: an array, and when it was computed by an op with gradients
/// enabled, the node that knows how to send gradients to the op's inputs.
///
/// Every op's backward is written with `Var` ops itself. Run without a graph (the default) those ops
/// only compute; run with `createGraph: true` they record nodes, so a gradient can be differentiated
/// again (double backward).
public final class Var: @unchecked Sendable, CustomStringConvertible {
    public internal(set) var data: NDArray
    /// The gradient accumulated by `backward()` (leaves that require gradients only).
    public var grad: Var?
    /// True for leaves the caller marked, and for results of ops on such values while recording.
    public private(set) var requiresGrad: Bool
    let node: Node?

    public init(_ data: NDArray, requiresGrad: Bool = false) {
        self.data = data
        self.requiresGrad = requiresGrad
        self.node = nil
    }

    public convenience init(_ values: [Float], shape: [Int], requiresGrad: Bool = false) {
        self.init(NDArray(values, shape: shape), requiresGrad: requiresGrad)
    }

    init(_ data: NDArray, node: Node) {
        self.data = data
        self.requiresGrad = true
        self.node = node
    }

    /// Records `op` when gradients are enabled and an input needs them. `backward(g, out)` returns one
    /// gradient per input (nil where none flows) with the input's shape.
    static func make(_ op: String, _ data: NDArray, _ inputs: [Var],
                     _ backward: @escaping (_ grad: Var, _ out: Var) -> [Var?]) -> Var {
        if GradMode.isEnabled && inputs.contains(where: { $0.requiresGrad }) {
            return Var(data, node: Node(op: op, inputs: inputs, backward: backward))
        }
        return Var(data)
    }

    /// Whether a backward pass in progress wants this value's gradient: it requires gradients and
    /// leads to one of the values asked for. Backward functions skip work (a convolution's weight
    /// gradient when only the input's is asked for) where this is false.
    var gradNeeded: Bool {
        requiresGrad && !(ThreadContext.current.unneeded?.contains(ObjectIdentifier(self)) ?? false)
    }

    public var shape: [Int] { data.shape }
    public var rank: Int { data.rank }
    public var count: Int { data.count }
    public var item: Float { data.item }
    public var array: [Float] { data.array }
    public var isLeaf: Bool { node == nil }

    /// The same values, cut from the graph.
    public func detach() -> Var { Var(data) }

    /// Marks a leaf as a parameter or input to differentiate with respect to.
    @discardableResult
    public func requiringGrad(_ on: Bool = true) -> Var {
        precondition(node == nil, "only leaves can change requiresGrad")
        requiresGrad = on
        return self
    }

    /// Replaces a leaf's values (optimizer steps, checkpoint loads). The graph does not see this.
    public func setData(_ new: NDArray) {
        precondition(new.shape == data.shape, "setData \(new.shape) on \(data.shape)")
        data = new
    }

    public var description: String { "Var(\(shape), \(node?.op ?? "leaf"))" }

    // MARK: Backward

    /// Accumulates d(self)/d(leaf) into `grad` of every leaf that requires gradients. `seed` defaults to
    /// ones (so a scalar loss needs none). With `freeGraph` (PyTorch's default), each op lets go of the
    /// values it saved as soon as its gradient has passed, so memory falls during the pass instead of
    /// holding every activation until its end; the graph cannot be differentiated again afterwards.
    public func backward(_ seed: Var? = nil, createGraph: Bool = false, freeGraph: Bool = false) {
        let seed = seed ?? Var(NDArray.ones(shape))
        let grads = Autograd.run(outputs: [self], seeds: [seed], createGraph: createGraph, wanted: nil,
                                 freeGraph: freeGraph && !createGraph)
        for (v, g) in grads.leaves {
            if let old = v.grad {
                v.grad = createGraph ? old + g : Var(Kernels.binary(old.data, g.data, +))
            } else {
                v.grad = createGraph ? g : Var(g.data.contiguous())
            }
        }
    }

    /// Zeroes (forgets) the accumulated gradient.
    public func zeroGrad() { grad = nil }
}

final class Node {
    let op: String
    private(set) var inputs: [Var]
    private var rule: ((Var, Var) -> [Var?])?
    init(op: String, inputs: [Var], backward: @escaping (Var, Var) -> [Var?]) {
        self.op = op
        self.inputs = inputs
        self.rule = backward
    }

    func backward(_ g: Var, _ out: Var) -> [Var?] {
        guard let rule else {
            preconditionFailure("\(op): differentiated again after a backward(freeGraph: true) released its graph")
        }
        return rule(g, out)
    }

    /// Drops the inputs and the values the backward rule captured (backward(freeGraph:)).
    func release() {
        inputs = []
        rule = nil
    }
}

/// d(outputs)/d(inputs) contracted with `seeds` (ones by default): one gradient per input, nil where an
/// input does not influence the outputs. With `createGraph` the gradients are themselves differentiable.
public func gradients(of outputs: [Var], wrt inputs: [Var], seeds: [Var]? = nil,
                      createGraph: Bool = false) -> [Var?] {
    let seeds = seeds ?? outputs.map { Var(NDArray.ones($0.shape)) }
    let result = Autograd.run(outputs: outputs, seeds: seeds, createGraph: createGraph, wanted: inputs)
    return inputs.map { result.all[ObjectIdentifier($0)] }
}

public func gradient(of output: Var, wrt input: Var, createGraph: Bool = false) -> Var? {
    gradients(of: [output], wrt: [input], createGraph: createGraph)[0]
}

enum Autograd {
    struct Result {
        var all: [ObjectIdentifier: Var]
        var leaves: [(Var, Var)]
    }

    static func run(outputs: [Var], seeds: [Var], createGraph: Bool, wanted: [Var]?, freeGraph: Bool = false) -> Result {
        precondition(outputs.count == seeds.count)
        for (o, s) in zip(outputs, seeds) { precondition(o.shape == s.shape, "seed \(s.shape) for output \(o.shape)") }
        var order = topologicalOrder(outputs)
        // With specific inputs asked for, values that cannot reach them need no gradient.
        var unneeded: Set<ObjectIdentifier>? = nil
        if let wanted {
            let wantedIDs = Set(wanted.map(ObjectIdentifier.init))
            var leads = Set<ObjectIdentifier>()
            unneeded = []
            for v in order {  // inputs come before the values computed from them
                let id = ObjectIdentifier(v)
                if wantedIDs.contains(id) || (v.node?.inputs.contains { leads.contains(ObjectIdentifier($0)) } ?? false) {
                    leads.insert(id)
                } else {
                    unneeded!.insert(id)
                }
            }
        }
        let ctx = ThreadContext.current
        let outerUnneeded = ctx.unneeded
        ctx.unneeded = unneeded
        defer { ctx.unneeded = outerUnneeded }
        var grads: [ObjectIdentifier: Var] = [:]
        func accumulate(_ v: Var, _ g: Var) {
            let id = ObjectIdentifier(v)
            if let old = grads[id] { grads[id] = old + g } else { grads[id] = g }
        }
        return GradMode.with(createGraph) {
            for (o, s) in zip(outputs, seeds) where o.requiresGrad { accumulate(o, s) }
            var leaves: [(Var, Var)] = []
            // Freeing the graph: consumers come after their inputs in `order`, so once a value's turn
            // comes every op that saved it has run its backward and released it.
            var pending: [Var?] = order
            order = []
            for i in pending.indices.reversed() {
                let v = pending[i]!
                if freeGraph { pending[i] = nil }
                defer { if freeGraph { v.node?.release() } }
                if unneeded?.contains(ObjectIdentifier(v)) ?? false { continue }
                guard let g = grads[ObjectIdentifier(v)] else { continue }
                guard let node = v.node else {
                    if wanted == nil { leaves.append((v, g)) }
                    continue
                }
                let inGrads = node.backward(g, v)
                precondition(inGrads.count == node.inputs.count, "\(node.op): wrong number of gradients")
                for (input, ig) in zip(node.inputs, inGrads) where input.gradNeeded {
                    guard let ig else { continue }
                    precondition(ig.shape == input.shape, "\(node.op): gradient \(ig.shape) for input \(input.shape)")
                    accumulate(input, ig)
                }
                // Free intermediate gradients early unless the caller asked for them.
                if !(wanted?.contains(where: { $0 === v }) ?? false) { grads[ObjectIdentifier(v)] = nil }
            }
            return Result(all: grads, leaves: leaves)
        }
    }

    /// Values reachable from `outputs` through recorded nodes, inputs before the values using them.
    static func topologicalOrder(_ outputs: [Var]) -> [Var] {
        var order: [Var] = []
        var visited = Set<ObjectIdentifier>()
        // Iterative DFS so deep networks do not overflow the stack.
        var stack: [(Var, Int)] = []
        for o in outputs where o.requiresGrad && visited.insert(ObjectIdentifier(o)).inserted {
            stack.append((o, 0))
            while let (v, i) = stack.last {
                let inputs = v.node?.inputs ?? []
                if i < inputs.count {
                    stack[stack.count - 1].1 += 1
                    let c = inputs[i]
                    if c.requiresGrad && visited.insert(ObjectIdentifier(c)).inserted { stack.append((c, 0)) }
                } else {
                    order.append(v)
                    stack.removeLast()
                }
            }
        }
        return order
    }
}

/// Per-thread switches: whether ops record the graph, and which backward rule the nonlinearities use.
final class ThreadContext {
    var gradEnabled = true
    var rule: BackwardRule = .standard
    /// During a backward pass for specific inputs: the values whose gradients nobody asked for.
    var unneeded: Set<ObjectIdentifier>?

    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k) { p in if let p { Unmanaged<ThreadContext>.fromOpaque(p).release() } }
        return k
    }()

    static var current: ThreadContext {
        if let p = pthread_getspecific(key) { return Unmanaged<ThreadContext>.fromOpaque(p).takeUnretainedValue() }
        let c = ThreadContext()
        pthread_setspecific(key, Unmanaged.passRetained(c).toOpaque())
        return c
    }
}

public enum GradMode {
    public static var isEnabled: Bool { ThreadContext.current.gradEnabled }

    /// Runs `body` with graph recording switched on or off, restoring the previous state after.
    public static func with<R>(_ enabled: Bool, _ body: () throws -> R) rethrows -> R {
        let ctx = ThreadContext.current
        let old = ctx.gradEnabled
        ctx.gradEnabled = enabled
        defer { ctx.gradEnabled = old }
        return try body()
    }
}

/// Runs `body` without recording (inference, optimizer updates).
public func noGrad<R>(_ body: () throws -> R) rethrows -> R { try GradMode.with(false, body) }
