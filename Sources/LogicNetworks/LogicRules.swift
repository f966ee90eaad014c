import Foundation

/// A concept or its negation.
public struct Literal: Hashable, Sendable {
    public let concept: Int
    public let positive: Bool
    public init(_ concept: Int, _ positive: Bool) { self.concept = concept; self.positive = positive }
}

/// Concept truth values: a concept is true when its value exceeds the threshold (0.5).
public struct TruthTable: Sendable {
    public let count: Int, concepts: Int
    let bits: [Bool]
    public init(values: [Float], concepts k: Int, threshold: Float = 0.5) {
        concepts = k
        count = k == 0 ? 0 : values.count / k
        bits = values.map { $0 > threshold }
    }
    public init(rows: [[Bool]]) {
        concepts = rows.first?.count ?? 0
        count = rows.count
        bits = rows.flatMap { $0 }
    }
    public subscript(_ s: Int, _ j: Int) -> Bool { bits[s * concepts + j] }
    public func subset(_ idx: [Int]) -> TruthTable {
        TruthTable(rows: idx.map { s in (0..<concepts).map { self[s, $0] } })
    }
}

/// A conjunction of literals, kept sorted by concept.
public struct Minterm: Hashable, Sendable {
    public let literals: [Literal]
    public init(_ literals: [Literal]) { self.literals = literals.sorted { $0.concept < $1.concept } }
    public func holds(_ t: TruthTable, _ s: Int) -> Bool { literals.allSatisfy { t[s, $0.concept] == $0.positive } }
    public func text(_ names: [String]) -> String {
        literals.map { ($0.positive ? "" : "~") + names[$0.concept] }.joined(separator: " & ")
    }
    /// Every literal of `self` is in `other`: then self | other == self (absorption).
    func absorbs(_ other: Minterm) -> Bool { Set(literals).isSubset(of: Set(other.literals)) }
}

/// A disjunction of minterms (DNF); the empty rule is false.
public struct Rule: Equatable, Sendable {
    public var minterms: [Minterm]
    public init(_ minterms: [Minterm] = []) { self.minterms = minterms }
    public func holds(_ t: TruthTable, _ s: Int) -> Bool { minterms.contains { $0.holds(t, s) } }
    /// Literals in the formula.
    public var complexity: Int { minterms.reduce(0) { $0 + $1.literals.count } }
    public func text(_ names: [String]) -> String {
        minterms.isEmpty ? "false" : minterms.map { minterms.count > 1 && $0.literals.count > 1 ? "(\($0.text(names)))" : $0.text(names) }.joined(separator: " | ")
    }
    /// Accuracy of the rule as "sample is of class i" (a biconditional) against `classes`.
    public func accuracy(_ t: TruthTable, classes: [Int], of i: Int) -> Double {
        guard t.count > 0 else { return .nan }
        var right = 0
        for s in 0..<t.count where holds(t, s) == (classes[s] == i) { right += 1 }
        return Double(right) / Double(t.count)
    }
}

/// Rules from a trained logic network, one per class:
/// 1. the training samples of class i that the network classifies correctly (logit_i > 0), when there
///    are at least 2 of them and at least 2 correctly classified samples of other classes;
/// 2. each one's minterm over class i's masked concepts only (c_j as a literal when c_j > 0.5, ~c_j
///    otherwise), duplicates removed; the rule starts as their disjunction;
/// 3. pruned greedily on the validation split, every step kept only when the rule's validation
///    accuracy does not fall, along three paths:
///    - whole minterms, least accurate alone first; then literals, each minterm's least attended
///      concepts first; then whole minterms again;
///    - the same without the first step;
///    - steepest: at every step, of all the drops that keep validation accuracy (a whole minterm, or one
///      literal of one minterm), the one after which the rule is right on the most samples of the
///      training and validation splits together;
///    of the three rules, the one right on the most training and validation samples is kept (the
///    first on a tie);
/// 4. minterms absorbed by a shorter one (a | (a & b) = a) and duplicates removed.
/// Pruning judges each literal by the whole rule, so minterms that only make sense together (a
/// majority: (a & b) | (a & c) | (b & c)) survive. Deterministic: no randomness; orders are by sample,
/// attention and concept index.
public enum RuleExtraction {
    public struct Result: Sendable {
        public var rule: Rule
        /// Distinct minterms before pruning.
        public var minterms: Int
        public var validationAccuracy: Double
    }

    /// `logits` [N * r] of the training samples; `attention` alpha~ of class i [k]; `mask` its concepts.
    public static func extract(class i: Int, classes r: Int, mask: [Bool], attention: [Float],
                               train: TruthTable, trainLabels: [Int], logits: [Float],
                               val: TruthTable, valLabels: [Int]) -> Result {
        // Every candidate rule is scored on bit sets of the splits (the same numbers as Rule.accuracy).
        let valBits = SplitBits(val, labels: valLabels, of: i), trainBits = SplitBits(train, labels: trainLabels, of: i)
        func accuracy(_ rule: Rule) -> Double { Double(valBits.correct(rule)) / Double(val.count) }
        var positives: [Int] = [], negatives = 0
        for s in 0..<train.count {
            let fires = logits[s * r + i] > 0, isClass = trainLabels[s] == i
            guard fires == isClass else { continue }
            if isClass { positives.append(s) } else { negatives += 1 }
        }
        let masked = (0..<mask.count).filter { mask[$0] }
        guard positives.count >= 2, negatives >= 2, !masked.isEmpty else {
            return Result(rule: Rule(), minterms: 0, validationAccuracy: accuracy(Rule()))
        }
        var seen = Set<Minterm>(), raw: [Minterm] = []
        for s in positives {
            let m = Minterm(masked.map { Literal($0, train[s, $0]) })
            if seen.insert(m).inserted { raw.append(m) }
        }
        // Three paths from the same minterms. One order alone can stop early: with many near-unique
        // minterms, dropping whole ones first keeps an arbitrary few, while generalising literals first
        // can reach the rule a majority of them share; both orders follow the attention, which changes
        // from seed to seed. The steepest path depends on no order, so networks trained from different
        // seeds tend to reach the same rule. A small validation split ties often, so the choices between
        // drops and between paths count the training samples too.
        let literalOrder = masked.sorted { (attention[$0], $0) < (attention[$1], $1) }
        let paths = [prune(raw, literalOrder: literalOrder, mintermsFirst: true, accuracy: accuracy).rule,
                     prune(raw, literalOrder: literalOrder, mintermsFirst: false, accuracy: accuracy).rule,
                     steepestPrune(raw, val: valBits, train: trainBits)]
        func rightOnBoth(_ rule: Rule) -> Int { valBits.correct(rule) + trainBits.correct(rule) }
        var rule = paths[0], most = rightOnBoth(paths[0])
        for p in paths.dropFirst() where rightOnBoth(p) > most { rule = p; most = rightOnBoth(p) }
        // Duplicates and absorbed minterms change nothing the rule says.
        var kept: [Minterm] = [], keptSet = Set<Minterm>()
        for m in rule.minterms where keptSet.insert(m).inserted { kept.append(m) }
        rule = Rule(kept.filter { m in !kept.contains { $0 != m && $0.absorbs(m) } })
        return Result(rule: rule, minterms: raw.count, validationAccuracy: accuracy(rule))
    }

    /// Greedy pruning on the validation split, every step kept only when the rule's validation accuracy
    /// does not fall: whole minterms (least accurate alone first) before and after the literals
    /// (`mintermsFirst`), or the literals first and then whole minterms.
    static func prune(_ minterms: [Minterm], literalOrder: [Int], mintermsFirst: Bool,
                      accuracy: (Rule) -> Double) -> (rule: Rule, accuracy: Double) {
        var rule = Rule(minterms), best = accuracy(rule)
        func dropMinterms() {
            let order = rule.minterms.map { ($0, accuracy(Rule([$0]))) }.sorted { $0.1 < $1.1 }.map(\.0)
            for m in order where rule.minterms.count > 1 {
                let candidate = Rule(rule.minterms.filter { $0 != m })
                let a = accuracy(candidate)
                if a >= best { rule = candidate; best = a }
            }
        }
        // Literals, least attended first, judged by the whole rule.
        func dropLiterals() {
            var index = 0
            while index < rule.minterms.count {
                for j in literalOrder {
                    let m = rule.minterms[index]
                    guard m.literals.count > 1, m.literals.contains(where: { $0.concept == j }) else { continue }
                    var ms = rule.minterms
                    ms[index] = Minterm(m.literals.filter { $0.concept != j })
                    let candidate = Rule(ms)
                    let a = accuracy(candidate)
                    if a >= best { rule = candidate; best = a }
                }
                index += 1
            }
        }
        if mintermsFirst { dropMinterms() }
        dropLiterals()
        dropMinterms()
        return (rule, best)
    }
}

