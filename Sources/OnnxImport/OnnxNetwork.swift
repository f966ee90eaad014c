import Foundation
import QuacCore

/// The engine network an ONNX graph becomes, as it is assembled: a list of nodes in the order they
/// run, each a layer over one earlier node or a merge (add, sub, mul, concat) of several, with the
/// weights of each layer. `description()` writes it as the engine's "graph" architecture, putting
/// each chain of single-input layers (a node whose only reader is the next one) into one
/// "sequential", so the engine fuses convolution, batch norm and ReLU there as it does in its own VGG.
struct OnnxNetwork {
    enum Step {
        case layer(JSONValue, input: String, weights: [(String, OnnxConstant)])
        case merge(String, inputs: [String], axis: Int?)
    }
    private(set) var nodes: [(name: String, step: Step)] = []
    private var used: Set<String> = ["input"]

    /// A node name from an ONNX node's name: letters, digits and "_" only (the engine joins names
    /// with "."), never "input", never one already taken.
    mutating func name(for onnxName: String) -> String {
        var base = String(onnxName.map { $0.isLetter || $0.isNumber ? $0 : "_" })
        while base.hasPrefix("_") { base.removeFirst() }
        if base.isEmpty || base.first!.isNumber { base = "n" + base }
        var name = base, i = 1
        while used.contains(name) { i += 1; name = "\(base)_\(i)" }
        used.insert(name)
        return name
    }

    mutating func add(_ name: String, _ step: Step) { nodes.append((name, step)) }

    /// The architecture JSON and the weights, named as the engine's network names its parameters.
    func description(output: String, extra: [(String, JSONValue)]) -> (JSONValue, [(String, OnnxConstant)]) {
        var readers: [String: Int] = [output: 1]
        for (_, step) in nodes {
            switch step {
            case .layer(_, let input, _): readers[input, default: 0] += 1
            case .merge(_, let inputs, _): for i in inputs { readers[i, default: 0] += 1 }
            }
        }
        // Chains: a layer joins the chain before it when it reads that chain's last node and is its
        // only reader.
        var chains: [(name: String, input: String, layers: [(JSONValue, [(String, OnnxConstant)])], last: String)] = []
        var renamed: [String: String] = [:]   // a node inside a chain -> the chain's name
        var order: [Either] = []
        enum Either { case chain(Int), merge(String, String, [String], Int?) }
        for (name, step) in nodes {
            switch step {
            case .layer(let spec, let input, let weights):
                if case .chain(let c)? = order.last, chains[c].last == input, readers[input] == 1 {
                    chains[c].layers.append((spec, weights))
                    chains[c].last = name
                    renamed[name] = chains[c].name
                } else {
                    chains.append((name, input, [(spec, weights)], name))
                    order.append(.chain(chains.count - 1))
                }
            case .merge(let op, let inputs, let axis):
                order.append(.merge(name, op, inputs, axis))
            }
        }
        func resolve(_ n: String) -> String { renamed[n] ?? n }
        var out: [JSONValue] = []
        var weights: [(String, OnnxConstant)] = []
        for item in order {
            switch item {
            case .chain(let c):
                let chain = chains[c]
                let layer: JSONValue
                if chain.layers.count == 1 {
                    layer = chain.layers[0].0
                    weights += chain.layers[0].1.map { ("\(chain.name).\($0.0)", $0.1) }
                } else {
                    layer = ["type": "sequential", "layers": .array(chain.layers.map(\.0))]
                    for (i, l) in chain.layers.enumerated() { weights += l.1.map { ("\(chain.name).\(i).\($0.0)", $0.1) } }
                }
                out.append(["name": .string(chain.name), "input": .string(resolve(chain.input)), "layer": layer])
            case .merge(let name, let op, let inputs, let axis):
                var node: JSONObject = JSONObject([("name", .string(name)), ("op", .string(op)),
                                                   ("inputs", .array(inputs.map { .string(resolve($0)) }))])
                if let axis { node["axis"] = .int(Int64(axis)) }
                out.append(.object(node))
            }
        }
        var arch = JSONObject([("type", "graph"), ("output", .string(resolve(output))), ("nodes", .array(out))])
        for (k, v) in extra { arch[k] = v }
        return (.object(arch), weights)
    }
}
