import Foundation
import XCTest
@testable import QuacCore

/// Files written by numpy and safetensors load here, and files written here load there, bit for bit.
/// Drives scripts/python/tensor_roundtrip.py with the interpreter named by QUAC_TEST_PYTHON.
final class PythonRoundTripTests: XCTestCase {
    static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/python/tensor_roundtrip.py")

    func python() throws -> String {
        let env = ProcessInfo.processInfo.environment
        if let python = env["QUAC_TEST_PYTHON"], !python.isEmpty { return python }
        let setup = "set QUAC_TEST_PYTHON to a Python with numpy and safetensors, e.g. "
            + "python3 -m venv .venv-test && .venv-test/bin/pip install numpy safetensors && "
            + "QUAC_TEST_PYTHON=$PWD/.venv-test/bin/python swift test --filter PythonRoundTripTests"
        // CI must not pass by skipping the only check against the reference implementations.
        if env["CI"] == "true" { throw Failure(message: "CI must run the Python round trip: \(setup)") }
        throw XCTSkip("Python round trip skipped: \(setup)")
    }

    /// Runs the script; fails the test with its output if it exits non-zero.
    func runScript(_ python: String, _ mode: String, _ dir: URL) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [Self.script.path, mode, dir.path]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(message: "tensor_roundtrip.py \(mode) exited \(process.terminationStatus):\n\(text)")
        }
    }

    /// Thrown to fail the test with a message (XCTest reports a thrown error as a failure).
    struct Failure: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    struct Expected {
        let name: String
        let dtype: DType
        let shape: [Int]
        let bytes: [UInt8]
        let sha256: String
        let values: [Double]?

        init(_ json: JSONValue, name: String? = nil) throws {
            self.name = name ?? json["name"]?.stringValue ?? ""
            dtype = try XCTUnwrap(json["dtype"]?.stringValue.flatMap(DType.init(rawValue:)), "dtype of \(self.name)")
            shape = try XCTUnwrap(json["shape"]?.arrayValue).map { Int(try XCTUnwrap($0.intValue)) }
            let hex = Array(try XCTUnwrap(json["hex"]?.stringValue).utf8)
            bytes = stride(from: 0, to: hex.count, by: 2).map { UInt8(String(decoding: hex[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
            sha256 = try XCTUnwrap(json["sha256"]?.stringValue)
            values = json["values"]?.arrayValue?.compactMap(\.doubleValue)
        }

        func tensor() -> Tensor {
            let t = Tensor(zeros: shape, dtype: dtype)
            bytes.withUnsafeBytes { t.data.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            return t
        }

        func check(_ t: Tensor?, in file: String, line: UInt = #line) {
            let what = "\(file): \(name)"
            guard let t else { return XCTFail("\(what): missing", line: line) }
            XCTAssertEqual(t.dtype, dtype, what, line: line)
            XCTAssertEqual(t.shape, shape, what, line: line)
            let actual = tensorBytes(t)
            XCTAssertEqual(actual, bytes, what, line: line)
            XCTAssertEqual(SHA256.hex(Data(actual)), sha256, what, line: line)
            if let values { XCTAssertEqual(t.doubleArray(), values, what, line: line) }
        }
    }

    func testBothDirections() throws {
        let python = try python()
        let fromPython = try makeTemporaryDirectory()
        let fromSwift = try makeTemporaryDirectory()
        try runScript(python, "write", fromPython)

        let expected = try JSONParser.parse(Array(try Data(contentsOf: fromPython.appendingPathComponent("expected.json"))))
        let safetensorsCases = try XCTUnwrap(expected["safetensors"]?.arrayValue)
        let npyCases = try XCTUnwrap(expected["npy"]?.arrayValue)
        XCTAssertGreaterThanOrEqual(safetensorsCases.count, 2)
        XCTAssertGreaterThanOrEqual(npyCases.count, 20)

        // Python -> Swift, then Swift writes the same content for Python to check.
        for item in safetensorsCases {
            let name = try XCTUnwrap(item["file"]?.stringValue)
            let tensors = try XCTUnwrap(item["tensors"]?.arrayValue).map { try Expected($0) }
            var metadata: [String: String] = [:]
            for (key, value) in try XCTUnwrap(item["metadata"]?.objectValue) { metadata[key] = value.stringValue }

            let file = try Safetensors.read(fromPython.appendingPathComponent(name))
            XCTAssertEqual(file.names, try XCTUnwrap(item["order"]?.arrayValue).compactMap(\.stringValue), name)
            XCTAssertEqual(file.metadata, metadata, name)
            XCTAssertEqual(file.tensors.count, tensors.count, name)
            for t in tensors { t.check(file.tensors[t.name], in: name) }

            try Safetensors.write(tensors.map { ($0.name, $0.tensor()) }, metadata: metadata,
                                  to: fromSwift.appendingPathComponent(name))
        }
        for item in npyCases {
            let name = try XCTUnwrap(item["file"]?.stringValue)
            let t = try Expected(try XCTUnwrap(item["tensor"]), name: name)
            t.check(try NPY.read(fromPython.appendingPathComponent(name)), in: name)
            try NPY.write(t.tensor(), to: fromSwift.appendingPathComponent(name))
        }

        try runScript(python, "check", fromSwift)
    }
}
