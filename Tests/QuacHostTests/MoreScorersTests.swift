import Foundation
import XCTest
import QuacPluginAPI
@testable import QuacHost

/// The scorers that perturb or re-run: through a pipeline with a CNN, the model-randomisation sanity
/// check keeps methods that ignore the model at correlation 1 and drops gradient methods, max-sensitivity
/// tells a noise map from a gradient, and compare states each scorer's direction.
final class MoreScorersTests: XCTestCase {
    func testSanityCheckSensitivityAndDirectionsThroughThePipeline() throws {
        let dir = try TestSupport.tempDir()
        var rng = SeededRandom(seed: 3)
        let n = 6
        try Safetensors.write([("images", Tensor((0..<(n * 64)).map { _ in rng.uniform() * 2 - 1 }, shape: [n, 1, 8, 8])),
                               ("labels", Tensor((0..<n).map { Int64($0 % 2) }, shape: [n])),
                               ("counterfactuals", Tensor((0..<(n * 64)).map { _ in rng.uniform() * 2 - 1 }, shape: [n, 1, 8, 8]))],
                              to: dir.appendingPathComponent("data.safetensors"))
        let m = try TestSupport.writeManifest(dir, [
            "name": "scorers", "output": "out", "batch_size": 3,
            "data": ["format": "safetensors", "path": "data.safetensors", "x": "images", "label": "labels", "x_cf": "counterfactuals"],
            "classifier": ["plugin": "org.quac.cnn-classifier", "params": ["input_shape": [1, 8, 8], "channels": [4, 8], "fc": [16], "seed": 2]],
            "attributors": [["plugin": "org.quac.random", "name": "random"], ["plugin": "org.quac.residual", "name": "residual"],
                            ["plugin": "org.quac.saliency", "name": "saliency"]],
            "scorers": [["plugin": "org.quac.randomization-sanity", "name": "sanity", "params": ["levels": 3]],
                        ["plugin": "org.quac.sensitivity-max", "name": "sensitivity", "params": ["n_perturb_samples": 4, "perturb_radius": 0.002]],
                        ["plugin": "org.quac.deletion", "name": "deletion", "params": ["steps": 4]],
                        ["plugin": "org.quac.faithfulness-correlation", "name": "faithfulness", "params": ["n_subsets": 10, "subset_size": 4]],
                        ["plugin": "org.quac.infidelity", "name": "infidelity", "params": ["n_perturb_samples": 4]],
                        ["plugin": "org.quac.road-morf", "name": "road", "params": ["fractions": [0, 0.5, 0.9]]]],
        ])
        let r = try TestSupport.quacHost(["run", "-q", m.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = dir.appendingPathComponent("out")
        func scores(_ method: String, _ scorer: String) throws -> [Double] {
            let doc = try JSONParser.parse(String(contentsOf: out.appendingPathComponent("scores/\(method).json"), encoding: .utf8))
            return (doc["scorers"]?[scorer]?["score"]?.arrayValue ?? []).compactMap(\.doubleValue)
        }
        // Methods that ignore the model keep their maps exactly; the gradient changes with the model.
        for method in ["random", "residual"] { for v in try scores(method, "sanity") { XCTAssertEqual(v, 1, accuracy: 1e-9, method) } }
        let saliency = try scores("saliency", "sanity")
        XCTAssertEqual(saliency.count, n)
        XCTAssertLessThan(saliency.reduce(0, +) / Double(n), 0.8, "\(saliency)")
        // The sanity curve has a value per level.
        let curve = try Safetensors.read(out.appendingPathComponent("scores/saliency.sanity.safetensors")).tensors["curve"]
        XCTAssertEqual(curve?.shape, [n, 3])
        // A noise map drawn from the input's own values changes completely under a small perturbation;
        // a gradient of a smooth network barely does.
        let noisy = try scores("random", "sensitivity"), smooth = try scores("saliency", "sensitivity")
        XCTAssertGreaterThan(noisy.min()!, smooth.max()!, "random \(noisy), saliency \(smooth)")
        // Every other scorer scored every sample too (putting the trained weights back is tested below).
        let deletion = try scores("saliency", "deletion")
        XCTAssertEqual(deletion.count, n)
        // compare states each scorer's direction.
        let cmp = try TestSupport.quacHost(["compare", out.path, "--output", dir.appendingPathComponent("cmp").path])
        XCTAssertEqual(cmp.status, 0, cmp.stderr)
        let table = try JSONParser.parse(String(contentsOf: dir.appendingPathComponent("cmp/comparison.json"), encoding: .utf8))["table"]?.arrayValue ?? []
        var directions: [String: String] = [:]
        for row in table { directions[row["scorer"]?.stringValue ?? ""] = row["better"]?.stringValue }
        XCTAssertEqual(directions, ["sanity": "lower", "sensitivity": "lower", "deletion": "lower", "faithfulness": "higher", "infidelity": "lower", "road": "lower"])
        // The report plots the curves with the scorers' own axes, and says each scorer's direction.
        let report = try TestSupport.quacHost(["report", out.path])
        XCTAssertEqual(report.status, 0, report.stderr)
        let html = try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8)
        XCTAssertTrue(html.contains("layers re-drawn from the output") && html.contains("fraction of the most attributed pixels imputed"))
        XCTAssertTrue(html.contains("sanity <span class=\"sub\">(lower is better)") && html.contains("faithfulness <span class=\"sub\">(higher is better)"))
        // Lower is better: the rank-1 method of the sanity check has the lowest median.
        let sanityRows = table.filter { $0["scorer"] == "sanity" }
        let best = sanityRows.first { $0["rank"] == 1 }?["method"]?.stringValue
        XCTAssertEqual(best, "saliency")
    }
}

extension MoreScorersTests {
    /// The CNN's cascading randomisation re-draws its top layers (the logits change, more with more
    /// layers) and count 0 puts the trained weights back bit for bit.
    func testCNNRandomisationIsUndone() throws {
        let cnn = try TestSupport.builtin("org.quac.cnn-classifier", ["input_shape": [1, 8, 8], "channels": [4, 8], "fc": [16], "seed": 2])
        let table = try XCTUnwrap(cnn.table(QUAC_EXT_CLASSIFIER_RANDOMIZE, quac_classifier_randomize.self))
        let layers = try XCTUnwrap(try JSONParser.parse(String(cString: table.pointee.layers_json!(cnn.plugin)!)).arrayValue).compactMap(\.stringValue)
        XCTAssertEqual(layers, ["classifier.3", "classifier.0", "features.10", "features.7", "features.3", "features.0"], "linear and conv layers from the output backwards")
        var rng = SeededRandom(seed: 1)
        let x = Tensor((0..<(4 * 64)).map { _ in rng.uniform() * 2 - 1 }, shape: [4, 1, 8, 8])
        let trained = try cnn.forward(x)
        XCTAssertEqual(table.pointee.randomize!(cnn.plugin, 1, 9), 0)
        let top = try cnn.forward(x)
        XCTAssertFalse(top.bitwiseEqual(trained))
        XCTAssertEqual(table.pointee.randomize!(cnn.plugin, 5, 9), 0)
        XCTAssertFalse(try cnn.forward(x).bitwiseEqual(top))
        XCTAssertEqual(table.pointee.randomize!(cnn.plugin, 0, 0), 0)
        XCTAssertTrue(try cnn.forward(x).bitwiseEqual(trained))
        XCTAssertNotEqual(table.pointee.randomize!(cnn.plugin, 7, 9), 0, "more layers than it has are refused")
    }
}

extension MoreScorersTests {
    /// A sanity check needs a classifier that can re-draw its layers; a scorer that re-runs methods
    /// cannot score one built on other attributors' maps. Both are refused before anything runs.
    func testScorersThatCannotRunAreRefusedUpFront() throws {
        let dir = try TestSupport.tempDir()
        var rng = SeededRandom(seed: 4)
        try Safetensors.write([("images", Tensor((0..<(4 * 64)).map { _ in rng.uniform() * 2 - 1 }, shape: [4, 1, 8, 8])),
                               ("labels", Tensor([0, 1, 0, 1] as [Int64], shape: [4]))], to: dir.appendingPathComponent("data.safetensors"))
        let data: JSONValue = ["format": "safetensors", "path": "data.safetensors", "x": "images", "label": "labels"]
        let mlp = try TestSupport.writeManifest(dir, [
            "name": "x", "output": "out", "data": data,
            "classifier": ["plugin": "org.quac.mlp-classifier", "params": ["input_shape": [1, 8, 8]]],
            "attributors": [["plugin": "org.quac.saliency"]],
            "scorers": [["plugin": "org.quac.randomization-sanity"]],
        ], name: "mlp.json")
        let r = try TestSupport.quacHost(["run", "-q", mlp.path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("/scorers/0") && r.stderr.contains("quac.classifier.randomize/1"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/attributions").path), "nothing ran")
        let smat = try TestSupport.writeManifest(dir, [
            "name": "x", "output": "out2", "data": data,
            "classifier": ["plugin": "org.quac.mlp-classifier", "params": ["input_shape": [1, 8, 8]]],
            "attributors": [["plugin": "org.quac.saliency", "name": "saliency"],
                            ["plugin": "org.quac.smat-explainer", "name": "smat", "params": ["input_shape": [1, 8, 8], "heads": ["saliency"]]]],
            "scorers": [["plugin": "org.quac.sensitivity-max"]],
        ], name: "smat.json")
        let v = try TestSupport.quacHost(["validate", smat.path])
        XCTAssertNotEqual(v.status, 0)
        XCTAssertTrue(v.stderr.contains("/scorers/0/plugin") && v.stderr.contains("\"smat\""), v.stderr)
    }
}
