import Foundation
import XCTest
import QuacCore
@testable import Scorers

/// Infidelity, max-sensitivity, deletion and faithfulness correlation against Captum 0.7 and written-out
/// formulas on a small tanh network, with the perturbations taken from the golden file
/// (Tests/ScorersTests/Fixtures/scorer-golden.safetensors, written by scripts/golden/scorer_golden.py).
final class PerturbationScorersTests: XCTestCase {
    static let file: SafetensorsFile = try! Safetensors.read(URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/scorer-golden.safetensors"))
    func t(_ name: String) -> [Double] { Self.file.tensors[name]!.doubleArray() }
    var targets: [Int] { Self.file.tensors["target"]!.int64Array().map { Int($0) } }

    /// f(x) = W2 tanh(W1 x + b1) + b2 on 16 features, and d f_t / d x.
    func logits(_ x: [Double]) -> [Double] {
        let w1 = t("w1"), b1 = t("b1"), w2 = t("w2"), b2 = t("b2")
        let h = (0..<5).map { j in tanh((0..<16).reduce(b1[j]) { $0 + w1[j * 16 + $1] * x[$1] }) }
        return (0..<3).map { c in (0..<5).reduce(b2[c]) { $0 + w2[c * 5 + $1] * h[$1] } }
    }
    func gradient(_ x: [Double], _ target: Int) -> [Double] {
        let w1 = t("w1"), b1 = t("b1"), w2 = t("w2")
        let h = (0..<5).map { j in tanh((0..<16).reduce(b1[j]) { $0 + w1[j * 16 + $1] * x[$1] }) }
        return (0..<16).map { i in (0..<5).reduce(0.0) { $0 + w2[target * 5 + $1] * (1 - h[$1] * h[$1]) * w1[$1 * 16 + i] } }
    }
    func sample(_ name: String, _ s: Int) -> [Double] { Array(t(name)[(s * 16)..<(s * 16 + 16)]) }

    func testInfidelityMatchesCaptum() {
        let noise = t("infid_noise")   // [7, 3, 16]: perturbation k of sample i at (k * 3 + i) * 16
        for normalize in [false, true] {
            let expected = t(normalize ? "infidelity_normalized" : "infidelity")
            for s in 0..<3 {
                let x = sample("x", s), y = targets[s]
                let perturbations = (0..<7).map { k in Array(noise[((k * 3 + s) * 16)..<((k * 3 + s) * 16 + 16)]) }
                let perturbed = perturbations.map { p in logits(zip(x, p).map { $0 - $1 })[y] }
                let v = InfidelityScorer.value(map: sample("attr", s), perturbations: perturbations, logit: logits(x)[y], perturbedLogits: perturbed, normalize: normalize)
                XCTAssertEqual(v, expected[s], accuracy: 1e-5 * max(1, abs(expected[s])) + 1e-9, "normalize \(normalize), sample \(s)")
                XCTAssertEqual(v / expected[s], 1, accuracy: 1e-3)
            }
        }
    }

    func testSensitivityMaxMatchesCaptum() {
        let noise = t("sens_noise"), expected = t("sensitivity_max")
        for s in 0..<3 {
            let x = sample("x", s), y = targets[s]
            let e = gradient(x, y).map(abs)
            for (a, b) in zip(e, sample("saliency_abs", s)) { XCTAssertEqual(a, b, accuracy: 1e-6) }
            let perturbed = (0..<6).map { k in gradient(zip(x, noise[((k * 3 + s) * 16)..<((k * 3 + s) * 16 + 16)]).map { $0 + $1 }, y).map(abs) }
            XCTAssertEqual(SensitivityMaxScorer.value(explanation: e, perturbed: perturbed), expected[s], accuracy: 1e-5)
        }
    }

    func testDeletionCurveAndAreaMatchTheReference() {
        let x = Self.file.tensors["x"]!, attr = Self.file.tensors["attr"]!.floatArray(), baseline = Self.file.tensors["baseline"]!
        let curve = t("deletion_curve"), auc = t("deletion_auc")
        let a = Tensor(attr, shape: [3, 1, 4, 4])
        for s in 0..<3 {
            let order = PixelRemoval.order(a.floats, sample: s, channels: 1, pixels: 16)
            let path = PixelRemoval.path(x, baseline, sample: s, order: order, steps: 4, channels: 1, pixels: 16)
            let logitRows = (0..<5).flatMap { k in logits(Array(path.doubleArray()[(k * 16)..<(k * 16 + 16)])).map(Float.init) }
            let probs = PixelRemoval.probabilities(Tensor(logitRows, shape: [5, 3]), column: targets[s])
            for k in 0..<5 { XCTAssertEqual(probs[k], curve[s * 5 + k], accuracy: 1e-5) }
            XCTAssertEqual(PixelRemoval.area(probs), auc[s], accuracy: 1e-5)
        }
    }

    func testFaithfulnessCorrelationMatchesTheFormula() {
        let subsets = Self.file.tensors["faith_subsets"]!.int64Array().map { Int($0) }, expected = t("faithfulness")
        for s in 0..<3 {
            let x = sample("x", s), attr = sample("attr", s), y = targets[s]
            var sums: [Double] = [], drops: [Double] = []
            for r in 0..<8 {
                let subset = subsets[((s * 8 + r) * 5)..<((s * 8 + r) * 5 + 5)]
                sums.append(subset.reduce(0) { $0 + attr[$1] })
                var removed = x
                for p in subset { removed[p] = 0 }
                drops.append(logits(x)[y] - logits(removed)[y])
            }
            XCTAssertEqual(FaithfulnessCorrelationScorer.pearson(sums, drops), expected[s], accuracy: 1e-6)
        }
        // Constant sides give 0, perfectly linear ones 1.
        XCTAssertEqual(FaithfulnessCorrelationScorer.pearson([1, 1, 1], [1, 2, 3]), 0)
        XCTAssertEqual(FaithfulnessCorrelationScorer.pearson([1, 2, 3], [2, 4, 6]), 1, accuracy: 1e-12)
    }
}

/// ROAD's noisy linear imputation: without noise it reproduces a plane exactly where pixels have all
/// their neighbours (each is then the weighted mean of its neighbours), and fills a hole in a constant
/// image with the constant.
final class ROADImputationTests: XCTestCase {
    func testImputationReproducesAPlane() {
        let (h, w) = (9, 11)
        let plane = (0..<(h * w)).map { Double($0 / w) * 0.3 - Double($0 % w) * 0.2 + 1 }
        var rng = SeededRandom(seed: 5)
        // Interior pixels only: at the border the renormalised mean is one-sided.
        let removed = (0..<(h * w)).map { i in i / w > 0 && i / w < h - 1 && i % w > 0 && i % w < w - 1 && rng.uniform() < 0.6 }
        var v = plane
        ROADScorer.impute(&v, removed: removed, h: h, w: w)
        for i in 0..<(h * w) { XCTAssertEqual(v[i], plane[i], accuracy: 1e-4, "pixel \(i)") }
    }

    func testAConstantBorderFillsTheHoleWithTheConstant() {
        let (h, w) = (6, 6)
        var v = [Double](repeating: 2.5, count: h * w)
        var removed = [Bool](repeating: false, count: h * w)
        for r in 1..<5 { for c in 1..<5 { removed[r * w + c] = true; v[r * w + c] = -7 } }
        ROADScorer.impute(&v, removed: removed, h: h, w: w)
        for x in v { XCTAssertEqual(x, 2.5, accuracy: 1e-5) }
    }
}

extension ROADImputationTests {
    /// ROAD on a model that reads a linear function of the image: removing any pixels of a plane image
    /// (without noise) changes nothing, so every point of the curve is the unperturbed input, whatever the
    /// map; with noise, only the removed pixels move.
    func testRemovalLeavesAPlaneImageUnchanged() {
        let (h, w) = (6, 7)
        let plane = (0..<(2 * h * w)).map { i -> Float in let p = i % (h * w); return Float(p / w) * 0.1 + Float(p % w) * 0.05 }
        let x = Tensor(plane, shape: [1, 2, h, w])
        // Interior pixels first, so every removed pixel has its 8 neighbours.
        let interior = (0..<(h * w)).filter { $0 / w > 0 && $0 / w < h - 1 && $0 % w > 0 && $0 % w < w - 1 }
        let order = interior + (0..<(h * w)).filter { !interior.contains($0) }
        let fractions = [0, Double(interior.count) / 2 / Double(h * w), Double(interior.count) / Double(h * w)]
        var rng = SeededRandom(seed: 1)
        let quiet = ROADScorer.imputed(x, sample: 0, order: order, fractions: fractions, noise: 0, rng: &rng)
        for k in 0..<3 { for i in 0..<(2 * h * w) { XCTAssertEqual(quiet.floats[k * 2 * h * w + i], plane[i], accuracy: 1e-4) } }
        let noisy = ROADScorer.imputed(x, sample: 0, order: order, fractions: fractions, noise: 0.5, rng: &rng)
        let moved = (0..<(2 * h * w)).filter { abs(noisy.floats[2 * 2 * h * w + $0] - plane[$0]) > 1e-3 }
        XCTAssertEqual(Set(moved.map { $0 % (h * w) }), Set(interior), "noise goes to the removed pixels only")
    }
}
