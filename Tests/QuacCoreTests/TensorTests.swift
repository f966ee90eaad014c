import XCTest
@testable import QuacCore

final class TensorTests: XCTestCase {
    /// isFinite finds a NaN or an infinity wherever it is: in the vectorized part, in the tail past the
    /// last full group of eight, at either end; extreme finite values (largest, subnormal, -0) pass.
    func testIsFiniteFindsEveryNonFiniteValue() {
        let n = 37
        var values = (0..<n).map { Float($0) - 18.5 }
        values[3] = .greatestFiniteMagnitude
        values[4] = -.greatestFiniteMagnitude
        values[5] = .leastNonzeroMagnitude
        values[6] = -0.0
        XCTAssertTrue(Tensor(values, shape: [n]).isFinite)
        for bad in [Float.nan, .infinity, -.infinity, -Float.nan] {
            for at in [0, 7, 8, 31, 32, 36] {
                var v = values
                v[at] = bad
                XCTAssertFalse(Tensor(v, shape: [n]).isFinite, "\(bad) at \(at)")
            }
        }
        XCTAssertTrue(Tensor([Float](), shape: [0]).isFinite)
        // A view: only its own rows count.
        var rows = values + values
        rows[n + 2] = .nan
        let t = Tensor(rows, shape: [2, n])
        XCTAssertTrue(t.rows(0..<1).isFinite)
        XCTAssertFalse(t.rows(1..<2).isFinite)
    }
}
