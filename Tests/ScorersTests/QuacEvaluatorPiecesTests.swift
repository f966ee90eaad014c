import Foundation
import XCTest
import QuacCore
@testable import Scorers

/// The numerical pieces of the QuAC evaluator against OpenCV, NumPy and SciPy values stored by
/// scripts/golden/quac_evaluator_reference.py (Tests/QuacHostTests/Fixtures/quac_evaluator/kernels.safetensors).
final class QuacEvaluatorPiecesTests: XCTestCase {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let kernels: SafetensorsFile = try! Safetensors.read(
        repoRoot.appendingPathComponent("Tests/QuacHostTests/Fixtures/quac_evaluator/kernels.safetensors"))

    func bytes(_ name: String) -> [UInt8] {
        let t = Self.kernels.tensors[name]!
        return (0..<t.count).map { t.data.load(fromByteOffset: $0, as: UInt8.self) }
    }

    func testEllipseMatchesOpenCV() {
        for s in [1, 2, 3, 4, 5, 7, 10, 15] {
            XCTAssertEqual(EllipticalStructuringElement(width: s, height: s).matrix, bytes("ellipse_\(s)"), "size \(s)")
        }
        let e = EllipticalStructuringElement(width: 10, height: 10)
        XCTAssertEqual(e.anchorX, 5)
        XCTAssertEqual(e.anchorY, 5)
        XCTAssertEqual(e.matrix.reduce(0) { $0 + Int($1) }, 83)
    }

    func testGaussianKernelMatchesGetGaussianKernel() {
        XCTAssertEqual(GaussianKernel.sigma(forSize: 11), 2.0)
        for n in [1, 3, 5, 7, 9, 11, 13, 21] {
            let k = GaussianKernel.opencv(size: n)
            let ref = Self.kernels.tensors["gaussian_\(n)_f64"]!.doubleArray()
            XCTAssertEqual(k.count, n)
            for (a, b) in zip(k, ref) { XCTAssertEqual(a, b, accuracy: 1e-16, "n = \(n)") }
            XCTAssertEqual(k.map { Float($0) }, Self.kernels.tensors["gaussian_\(n)_f32"]!.floatArray(), "n = \(n) float32")
            XCTAssertEqual(k.reduce(0, +), 1, accuracy: 1e-15)
        }
    }

    func testClosingMatchesOpenCVOnAKnownPattern() {
        let p = Self.kernels.tensors["pattern"]!
        let (h, w) = (p.shape[0], p.shape[1])
        let source = BitRows.pack(bytes("pattern"), width: w, height: h)
        let closing = BinaryClosing(width: w, height: h, element: EllipticalStructuringElement(width: 10, height: 10))
        var closed = [UInt64](repeating: 0, count: source.count)
        source.withUnsafeBufferPointer { s in closed.withUnsafeMutableBufferPointer { closing.close(s.baseAddress!, into: $0.baseAddress!) } }
        let got = BitRows.unpack(closed, width: w, height: h)
        let want = bytes("pattern_closed")
        XCTAssertEqual(got, want, "differs at \(zip(got, want).enumerated().filter { $0.1.0 != $0.1.1 }.prefix(5).map { ($0.0 / w, $0.0 % w) })")
        // A lone interior pixel closes to nothing (the anchor is off the element's centre); one in a
        // corner survives (outside pixels never count).
        var dot = [UInt8](repeating: 0, count: 16 * 16)
        dot[8 * 16 + 8] = 1
        dot[0] = 1
        let small = BinaryClosing(width: 16, height: 16, element: EllipticalStructuringElement(width: 10, height: 10))
        let src = BitRows.pack(dot, width: 16, height: 16)
        var out = [UInt64](repeating: 0, count: src.count)
        src.withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { small.close(s.baseAddress!, into: $0.baseAddress!) } }
        XCTAssertEqual(BitRows.unpack(out, width: 16, height: 16).enumerated().filter { $0.1 != 0 }.map(\.0), [0])
    }

    func testBlurMatchesGaussianBlurWithReflect101() {
        let p = Self.kernels.tensors["pattern"]!
        let (h, w) = (p.shape[0], p.shape[1])
        let closed = BitRows.pack(bytes("pattern_closed"), width: w, height: h)
        let blur = MaskBlur(width: w, height: h, kernelSize: 11)
        var out = [Float](repeating: 0, count: w * h)
        closed.withUnsafeBufferPointer { c in out.withUnsafeMutableBufferPointer { blur.blur(c.baseAddress!, wordsPerRow: BitRows.wordsPerRow(w), into: $0.baseAddress!) } }
        let ref = Self.kernels.tensors["pattern_closed_blurred"]!.floatArray()
        let worst = zip(out, ref).map { abs($0 - $1) }.max()!
        XCTAssertLessThan(worst, 1e-6)
        XCTAssertEqual(MaskBlur.reflect101(-1, 8), 1)
        XCTAssertEqual(MaskBlur.reflect101(8, 8), 6)
        XCTAssertEqual(MaskBlur.reflect101(-5, 2), 1)
        XCTAssertEqual(MaskBlur.reflect101(3, 1), 0)
    }

    func testThresholdsAndGridAreNumpysArange() {
        let t = QuacThresholds(vmin: -1, vmax: 1, count: 200)
        XCTAssertEqual(t.values, Self.kernels.tensors["thresholds"]!.doubleArray())
        XCTAssertEqual(t.values[100], 8.881784197001252e-16)
        XCTAssertEqual(QuacCurve.grid, Self.kernels.tensors["interp_mask_values"]!.doubleArray())
        // float32 comparison (NumPy 1.x): 0.5 is not above t_150 = 0.5000000000000013.
        XCTAssertEqual(t.level(of: 0.5), 150)
        XCTAssertEqual(t.level(of: 0), 100)
        XCTAssertEqual(t.level(of: .nan), 0)
        XCTAssertEqual(t.level(of: 2), 200)
    }

    func testCurveFollowsNpInterpTieRuleAndTrapezoid() {
        // Size 0.5 occurs twice: np.interp takes the later point in stable order; size 0 ends at (0, 0).
        let c = QuacCurve.interpolated(sizes: [1, 0.5, 0.5, 0], changes: [0.9, 0.4, 0.3, 0.2], at: [0, 0.25, 0.5, 0.75, 1])
        for (a, b) in zip(c, [0, 0.2, 0.3, 0.6, 0.9]) { XCTAssertEqual(a, b, accuracy: 1e-12) }
        XCTAssertEqual(QuacCurve.trapezoid([0, 1, 1], [0, 0.5, 1]), 0.75)
        XCTAssertEqual(QuacCurve.optimalIndex(sizes: [1, 0.5, 0.2, 0.2], changes: [0.5, 0.4, 0.15, 0.15]), 2, "first of equal minima")
        // Pairwise sum equals the plain sum for exact values, for every length.
        for n in [1, 7, 8, 9, 99, 128, 129, 300] {
            let a = (0..<n).map { Double($0 % 5) }
            XCTAssertEqual(QuacCurve.pairwiseSum(a[...]), a.reduce(0, +), "n = \(n)")
        }
    }
}
