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
///    otherwise), duplicates removed;
/// 3. each minterm pruned greedily on the validation split: its literals, least attended first, are
///    dropped when the minterm alone, as the class's rule, is at least as accurate without them;
/// 4. the pruned minterms (duplicates removed again), most accurate first, are OR-ed one by one, each
///    kept only when it raises the rule's validation accuracy; minterms absorbed by a shorter one go.
/// Deterministic: no randomness, ties broken by sample order and then by text.
public enum RuleExtraction {
    public struct Result: Sendable {
        public var rule: Rule
        /// Distinct minterms before pruning, and how many training samples gave them.
        public var minterms: Int
        public var validationAccuracy: Double
    }

    /// `logits` [N * r] of the training samples; `attention` alpha~ of class i [k]; `mask` its concepts.
    public static func extract(class i: Int, classes r: Int, mask: [Bool], attention: [Float],
                               train: TruthTable, trainLabels: [Int], logits: [Float],
                               val: TruthTable, valLabels: [Int]) -> Result {
        var positives: [Int] = [], negatives = 0
        for s in 0..<train.count {
            let fires = logits[s * r + i] > 0, isClass = trainLabels[s] == i
            guard fires == isClass else { continue }
            if isClass { positives.append(s) } else { negatives += 1 }
        }
        let masked = (0..<mask.count).filter { mask[$0] }
        guard positives.count >= 2, negatives >= 2, !masked.isEmpty else { return Result(rule: Rule(), minterms: 0, validationAccuracy: Rule().accuracy(val, classes: valLabels, of: i)) }
        var seen = Set<Minterm>(), raw: [Minterm] = []
        for s in positives {
            let m = Minterm(masked.map { Literal($0, train[s, $0]) })
            if seen.insert(m).inserted { raw.append(m) }
        }
        // Least attended first: those literals are the likeliest to be noise.
        let pruneOrder = masked.sorted { (attention[$0], $0) < (attention[$1], $1) }
        var pruned: [Minterm] = [], prunedSeen = Set<Minterm>()
        for m in raw {
            var current = m
            var best = Rule([current]).accuracy(val, classes: valLabels, of: i)
            for j in pruneOrder where current.literals.count > 1 {
                guard current.literals.contains(where: { $0.concept == j }) else { continue }
                let candidate = Minterm(current.literals.filter { $0.concept != j })
                let a = Rule([candidate]).accuracy(val, classes: valLabels, of: i)
                if a >= best { current = candidate; best = a }
            }
            if prunedSeen.insert(current).inserted { pruned.append(current) }
        }
        func key(_ m: Minterm) -> String { m.literals.map { "\($0.concept)\($0.positive ? "+" : "-")" }.joined(separator: ",") }
        func before(_ a: (Minterm, Double), _ b: (Minterm, Double)) -> Bool {
            if a.1 != b.1 { return a.1 > b.1 }
            if a.0.literals.count != b.0.literals.count { return a.0.literals.count < b.0.literals.count }
            return key(a.0) < key(b.0)
        }
        let scored = pruned.map { ($0, Rule([$0]).accuracy(val, classes: valLabels, of: i)) }.sorted(by: before)
        var rule = Rule(), best = -1.0
        for (m, _) in scored {
            let candidate = Rule(rule.minterms + [m])
            let a = candidate.accuracy(val, classes: valLabels, of: i)
            if a > best { rule = candidate; best = a }
        }
        rule.minterms = rule.minterms.filter { m in !rule.minterms.contains { $0 != m && $0.absorbs(m) } }
        return Result(rule: rule, minterms: raw.count, validationAccuracy: rule.accuracy(val, classes: valLabels, of: i))
    }
}
