import Foundation
import XCTest
@testable import QuacHost

/// The empirical explainer (org.quac.empirical-explainer): it learns a known target method through the
/// pipeline, and its training is deterministic and resumes exactly.
final class EmpiricalExplainerTests: XCTestCase {
    static let params: JSONValue = ["input_shape": [1, 8, 8], "channels": [6, 8], "batch_size": 8, "learning_rate": 0.01]

    /// Images [n, 1, 8, 8] in [-1, 1], every label 0.
    func writeImages(_ url: URL, n: Int, seed: UInt64) throws {
        var rng = SeededRandom(seed: seed)
        try Safetensors.write([("images", Tensor((0..<(n * 64)).map { _ in rng.uniform() * 2 - 1 }, shape: [n, 1, 8, 8])),
                               ("labels", Tensor([Int64](repeating: 0, count: n), shape: [n]))], to: url)
    }

    /// The target is InputXGradient of a linear classifier whose class-0 weights are all 0.5: x / 2.
    func testLearnsInputXGradientOfALinearModel() throws {
        let dir = try TestSupport.tempDir()
        try writeImages(dir.appendingPathComponent("data.safetensors"), n: 6, seed: 1)
        try writeImages(dir.appendingPathComponent("train.safetensors"), n: 64, seed: 2)
        try writeImages(dir.appendingPathComponent("val.safetensors"), n: 16, seed: 3)
        try Safetensors.write([("fc2.weight", Tensor([Float](repeating: 0.5, count: 64) + [Float](repeating: -0.5, count: 64), shape: [2, 64])),
                               ("fc2.bias", Tensor([0, 0] as [Float], shape: [2]))], to: dir.appendingPathComponent("linear.safetensors"))
        func split(_ file: String) -> JSONValue { ["format": "safetensors", "path": .string(file), "x": "images", "label": "labels"] }
        var p = Self.params.objectValue!
        p["epochs"] = 40
        let m = try TestSupport.writeManifest(dir, [
            "name": "empirical", "output": "out", "batch_size": 8, "data": split("data.safetensors"),
            "classifier": ["plugin": "org.quac.mlp-classifier", "params": ["input_shape": [1, 8, 8], "hidden": 0, "weights": "linear.safetensors"]],
            "attributors": [["plugin": "org.quac.input-x-gradient", "name": "ixg"],
                            ["plugin": "org.quac.empirical-explainer", "name": "g", "params": .object(p),
                             "train": ["data": split("train.safetensors"), "val": split("val.safetensors"), "targets_from": "ixg"]]],
        ])
        let r = try TestSupport.quacHost(["run", "-q", m.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = dir.appendingPathComponent("out")
        let target = try Safetensors.read(out.appendingPathComponent("attributions/ixg.safetensors")).tensors["attribution"]!.floatArray()
        let learned = try Safetensors.read(out.appendingPathComponent("attributions/g.safetensors")).tensors["attribution"]!.floatArray()
        // The target really is x / 2 (the test's premise), and g reproduces it on unseen samples.
        let x = try Safetensors.read(out.appendingPathComponent("inputs.safetensors")).tensors["x"]!.floatArray()
        for (t, v) in zip(target, x) { XCTAssertEqual(t, v / 2, accuracy: 1e-6) }
        let mse = zip(learned, target).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +) / Double(target.count)
        let variance = target.map { Double($0) * Double($0) }.reduce(0, +) / Double(target.count)
        XCTAssertLessThan(mse, 0.05 * variance, "test MSE \(mse), target mean square \(variance)")
        let record = try JSONParser.parse(String(contentsOf: out.appendingPathComponent("models/g.json"), encoding: .utf8))
        let valMSE = record["history"]?["val_mse"]?.arrayValue?.compactMap(\.doubleValue) ?? []
        XCTAssertLessThan(valMSE.last ?? 1, valMSE.first ?? 0, "\(valMSE)")
    }

    /// Same seed, same weights; 2 epochs, then resumed to 4, equals 4 epochs in one go, bit for bit.
    func testTrainingIsDeterministicAndResumesExactly() throws {
        let dir = try TestSupport.tempDir()
        let registry = PluginRegistry(searchPath: [TestSupport.builtinPlugins])
        let manifest = try registry.manifest(id: "org.quac.empirical-explainer")
        var rng = SeededRandom(seed: 5)
        let x = Tensor((0..<(24 * 64)).map { _ in rng.uniform() * 2 - 1 }, shape: [24, 1, 8, 8])
        let t = Tensor((0..<(24 * 64)).map { _ in rng.uniform() }, shape: [24, 1, 8, 8])
        let fields: [(String, Tensor)] = [("x", x), ("label", Tensor([Int64](repeating: 0, count: 24), shape: [24])), ("targets", t)]
        let val: [(String, Tensor)] = fields.map { ($0.0, $0.1.rows(0..<8).copy()) }
        func trained(epochs: Int, checkpoints: URL, name: String) throws -> (Data, JSONObject) {
            var p = Self.params.objectValue!
            p["epochs"] = .int(Int64(epochs))
            let instance = try PluginInstance(manifest: manifest, params: .object(p))
            let out = try instance.train(fields: fields, val: val, numClasses: 2, checkpoints: checkpoints, seed: 11)
            let file = dir.appendingPathComponent(name)
            try instance.save(to: file)
            return (try Data(contentsOf: file), out.json ?? JSONObject())
        }
        let once = try trained(epochs: 4, checkpoints: dir.appendingPathComponent("a"), name: "a.safetensors").0
        XCTAssertEqual(once, try trained(epochs: 4, checkpoints: dir.appendingPathComponent("b"), name: "b.safetensors").0)
        _ = try trained(epochs: 2, checkpoints: dir.appendingPathComponent("c"), name: "c2.safetensors")
        let resumed = try trained(epochs: 4, checkpoints: dir.appendingPathComponent("c"), name: "c4.safetensors")
        XCTAssertEqual(resumed.1["resumed_from_epoch"], 2)
        XCTAssertEqual(once, resumed.0)
        XCTAssertNotEqual(once, try trained(epochs: 3, checkpoints: dir.appendingPathComponent("d"), name: "d.safetensors").0)
    }
}

extension EmpiricalExplainerTests {
    /// Early stopping survives a resume: a training that stopped early, run again on its checkpoints with
    /// more epochs allowed, trains no further (the patience already ran out) and keeps the best epoch's
    /// weights; a fresh training with that many epochs stops at the same epoch with the same weights.
    func testEarlyStoppingSurvivesAResume() throws {
        let dir = try TestSupport.tempDir()
        let manifest = try PluginRegistry(searchPath: [TestSupport.builtinPlugins]).manifest(id: "org.quac.empirical-explainer")
        var rng = SeededRandom(seed: 9)
        // Targets unrelated to the inputs: the validation error stops improving within a few epochs.
        func fields(_ n: Int) -> [(String, Tensor)] {
            [("x", Tensor((0..<(n * 64)).map { _ in rng.uniform() * 2 - 1 }, shape: [n, 1, 8, 8])),
             ("label", Tensor([Int64](repeating: 0, count: n), shape: [n])),
             ("targets", Tensor((0..<(n * 64)).map { _ in rng.uniform() }, shape: [n, 1, 8, 8]))]
        }
        let train = fields(16), val = fields(8)
        func trained(epochs: Int, checkpoints: String, name: String) throws -> (Data, JSONObject) {
            var p = Self.params.objectValue!
            p["epochs"] = .int(Int64(epochs))
            p["patience"] = 1
            p["learning_rate"] = 0.2
            let instance = try PluginInstance(manifest: manifest, params: .object(p))
            let out = try instance.train(fields: train, val: val, numClasses: 2, checkpoints: dir.appendingPathComponent(checkpoints), seed: 3)
            let file = dir.appendingPathComponent(name)
            try instance.save(to: file)
            return (try Data(contentsOf: file), out.json ?? JSONObject())
        }
        let first = try trained(epochs: 30, checkpoints: "a", name: "a.safetensors")
        let run = Int(first.1["epochs_run"]?.intValue ?? 0)
        XCTAssertEqual(first.1["stopped_early"], true, "the premise: training stopped before 30 epochs (\(run) run)")
        let resumed = try trained(epochs: 60, checkpoints: "a", name: "b.safetensors")
        XCTAssertEqual(resumed.1["resumed_from_epoch"]?.intValue, Int64(run))
        XCTAssertEqual(resumed.1["epochs_run"]?.intValue, Int64(run), "no epoch after the patience ran out")
        XCTAssertEqual(resumed.0, first.0)
        let fresh = try trained(epochs: 60, checkpoints: "c", name: "c.safetensors")
        XCTAssertEqual(fresh.1["epochs_run"]?.intValue, Int64(run))
        XCTAssertEqual(fresh.0, first.0)
    }
}
