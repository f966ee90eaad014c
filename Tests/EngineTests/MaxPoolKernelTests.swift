import XCTest
@testable import Engine

/// The vectorized 2x2 max pooling (EngineKernels), in every instruction set this CPU has, against the
/// rule written out: of top-left, top-right, bottom-left, bottom-right, a later value wins when it is
/// larger or NaN. Inputs with many ties (values from a small set) and NaNs; odd sizes and rows wider
/// and narrower than a vector.
final class MaxPoolKernelTests: XCTestCase {
    func testAgainstTheRule() {
        var ran: [String] = []
        for isa in ["avx512", "avx2", "sse"] {
            let supported = DirectConv.withISA(isa) {
                for (k, (h, w)) in [(2, 2), (7, 9), (6, 70), (33, 64), (4, 130)].enumerated() {
                    var rng = RandomGenerator(seed: UInt64(k))
                    let x = NDArray.uniform([2, 3, h, w], low: 0, high: 1, rng: &rng)
                    let p = x.pointer
                    for i in 0..<x.count {
                        p[i] = (p[i] * 4).rounded(.down)  // ties everywhere
                        if i % 37 == 5 { p[i] = .nan }
                    }
                    let (y, idx) = Kernels.maxPool(x, kernel: 2, stride: 2, padding: 0, dilation: 1)
                    let (oh, ow) = (h / 2, w / 2)
                    XCTAssertEqual(y.shape, [2, 3, oh, ow])
                    var mismatches = 0
                    for plane in 0..<6 {
                        for i in 0..<oh {
                            for j in 0..<ow {
                                let a0 = 2 * i * w + 2 * j
                                var at = a0
                                for q in [a0 + 1, a0 + w, a0 + w + 1] {
                                    let v = p[plane * h * w + q], best = p[plane * h * w + at]
                                    if v > best || v.isNaN { at = q }
                                }
                                let o = (plane * oh + i) * ow + j
                                let want = p[plane * h * w + at], got = y.pointer[o]
                                if Int(idx.values[o]) != at || !(got == want || (got.isNaN && want.isNaN)) { mismatches += 1 }
                            }
                        }
                    }
                    XCTAssertEqual(mismatches, 0, "\(isa): \(h)x\(w)")
                }
            }
            if supported { ran.append(isa) }
        }
        XCTAssertTrue(ran.contains("sse"))
    }
}
