import XCTest
@testable import Engine

/// Convolutions on planes large enough that im2col / col2im go in bands of output rows
/// (ConvShape.rowsPerBand < oh), against direct sums.
final class ConvBandTests: XCTestCase {
    func check(input: [Int], out: Int, geo: ConvGeometry, file: StaticString = #filePath, line: UInt = #line) {
        var rng = RandomGenerator(seed: 3)
        let x = NDArray.uniform(input, low: -1, high: 1, rng: &rng)
        let w = NDArray.uniform([out, input[1], 3, 3], low: -1, high: 1, rng: &rng)
        let s = ConvShape(input: input, weight: w.shape, geo)
        // The banded path is im2col + GEMM's: keep stride-1 shapes off the direct kernel.
        let choice = DirectConv.choice
        DirectConv.choice = .never
        defer { DirectConv.choice = choice }
        XCTAssertLessThan(s.rowsPerBand, s.oh, "the shape must take the banded path", file: file, line: line)
        XCTAssertEqual(s.samplesPerGEMM, 1, file: file, line: line)
        let y = Kernels.conv2d(x, w, geo)
        let g = NDArray.uniform(y.shape, low: -1, high: 1, rng: &rng)
        let dx = Kernels.convInputGrad(g, w, inputShape: input, geo)
        let (px, pw, py, pg, pdx) = (x.pointer, w.pointer, y.pointer, g.pointer, dx.pointer)
        var expectedDX = [Double](repeating: 0, count: x.count)
        var worstY = 0.0, worstDX = 0.0
        for b in 0..<s.n {
            for o in 0..<s.o {
                for i in 0..<s.oh {
                    for j in 0..<s.ow {
                        var sum = 0.0
                        let gv = Double(pg[((b * s.o + o) * s.oh + i) * s.ow + j])
                        for c in 0..<s.c {
                            for ki in 0..<3 {
                                let ih = i * geo.stride.0 - geo.padding.0 + ki
                                if ih < 0 || ih >= s.h { continue }
                                for kj in 0..<3 {
                                    let iw = j * geo.stride.1 - geo.padding.1 + kj
                                    if iw < 0 || iw >= s.w { continue }
                                    let xi = ((b * s.c + c) * s.h + ih) * s.w + iw
                                    let wv = Double(pw[((o * s.c + c) * 3 + ki) * 3 + kj])
                                    sum += wv * Double(px[xi])
                                    expectedDX[xi] += wv * gv
                                }
                            }
                        }
                        worstY = max(worstY, abs(sum - Double(py[((b * s.o + o) * s.oh + i) * s.ow + j])))
                    }
                }
            }
        }
        for k in 0..<x.count { worstDX = max(worstDX, abs(expectedDX[k] - Double(pdx[k]))) }
        XCTAssertLessThan(worstY, 1e-4, "conv2d", file: file, line: line)
        XCTAssertLessThan(worstDX, 1e-4, "conv input gradient", file: file, line: line)
    }

    func testBandedStride1() {
        check(input: [2, 8, 80, 80], out: 6, geo: ConvGeometry(stride: 1, padding: 1))
    }

    func testBandedStride2() {
        check(input: [1, 8, 161, 161], out: 5, geo: ConvGeometry(stride: 2, padding: 1))
    }
}
