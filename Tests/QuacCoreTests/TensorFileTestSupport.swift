import Foundation
import XCTest
@testable import QuacCore

/// Helpers shared by the tensor-file tests.
extension XCTestCase {
    /// A fresh directory, removed when the test ends.
    func makeTemporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("quac-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    /// Asserts `body` throws a one-line FileError about `url` whose message contains every fragment.
    func assertFileError<T>(_ body: @autoclosure () throws -> T, about url: URL, _ fragments: [String],
                            _ context: String = "", file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try body()
            XCTFail("\(context): expected an error mentioning \(fragments)", file: file, line: line)
        } catch let error as FileError {
            let message = error.description
            XCTAssertEqual(error.path, url.path, "\(context): \(message)", file: file, line: line)
            XCTAssertTrue(message.hasPrefix(url.path + ": "), "\(context): \(message)", file: file, line: line)
            XCTAssertFalse(message.contains("\n"), "\(context): message is not one line: \(message)", file: file, line: line)
            for fragment in fragments {
                XCTAssertTrue(message.contains(fragment), "\(context): \"\(message)\" lacks \"\(fragment)\"", file: file, line: line)
            }
        } catch {
            XCTFail("\(context): expected a FileError, got \(error)", file: file, line: line)
        }
    }

    /// Files in `dir` (hidden temporaries included), to prove a failed write left nothing behind.
    func directoryListing(_ dir: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
    }
}

/// A tensor of `dtype` whose bytes follow a fixed pattern, so any byte moved or lost shows.
func patternTensor(_ dtype: DType, shape: [Int], seed: Int = 0) -> Tensor {
    let t = Tensor(zeros: shape, dtype: dtype)
    let bytes = t.data.assumingMemoryBound(to: UInt8.self)
    for i in 0..<t.byteCount {
        bytes[i] = dtype == .bool ? UInt8((i + seed) % 3 == 0 ? 1 : 0) : UInt8(truncatingIfNeeded: i &* 37 &+ 11 &+ seed)
    }
    return t
}

func tensorBytes(_ t: Tensor) -> [UInt8] {
    Array(UnsafeRawBufferPointer(start: t.data, count: t.byteCount))
}

func littleEndianBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value.littleEndian) { Array($0) }
}
