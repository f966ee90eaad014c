import Foundation
import XCTest
import QuacPluginAPI
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

/// The encoder from the explained classifier's trunk (QUAC_EXT_CLASSIFIER_WEIGHTS through the host).
final class EmpiricalTrunkTests: XCTestCase {
    static let cnnParams: JSONValue = ["input_shape": [1, 8, 8], "num_classes": 2, "channels": [4, 6], "fc": [8], "seed": 3]

    func cnnRun() throws -> (RunContext, PluginInstance, PluginRegistry) {
        let registry = PluginRegistry(searchPath: [TestSupport.builtinPlugins])
        let run = RunContext()
        let cnn = try PluginInstance(manifest: try registry.manifest(id: "org.quac.cnn-classifier"), params: Self.cnnParams, run: run)
        run.classifier = cnn
        return (run, cnn, registry)
    }

    func fields(_ n: Int, seed: UInt64) -> [(String, Tensor)] {
        var rng = SeededRandom(seed: seed)
        return [("x", Tensor((0..<(n * 64)).map { _ in rng.uniform() * 2 - 1 }, shape: [n, 1, 8, 8])),
                ("label", Tensor([Int64](repeating: 0, count: n), shape: [n])),
                ("targets", Tensor((0..<(n * 64)).map { _ in rng.uniform() }, shape: [n, 1, 8, 8]))]
    }

    /// The classifier's weights through the host: the description lists every tensor with its shape, and
    /// each one read is float32 of that shape; an unknown name is refused.
    func testTheClassifierHandsOutItsWeights() throws {
        let (_, cnn, _) = try cnnRun()
        let calls = try XCTUnwrap(cnn.rawWeights())
        let doc = try JSONParser.parse(try calls.describe())
        XCTAssertEqual(doc["format"]?.stringValue, "quac.engine-model/1")
        XCTAssertEqual(doc["network"]?["type"]?.stringValue, "graph")
        let tensors = doc["tensors"]?.arrayValue ?? []
        XCTAssertTrue(tensors.contains { $0["name"]?.stringValue == "features.0.weight" && $0["shape"] == [4, 1, 3, 3] })
        XCTAssertTrue(tensors.contains { $0["name"]?.stringValue == "features.1.running_var" })
        for t in tensors {
            let w = try calls.get(t["name"]!.stringValue!)
            XCTAssertEqual(w.shape.map { JSONValue.int(Int64($0)) }, t["shape"]?.arrayValue)
        }
        XCTAssertThrowsError(try calls.get("features.99.weight")) { XCTAssertTrue("\($0)".contains("no weight"), "\($0)") }
        // The plugin itself refuses an unknown name (the host's wrapper above refuses it first).
        let table = try XCTUnwrap(cnn.table(QUAC_EXT_CLASSIFIER_WEIGHTS, quac_classifier_weights.self))
        var out: UnsafeMutablePointer<quac_managed_tensor>?
        XCTAssertEqual("features.99.weight".withCString { table.pointee.get!(cnn.plugin, $0, &out) }, quac_status(QUAC_ERR_INVALID_ARGUMENT))
        XCTAssertNil(out)
    }

    /// With "encoder": "classifier" the explainer's network is the classifier's two levels (conv-BN-ReLU
    /// twice each) under a decoder, and starts from the classifier's weights: with a vanishing encoder
    /// learning rate they are still the classifier's after training, while the decoder moved. The model
    /// file loads back into a new instance without the run (same maps) and is refused with "fresh".
    func testEncoderStartsFromTheClassifiersTrunk() throws {
        let (run, cnn, registry) = try cnnRun()
        let manifest = try registry.manifest(id: "org.quac.empirical-explainer")
        var p = EmpiricalExplainerTests.params.objectValue!
        p["epochs"] = 2
        p["encoder_learning_rate"] = 1e-12
        let g = try PluginInstance(manifest: manifest, params: .object(p), run: run)
        let dir = try TestSupport.tempDir()
        let out = try g.train(fields: fields(16, seed: 1), val: fields(8, seed: 2), numClasses: 2, checkpoints: dir.appendingPathComponent("c"), seed: 1)
        XCTAssertEqual(out.json?["encoder"]?.stringValue, "classifier trunk: 2 levels, 4-6 feature maps")
        let file = dir.appendingPathComponent("g.safetensors")
        try g.save(to: file)
        let saved = try Safetensors.read(file)
        let weights = try XCTUnwrap(cnn.rawWeights())
        // Level 0 sits at the top of the explainer's network, level 1 inside the skip block after it.
        let pairs = [("0", "features.0"), ("1", "features.1"), ("3", "features.3"), ("4", "features.4"),
                     ("6.body.1", "features.7"), ("6.body.2", "features.8"), ("6.body.4", "features.10"), ("6.body.5", "features.11")]
        for (mine, theirs) in pairs {
            for suffix in ["weight", "bias"] + (theirs == "features.0" || theirs == "features.3" || theirs == "features.7" || theirs == "features.10" ? [] : ["running_mean", "running_var"]) {
                let a = try XCTUnwrap(saved.tensors["\(mine).\(suffix)"], "\(mine).\(suffix)").floatArray()
                let b = try weights.get("\(theirs).\(suffix)").floatArray()
                XCTAssertEqual(a.count, b.count)
                XCTAssertLessThanOrEqual(zip(a, b).map { abs($0 - $1) }.max() ?? 1, 1e-6, "\(mine).\(suffix) vs \(theirs).\(suffix)")
            }
        }
        // The decoder trained at the ordinary rate: the training error moved.
        let trainMSE = out.json?["train_mse"]?.arrayValue?.compactMap(\.doubleValue) ?? []
        XCTAssertEqual(trainMSE.count, 2)
        XCTAssertNotEqual(trainMSE[0], trainMSE[1])
        // The file alone rebuilds the network.
        let x = fields(4, seed: 7)[0].1
        let batch = BatchInputs(x: x, source: Tensor([0, 0, 0, 0] as [Int64], shape: [4]), seed: 1)
        var loadParams = EmpiricalExplainerTests.params.objectValue!
        loadParams["weights"] = .string(file.path)
        let loaded = try PluginInstance(manifest: manifest, params: .object(loadParams))
        XCTAssertTrue(try loaded.attribute(batch).tensors["attribution"]!.bitwiseEqual(try g.attribute(batch).tensors["attribution"]!))
        loadParams["encoder"] = "fresh"
        XCTAssertThrowsError(try PluginInstance(manifest: manifest, params: .object(loadParams))) { XCTAssertTrue("\($0)".contains("encoder"), "\($0)") }
        // A file made for other inputs is refused by name, not run into a shape failure.
        loadParams["encoder"] = "classifier"
        loadParams["input_shape"] = [3, 8, 8]
        XCTAssertThrowsError(try PluginInstance(manifest: manifest, params: .object(loadParams))) { XCTAssertTrue("\($0)".contains("made for input_shape [1, 8, 8]"), "\($0)") }
        // Training from the file continues from it (warm start) instead of copying the classifier again,
        // and keeps the copied layers at the encoder's rate: they stay as they were.
        loadParams["input_shape"] = [1, 8, 8]
        loadParams["epochs"] = 1
        loadParams["encoder_learning_rate"] = 1e-12
        let warm = try PluginInstance(manifest: manifest, params: .object(loadParams), run: run)
        let warmOut = try warm.train(fields: fields(16, seed: 3), val: nil, numClasses: 2, checkpoints: dir.appendingPathComponent("w"), seed: 1)
        XCTAssertEqual(warmOut.json?["encoder"]?.stringValue, "classifier trunk: 2 levels, 4-6 feature maps")
        let warmFile = dir.appendingPathComponent("warm.safetensors")
        try warm.save(to: warmFile)
        let warmSaved = try Safetensors.read(warmFile)
        XCTAssertLessThanOrEqual(zip(warmSaved.tensors["0.weight"]!.floatArray(), saved.tensors["0.weight"]!.floatArray()).map { abs($0 - $1) }.max() ?? 1, 1e-6)
        XCTAssertNotEqual(warmSaved.tensors["7.weight"]!.floatArray(), saved.tensors["7.weight"]!.floatArray(), "the last 1x1 convolution (decoder) trained")
    }

    /// "fresh", or a classifier that does not hand out its weights (the MLP), or one whose trunk is
    /// not a convolution chain: the fresh encoder of `channels`, and the record says so.
    func testFreshEncoderWhenAskedOrWhenTheClassifierCannotGiveOne() throws {
        let (run, _, registry) = try cnnRun()
        let manifest = try registry.manifest(id: "org.quac.empirical-explainer")
        var p = EmpiricalExplainerTests.params.objectValue!
        p["epochs"] = 1
        p["encoder"] = "fresh"
        let dir = try TestSupport.tempDir()
        let fresh = try PluginInstance(manifest: manifest, params: .object(p), run: run)
        XCTAssertEqual(try fresh.train(fields: fields(8, seed: 1), val: nil, numClasses: 2, checkpoints: dir.appendingPathComponent("a"), seed: 1).json?["encoder"], "fresh")
        let mlpRun = RunContext()
        mlpRun.classifier = try PluginInstance(manifest: try registry.manifest(id: "org.quac.mlp-classifier"), params: ["input_shape": [1, 8, 8], "hidden": 4], run: mlpRun)
        p["encoder"] = "classifier"
        let viaMLP = try PluginInstance(manifest: manifest, params: .object(p), run: mlpRun)
        XCTAssertEqual(try viaMLP.train(fields: fields(8, seed: 1), val: nil, numClasses: 2, checkpoints: dir.appendingPathComponent("b"), seed: 1).json?["encoder"], "fresh")
        // A trunk that is not a chain of same-size convolutions (a strided one) is not used.
        let stridedRun = RunContext()
        let strided: JSONValue = ["type": "sequential", "layers": [["type": "conv2d", "in": 1, "out": 4, "kernel": 3, "padding": 1, "stride": 2], ["type": "relu"],
                                                                   ["type": "flatten"], ["type": "linear", "in": 64, "out": 2]]]
        stridedRun.classifier = try PluginInstance(manifest: try registry.manifest(id: "org.quac.cnn-classifier"),
                                                   params: ["input_shape": [1, 8, 8], "num_classes": 2, "architecture": strided], run: stridedRun)
        let viaStrided = try PluginInstance(manifest: manifest, params: .object(p), run: stridedRun)
        XCTAssertEqual(try viaStrided.train(fields: fields(8, seed: 1), val: nil, numClasses: 2, checkpoints: dir.appendingPathComponent("c"), seed: 1).json?["encoder"], "fresh")
    }
}
