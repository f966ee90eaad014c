import Foundation
import XCTest
import Engine
import QuacCore
@testable import MetaLearning

/// The pieces of SMAT-style meta-learning: sparsemax against its closed form, the explanation's softmax
/// over positions with masked positions, the meta-gradient against central finite differences of the
/// whole unrolled update, and one full outer step against PyTorch (Fixtures/smat-golden, written by
/// scripts/golden/smat_golden.py).
final class SMATTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/smat-golden")

    /// The projection onto the simplex by its definition: the largest support size k whose threshold
    /// tau = (sum of the k largest - 1) / k leaves every one of them above it.
    func closedFormSparsemax(_ z: [Double]) -> [Double] {
        let sorted = z.sorted(by: >)
        var tau = 0.0
        for k in 1...z.count {
            let t = (sorted.prefix(k).reduce(0, +) - 1) / Double(k)
            if sorted[k - 1] > t { tau = t }
        }
        return z.map { max($0 - tau, 0) }
    }

    func testSparsemaxMatchesItsClosedFormAndItsJacobian() {
        var rng = RandomGenerator(seed: 3)
        for trial in 0..<20 {
            let k = 2 + trial % 5
            let z = (0..<k).map { _ in Double(rng.normal()) * (trial < 10 ? 0.3 : 2) }
            let v = Var(NDArray(z.map(Float.init), shape: [k]), requiresGrad: true)
            let p = v.sparsemax()
            let expected = closedFormSparsemax(z)
            for (a, b) in zip(p.array, expected) { XCTAssertEqual(Double(a), b, accuracy: 1e-6, "\(z)") }
            XCTAssertEqual(p.array.reduce(0, +), 1, accuracy: 1e-5)
            // The Jacobian on the support S is I - 1 1^T / |S|, zero outside: J^T g = s * (g - mean_S g).
            let g = (0..<k).map { _ in Double(rng.normal()) }
            let grad = gradients(of: [p], wrt: [v], seeds: [Var(NDArray(g.map(Float.init), shape: [k]))])[0]!.array
            let support = expected.map { $0 > 0 ? 1.0 : 0.0 }
            let mean = zip(g, support).map { $0 * $1 }.reduce(0, +) / support.reduce(0, +)
            for i in 0..<k { XCTAssertEqual(Double(grad[i]), support[i] * (g[i] - mean), accuracy: 1e-5) }
        }
        // Uniform phi (the explainer's start) gives uniform weights; a far-ahead entry takes everything.
        XCTAssertEqual(Var(NDArray.full([4], 0.25)).sparsemax().array, [0.25, 0.25, 0.25, 0.25])
        XCTAssertEqual(Var(NDArray([3, 0, 0.5], shape: [3])).sparsemax().array, [1, 0, 0])
    }

    func testExplanationIsASoftmaxOverUnmaskedPositions() {
        let z = NDArray([1, 2, 3, 4, 0.5, -1, 2, 0], shape: [2, 4])
        let mask = NDArray([1, 0, 1, 1, 0, 0, 1, 1], shape: [2, 4])
        let p = SMATMath.logExplanation(Var(z), mask: mask).exp().array
        for (row, kept) in [[0, 2, 3], [6, 7]].enumerated() {
            let norm = kept.map { exp(Double(z.array[$0])) }.reduce(0, +)
            for i in 0..<4 {
                let k = row * 4 + i
                XCTAssertEqual(Double(p[k]), kept.contains(k) ? exp(Double(z.array[k])) / norm : 0, accuracy: 1e-6)
            }
        }
        // Without a mask: a plain softmax per sample.
        let q = SMATMath.logExplanation(Var(z)).exp().array
        XCTAssertEqual(q[0...3].reduce(0, +), 1, accuracy: 1e-6)
        XCTAssertEqual(Double(q[3]) / Double(q[2]), exp(1), accuracy: 1e-4)
    }

    func testStandardizeGivesZeroMeanUnitSpreadPerMap() {
        var rng = RandomGenerator(seed: 1)
        let v = SMATMath.standardize(Var(NDArray.uniform([2, 3, 10], low: -2, high: 5, rng: &rng))).array
        for m in 0..<6 {
            let row = v[(m * 10)..<(m * 10 + 10)].map(Double.init)
            let mean = row.reduce(0, +) / 10
            XCTAssertEqual(mean, 0, accuracy: 1e-5)
            XCTAssertEqual((row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 10).squareRoot(), 1, accuracy: 1e-4)
        }
    }

    /// A tiny student with non-zero momentum, its data and teacher heads.
    func tinySetup() throws -> (SMATStudent, NDArray, Labels, NDArray, Labels, NDArray) {
        var rng = RandomGenerator(seed: 11)
        let student = try SMATStudent(inputShape: [1, 8, 8], channels: [2, 3], classes: 3, seed: 5, learningRate: 0.1, momentum: 0.9)
        let x = NDArray.normal([6, 1, 8, 8], rng: &rng), y = Labels([0, 1, 2, 1, 0, 2])
        let xv = NDArray.normal([5, 1, 8, 8], rng: &rng), yv = Labels([2, 1, 0, 0, 1])
        let raw = NDArray.uniform([6, 3, 64], low: 0, high: 1, rng: &rng)
        let heads = noGrad { SMATMath.standardize(Var(raw)) }.data.contiguous()
        // One real step first, so the momentum buffers the simulated update reads are not zero.
        student.step(x, y, teacher: noGrad { SMATMath.logExplanation(SMATMath.mix(Var(heads), Var(NDArray.full([3], 1 / 3.0)))) }.data, beta: 0.7)
        return (student, x, y, xv, yv, heads)
    }

    /// d outer / d phi through the whole unrolled update, against central differences in phi.
    func testMetaGradientMatchesFiniteDifferences() throws {
        let (student, x, y, xv, yv, heads) = try tinySetup()
        for start in [[0.5, 0.3, 0.1], [0.9, 0.3, -0.5]] as [[Float]] {
            let phi = Var(NDArray(start, shape: [3]), requiresGrad: true)
            let (_, grad) = SMATMeta.metaGradient(student: student, phi: phi, heads: heads, x: x, y: y, xVal: xv, yVal: yv, beta: 0.7)
            let eps: Float = 1e-2
            for i in 0..<3 {
                func outer(_ d: Float) -> Double {
                    var p = start
                    p[i] += d
                    return Double(SMATMeta.metaGradient(student: student, phi: Var(NDArray(p, shape: [3]), requiresGrad: true), heads: heads,
                                                             x: x, y: y, xVal: xv, yVal: yv, beta: 0.7).outer)
                }
                let fd = (outer(eps) - outer(-eps)) / Double(2 * eps)
                XCTAssertEqual(Double(grad.array[i]), fd, accuracy: 2e-3 + 0.03 * abs(fd), "phi \(start), entry \(i)")
            }
        }
        // The simulated update leaves the student as it was.
        let before = student.weights.map { $0.1.array }
        _ = SMATMeta.metaGradient(student: student, phi: Var(NDArray([0.4, 0.3, 0.3], shape: [3]), requiresGrad: true), heads: heads,
                                       x: x, y: y, xVal: xv, yVal: yv, beta: 0.7)
        XCTAssertEqual(student.weights.map { $0.1.array }, before)
    }

    /// The meta-gradient is not zero only by accident: with beta = 0 the explanations do not reach
    /// the student's update, and the gradient vanishes.
    func testWithoutTheExplanationTermPhiGetsNoGradient() throws {
        let (student, x, y, xv, yv, heads) = try tinySetup()
        let phi = Var(NDArray([0.45, 0.35, 0.2], shape: [3]), requiresGrad: true)
        let withTerm = SMATMeta.metaGradient(student: student, phi: phi, heads: heads, x: x, y: y, xVal: xv, yVal: yv, beta: 0.7).grad.array
        let without = SMATMeta.metaGradient(student: student, phi: phi, heads: heads, x: x, y: y, xVal: xv, yVal: yv, beta: 0).grad.array
        XCTAssertGreaterThan(withTerm.map(abs).max()!, 1e-6)
        XCTAssertEqual(without.map(abs).max()!, 0)
    }

    /// One outer step (meta-gradient, clipping, AdamW) against torch.autograd.grad(..., create_graph=True)
    /// and torch.optim.AdamW on the same weights and data, with all heads in the support (a) and one
    /// outside it with clipping active (b).
    func testOuterStepMatchesPyTorch() throws {
        let file = try Safetensors.read(Self.fixtures.appendingPathComponent("outer_step.safetensors"))
        let arrays = ModelFile.floatArrays(file)
        let h = try XCTUnwrap(try JSONParser.parse(file.metadata["hyperparameters"] ?? "{}").objectValue)
        func num(_ k: String) -> Float { Float(h[k]?.doubleValue ?? .nan) }
        let labels = { (name: String) in Labels(file.tensors[name]!) }
        var state: [String: NDArray] = [:]
        for (k, v) in arrays where k.hasPrefix("student.") { state[String(k.dropFirst(8))] = v }
        for c in ["a", "b"] {
            let student = try SMATStudent(inputShape: [1, 8, 8], channels: [2, 3], classes: 3, seed: 0,
                                          learningRate: num("lr"), momentum: num("momentum"))
            try student.load(state)
            let heads = noGrad { SMATMath.standardize(Var(arrays["heads_raw"]!)) }.data.contiguous()
            let phi = Var(arrays["phi_\(c)"]!.copy(), requiresGrad: true)
            let (outer, grad) = SMATMeta.metaGradient(student: student, phi: phi, heads: heads, x: arrays["x"]!, y: labels("y"),
                                                           xVal: arrays["xv"]!, yVal: labels("yv"), beta: num("beta"))
            XCTAssertEqual(outer, arrays["outer_\(c)"]!.array[0], accuracy: 1e-5, "case \(c)")
            for (a, b) in zip(grad.array, arrays["dphi_\(c)"]!.array) { XCTAssertEqual(a, b, accuracy: 1e-4 + 1e-3 * abs(b), "case \(c) dphi") }
            // The clipping itself (Adam's first step is nearly lr * sign(g), blind to the scale).
            let clipped = Var(grad.copy(), requiresGrad: true)
            clipped.grad = Var(grad.copy())
            clipGradNorm([clipped], maxNorm: num("clip_\(c)"))
            for (a, b) in zip(clipped.grad!.array, arrays["dphi_clipped_\(c)"]!.array) { XCTAssertEqual(a, b, accuracy: 1e-5 + 1e-3 * abs(b), "case \(c) clipped") }
            let optimizer = Adam.adamW([phi], lr: num("meta_lr"), weightDecay: num("meta_wd"))
            SMATMeta.metaUpdate(optimizer, phi: phi, grad: grad, clip: num("clip_\(c)"))
            for (a, b) in zip(phi.array, arrays["phi_after_\(c)"]!.array) { XCTAssertEqual(a, b, accuracy: 1e-4, "case \(c) phi after the step") }
        }
    }
}
