import Foundation
import XCTest
@testable import QuacHost

/// The Python reader (python/quac_results) on a real run: its arrays equal what the safetensors package
/// reads, and its comparison equals comparison.csv. Drives python/tests/check_reader.py with
/// QUAC_TEST_PYTHON (numpy, pandas, safetensors: scripts/setup.sh --test makes .venv-test).
final class PythonReaderTests: XCTestCase {
    func testTheReadersArraysAndComparisonEqualTheHostsFiles() throws {
        guard let python = ProcessInfo.processInfo.environment["QUAC_TEST_PYTHON"], !python.isEmpty else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("CI must run the reader's test: set QUAC_TEST_PYTHON"); return }
            throw XCTSkip("set QUAC_TEST_PYTHON to a Python with numpy, pandas and safetensors")
        }
        let dir = try TestSupport.tempDir()
        let data = try TestSupport.writeDataset(dir, n: 8)
        let manifest = try TestSupport.writeManifest(dir, [
            "name": "reader", "output": "out", "seed": 4, "batch_size": 4,
            "data": ["format": "safetensors", "path": .string(data.lastPathComponent), "x": "images", "label": "labels", "x_cf": "counterfactuals"],
            "classifier": ["plugin": "org.quac.mlp-classifier", "params": ["input_shape": [1, 8, 8], "hidden": 12, "seed": 5]],
            "attributors": [["plugin": "org.quac.saliency", "name": "saliency"], ["plugin": "org.quac.residual", "name": "residual"],
                            ["plugin": "org.quac.random", "name": "random"]],
            "scorers": [["plugin": "org.quac.insertion", "name": "insertion", "params": ["steps": 8]],
                        ["plugin": "org.quac.deletion", "name": "deletion", "params": ["steps": 8]],
                        ["plugin": "org.quac.quac-evaluator", "name": "quac"]],
        ])
        let r = try TestSupport.quacHost(["run", manifest.path, "-q"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = dir.appendingPathComponent("out")
        let c = try TestSupport.quacHost(["compare", out.path])
        XCTAssertEqual(c.status, 0, c.stderr)
        let check = try TestSupport.run(URL(fileURLWithPath: python),
                                        [TestSupport.repoRoot.appendingPathComponent("python/tests/check_reader.py").path, out.path])
        XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
        XCTAssertTrue(check.stdout.contains("reader ok: 3 methods, 9 score files, 9 comparison rows"), check.stdout + check.stderr)
    }
}
