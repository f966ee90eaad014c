import Engine
import Foundation
import LogicNetworks
import QuacPluginKit

/// A logic explained network over concepts (entropy-based LEN): it classifies from the concepts
/// through an entropy layer that selects a few concepts per class, and explains each class by a rule
/// (a DNF over the concepts, LogicRules.swift) and each sample by its minterm. It learns the data's
/// labels, or the run's classifier's predictions when the train block asks for the "teacher" (a
/// classifier explained through its concepts). Training is in LogicTraining.swift.
///
/// Its map of a sample is the concept relevance: alpha~ of the predicted class for each of that class's
/// concepts, signed by the literal (+ for c, - for ~c), 0 for the others; shaped like the concepts, so
/// its manifest says "explains": "concepts". Its JSON: the rules ({"classes": [...]}), and per sample the predicted class, its
/// minterm and the truth of every class's rule.
final class LogicExplainer: AttributorPlugin {
    static let description = PluginDescription(
        id: "org.quac.logic-explainer", name: "Logic explainer",
        summary: "An entropy-based logic explained network over concepts: a rule per class and a minterm per sample", kind: .attributor)

    struct Trained {
        var network: LogicEnsemble
        var rules: [Rule]
        var names: [String]
        var architecture: JSONValue
    }

    let host: HostServices
    let parameters: Parameters
    let hidden: [Int]
    let temperature: Float
    /// Networks trained from the run's seed and averaged (LogicEnsemble).
    let networks: Int
    var trained: Trained?

    init(host: HostServices, parameters: Parameters) throws {
        self.host = host
        self.parameters = parameters
        _ = try Settings(parameters)
        hidden = try parameters.ints("hidden")
        guard !hidden.isEmpty, hidden.allSatisfy({ $0 >= 1 }) else { throw PluginError.invalid("hidden must list positive widths, the entropy layer's first") }
        temperature = try parameters.float("temperature")
        guard temperature > 0, temperature.isFinite else { throw PluginError.invalid("temperature must be positive") }
        networks = try parameters.int("networks")
        guard (1...64).contains(networks) else { throw PluginError.invalid("networks must be between 1 and 64, not \(networks)") }
        if let path = try parameters.optionalString("weights") { try load(from: URL(fileURLWithPath: path)) }
    }

    /// The network's description, which a model file must match. The number of networks is written
    /// only when there are several, so a single network's description is what it has always been.
    func architecture(concepts k: Int, classes r: Int) -> JSONValue {
        var arch = JSONObject([("type", "logic_network"), ("concepts", .int(Int64(k))), ("classes", .int(Int64(r))),
                               ("hidden", .array(hidden.map { .int(Int64($0)) })), ("temperature", .double(Double(temperature)))])
        if networks > 1 { arch["networks"] = .int(Int64(networks)) }
        return .object(arch)
    }

    func ensemble(concepts k: Int, classes r: Int, seed: UInt64) -> LogicEnsemble {
        LogicEnsemble(concepts: k, classes: r, hidden: hidden, temperature: temperature, count: networks, seed: seed)
    }

    /// Before training (no train block, no weights): networks drawn from seed 0 for the batch's
    /// concepts and the classifier's classes (2 without one), with no rules yet (each one false).
    func untrained(concepts k: Int) -> Trained {
        let r = max((try? host.classifierInfo().spec.numClasses) ?? 2, 2)
        let names = host.conceptNames().flatMap { $0.count == k ? $0 : nil } ?? (0..<k).map { "c\($0)" }
        return Trained(network: ensemble(concepts: k, classes: r, seed: 0),
                       rules: Array(repeating: Rule(), count: r), names: names, architecture: architecture(concepts: k, classes: r))
    }

    /// The rules as JSON: per class the text, the literal count and the minterms as [concept name,
    /// positive] pairs (what the rule scorers evaluate).
    static func rulesDocument(_ rules: [Rule], names: [String]) -> JSONValue {
        .array(rules.enumerated().map { i, rule in
            ["class": .int(Int64(i)), "rule": .string(rule.text(names)), "complexity": .int(Int64(rule.complexity)),
             "minterms": .array(rule.minterms.map { m in .array(m.literals.map { [.string(names[$0.concept]), .bool($0.positive)] }) })]
        })
    }

    func attribute(_ batch: Batch) throws -> Outputs {
        guard let c = batch.concepts else { throw PluginError.invalid("the logic explainer explains concepts, and this batch has none (give the data concepts or the pipeline a concept_model)") }
        if trained == nil { trained = untrained(concepts: c.shape[1]) }
        let t = trained!
        let k = t.network.concepts, r = t.network.classes, n = batch.count
        if let names = host.conceptNames(), names != t.names {
            throw PluginError.invalid("the model's concepts are \(t.names), the run's \(names): the same concepts in the same order are needed")
        }
        guard c.shape == [n, k] else { throw PluginError.invalid("concepts: expected [\(n), \(k)] (the network's concepts), got \(c.shape)") }
        let values = c.floatArray()
        let table = TruthTable(values: values, concepts: k)
        let logits = noGrad { t.network(Var(NDArray(c).copy())) }.array
        let normalized = t.network.attention()
        let mask = t.network.mask()
        let out = Tensor(zeros: [n, k])
        var predicted: [JSONValue] = [], minterms: [JSONValue] = [], truths: [JSONValue] = []
        for s in 0..<n {
            var p = 0
            for i in 1..<r where logits[s * r + i] > logits[s * r + p] { p = i }
            let literals = (0..<k).filter { mask[p][$0] }.map { Literal($0, table[s, $0]) }
            for l in literals { out.floats[s * k + l.concept] = normalized[p * k + l.concept] * (l.positive ? 1 : -1) }
            predicted.append(.int(Int64(p)))
            minterms.append(.string(Minterm(literals).text(t.names)))
            truths.append(.array(t.rules.map { .bool($0.holds(table, s)) }))
        }
        return Outputs([("attribution", out)], json: [
            "predicted": .array(predicted), "minterm": .array(minterms), "rule_truth": .array(truths),
            // Wrapped in an object: an array as long as the batch would be taken for one entry per sample.
            "rules": ["classes": Self.rulesDocument(t.rules, names: t.names)],
        ])
    }
}
