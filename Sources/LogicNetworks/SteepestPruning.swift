extension RuleExtraction {
    /// Steepest pruning: at every step, of all the drops (a whole minterm while more than one is left, or
    /// one literal of a minterm with more than one) after which validation accuracy does not fall, the
    /// one after which the rule is right on the most training and validation samples together (then the
    /// most validation samples; the first in minterm and literal order on a tie); stops when every drop
    /// lowers validation accuracy. No order of concepts or minterms steers it, which is what makes it
    /// reach the same rule from networks trained from different seeds more often than the greedy paths.
    static func steepestPrune(_ minterms: [Minterm], val: SplitBits, train: SplitBits) -> Rule {
        // No validation samples: nothing can show that a drop keeps the accuracy.
        guard val.count > 0 else { return Rule(minterms) }
        var rule = minterms
        var states = [PruningState(split: val, rule: rule), PruningState(split: train, rule: rule)]
        var bestVal = val.correct(states[0].coveredOnceAndTwice().once)
        while true {
            var choice: (minterm: Int, literal: Int?, val: Int, both: Int)?
            let covered = states.map { $0.coveredOnceAndTwice() }
            for (a, m) in rule.enumerated() {
                // Per split: the samples that the other minterms cover, and the score of a candidate
                // whose minterm `a` covers `cover` (nil: the minterm removed).
                let others = (0..<2).map { k in states[k].others(a, covered[k]) }
                func score(_ k: Int, _ d: Int?) -> Int {
                    guard let d else { return states[k].split.correct(others[k]) }
                    return states[k].correctWithout(literal: d, of: a, others: others[k])
                }
                func consider(_ d: Int?) {
                    let v = score(0, d)
                    guard v >= bestVal else { return }
                    let both = v + score(1, d)
                    guard choice.map({ (both, v) > ($0.both, $0.val) }) ?? true else { return }
                    choice = (a, d, v, both)
                }
                if rule.count > 1 { consider(nil) }
                if m.literals.count > 1 { for d in m.literals.indices { consider(d) } }
            }
            guard let c = choice else { break }
            bestVal = c.val
            if let d = c.literal {
                var literals = rule[c.minterm].literals
                literals.remove(at: d)
                rule[c.minterm] = Minterm(literals)
                for k in 0..<2 { states[k].replace(c.minterm, with: rule[c.minterm]) }
            } else {
                rule.remove(at: c.minterm)
                for k in 0..<2 { states[k].remove(c.minterm) }
            }
        }
        return Rule(rule)
    }
}

/// One split's samples as bit sets (64 per word), so that a candidate rule is scored in a few word
/// operations: a bit set per literal, and the samples of the class the rule is for.
struct SplitBits {
    let count: Int, words: Int
    /// The literals' bit sets, `words` each: literal (j, positive) is number 2 j + 1, (j, negative) 2 j.
    let literals: [UInt64]
    let target: [UInt64]
    /// The valid bits of the last word.
    let tail: UInt64

    init(_ t: TruthTable, labels: [Int], of i: Int) {
        count = t.count
        let words = (t.count + 63) / 64
        self.words = words
        func bits(_ holds: (Int) -> Bool) -> [UInt64] {
            var w = [UInt64](repeating: 0, count: words)
            for s in 0..<t.count where holds(s) { w[s >> 6] |= 1 << UInt64(s & 63) }
            return w
        }
        literals = (0..<t.concepts).flatMap { j in bits { !t[$0, j] } + bits { t[$0, j] } }
        target = bits { labels[$0] == i }
        tail = t.count & 63 == 0 ? ~0 : (1 << UInt64(t.count & 63)) - 1
    }

    /// Where literal l's bit set starts in `literals`.
    func offset(_ l: Literal) -> Int { (2 * l.concept + (l.positive ? 1 : 0)) * words }

    /// Samples of word w on which `truth` (the rule holds) agrees with the target (the sample is of the
    /// class); the bits past the last sample do not count.
    func agreeing(_ truth: UInt64, word w: Int) -> Int {
        (~(truth ^ target[w]) & (w == words - 1 ? tail : ~0)).nonzeroBitCount
    }

    func correct(_ truth: [UInt64]) -> Int { (0..<words).reduce(0) { $0 + agreeing(truth[$1], word: $1) } }

    /// Samples on which the rule agrees with the target: the OR of its minterms' covers, each the AND
    /// of its literals' bit sets, word by word (the greedy paths score thousands of rules this way).
    func correct(_ rule: Rule) -> Int {
        literals.withUnsafeBufferPointer { bits in
            var right = 0
            for w in 0..<words {
                var truth: UInt64 = 0
                for m in rule.minterms {
                    var c: UInt64 = ~0
                    for l in m.literals { c &= bits[offset(l) + w]; if c == 0 { break } }
                    truth |= c
                    if truth == ~0 { break }
                }
                right += agreeing(truth, word: w)
            }
            return right
        }
    }
}

/// A rule under pruning on one split: per minterm the covers of its first p and last p literals (so
/// that dropping any one literal costs a few word operations; all of them is its cover), and per
/// sample how many minterms cover it.
struct PruningState {
    let split: SplitBits
    /// Per minterm, (literals + 1) * words: row p is the AND of the first p literals (row 0: all ones).
    var prefixes: [[UInt64]], suffixes: [[UInt64]]
    var counts: [Int]

    init(split: SplitBits, rule: [Minterm]) {
        self.split = split
        prefixes = []; suffixes = []
        counts = [Int](repeating: 0, count: split.count)
        for m in rule {
            let (p, s) = rows(m)
            prefixes.append(p); suffixes.append(s)
            add(prefixes.count - 1, 1)
        }
    }

    /// Minterm a's cover: the last row of its prefixes.
    func cover(_ a: Int) -> ArraySlice<UInt64> { prefixes[a].suffix(split.words) }

    func rows(_ m: Minterm) -> (prefix: [UInt64], suffix: [UInt64]) {
        let w = split.words, n = m.literals.count
        var p = [UInt64](repeating: ~0, count: (n + 1) * w), s = p
        for i in 0..<n {
            let front = split.offset(m.literals[i]), back = split.offset(m.literals[n - 1 - i])
            for k in 0..<w {
                p[(i + 1) * w + k] = p[i * w + k] & split.literals[front + k]
                s[(i + 1) * w + k] = s[i * w + k] & split.literals[back + k]
            }
        }
        return (p, s)
    }

    /// Counts minterm a's cover in (sign 1) or out (-1).
    mutating func add(_ a: Int, _ sign: Int) {
        let c = cover(a), base = c.startIndex
        for s in 0..<split.count where c[base + (s >> 6)] >> UInt64(s & 63) & 1 == 1 { counts[s] += sign }
    }

    mutating func replace(_ a: Int, with m: Minterm) {
        add(a, -1)
        (prefixes[a], suffixes[a]) = rows(m)
        add(a, 1)
    }

    mutating func remove(_ a: Int) {
        add(a, -1)
        prefixes.remove(at: a); suffixes.remove(at: a)
    }

    /// The samples covered by at least one minterm, and by at least two.
    func coveredOnceAndTwice() -> (once: [UInt64], twice: [UInt64]) {
        var once = [UInt64](repeating: 0, count: split.words), twice = once
        for (s, c) in counts.enumerated() {
            if c >= 1 { once[s >> 6] |= 1 << UInt64(s & 63) }
            if c >= 2 { twice[s >> 6] |= 1 << UInt64(s & 63) }
        }
        return (once, twice)
    }

    /// The samples that minterms other than `a` cover.
    func others(_ a: Int, _ covered: (once: [UInt64], twice: [UInt64])) -> [UInt64] {
        let c = cover(a), base = c.startIndex
        return (0..<split.words).map { w in covered.twice[w] | (covered.once[w] & ~c[base + w]) }
    }

    /// Correct samples once literal d of minterm a is dropped: its cover is the AND of the literals
    /// before d and of those after it.
    func correctWithout(literal d: Int, of a: Int, others: [UInt64]) -> Int {
        let w = split.words, n = prefixes[a].count / w - 1
        var right = 0
        prefixes[a].withUnsafeBufferPointer { p in
            suffixes[a].withUnsafeBufferPointer { s in
                for k in 0..<w {
                    right += split.agreeing(others[k] | (p[d * w + k] & s[(n - 1 - d) * w + k]), word: k)
                }
            }
        }
        return right
    }
}
