import XCTest
@testable import Engine

extension XCTestCase {
    /// Asserts that float32 results match a reference summed in Double: the largest difference, relative
    /// to the largest |reference| (at least 1), under `tolerance`.
    func assertClose(_ got: NDArray, _ want: [Double], _ what: String, tolerance: Double = 1e-5,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, what, file: file, line: line)
        let scale = max(1, want.map(abs).max() ?? 0)
        var worst = 0.0
        for k in 0..<min(got.count, want.count) { worst = max(worst, abs(Double(got.pointer[k]) - want[k])) }
        XCTAssertLessThan(worst / scale, tolerance, what, file: file, line: line)
    }
}
