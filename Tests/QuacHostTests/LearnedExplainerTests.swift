import Foundation
import XCTest
@testable import QuacHost

/// A learned explainer trained by the pipeline on data that other parts of the same run compute: another
/// attributor's maps over the training samples ("targets_from") and the classifier's outputs
/// ("teacher"). The fixture org.quac.test.mean-map learns the mean target map.
final class LearnedExplainerTests: XCTestCase {
    func manifest(_ dir: URL, fixtures: URL, saliencyParams: JSONValue = [:]) throws -> URL {
        _ = try TestSupport.writeDataset(dir, n: 6)
        _ = try TestSupport.writeDataset(dir, n: 10, file: "train.safetensors")
        return try TestSupport.writeManifest(dir, [
            "name": "learned", "output": "out", "seed": 3, "batch_size": 4, "plugin_paths": [.string(fixtures.path)],
            "data": ["format": "safetensors", "path": "data.safetensors", "x": "images", "label": "labels", "x_cf": "counterfactuals"],
            // A linear model: the saliency map of a sample is |W[label]|, the same for every sample of a class.
            "classifier": ["plugin": "org.quac.mlp-classifier", "params": ["input_shape": [1, 8, 8], "hidden": 0, "seed": 2]],
            "attributors": [
                ["plugin": "org.quac.saliency", "name": "sal", "params": saliencyParams],
                ["plugin": "org.quac.test.mean-map", "name": "learned",
                 "train": ["data": ["format": "safetensors", "path": "train.safetensors", "x": "images", "label": "labels"],
                           "targets_from": "sal", "teacher": true]],
            ],
        ])
    }

    func testTrainedOnAnotherAttributorsMapsOverTheTrainingSplit() throws {
        let fx = try TestSupport.fixtures()
        let dir = try TestSupport.tempDir()
        let m = try manifest(dir, fixtures: fx)
        let r = try TestSupport.quacHost(["run", "--json", m.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = dir.appendingPathComponent("out")

        // The training split's labels alternate 0, 1: five of each. The learned map is their mean
        // saliency map, (5 |W0| + 5 |W1|) / 10, and |W_y| is any run sample's saliency map of class y.
        let sal = try Safetensors.read(out.appendingPathComponent("attributions/sal.safetensors")).tensors["attribution"]!
        let labels = try Safetensors.read(out.appendingPathComponent("inputs.safetensors")).tensors["label"]!.int64Array()
        let w0 = Array(sal.floatArray()[(labels.firstIndex(of: 0)! * 64)..<(labels.firstIndex(of: 0)! * 64 + 64)])
        let w1 = Array(sal.floatArray()[(labels.firstIndex(of: 1)! * 64)..<(labels.firstIndex(of: 1)! * 64 + 64)])
        let expected = zip(w0, w1).map { ($0 * 5 + $1 * 5) / 10 }
        let learned = try Safetensors.read(out.appendingPathComponent("attributions/learned.safetensors")).tensors["attribution"]!
        XCTAssertEqual(learned.shape, [6, 1, 8, 8])
        for s in 0..<6 {
            for (a, b) in zip(learned.floatArray()[(s * 64)..<(s * 64 + 64)], expected) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        }

        // The trainer saw the fields the train block asked for, and the teacher is the classifier's argmax.
        let record = try JSONParser.parse(String(contentsOf: out.appendingPathComponent("models/learned.json"), encoding: .utf8))
        let fields = record["history"]?["fields"]?.arrayValue?.compactMap(\.stringValue) ?? []
        for f in ["x", "label", "target", "teacher_logits", "teacher", "targets"] { XCTAssertTrue(fields.contains(f), "\(fields)") }
        XCTAssertEqual(record["history"]?["teacher_consistent"], true)
        let runRecord = try JSONParser.parse(String(contentsOf: out.appendingPathComponent("run.json"), encoding: .utf8))
        let learnedRecord = runRecord["plugins"]?.arrayValue?.first { $0["name"] == "learned" }
        XCTAssertEqual(learnedRecord?["trained_model"]?.stringValue, record["fingerprint"]?.stringValue)

        // A rerun trains nothing and computes nothing.
        let again = try TestSupport.quacHost(["run", "--json", m.path])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(try JSONParser.parse(again.stdout)["computed"]?.arrayValue ?? [], [])

        // Changing the attributor it learns from retrains it: its targets changed.
        let changed = try manifest(dir, fixtures: fx, saliencyParams: ["absolute": false])
        let third = try TestSupport.quacHost(["run", "--json", changed.path])
        XCTAssertEqual(third.status, 0, third.stderr)
        let computed = try JSONParser.parse(third.stdout)["computed"]?.arrayValue?.compactMap(\.stringValue) ?? []
        XCTAssertTrue(computed.contains("attributions/learned") && computed.contains("attributions/sal"), "\(computed)")
        let retrained = try JSONParser.parse(String(contentsOf: out.appendingPathComponent("models/learned.json"), encoding: .utf8))
        XCTAssertNotEqual(retrained["fingerprint"], record["fingerprint"])
    }

    /// A trained classifier, a trained converter and a learned explainer that needs counterfactuals: the
    /// classifier trains first on its data alone, and the explainer's maps wait for the converter's
    /// counterfactuals (the run's data has none).
    func testTrainedClassifierConverterAndExplainerRunInDependencyOrder() throws {
        let fx = try TestSupport.fixtures()
        let dir = try TestSupport.tempDir()
        _ = try TestSupport.writeDataset(dir, n: 6, withCounterfactuals: false)
        _ = try TestSupport.writeDataset(dir, n: 8, file: "train.safetensors")
        let train: JSONValue = ["data": ["format": "safetensors", "path": "train.safetensors", "x": "images", "label": "labels"]]
        let m = try TestSupport.writeManifest(dir, [
            "name": "order", "output": "out", "batch_size": 4, "plugin_paths": [.string(fx.path)],
            "data": ["format": "safetensors", "path": "data.safetensors", "x": "images", "label": "labels"],
            "classifier": ["plugin": "org.quac.mlp-classifier", "params": ["input_shape": [1, 8, 8], "hidden": 4, "epochs": 1], "train": train],
            "converter": ["plugin": "org.quac.stargan-converter",
                          "params": ["image_size": 8, "channels": 4, "max_channels": 8, "style_dim": 8, "latent_dim": 4, "mapping_dim": 16,
                                     "candidates": 2, "max_tries": 1, "steps": 2, "batch_size": 2, "val_every": 0, "sample_every": 0],
                          "train": train],
            "attributors": [["plugin": "org.quac.d-integrated-gradients", "name": "dig", "params": ["n_steps": 4]],
                            ["plugin": "org.quac.test.mean-map", "name": "learned",
                             "train": ["data": ["format": "safetensors", "path": "train.safetensors", "x": "images", "label": "labels"],
                                       "targets_from": "dig"]]],
            "scorers": [["plugin": "org.quac.insertion", "params": ["steps": 4]]],
        ])
        let r = try TestSupport.quacHost(["run", "--json", m.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let files = TestSupport.files(under: dir.appendingPathComponent("out"))
        for f in ["models/mlp-classifier.safetensors", "models/stargan-converter.safetensors", "models/learned.safetensors",
                  "counterfactuals/counterfactuals.safetensors", "scores/learned.json"] {
            XCTAssertTrue(files.contains(f), "\(f) missing: \(files)")
        }
        // The explainer's targets needed counterfactuals of its own split: the trained converter made them.
        let record = try JSONParser.parse(String(contentsOf: dir.appendingPathComponent("out/models/learned.json"), encoding: .utf8))
        XCTAssertEqual(record["history"]?["fields"]?.arrayValue?.contains("targets"), true, record.serialized())
    }

    func testQuacHostTrainTrainsTheExplainerOnly() throws {
        let fx = try TestSupport.fixtures()
        let dir = try TestSupport.tempDir()
        let m = try manifest(dir, fixtures: fx)
        let r = try TestSupport.quacHost(["train", m.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let files = TestSupport.files(under: dir.appendingPathComponent("out"))
        XCTAssertTrue(files.contains("models/learned.safetensors"), "\(files)")
        XCTAssertFalse(files.contains { $0.hasPrefix("attributions/") }, "\(files)")
    }

    func testTrainedPluginsNeedDistinctNamesAndTargetsCannotGoInACircle() throws {
        let fx = try TestSupport.fixtures()
        let dir = try TestSupport.tempDir()
        _ = try TestSupport.writeDataset(dir, n: 6)
        _ = try TestSupport.writeDataset(dir, n: 10, file: "train.safetensors")
        func explainer(_ name: String, from: String) -> JSONValue {
            ["plugin": "org.quac.test.mean-map", "name": .string(name),
             "train": ["data": ["format": "safetensors", "path": "train.safetensors", "x": "images", "label": "labels"], "targets_from": .string(from)]]
        }
        let trainBlock: JSONValue = ["data": ["format": "safetensors", "path": "train.safetensors", "x": "images", "label": "labels"]]
        func manifest(_ attributors: [JSONValue], classifier: JSONValue = ["plugin": "org.quac.mlp-classifier"]) throws -> URL {
            try TestSupport.writeManifest(dir, ["name": "bad", "output": "out", "plugin_paths": [.string(fx.path)],
                                                "data": ["format": "safetensors", "path": "data.safetensors", "x": "images", "label": "labels"],
                                                "classifier": classifier, "attributors": .array(attributors)])
        }
        let circle = try TestSupport.quacHost(["validate", try manifest([explainer("a", from: "c"), explainer("b", from: "a"), explainer("c", from: "b")]).path])
        XCTAssertEqual(circle.status, 1, circle.stderr)
        XCTAssertTrue(circle.stderr.contains("/attributors/0/train/targets_from") && circle.stderr.contains("a -> c -> b -> a"), circle.stderr)
        // Models are saved by name: a trained classifier and a trained explainer may not share one.
        let sal: JSONValue = ["plugin": "org.quac.saliency", "name": "sal"]
        let same = try manifest([sal, explainer("learned", from: "sal")],
                                classifier: ["plugin": "org.quac.mlp-classifier", "name": "learned", "train": trainBlock])
        let twice = try TestSupport.quacHost(["validate", same.path])
        XCTAssertEqual(twice.status, 1, twice.stderr)
        XCTAssertTrue(twice.stderr.contains("/attributors/1/name") && twice.stderr.contains("/classifier"), twice.stderr)
    }

    /// A trainer asking for a field the data lacks: the error names the train block, the plugin's reason
    /// and the host's (which fields there are).
    func testATrainerAskingForAMissingFieldIsReportedAtItsTrainBlock() throws {
        let fx = try TestSupport.fixtures()
        let dir = try TestSupport.tempDir()
        _ = try TestSupport.writeDataset(dir, n: 6)
        _ = try TestSupport.writeDataset(dir, n: 10, file: "train.safetensors")
        let m = try TestSupport.writeManifest(dir, [
            "name": "missing", "output": "out", "plugin_paths": [.string(fx.path)],
            "data": ["format": "safetensors", "path": "data.safetensors", "x": "images", "label": "labels"],
            "classifier": ["plugin": "org.quac.mlp-classifier"],
            "attributors": [["plugin": "org.quac.test.mean-map", "name": "learned",
                             "train": ["data": ["format": "safetensors", "path": "train.safetensors", "x": "images", "label": "labels"]]]],
        ])
        let r = try TestSupport.quacHost(["run", "-q", m.path])
        XCTAssertEqual(r.status, 1, r.stderr)
        for part in [m.path, "/attributors/0/train", "no \"targets\" field", "unknown dataset field \"targets\"", "fields: x, label, target"] {
            XCTAssertTrue(r.stderr.contains(part), "\(part): \(r.stderr)")
        }
    }

    func testTargetsFromMustNameAnAttributorOfThePipeline() throws {
        let fx = try TestSupport.fixtures()
        let dir = try TestSupport.tempDir()
        let m = try manifest(dir, fixtures: fx)
        var v = try JSONParser.parse(String(contentsOf: m, encoding: .utf8))
        guard case .object(var o) = v, case .array(var attributors)? = o["attributors"], case .object(var learned) = attributors[1],
              case .object(var train)? = learned["train"] else { return XCTFail("manifest shape") }
        train["targets_from"] = "nope"
        learned["train"] = .object(train)
        attributors[1] = .object(learned)
        o["attributors"] = .array(attributors)
        v = .object(o)
        let bad = try TestSupport.writeManifest(dir, v, name: "bad.json")
        let r = try TestSupport.quacHost(["validate", bad.path])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("/attributors/1/train/targets_from") && r.stderr.contains("\"nope\"") && r.stderr.contains("sal"), r.stderr)
    }
}
