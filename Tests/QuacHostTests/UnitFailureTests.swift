import Foundation
import XCTest
@testable import QuacHost

/// A unit that fails does not stop the run: the other methods run, the run exits 1 listing the failed
/// unit and what could not run without it, and a rerun retries only those.
final class UnitFailureTests: XCTestCase {
    func testAFailingMethodLeavesTheOthersRunningAndARerunRetriesOnlyIt() throws {
        let dir = try TestSupport.tempDir()
        let fixtures = try TestSupport.fixtures()
        _ = try TestSupport.writeDataset(dir)
        let manifest = try TestSupport.writeManifest(dir, [
            "name": "failing", "output": "out", "seed": 1, "batch_size": 4,
            "plugin_paths": [.string(fixtures.path)],
            "data": ["format": "safetensors", "path": "data.safetensors", "x": "images", "label": "labels", "x_cf": "counterfactuals"],
            "classifier": ["plugin": "org.quac.mlp-classifier", "params": ["input_shape": [1, 8, 8], "hidden": 6, "seed": 2]],
            "attributors": [["plugin": "org.quac.test.failing", "name": "broken"], ["plugin": "org.quac.saliency", "name": "saliency"]],
            "scorers": [["plugin": "org.quac.insertion", "name": "ins", "params": ["steps": 4]]],
        ])
        let r = try TestSupport.quacHost(["run", "-q", manifest.path])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("/attributors/0") && r.stderr.contains("deliberate failure: the model file is corrupt"), r.stderr)
        XCTAssertTrue(r.stderr.contains("not run because they need a failed unit's results: score broken"), r.stderr)
        let out = dir.appendingPathComponent("out")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("attributions/saliency.safetensors").path), "the other method ran")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("scores/saliency.json").path), "and was scored")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("attributions/broken.safetensors").path))

        let again = try TestSupport.quacHost(["run", "--json", manifest.path])
        XCTAssertEqual(again.status, 1)
        // Nothing of saliency is computed again: its files are untouched.
        let before = try FileManager.default.attributesOfItem(atPath: out.appendingPathComponent("attributions/saliency.safetensors").path)[.modificationDate] as? Date
        let third = try TestSupport.quacHost(["run", "-q", manifest.path])
        XCTAssertEqual(third.status, 1)
        let after = try FileManager.default.attributesOfItem(atPath: out.appendingPathComponent("attributions/saliency.safetensors").path)[.modificationDate] as? Date
        XCTAssertEqual(before, after, "a rerun recomputed a unit that had not failed")
    }
}
