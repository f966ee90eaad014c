import Foundation
import XCTest
import Engine
import QuacCore
@testable import LogicNetworks

/// Logic explained networks: the entropy layer and a whole network against torch_explain 1.5.1 on the
/// same weights (Fixtures/len-golden, written by scripts/golden/len_golden.py), and rule extraction on
/// hand-built cases whose rules are known.
final class LogicNetworkTests: XCTestCase {
    static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/len-golden/len.safetensors")

    func assertClose(_ a: [Float], _ b: [Float], _ what: String, tolerance: Float = 1e-5, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let scale = max(1, b.map(abs).max() ?? 1)
        for (x, y) in zip(a, b) where abs(x - y) > tolerance * scale {
            XCTFail("\(what): \(x) vs \(y)", file: file, line: line)
            return
        }
    }

    func testEntropyLayerMatchesTorchExplain() throws {
        let file = try Safetensors.read(Self.golden)
        let a = ModelFile.floatArrays(file)
        var rng = RandomGenerator(seed: 0)
        let layer = EntropyLinear(concepts: 5, hidden: 3, classes: 2, temperature: 0.6, rng: &rng)
        try layer.loadStateDict(["weight": a["entropy.weight"]!, "bias": a["entropy.bias"]!])
        let (alpha, normalized) = layer.attention()
        assertClose(layer.weight.abs().sum(axes: [1]).array, a["gamma"]!.array, "gamma")
        assertClose(alpha.array, a["alpha"]!.array, "alpha")
        assertClose(normalized.array, a["alpha_norm"]!.array, "alpha~")
        XCTAssertEqual(layer.mask().flatMap { $0 }.map { $0 ? Float(1) : 0 }, a["mask"]!.array)
        XCTAssertTrue(layer.mask().flatMap { $0 }.contains(true) && layer.mask().flatMap { $0 }.contains(false), "the golden's mask has both")
        let c = Var(a["c"]!.copy(), requiresGrad: true)
        let out = layer(c)
        assertClose(out.array, a["out"]!.array, "output")
        let grads = gradients(of: [out], wrt: [layer.weight, layer.bias, c], seeds: [Var(a["g_out"]!.copy())])
        assertClose(grads[0]!.array, a["grad_weight"]!.array, "d/dW")
        assertClose(grads[1]!.array, a["grad_bias"]!.array, "d/db")
        assertClose(grads[2]!.array, a["grad_c"]!.array, "d/dc")
        let entropy = layer.entropy()
        XCTAssertEqual(entropy.item, a["entropy"]!.array[0], accuracy: 1e-5)
        assertClose(gradients(of: [entropy], wrt: [layer.weight])[0]!.array, a["grad_entropy_weight"]!.array, "d entropy / dW")
    }

    func testNetworkLossAndGradientsMatchTorchExplain() throws {
        let file = try Safetensors.read(Self.golden)
        let a = ModelFile.floatArrays(file)
        let net = LogicNetwork(concepts: 5, classes: 2, hidden: [10, 4], seed: 1)
        var state: [String: NDArray] = [:]
        for (k, v) in a where k.hasPrefix("len.") { state[String(k.dropFirst(4))] = v }
        try net.loadStateDict(state)
        XCTAssertEqual(Set(net.namedParameters().map(\.0)), Set(state.keys), "torch_explain's parameter names")
        let c = Var(a["len_c"]!.copy())
        assertClose(net(c).array, a["len_logits"]!.array, "logits")
        let labels = Labels(file.tensors["len_labels"]!).values
        let loss = net.loss(c, labels: labels, lambda: 1e-4)
        XCTAssertEqual(loss.item, a["len_loss"]!.array[0], accuracy: 1e-5)
        let named = net.namedParameters()
        let grads = gradients(of: [loss], wrt: named.map(\.1))
        for ((name, _), g) in zip(named, grads) { assertClose(g!.array, a["len_grad.\(name)"]!.array, "d loss / d \(name)") }
        assertClose(net.entropy.attention().alpha.array, a["len_alpha"]!.array, "alpha")
    }

    // MARK: Rules

    /// Every combination of k concepts once, labelled by `f`.
    func truthTable(_ k: Int, _ f: ([Bool]) -> Bool) -> (TruthTable, [Int]) {
        let rows = (0..<(1 << k)).map { m in (0..<k).map { m & (1 << $0) != 0 } }
        return (TruthTable(rows: rows), rows.map { f($0) ? 1 : 0 })
    }

    /// Logits that classify perfectly (class 1 where `labels` says so).
    func perfectLogits(_ labels: [Int]) -> [Float] { labels.flatMap { $0 == 1 ? [-1, 1] : [1, -1] } as [Float] }

    func testExtractsTheKnownRuleOverMaskedConceptsOnly() {
        // Class 1 = c0 & ~c2; c1 and c3 are noise the mask leaves out.
        let (t, y) = truthTable(4) { $0[0] && !$0[2] }
        let r = RuleExtraction.extract(class: 1, classes: 2, mask: [true, false, true, false], attention: [1, 0.1, 0.9, 0.2],
                                       train: t, trainLabels: y, logits: perfectLogits(y), val: t, valLabels: y)
        XCTAssertEqual(r.rule.text(["a", "b", "c", "d"]), "a & ~c")
        XCTAssertEqual(r.rule.complexity, 2)
        XCTAssertEqual(r.validationAccuracy, 1)
        // Four positives (b and d vary) give one minterm over the mask: duplicates are removed.
        XCTAssertEqual(r.minterms, 1)
        // The rule re-evaluated as a formula on the concepts gives the accuracy it reports.
        let formula = (0..<t.count).map { t[$0, 0] && !t[$0, 2] }
        XCTAssertEqual(r.rule.accuracy(t, classes: y, of: 1), Double(zip(formula, y).filter { $0 == ($1 == 1) }.count) / Double(t.count))
    }

    func testXorNeedsTwoMintermsAndPruningKeepsThem() {
        let (t, y) = truthTable(3) { $0[0] != $0[1] }
        let r = RuleExtraction.extract(class: 1, classes: 2, mask: [true, true, true], attention: [1, 1, 0.6],
                                       train: t, trainLabels: y, logits: perfectLogits(y), val: t, valLabels: y)
        XCTAssertEqual(r.rule.text(["p", "q", "z"]), "(p & ~q) | (~p & q)")
        XCTAssertEqual(r.validationAccuracy, 1)
        XCTAssertEqual(r.minterms, 4, "z doubles the minterms before pruning")
    }

    /// Pruning never lowers the validation accuracy: the rule is at least as accurate as the
    /// disjunction of every correct positive's minterm it starts from, and no literal is outside the
    /// mask, on random data and random masks; of the three paths it keeps the one right on the most
    /// training and validation samples.
    func testPruningNeverLowersValidationAccuracy() {
        var rng = RandomGenerator(seed: 4)
        var pruned = 0
        for trial in 0..<30 {
            let k = 3 + trial % 4, n = 40
            func table() -> ([[Bool]], TruthTable, [Int]) {
                let rows = (0..<n).map { _ in (0..<k).map { _ in rng.uniform() > 0.5 } }
                return (rows, TruthTable(rows: rows), rows.map { ($0[0] && $0[1]) || rng.uniform() < 0.1 ? 1 : 0 })
            }
            let (rows, t, y) = table()
            let (_, v, vy) = table()
            let logits = (0..<n).flatMap { _ in [rng.uniform() - 0.5, rng.uniform() - 0.5] } as [Float]
            let mask = (0..<k).map { $0 < 2 || rng.uniform() > 0.5 }
            let attention = (0..<k).map { _ in rng.uniform() }
            let r = RuleExtraction.extract(class: 1, classes: 2, mask: mask, attention: attention, train: t, trainLabels: y, logits: logits, val: v, valLabels: vy)
            guard !r.rule.minterms.isEmpty else { continue }
            XCTAssertTrue(r.rule.minterms.allSatisfy { $0.literals.allSatisfy { mask[$0.concept] } })
            // The correct positives' minterms in sample order, first occurrences kept, as extraction
            // starts (greedy pruning depends on the order: a Set's would change from run to run).
            var seen = Set<Minterm>()
            let start = Rule((0..<n).filter { y[$0] == 1 && logits[$0 * 2 + 1] > 0 }.map { s in
                Minterm((0..<k).filter { mask[$0] }.map { Literal($0, rows[s][$0]) })
            }.filter { seen.insert($0).inserted })
            XCTAssertGreaterThanOrEqual(r.validationAccuracy, start.accuracy(v, classes: vy, of: 1) - 1e-12)
            XCTAssertEqual(r.validationAccuracy, r.rule.accuracy(v, classes: vy, of: 1))
            // Each path keeps validation accuracy; the rule is the path right on the most samples of both
            // splits (absorption, applied afterwards, changes no prediction).
            let order = (0..<k).filter { mask[$0] }.sorted { (attention[$0], $0) < (attention[$1], $1) }
            let score = { (rule: Rule) in rule.accuracy(v, classes: vy, of: 1) }
            let vb = SplitBits(v, labels: vy, of: 1), tb = SplitBits(t, labels: y, of: 1)
            let paths = [true, false].map { RuleExtraction.prune(start.minterms, literalOrder: order, mintermsFirst: $0, accuracy: score).rule }
                + [RuleExtraction.steepestPrune(start.minterms, val: vb, train: tb)]
            func right(_ rule: Rule) -> Double { rule.accuracy(v, classes: vy, of: 1) * Double(n) + rule.accuracy(t, classes: y, of: 1) * Double(n) }
            for path in paths {
                XCTAssertGreaterThanOrEqual(score(path), start.accuracy(v, classes: vy, of: 1) - 1e-12)
                XCTAssertGreaterThanOrEqual(right(r.rule), right(path) - 1e-9)
            }
            if r.rule.complexity < start.complexity { pruned += 1 }
        }
        XCTAssertGreaterThan(pruned, 10, "pruning shortened the rule in most trials")
    }

    /// Scoring on bit sets agrees with evaluating the rule sample by sample, across word boundaries.
    func testBitSetScoringMatchesTheFormula() {
        var rng = RandomGenerator(seed: 9)
        for n in [1, 63, 64, 65, 130] {
            let k = 5
            let t = TruthTable(rows: (0..<n).map { _ in (0..<k).map { _ in rng.uniform() > 0.5 } })
            let y = (0..<n).map { _ in rng.uniform() > 0.5 ? 1 : 0 }
            let bits = SplitBits(t, labels: y, of: 1)
            for _ in 0..<20 {
                let rule = Rule((0..<(1 + Int(rng.uniform() * 3))).map { _ in
                    Minterm((0..<k).filter { _ in rng.uniform() > 0.6 }.map { Literal($0, rng.uniform() > 0.5) })
                })
                XCTAssertEqual(bits.correct(rule), Int((rule.accuracy(t, classes: y, of: 1) * Double(n)).rounded()), "n \(n): \(rule.text(["a", "b", "c", "d", "e"]))")
            }
        }
    }

    /// Steepest pruning's incremental bookkeeping (per-sample cover counts, prefix and suffix covers)
    /// gives the same rule as the rule it defines, computed the slow way: every candidate drop
    /// re-evaluated sample by sample.
    func testSteepestPruningMatchesItsDefinition() {
        var rng = RandomGenerator(seed: 11)
        var shortened = 0
        for trial in 0..<8 {
            let k = 4 + trial % 3, n = 40 + 4 * trial
            func table() -> (TruthTable, [Int]) {
                let rows = (0..<n).map { _ in (0..<k).map { _ in rng.uniform() > 0.5 } }
                return (TruthTable(rows: rows), rows.map { ($0[0] && !$0[2]) || ($0[1] && $0[3]) || rng.uniform() < 0.15 ? 1 : 0 })
            }
            let (t, y) = table(), (v, vy) = table()
            var seen = Set<Minterm>()
            let start = (0..<n).filter { y[$0] == 1 }.map { s in Minterm((0..<k).map { Literal($0, t[s, $0]) }) }.filter { seen.insert($0).inserted }
            let fast = RuleExtraction.steepestPrune(start, val: SplitBits(v, labels: vy, of: 1), train: SplitBits(t, labels: y, of: 1))
            // The definition, sample by sample.
            func right(_ ms: [Minterm], _ table: TruthTable, _ labels: [Int]) -> Int {
                (0..<table.count).filter { s in ms.contains { $0.holds(table, s) } == (labels[s] == 1) }.count
            }
            var rule = start, bestVal = right(rule, v, vy)
            while true {
                var choice: (rule: [Minterm], val: Int, both: Int)?
                for a in rule.indices {
                    var candidates: [[Minterm]] = []
                    if rule.count > 1 { var r = rule; r.remove(at: a); candidates.append(r) }
                    if rule[a].literals.count > 1 {
                        for d in rule[a].literals.indices {
                            var ls = rule[a].literals; ls.remove(at: d)
                            var r = rule; r[a] = Minterm(ls); candidates.append(r)
                        }
                    }
                    for c in candidates {
                        let val = right(c, v, vy), both = val + right(c, t, y)
                        if val >= bestVal, choice.map({ (both, val) > ($0.both, $0.val) }) ?? true { choice = (c, val, both) }
                    }
                }
                guard let c = choice else { break }
                rule = c.rule; bestVal = c.val
            }
            XCTAssertEqual(fast.minterms, rule, "trial \(trial)")
            XCTAssertGreaterThanOrEqual(right(fast.minterms, v, vy), right(start, v, vy))
            if fast.complexity < Rule(start).complexity / 2 { shortened += 1 }
        }
        XCTAssertEqual(shortened, 8, "every start is pruned to less than half its literals")
    }

    /// A majority needs its minterms together: each alone is worse than a single literal, so pruning
    /// minterm by minterm would lose it; judged by the whole rule it survives.
    func testMajorityRuleSurvivesPruning() {
        let (t, y) = truthTable(3) { ($0[0] ? 1 : 0) + ($0[1] ? 1 : 0) + ($0[2] ? 1 : 0) >= 2 }
        let r = RuleExtraction.extract(class: 1, classes: 2, mask: [true, true, true], attention: [1, 0.9, 0.8],
                                       train: t, trainLabels: y, logits: perfectLogits(y), val: t, valLabels: y)
        XCTAssertEqual(r.validationAccuracy, 1)
        XCTAssertEqual(r.rule.complexity, 6, r.rule.text(["a", "b", "c"]))
    }

    func testTooFewCorrectSamplesGiveNoRule() {
        let (t, y) = truthTable(2) { $0[0] }
        let wrong = perfectLogits(y.map { 1 - $0 })
        let r = RuleExtraction.extract(class: 1, classes: 2, mask: [true, true], attention: [1, 1], train: t, trainLabels: y, logits: wrong, val: t, valLabels: y)
        XCTAssertTrue(r.rule.minterms.isEmpty)
        XCTAssertEqual(r.rule.text(["a", "b"]), "false")
    }
}

/// On the networks torch_explain trained (bench/logic_reference.py, xor and trigonometry, seeds 0-4,
/// Fixtures/len-same-weights), the rules extracted here are at least as accurate on the test split as
/// the ones torch_explain's explain_classes extracted from the same weights.
final class LogicRulesAgainstTorchExplainTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/len-same-weights")
    static let data = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("examples/logic/data")

    func split(_ dataset: String, _ part: String) throws -> (TruthTable, [Int], NDArray) {
        let f = try Safetensors.read(Self.data.appendingPathComponent("\(dataset)_\(part).safetensors"))
        let c = f.tensors["concepts"]!
        return (TruthTable(values: c.floatArray(), concepts: c.shape[1]), f.tensors["labels"]!.int64Array().map { Int($0) }, NDArray(c).copy())
    }

    func testRulesAreAtLeastAsAccurateAsTorchExplainsOnTheSameWeights() throws {
        let reference = try JSONParser.parse(String(contentsOf: Self.fixtures.appendingPathComponent("torch_explain.json"), encoding: .utf8))
        var compared = 0
        for dataset in ["xor", "trigonometry"] {
            let (train, trainLabels, trainX) = try split(dataset, "train")
            let (val, valLabels, _) = try split(dataset, "val")
            let (test, testLabels, _) = try split(dataset, "test")
            for seed in 0..<5 {
                let file = try Safetensors.read(Self.fixtures.appendingPathComponent("\(dataset)_seed\(seed).safetensors"))
                var state: [String: NDArray] = [:]
                for (k, v) in ModelFile.floatArrays(file) where k.hasPrefix("len.") { state[String(k.dropFirst(4))] = v }
                let net = LogicNetwork(concepts: train.concepts, classes: 2, hidden: [10, 4], seed: 0)
                try net.loadStateDict(state)
                let logits = noGrad { net(Var(trainX)) }.array
                let attention = noGrad { net.entropy.attention().normalized }.array, mask = net.entropy.mask(), k = train.concepts
                for i in 0..<2 {
                    let r = RuleExtraction.extract(class: i, classes: 2, mask: mask[i], attention: Array(attention[(i * k)..<((i + 1) * k)]),
                                                   train: train, trainLabels: trainLabels, logits: logits, val: val, valLabels: valLabels)
                    let ours = r.rule.accuracy(test, classes: testLabels, of: i)
                    let theirs = try XCTUnwrap(reference["runs"]?["\(dataset)_seed\(seed)"]?["\(i)"]?["explanation_accuracy"]?.doubleValue)
                    XCTAssertGreaterThanOrEqual(ours, theirs - 1e-9, "\(dataset) seed \(seed) class \(i): ours \(r.rule.text((0..<k).map { "c\($0)" })) \(ours), torch_explain \(theirs)")
                    compared += 1
                }
            }
        }
        XCTAssertEqual(compared, 20)
    }
}
