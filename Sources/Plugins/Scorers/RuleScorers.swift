import Foundation
import QuacPluginKit

/// Rules of a logic explainer as the scorers read them from its JSON ("rules": {"classes": per class the minterms
/// as [concept name, positive] pairs), evaluated on the batch's concepts (a concept is true above 0.5).
struct ConceptRules {
    /// Per class, the minterms as (column, positive) literals.
    let rules: [[[(Int, Bool)]]]
    let complexity: [Int]

    init(_ batch: Batch, names: [String]?) throws {
        guard let doc = batch.methodJSON, let list = doc["rules"]?["classes"]?.arrayValue else {
            throw PluginError.invalid("the scored method put no \"rules\" in its JSON: rule scorers score logic explainers")
        }
        guard let c = batch.concepts else { throw PluginError.invalid("rule scorers evaluate the rules on the concepts, and this batch has none") }
        let k = c.shape[1]
        let columns = names ?? (0..<k).map { "c\($0)" }
        guard columns.count == k else { throw PluginError.invalid("\(columns.count) concept names for \(k) concepts") }
        var rules: [[[(Int, Bool)]]] = [], complexity: [Int] = []
        for (i, r) in list.enumerated() {
            guard r["class"]?.intValue == Int64(i), let minterms = r["minterms"]?.arrayValue else {
                throw PluginError.invalid("rules[\(i)]: expected {\"class\": \(i), \"minterms\": [...]}")
            }
            let parsed = try minterms.map { m in
                try (m.arrayValue ?? []).map { l -> (Int, Bool) in
                    guard let name = l[0]?.stringValue, let positive = l[1]?.boolValue, let j = columns.firstIndex(of: name) else {
                        throw PluginError.invalid("rules[\(i)] names a concept that is not one of the run's (\(columns.joined(separator: ", "))): \(l.serialized())")
                    }
                    return (j, positive)
                }
            }
            rules.append(parsed)
            complexity.append(parsed.reduce(0) { $0 + $1.count })
        }
        guard rules.count >= 2 else { throw PluginError.invalid("expected a rule per class (at least 2), got \(rules.count)") }
        self.rules = rules
        self.complexity = complexity
    }

    /// Whether class i's rule holds for sample s of the concepts [N, k].
    func holds(_ i: Int, _ c: UnsafeMutableBufferPointer<Float>, _ s: Int, _ k: Int) -> Bool {
        rules[i].contains { m in m.allSatisfy { (c[s * k + $0.0] > 0.5) == $0.1 } }
    }

    /// Per sample, the fraction of classes whose rule agrees with "the sample is of this class" for
    /// the given classes: 1 when exactly the sample's class's rule holds.
    func agreement(_ batch: Batch, classes: [Int]) -> Tensor {
        let c = batch.concepts!, k = c.shape[1], n = batch.count
        let out = Tensor(zeros: [n])
        for s in 0..<n {
            var right = 0
            for i in rules.indices where holds(i, c.floats, s, k) == (classes[s] == i) { right += 1 }
            out.floats[s] = Float(right) / Float(rules.count)
        }
        return out
    }
}

/// Rule accuracy: per sample, the fraction of the classes' rules that agree with its label (each rule
/// read as "the sample is of my class"); its mean over samples is the mean of the rules' accuracies.
final class RuleAccuracyScorer: ScorerPlugin {
    static let description = PluginDescription(
        id: "org.quac.rule-accuracy", name: "Rule accuracy",
        summary: "Agreement of a logic explainer's rules with the labels, re-evaluated on the concepts", kind: .scorer)
    let host: HostServices
    init(host: HostServices, parameters: Parameters) throws { self.host = host }
    func score(_ batch: Batch) throws -> Outputs {
        let rules = try ConceptRules(batch, names: host.conceptNames())
        let labels = try batch.requireSource().map { Int($0) }
        return Outputs([("score", rules.agreement(batch, classes: labels))])
    }
}

/// Rule fidelity: as rule accuracy, against the class the explainer's network predicted (its JSON's
/// "predicted") instead of the label: how faithfully the rules describe the model.
final class RuleFidelityScorer: ScorerPlugin {
    static let description = PluginDescription(
        id: "org.quac.rule-fidelity", name: "Rule fidelity",
        summary: "Agreement of a logic explainer's rules with its network's predictions, re-evaluated on the concepts", kind: .scorer)
    let host: HostServices
    init(host: HostServices, parameters: Parameters) throws { self.host = host }
    func score(_ batch: Batch) throws -> Outputs {
        let rules = try ConceptRules(batch, names: host.conceptNames())
        guard let predicted = batch.methodJSON?["predicted"]?.arrayValue?.compactMap(\.intValue), predicted.count == batch.count else {
            throw PluginError.invalid("the scored method put no \"predicted\" class per sample in its JSON")
        }
        return Outputs([("score", rules.agreement(batch, classes: predicted.map { Int($0) }))])
    }
}

/// Rule complexity: per sample, the number of literals in the rule of its label's class (lower is
/// simpler); JSON: the literal count of every class's rule.
final class RuleComplexityScorer: ScorerPlugin {
    static let description = PluginDescription(
        id: "org.quac.rule-complexity", name: "Rule complexity",
        summary: "Literals in the rule of each sample's class", kind: .scorer)
    let host: HostServices
    init(host: HostServices, parameters: Parameters) throws { self.host = host }
    func score(_ batch: Batch) throws -> Outputs {
        let rules = try ConceptRules(batch, names: host.conceptNames())
        let labels = try batch.requireSource().map { Int($0) }
        let out = Tensor(zeros: [batch.count])
        for (s, y) in labels.enumerated() {
            guard y >= 0, y < rules.rules.count else { throw PluginError.invalid("label \(y) of sample \(s) has no rule (\(rules.rules.count) classes)") }
            out.floats[s] = Float(rules.complexity[y])
        }
        return Outputs([("score", out)], json: ["complexity_per_class": .array(rules.complexity.map { .int(Int64($0)) })])
    }
}
