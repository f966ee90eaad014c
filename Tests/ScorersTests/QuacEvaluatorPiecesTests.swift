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

    /// The closing and the blur reuse what did not change since a slot's last call; every result must
    /// be exactly what a fresh instance computes. A sequence of shrinking masks (as thresholds cut
    /// them), with jumps back to a full, an empty and an unrelated mask, on a size that is not a
    /// multiple of 64.
    func testIncrementalClosingAndBlurEqualFreshOnes() {
        let (w, h) = (70, 37)
        let wpr = BitRows.wordsPerRow(w)
        var state: UInt64 = 0x9E3779B97F4A7C15
        func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 33 }
        // A smooth bump plus noise: levels fall off from a centre, as an attribution map's do.
        let values: [Double] = (0..<(w * h)).map { i in
            let y = Double(i / w), x = Double(i % w)
            let bump = exp(-((x - 40) * (x - 40) + (y - 15) * (y - 15)) / 200)
            return bump + Double(next() % 1000) / 4000
        }
        var sequence: [[UInt8]] = (0..<60).map { k in values.map { $0 > Double(k) / 50 ? 1 : 0 } }
        sequence.insert([UInt8](repeating: 1, count: w * h), at: 20)
        sequence.insert([UInt8](repeating: 0, count: w * h), at: 40)
        sequence.insert((0..<(w * h)).map { _ in UInt8(next() % 2) }, at: 30)
        let element = EllipticalStructuringElement(width: 10, height: 10)
        let closing = BinaryClosing(width: w, height: h, element: element)
        let blur = MaskBlur(width: w, height: h, kernelSize: 11)
        var changedRows = 0
        var previous: [UInt64]?
        for (k, mask) in sequence.enumerated() {
            let bits = BitRows.pack(mask, width: w, height: h)
            var closed = [UInt64](repeating: 0, count: bits.count), fresh = closed
            bits.withUnsafeBufferPointer { b in
                closed.withUnsafeMutableBufferPointer { closing.close(b.baseAddress!, into: $0.baseAddress!, slot: 1) }
                fresh.withUnsafeMutableBufferPointer {
                    BinaryClosing(width: w, height: h, element: element).close(b.baseAddress!, into: $0.baseAddress!)
                }
            }
            XCTAssertNil(closed.indices.first { closed[$0] != fresh[$0] }, "closing of mask \(k): first differing word")
            if let p = previous { changedRows += (0..<h).filter { y in (0..<wpr).contains { p[y * wpr + $0] != closed[y * wpr + $0] } }.count }
            previous = closed
            var soft = [Float](repeating: 0, count: w * h), freshSoft = soft
            closed.withUnsafeBufferPointer { c in
                soft.withUnsafeMutableBufferPointer { blur.blur(c.baseAddress!, wordsPerRow: wpr, into: $0.baseAddress!, slot: 2) }
                freshSoft.withUnsafeMutableBufferPointer {
                    MaskBlur(width: w, height: h, kernelSize: 11).blur(c.baseAddress!, wordsPerRow: wpr, into: $0.baseAddress!)
                }
            }
            XCTAssertNil(soft.indices.first { soft[$0].bitPattern != freshSoft[$0].bitPattern }, "blur of mask \(k): first differing pixel")
        }
        // The sequence exercises the partial paths: masks that differ from the last in some rows only.
        XCTAssertGreaterThan(changedRows, 0)
        XCTAssertLessThan(changedRows, (sequence.count - 1) * h)
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
