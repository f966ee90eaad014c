import EngineKernels
import XCTest
@testable import Engine

/// The direct convolution kernels (EngineKernels), in every instruction set this CPU has, against sums
/// in Double: forward with bias and ReLU, the input gradient with and without a ReLU mask, and the
/// weight gradient (3-wide kernels), over
/// shapes that cover every register tile (1 to 30 output channels, rows narrower than a vector and
/// not a multiple of it), paddings 0 to k - 1 and non-square kernels.
final class DirectConvTests: XCTestCase {
    struct Case { let n, c, h, w, o, kh, kw, ph, pw: Int }

    static let cases: [Case] = [
        Case(n: 2, c: 3, h: 9, w: 13, o: 1, kh: 3, kw: 3, ph: 1, pw: 1),
        Case(n: 1, c: 1, h: 20, w: 37, o: 12, kh: 3, kw: 3, ph: 1, pw: 1),
        Case(n: 3, c: 12, h: 8, w: 8, o: 24, kh: 3, kw: 3, ph: 1, pw: 1),
        Case(n: 2, c: 5, h: 7, w: 70, o: 30, kh: 3, kw: 3, ph: 0, pw: 2),
        Case(n: 1, c: 7, h: 11, w: 5, o: 7, kh: 5, kw: 5, ph: 2, pw: 4),
        Case(n: 2, c: 4, h: 6, w: 33, o: 2, kh: 2, kw: 3, ph: 1, pw: 0),
        Case(n: 1, c: 9, h: 5, w: 16, o: 16, kh: 3, kw: 1, ph: 2, pw: 0),
        Case(n: 4, c: 2, h: 3, w: 17, o: 5, kh: 3, kw: 3, ph: 1, pw: 1),
        Case(n: 1, c: 6, h: 4, w: 64, o: 48, kh: 3, kw: 3, ph: 1, pw: 1),
    ]

    /// Calls body(output index, input index, weight index) for every product of conv2d: output
    /// [n, o, i, j] meets input [n, c, i - ph + ki, j - pw + kj] through weight [o, c, ki, kj].
    static func forEachProduct(_ t: Case, _ body: (Int, Int, Int) -> Void) {
        let (oh, ow) = (t.h + 2 * t.ph - t.kh + 1, t.w + 2 * t.pw - t.kw + 1)
        for b in 0..<t.n {
            for o in 0..<t.o {
                for i in 0..<oh {
                    for j in 0..<ow {
                        for c in 0..<t.c {
                            for ki in 0..<t.kh {
                                let ih = i - t.ph + ki
                                if ih < 0 || ih >= t.h { continue }
                                for kj in 0..<t.kw {
                                    let iw = j - t.pw + kj
                                    if iw < 0 || iw >= t.w { continue }
                                    body(((b * t.o + o) * oh + i) * ow + j, ((b * t.c + c) * t.h + ih) * t.w + iw,
                                         ((o * t.c + c) * t.kh + ki) * t.kw + kj)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// conv2d in Double, plus bias.
    static func reference(_ x: NDArray, _ w: NDArray, _ bias: NDArray, _ t: Case) -> [Double] {
        let (oh, ow) = (t.h + 2 * t.ph - t.kh + 1, t.w + 2 * t.pw - t.kw + 1)
        var y = (0..<(t.n * t.o * oh * ow)).map { Double(bias.pointer[($0 / (oh * ow)) % t.o]) }
        forEachProduct(t) { yi, xi, wi in y[yi] += Double(w.pointer[wi]) * Double(x.pointer[xi]) }
        return y
    }

    /// The input gradient in Double: dx = sum over outputs of g * w at the taps each output read.
    static func referenceInputGrad(_ g: [Double], _ w: NDArray, _ t: Case) -> [Double] {
        var dx = [Double](repeating: 0, count: t.n * t.c * t.h * t.w)
        forEachProduct(t) { yi, xi, wi in dx[xi] += g[yi] * Double(w.pointer[wi]) }
        return dx
    }

    /// The weight gradient in Double: dw = sum over outputs of g * the input each tap read.
    static func referenceWeightGrad(_ x: NDArray, _ g: [Double], _ t: Case) -> [Double] {
        var dw = [Double](repeating: 0, count: t.o * t.c * t.kh * t.kw)
        forEachProduct(t) { yi, xi, wi in dw[wi] += g[yi] * Double(x.pointer[xi]) }
        return dw
    }


    func testEveryTileAgainstDoubleSums() {
        let choice = DirectConv.choice
        DirectConv.choice = .always
        defer { DirectConv.choice = choice }
        var ran: [String] = []
        for isa in ["avx512", "avx2", "sse"] {
            let supported = DirectConv.withISA(isa) {
                for (k, t) in Self.cases.enumerated() {
                    var rng = RandomGenerator(seed: UInt64(10 + k))
                    let x = NDArray.uniform([t.n, t.c, t.h, t.w], low: -1, high: 1, rng: &rng)
                    let w = NDArray.uniform([t.o, t.c, t.kh, t.kw], low: -1, high: 1, rng: &rng)
                    let bias = NDArray.uniform([t.o], low: -1, high: 1, rng: &rng)
                    let geo = ConvGeometry(stride: (1, 1), padding: (t.ph, t.pw))
                    let s = ConvShape(input: x.shape, weight: w.shape, geo)
                    XCTAssertTrue(DirectConv.forward(s) && DirectConv.inputGrad(s), "case \(k) must take the direct path")
                    let label = "\(isa) case \(k) \(t)"
                    let (g, gd) = checkForwardAndInputGrad(x, w, bias, t, label, rng: &rng)
                    if t.kw == 3 {
                        XCTAssertTrue(DirectConv.weightGrad(s))
                        assertClose(Kernels.convWeightGrad(x, g, weightShape: w.shape, geo),
                                    Self.referenceWeightGrad(x, gd, t), "\(label): weight gradient")
                    }
                }
            }
            if supported { ran.append(isa) }
        }
        XCTAssertTrue(ran.contains("sse"), "every x86-64 CPU has the SSE kernels")
        print("direct convolution checked with: \(ran.joined(separator: ", ")) (running: \(DirectConv.isa))")
    }

    /// The weight gradient sums every entry in one order, whatever the thread count (training runs
    /// reproduce on machines with other core counts); rows span several chunks here.
    func testWeightGradientIndependentOfThreads() {
        let geo = ConvGeometry(stride: 1, padding: 1)
        // Large planes (several chunks per sample) and small ones (several samples per chunk).
        for (xShape, o) in [([2, 24, 200, 200], 13), ([300, 8, 10, 12], 7)] {
            var rng = RandomGenerator(seed: 6)
            let x = NDArray.uniform(xShape, low: -1, high: 1, rng: &rng)
            let g = NDArray.uniform([xShape[0], o, xShape[2], xShape[3]], low: -1, high: 1, rng: &rng)
            let s = ConvShape(input: x.shape, weight: [o, xShape[1], 3, 3], geo)
            let plan = ek_wgrad_plan_for(Int32(o), Int32(s.oh), Int32(s.ow), Int32(s.c), Int32(s.n))
            XCTAssertTrue(plan.rows < s.oh || (plan.samples > 1 && plan.samples < s.n), "chunks: \(plan)")
            XCTAssertTrue(DirectConv.weightGrad(s))
            let threads = EngineThreads.count
            defer { EngineThreads.count = threads }
            var results: [[Float]] = []
            for n in [1, 2, 3] {
                EngineThreads.count = n
                results.append(Kernels.convWeightGrad(x, g, weightShape: [o, xShape[1], 3, 3], geo).array)
            }
            XCTAssertEqual(results[0], results[1])
            XCTAssertEqual(results[0], results[2])
        }
    }

    /// The direct and the im2col + GEMM paths agree (the automatic choice may take either).
    func testDirectMatchesGEMM() {
        var rng = RandomGenerator(seed: 5)
        let x = NDArray.uniform([3, 12, 19, 40], low: -1, high: 1, rng: &rng)
        let w = NDArray.uniform([20, 12, 3, 3], low: -1, high: 1, rng: &rng)
        let bias = NDArray.uniform([20], low: -1, high: 1, rng: &rng)
        let geo = ConvGeometry(stride: 1, padding: 1)
        let choice = DirectConv.choice
        defer { DirectConv.choice = choice }
        var outs: [[Float]] = []
        for c in [KernelChoice.always, .never] {
            DirectConv.choice = c
            let y = Kernels.conv2d(x, w, geo, bias: bias, relu: true)
            outs.append(y.array + Kernels.convInputGrad(y, w, inputShape: x.shape, geo, mask: y).array
                        + Kernels.convWeightGrad(x, y, weightShape: w.shape, geo).array)
        }
        let scale = outs[1].map(abs).max() ?? 1
        let worst = zip(outs[0], outs[1]).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThan(worst / scale, 1e-6)
    }
}

extension XCTestCase {
    /// Kernels.conv2d (with bias, with and without ReLU) and Kernels.convInputGrad (with and without
    /// the ReLU mask) against the Double references; returns the output gradient it drew, as NDArray
    /// and as Doubles. Shared with WinogradTests.
    func checkForwardAndInputGrad(_ x: NDArray, _ w: NDArray, _ bias: NDArray, _ t: DirectConvTests.Case, _ label: String,
                                  tolerance: Double = 1e-5, rng: inout RandomGenerator,
                                  file: StaticString = #filePath, line: UInt = #line) -> (NDArray, [Double]) {
        let geo = ConvGeometry(stride: (1, 1), padding: (t.ph, t.pw))
        let want = DirectConvTests.reference(x, w, bias, t)
        assertClose(Kernels.conv2d(x, w, geo, bias: bias, relu: false), want, "\(label): conv2d + bias",
                    tolerance: tolerance, file: file, line: line)
        let y = Kernels.conv2d(x, w, geo, bias: bias, relu: true)
        assertClose(y, want.map { max($0, 0) }, "\(label): conv2d + bias + relu", tolerance: tolerance, file: file, line: line)

        let g = NDArray.uniform(y.shape, low: -1, high: 1, rng: &rng)
        let gd = (0..<g.count).map { Double(g.pointer[$0]) }
        assertClose(Kernels.convInputGrad(g, w, inputShape: x.shape, geo), DirectConvTests.referenceInputGrad(gd, w, t),
                    "\(label): input gradient", tolerance: tolerance, file: file, line: line)
        let masked = (0..<g.count).map { y.pointer[$0] > 0 ? gd[$0] : 0 }
        assertClose(Kernels.convInputGrad(g, w, inputShape: x.shape, geo, mask: y), DirectConvTests.referenceInputGrad(masked, w, t),
                    "\(label): input gradient through the relu mask", tolerance: tolerance, file: file, line: line)
        return (g, gd)
    }
}
