import Foundation

/// A logic explainer's rules as a run recorded them (its JSON: "rules", and per sample "predicted" and
/// "rule_truth"), with each rule's accuracy against the run's labels and its fidelity to the
/// explainer's network, on the run's samples.
public struct RuleSummary {
    public struct ClassRule {
        public let classIndex: Int
        public let rule: String
        public let complexity: Int
        /// The concept names the rule mentions.
        public let concepts: [String]
        public let accuracy: Double
        public let fidelity: Double
    }
    public let method: String
    public let classes: [ClassRule]
    /// The network's accuracy on the run's samples.
    public let modelAccuracy: Double
}

extension RunResults {
    /// One summary per method whose JSON has rules.
    public var ruleSummaries: [RuleSummary] {
        methods.compactMap { m in
            guard let rules = m.fields["rules"]?["classes"]?.arrayValue, !rules.isEmpty else { return nil }
            let truth = (m.fields["rule_truth"]?.arrayValue ?? []).map { ($0.arrayValue ?? []).map { $0.boolValue ?? false } }
            let predicted = (m.fields["predicted"]?.arrayValue ?? []).map { Int($0.intValue ?? -1) }
            let n = min(truth.count, labels.count)
            func agreement(_ i: Int, _ classes: [Int]) -> Double {
                guard n > 0, classes.count >= n else { return .nan }
                return Double((0..<n).filter { s in (truth[s].indices.contains(i) && truth[s][i]) == (classes[s] == i) }.count) / Double(n)
            }
            let labelClasses = labels.map { Int($0) }
            let classes = rules.enumerated().map { i, r in
                RuleSummary.ClassRule(classIndex: i, rule: r["rule"]?.stringValue ?? "", complexity: Int(r["complexity"]?.intValue ?? 0),
                                      concepts: Array(Set((r["minterms"]?.arrayValue ?? []).flatMap { ($0.arrayValue ?? []).compactMap { $0[0]?.stringValue } })).sorted(),
                                      accuracy: agreement(i, labelClasses), fidelity: agreement(i, predicted))
            }
            let model = n > 0 && predicted.count >= n ? Double((0..<n).filter { predicted[$0] == labelClasses[$0] }.count) / Double(n) : .nan
            return RuleSummary(method: m.name, classes: classes, modelAccuracy: model)
        }
    }
}

/// How stable a logic explainer's rules are across runs (seeds): per method and class, how often each
/// concept appears in the rules of the runs that have that method.
public struct RuleConsistency {
    public let method: String
    public let classIndex: Int
    public let runs: Int
    /// Concept -> fraction of the runs whose rule for the class mentions it, most frequent first.
    public let concepts: [(String, Double)]
    /// The rule of each run, and its accuracy.
    public let rules: [(run: String, rule: String, accuracy: Double)]

    static func of(_ runs: [RunResults], labels: [String]) -> [RuleConsistency] {
        var out: [RuleConsistency] = []
        var methods: [String] = []
        let summaries = runs.map(\.ruleSummaries)   // computed once per run
        for s in summaries.joined() where !methods.contains(s.method) { methods.append(s.method) }
        for method in methods {
            var having: [(String, RuleSummary)] = []
            for (runSummaries, tag) in zip(summaries, labels) {
                if let s = runSummaries.first(where: { $0.method == method }) { having.append((tag, s)) }
            }
            guard having.count >= 2 else { continue }
            let classCount = having.map { $0.1.classes.count }.max() ?? 0
            for i in 0..<classCount {
                var rules: [(String, RuleSummary.ClassRule)] = []
                for (tag, s) in having { if let c = s.classes.first(where: { $0.classIndex == i }) { rules.append((tag, c)) } }
                var counts: [String: Int] = [:]
                for (_, c) in rules { for name in c.concepts { counts[name, default: 0] += 1 } }
                var freq: [(String, Double)] = counts.map { ($0.key, Double($0.value) / Double(rules.count)) }
                freq.sort { a, b in a.1 != b.1 ? a.1 > b.1 : a.0 < b.0 }
                out.append(RuleConsistency(method: method, classIndex: i, runs: rules.count, concepts: freq,
                                           rules: rules.map { ($0.0, $0.1.rule, $0.1.accuracy) }))
            }
        }
        return out
    }
}
