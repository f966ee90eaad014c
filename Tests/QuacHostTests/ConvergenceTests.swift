import Foundation
import XCTest
@testable import QuacHost

/// Convergence studies: an attributor rerun with other values of an integer parameter, measured against
/// the run's own maps, with the learned explainers of that method placed on the curve.
final class ConvergenceTests: XCTestCase {
    func manifest(_ dir: URL, _ fx: URL, convergence: JSONValue) throws -> URL {
        _ = try TestSupport.writeDataset(dir, n: 6)
        _ = try TestSupport.writeDataset(dir, n: 8, file: "train.safetensors")
        return try TestSupport.writeManifest(dir, [
            "name": "convergence", "output": "out", "batch_size": 4, "plugin_paths": [.string(fx.path)],
            "data": ["format": "safetensors", "path": "data.safetensors", "x": "images", "label": "labels", "x_cf": "counterfactuals"],
            "classifier": ["plugin": "org.quac.mlp-classifier", "params": ["input_shape": [1, 8, 8], "hidden": 6, "seed": 4]],
            "attributors": [["plugin": "org.quac.d-integrated-gradients", "name": "dig", "params": ["n_steps": 8]],
                            ["plugin": "org.quac.test.mean-map", "name": "learned",
                             "train": ["data": ["format": "safetensors", "path": "train.safetensors", "x": "images", "label": "labels",
                                                "x_cf": "counterfactuals"], "targets_from": "dig"]]],
            "convergence": convergence,
        ])
    }

    func testTheMethodRerunConvergesToItsOwnMapsAndTheExplainerIsPlacedOnTheCurve() throws {
        let fx = try TestSupport.fixtures()
        let dir = try TestSupport.tempDir()
        let m = try manifest(dir, fx, convergence: [["method": "dig", "parameter": "n_steps", "values": [1, 2, 8]]])
        let r = try TestSupport.quacHost(["run", "--json", m.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = dir.appendingPathComponent("out")
        let doc = try JSONParser.parse(String(contentsOf: out.appendingPathComponent("convergence/dig.json"), encoding: .utf8))
        let mse = doc["mse"]?.arrayValue?.compactMap(\.doubleValue) ?? []
        XCTAssertEqual(mse.count, 3)
        // With the run's own setting the method reproduces its maps exactly; with one step it does not.
        XCTAssertEqual(mse[2], 0)
        XCTAssertGreaterThan(mse[0], 0)
        // The explainer's error, computed here from the stored maps, and its place on the curve.
        let dig = try Safetensors.read(out.appendingPathComponent("attributions/dig.safetensors")).tensors["attribution"]!.floatArray()
        let learned = try Safetensors.read(out.appendingPathComponent("attributions/learned.safetensors")).tensors["attribution"]!.floatArray()
        let expected = zip(learned, dig).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +) / Double(dig.count)
        let e = doc["explainers"]?["learned"]
        XCTAssertEqual(e?["mse"]?.doubleValue ?? .nan, expected, accuracy: 1e-9 * max(1, expected))
        // "As good as n": the method with n is no better than the explainer, and with any larger value
        // it is better; when even one step beats the explainer, nothing.
        let values = [1, 2, 8]
        if let n = e?["as_good_as"]?.intValue.map(Int.init) {
            let i = try XCTUnwrap(values.firstIndex(of: n))
            XCTAssertGreaterThanOrEqual(mse[i], expected)
            for j in values.indices where values[j] > n { XCTAssertLessThan(mse[j], expected, "n_steps = \(values[j])") }
        } else {
            XCTAssertTrue(mse.allSatisfy { $0 < expected }, "no value is reported only when every one beats the explainer")
        }
        XCTAssertNotNil(e?["spearman_median"]?.doubleValue)
        // A rerun reuses the study.
        let again = try TestSupport.quacHost(["run", "--json", m.path])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(try JSONParser.parse(again.stdout)["computed"]?.arrayValue ?? [], [])
        // compare carries it.
        let c = try TestSupport.quacHost(["compare", out.path, "--json"])
        XCTAssertEqual(c.status, 0, c.stderr)
        XCTAssertEqual(try JSONParser.parse(c.stdout)["convergence"]?[0]?["mse"]?.arrayValue?.count, 3)
    }

    func testAStudyNamesAnAttributorAndAnIntegerParameter() throws {
        let fx = try TestSupport.fixtures()
        let dir = try TestSupport.tempDir()
        let unknown = try TestSupport.quacHost(["validate", try manifest(dir, fx, convergence: [["method": "ig", "parameter": "n_steps", "values": [1]]]).path])
        XCTAssertEqual(unknown.status, 1)
        XCTAssertTrue(unknown.stderr.contains("/convergence/0/method") && unknown.stderr.contains("dig"), unknown.stderr)
        let wrong = try TestSupport.quacHost(["validate", try manifest(dir, fx, convergence: [["method": "dig", "parameter": "method", "values": [1]]]).path])
        XCTAssertEqual(wrong.status, 1)
        XCTAssertTrue(wrong.stderr.contains("/convergence/0/parameter") && wrong.stderr.contains("n_steps"), wrong.stderr)
        // One study per method (it is written to convergence/<method>.json), and none of a trained method.
        let twice = try TestSupport.quacHost(["validate", try manifest(dir, fx, convergence: [["method": "dig", "parameter": "n_steps", "values": [1]],
                                                                                              ["method": "dig", "parameter": "n_steps", "values": [2]]]).path])
        XCTAssertEqual(twice.status, 1)
        XCTAssertTrue(twice.stderr.contains("/convergence/1/method") && twice.stderr.contains("/convergence/0"), twice.stderr)
        let trained = try TestSupport.quacHost(["validate", try manifest(dir, fx, convergence: [["method": "learned", "parameter": "n_steps", "values": [1]]]).path])
        XCTAssertEqual(trained.status, 1)
        XCTAssertTrue(trained.stderr.contains("/convergence/0/method") && trained.stderr.contains("trained"), trained.stderr)
    }
}
