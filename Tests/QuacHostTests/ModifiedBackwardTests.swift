import Foundation
import XCTest
import QuacPluginAPI
@testable import QuacHost

/// The MLP classifier plugin's gradients through the host's API (loaded through the C ABI, as any
/// plugin): DeepLift rescale's summation-to-delta, guided backprop's gating, and the plain vjp against
/// finite differences of forward.
final class ModifiedBackwardTests: XCTestCase {
    static let mlpID = "org.quac.mlp-classifier"

    func mlp(_ params: JSONValue) throws -> PluginInstance {
        let manifest = try PluginRegistry(searchPath: [TestSupport.builtinPlugins]).manifest(id: Self.mlpID)
        if manifest.resolvedLibraryURL() == nil {
            // The bundles sit next to the test runner; say so if the executable's folder is elsewhere.
            setenv("QUAC_PLUGIN_LIB_PATH", TestSupport.productsDir.path, 1)
        }
        let instance = try PluginInstance(manifest: manifest, params: params)
        XCTAssertEqual(instance.kind, .classifier)
        return instance
    }

    func uniform(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
        var rng = SeededRandom(seed: seed)
        return Tensor((0..<shape.reduce(1, *)).map { _ in (rng.uniform() * 2 - 1) * scale }, shape: shape)
    }

    func oneHot(_ n: Int, classes: Int, _ y: (Int) -> Int) -> Tensor {
        let t = Tensor(zeros: [n, classes])
        for s in 0..<n { t.floats[s * classes + y(s)] = 1 }
        return t
    }

    /// Per sample: sum_i g_i (x_i - x0_i), the expected change f_y(x) - f_y(x0), and sum_i |g_i (x_i - x0_i)|
    /// (which bounds the rounding error of the first).
    func summation(_ g: Tensor, _ x: Tensor, _ x0: Tensor, _ fx: Tensor, _ fx0: Tensor, classes: Int, y: (Int) -> Int)
        -> [(lhs: Double, rhs: Double, scale: Double)] {
        let n = x.shape[0], d = x.count / n
        return (0..<n).map { s in
            var lhs = 0.0, scale = 0.0
            for i in (s * d)..<((s + 1) * d) {
                let term = Double(g.floats[i]) * (Double(x.floats[i]) - Double(x0.floats[i]))
                lhs += term
                scale += abs(term)
            }
            let rhs = Double(fx.floats[s * classes + y(s)]) - Double(fx0.floats[s * classes + y(s)])
            return (lhs, rhs, max(scale, abs(rhs)))
        }
    }

    // MARK: DeepLift rescale

    func testDeepLiftRescaleSatisfiesSummationToDelta() throws {
        let c = try mlp(["hidden": 10, "input_shape": [1, 4, 4], "seed": 7])
        let info = try c.info()
        XCTAssertEqual(info, ClassifierInfo(numClasses: 2, sampleShape: [1, 4, 4], hasVJP: true, hasModifiedBackward: true))
        let n = 12
        let x = uniform([n, 1, 4, 4], seed: 1, scale: 2)
        for (baselineName, x0) in [("random", uniform([n, 1, 4, 4], seed: 2, scale: 2)), ("zeros", Tensor(zeros: [n, 1, 4, 4]))] {
            let fx = try c.forward(x), fx0 = try c.forward(x0)
            var plainWorst = 0.0
            for target in 0..<2 {
                let y: (Int) -> Int = { ($0 + target) % 2 }
                let g = oneHot(n, classes: 2, y)
                let rule = try c.vjpRule(QUAC_RULE_DEEPLIFT_RESCALE, x: x, baseline: x0, gradLogits: g)
                XCTAssertEqual(rule.shape, x.shape)
                for (s, r) in summation(rule, x, x0, fx, fx0, classes: 2, y: y).enumerated() {
                    XCTAssertEqual(r.lhs, r.rhs, accuracy: 1e-4 * max(r.scale, 1e-6),
                                   "\(baselineName) baseline, sample \(s), class \(y(s)): sum of multipliers x delta vs delta f")
                }
                // The plain gradient does not have this property on a ReLU network: the check can tell them apart.
                let plain = try c.vjp(x, gradLogits: g).gradX
                for r in summation(plain, x, x0, fx, fx0, classes: 2, y: y) { plainWorst = max(plainWorst, abs(r.lhs - r.rhs) / max(r.scale, 1e-6)) }
            }
            XCTAssertGreaterThan(plainWorst, 1e-2, "\(baselineName): the plain gradient unexpectedly satisfied summation-to-delta")
        }
    }

    func testDeepLiftIsLinearInGradLogitsAndNeedsABaseline() throws {
        let c = try mlp(["hidden": 10, "input_shape": [1, 4, 4], "seed": 7])
        let x = uniform([3, 1, 4, 4], seed: 5), x0 = uniform([3, 1, 4, 4], seed: 6)
        let g0 = try c.vjpRule(QUAC_RULE_DEEPLIFT_RESCALE, x: x, baseline: x0, gradLogits: oneHot(3, classes: 2) { _ in 0 })
        let g1 = try c.vjpRule(QUAC_RULE_DEEPLIFT_RESCALE, x: x, baseline: x0, gradLogits: oneHot(3, classes: 2) { _ in 1 })
        let mixed = Tensor((0..<3).flatMap { _ in [Float(2), Float(-0.5)] }, shape: [3, 2])
        let gm = try c.vjpRule(QUAC_RULE_DEEPLIFT_RESCALE, x: x, baseline: x0, gradLogits: mixed)
        for i in 0..<gm.count {
            XCTAssertEqual(gm.floats[i], 2 * g0.floats[i] - 0.5 * g1.floats[i], accuracy: 1e-5 * max(1, abs(gm.floats[i])))
        }
        XCTAssertThrowsError(try c.vjpRule(QUAC_RULE_DEEPLIFT_RESCALE, x: x, baseline: nil, gradLogits: mixed)) {
            XCTAssertTrue("\($0)".contains("baseline"), "\($0)")
        }
        XCTAssertThrowsError(try c.vjpRule(QUAC_RULE_DEEPLIFT_RESCALE, x: x, baseline: Tensor(zeros: [3, 16]), gradLogits: mixed)) {
            XCTAssertTrue("\($0)".contains("baseline must be float32 shaped like x"), "\($0)")
        }
    }

    // MARK: Guided backprop

    func testGuidedBackpropEqualsTheGradientOfALinearModel() throws {
        let c = try mlp(["hidden": 0, "input_shape": [1, 4, 4], "num_classes": 3, "seed": 11])
        let x = uniform([5, 1, 4, 4], seed: 3)
        let g = uniform([5, 3], seed: 4)
        let guided = try c.vjpRule(QUAC_RULE_GUIDED_BACKPROP, x: x, baseline: nil, gradLogits: g)
        let plain = try c.vjp(x, gradLogits: g).gradX
        XCTAssertEqual(guided.shape, plain.shape)
        for i in 0..<plain.count { XCTAssertEqual(guided.floats[i], plain.floats[i], accuracy: 1e-6 * max(1, abs(plain.floats[i]))) }
        XCTAssertGreaterThan(plain.floatArray().map(abs).max() ?? 0, 0.01, "a random linear model has a non-zero gradient")
        // Negative gradients survive: there is no ReLU to gate them.
        XCTAssertTrue(guided.floatArray().contains { $0 < 0 })
        // The gradient of a linear model does not depend on x.
        let other = try c.vjpRule(QUAC_RULE_GUIDED_BACKPROP, x: uniform([5, 1, 4, 4], seed: 99), baseline: nil, gradLogits: g)
        XCTAssertEqual(other.floatArray(), guided.floatArray())
    }

    /// Weights written to a file, so the test knows them: D = 16 inputs, 10 hidden units, 2 classes.
    /// Units 0..<4 are dead (bias -100), and inputs 0..<4 feed only those units, so every gradient path
    /// from inputs 0..<4 is blocked by a ReLU.
    struct KnownWeights {
        let d = 16, hidden = 10, classes = 2
        var w1: [Float], b1: [Float], w2: [Float], b2: [Float]

        init(seed: UInt64) {
            var rng = SeededRandom(seed: seed)
            func r() -> Float { rng.uniform() * 2 - 1 }
            w1 = (0..<(10 * 16)).map { _ in r() * 0.6 }
            b1 = (0..<10).map { _ in r() * 0.1 }
            w2 = (0..<(2 * 10)).map { _ in r() }
            b2 = (0..<2).map { _ in r() * 0.1 }
            for j in 0..<4 { b1[j] = -100 }
            for j in 4..<10 { for i in 0..<4 { w1[j * 16 + i] = 0 } }
        }

        func write(to url: URL) throws {
            try Safetensors.write([("fc1.weight", Tensor(w1, shape: [hidden, d])), ("fc1.bias", Tensor(b1, shape: [hidden])),
                                   ("fc2.weight", Tensor(w2, shape: [classes, hidden])), ("fc2.bias", Tensor(b2, shape: [classes]))],
                                  to: url)
        }

        /// grad_x of one sample, gating the hidden units' gradient gh by `pass(z_j, gh_j)`.
        func backward(_ x: ArraySlice<Float>, _ g: ArraySlice<Float>, pass: (Double, Double) -> Bool) -> [Double] {
            let xs = Array(x), gs = Array(g)
            var out = [Double](repeating: 0, count: d)
            for j in 0..<hidden {
                var z = Double(b1[j])
                for i in 0..<d { z += Double(w1[j * d + i]) * Double(xs[i]) }
                var gh = 0.0
                for k in 0..<classes { gh += Double(gs[k]) * Double(w2[k * hidden + j]) }
                guard pass(z, gh) else { continue }
                for i in 0..<d { out[i] += gh * Double(w1[j * d + i]) }
            }
            return out
        }
    }

    func testGuidedBackpropGatesByActivationAndGradientSign() throws {
        let dir = try TestSupport.tempDir()
        let weights = KnownWeights(seed: 21)
        let file = dir.appendingPathComponent("mlp.safetensors")
        try weights.write(to: file)
        let c = try mlp(["hidden": 10, "input_shape": [1, 4, 4], "weights": .string(file.path)])
        let n = 6
        let x = uniform([n, 1, 4, 4], seed: 8)
        let g = uniform([n, 2], seed: 9)
        let guided = try c.vjpRule(QUAC_RULE_GUIDED_BACKPROP, x: x, baseline: nil, gradLogits: g)
        let plain = try c.vjp(x, gradLogits: g).gradX
        var differs = false
        for s in 0..<n {
            let xs = x.floatArray()[(s * 16)..<(s * 16 + 16)], gs = g.floatArray()[(s * 2)..<(s * 2 + 2)]
            let expectedGuided = weights.backward(xs, gs) { z, gh in z > 0 && gh > 0 }
            let expectedPlain = weights.backward(xs, gs) { z, _ in z > 0 }
            for i in 0..<16 {
                let gv = Double(guided.floats[s * 16 + i]), pv = Double(plain.floats[s * 16 + i])
                XCTAssertEqual(gv, expectedGuided[i], accuracy: 1e-5, "guided, sample \(s), input \(i)")
                XCTAssertEqual(pv, expectedPlain[i], accuracy: 1e-5, "plain, sample \(s), input \(i)")
                if i < 4 {
                    // Only dead units see these inputs: both paths are blocked, exactly.
                    XCTAssertEqual(gv, 0, "guided, sample \(s), input \(i)")
                    XCTAssertEqual(pv, 0, "plain, sample \(s), input \(i)")
                }
                if abs(gv - pv) > 1e-3 { differs = true }
            }
            XCTAssertGreaterThan(expectedPlain[4...].map(abs).max() ?? 0, 1e-3, "sample \(s) has open paths")
        }
        // Some live unit had a negative incoming gradient: guided backprop blocked it, the gradient did not.
        XCTAssertTrue(differs, "guided backprop equalled the plain gradient on a ReLU network")
    }

    // MARK: Plain vjp

    func testVJPAgreesWithCentralFiniteDifferencesOfForward() throws {
        let c = try mlp(["hidden": 10, "input_shape": [1, 4, 4], "seed": 3])
        let n = 4, d = 16
        let x = uniform([n, 1, 4, 4], seed: 31)
        let g = uniform([n, 2], seed: 32)
        let (logits, gx) = try c.vjp(x, gradLogits: g, wantLogits: true)
        XCTAssertEqual(try XCTUnwrap(logits).floatArray(), try c.forward(x).floatArray())

        // Every sample perturbed by +-eps in every coordinate, in one forward call: rows (s, i, sign).
        let eps: Float = 1e-2
        let perturbed = Tensor(zeros: [n * d * 3, 1, 4, 4])
        for s in 0..<n { for i in 0..<d { for (k, delta) in [eps, 0, -eps].enumerated() {
            let row = (s * d + i) * 3 + k
            for j in 0..<d { perturbed.floats[row * d + j] = x.floats[s * d + j] }
            perturbed.floats[row * d + i] += delta
        } } }
        let f = try c.forward(perturbed).floats
        func dot(_ row: Int, _ s: Int) -> Double { Double(g.floats[s * 2]) * Double(f[row * 2]) + Double(g.floats[s * 2 + 1]) * Double(f[row * 2 + 1]) }
        var checked = 0
        for s in 0..<n {
            for i in 0..<d {
                let base = (s * d + i) * 3
                let plus = dot(base, s), mid = dot(base + 1, s), minus = dot(base + 2, s)
                // A ReLU kink inside [x - eps, x + eps] makes the one-sided slopes differ: skip that coordinate.
                let right = (plus - mid) / Double(eps), left = (mid - minus) / Double(eps)
                guard abs(right - left) < 1e-3 * max(1, abs(right)) else { continue }
                let numeric = (plus - minus) / Double(2 * eps)
                let analytic = Double(gx.floats[s * d + i])
                XCTAssertEqual(analytic, numeric, accuracy: 1e-3 * max(1, abs(numeric)), "sample \(s), input \(i)")
                checked += 1
            }
        }
        XCTAssertGreaterThanOrEqual(checked, n * d * 3 / 4, "too many coordinates sat on a ReLU kink")
        XCTAssertGreaterThan(gx.floatArray().map(abs).max() ?? 0, 0.01)
    }
}
