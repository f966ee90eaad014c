import Foundation
import XCTest
@testable import QuacHost

/// The training capability (quac.trainer/1) through the host: a trainable plugin learns the toy task,
/// resumes exactly from a checkpoint, and a pipeline reuses its trained model.
final class TrainingTests: XCTestCase {
    func makeMLP(_ params: JSONValue) throws -> PluginInstance {
        let m = try PluginRegistry(searchPath: [TestSupport.builtinPlugins]).manifest(id: "org.quac.mlp-classifier")
        return try PluginInstance(manifest: m, params: params, run: RunContext())
    }

    func toy(_ dir: URL, count: Int, seed: UInt64) throws -> Dataset {
        var o = ToyDataset.Options()
        o.count = count; o.size = 8; o.patch = 3; o.seed = seed
        try ToyDataset.write(to: dir, options: o)
        let f = try Safetensors.read(dir.appendingPathComponent("data.safetensors"))
        return Dataset(x: f.tensors["images"]!, labels: f.tensors["labels"]!, xCF: nil, target: nil)
    }

    func weights(_ p: PluginInstance, _ dir: URL, _ name: String) throws -> [Float] {
        let url = dir.appendingPathComponent(name)
        try p.save(to: url)
        let f = try Safetensors.read(url)
        return f.names.flatMap { f.tensors[$0]!.floatArray() }
    }

    func testTrainingLearnsTheToyTaskAndResumesExactly() throws {
        let dir = try TestSupport.tempDir()
        let train = try toy(dir.appendingPathComponent("train"), count: 96, seed: 1)
        let test = try toy(dir.appendingPathComponent("test"), count: 40, seed: 2)
        let params: JSONValue = ["input_shape": [1, 8, 8], "hidden": 6, "epochs": 6, "learning_rate": 0.05, "seed": 3]

        // Before training the random network is near chance; after, it separates the classes.
        let p = try makeMLP(params)
        XCTAssertTrue(p.isTrainable)
        let out = try p.train(train, val: test, numClasses: 2, checkpoints: dir.appendingPathComponent("ck-a"), seed: 9)
        let losses = out.json?["train_loss"]?.arrayValue?.compactMap(\.doubleValue) ?? []
        XCTAssertEqual(losses.count, 6)
        XCTAssertLessThan(losses.last!, losses.first!, "the loss falls")
        let accuracy = try accuracyOf(p, test)
        XCTAssertGreaterThanOrEqual(accuracy, 0.95, "the patch detector is learnable")

        // Same seed, same weights, bit for bit.
        let q = try makeMLP(params)
        _ = try q.train(train, val: nil, numClasses: 2, checkpoints: dir.appendingPathComponent("ck-b"), seed: 9)
        XCTAssertEqual(try weights(p, dir, "p.safetensors"), try weights(q, dir, "q.safetensors"))

        // 3 epochs, stop, then a new instance asked for 6 resumes from the checkpoint: identical to 6 in one go.
        var short = params.objectValue!
        short["epochs"] = 3
        let first = try makeMLP(.object(short))
        _ = try first.train(train, val: nil, numClasses: 2, checkpoints: dir.appendingPathComponent("ck-c"), seed: 9)
        let resumed = try makeMLP(params)
        _ = try resumed.train(train, val: nil, numClasses: 2, checkpoints: dir.appendingPathComponent("ck-c"), seed: 9)
        XCTAssertEqual(try weights(resumed, dir, "r.safetensors"), try weights(p, dir, "p2.safetensors"))

        // load() restores a saved model.
        let fresh = try makeMLP(params)
        try fresh.load(from: dir.appendingPathComponent("p.safetensors"))
        XCTAssertTrue(try fresh.forward(test.x).bitwiseEqual(try p.forward(test.x)))
    }

    func accuracyOf(_ c: PluginInstance, _ d: Dataset) throws -> Double {
        let logits = try c.forward(d.x).floatArray()
        let y = d.labels.int64Array()
        let correct = (0..<d.count).filter { (logits[2 * $0 + 1] > logits[2 * $0] ? 1 : 0) == y[$0] }.count
        return Double(correct) / Double(d.count)
    }

    func testPipelineTrainsOnceThenReusesTheModel() throws {
        let dir = try TestSupport.tempDir()
        _ = try toy(dir.appendingPathComponent("train"), count: 64, seed: 1)
        _ = try toy(dir.appendingPathComponent("test"), count: 16, seed: 2)
        let manifest = try TestSupport.writeManifest(dir, [
            "name": "trained", "output": "out",
            "data": ["format": "safetensors", "path": "test/data.safetensors", "x": "images", "label": "labels", "x_cf": "counterfactuals"],
            "classifier": ["plugin": "org.quac.mlp-classifier", "name": "clf",
                           "params": ["input_shape": [1, 8, 8], "hidden": 4, "epochs": 8],
                           "train": ["data": ["format": "safetensors", "path": "train/data.safetensors", "x": "images", "label": "labels"]]],
            "attributors": [["plugin": "org.quac.saliency"]],
        ])
        let trained = try TestSupport.quacHost(["train", manifest.path, "-q"])
        XCTAssertEqual(trained.status, 0, trained.stderr)
        let model = dir.appendingPathComponent("out/models/clf.safetensors")
        let record = try JSONParser.parse(String(contentsOf: dir.appendingPathComponent("out/models/clf.json"), encoding: .utf8))
        XCTAssertEqual(record["samples"]?.intValue, 64)
        let modified = try FileManager.default.attributesOfItem(atPath: model.path)[.modificationDate] as! Date

        let run = try TestSupport.quacHost(["run", manifest.path, "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: model.path)[.modificationDate] as! Date, modified,
                       "the run reuses the trained model")
        let predictions = try Safetensors.read(dir.appendingPathComponent("out/predictions.safetensors"))
        let correct = zip(predictions.tensors["predicted"]!.int64Array(), predictions.tensors["label"]!.int64Array()).filter { $0 == $1 }.count
        XCTAssertGreaterThanOrEqual(correct, 15, "the trained classifier classifies the test split")

        // A non-trainable plugin with a train block is refused with the pointer.
        var bad = try JSONParser.parse(String(contentsOf: manifest, encoding: .utf8)).objectValue!
        bad["attributors"] = [["plugin": "org.quac.saliency", "train": ["data": ["format": "safetensors", "path": "train/data.safetensors", "x": "images", "label": "labels"]]]]
        let badManifest = try TestSupport.writeManifest(dir, .object(bad), name: "bad.json")
        let refused = try TestSupport.quacHost(["run", badManifest.path])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("/attributors/0/train") && refused.stderr.contains("not trainable"), refused.stderr)
    }
}
