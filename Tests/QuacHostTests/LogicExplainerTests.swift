import Foundation
import XCTest
@testable import QuacHost

/// The logic explainer (org.quac.logic-explainer) through the pipeline: it learns XOR's rules from the
/// concepts, the rule scorers re-evaluate them on the concepts, compare and the report show them and
/// their consistency across seeds, training resumes exactly, a concept model can be trained on its
/// splits' own concepts, and runs without concepts are refused.
final class LogicExplainerTests: XCTestCase {
    static let data = TestSupport.repoRoot.appendingPathComponent("examples/logic/data")

    func split(_ part: String) -> JSONValue {
        ["format": "safetensors", "path": .string(Self.data.appendingPathComponent("xor_\(part).safetensors").path),
         "x": "concepts", "label": "labels", "concepts": "concepts"]
    }

    func xorPipeline(_ dir: URL, seed: Int, name: String = "pipeline.json") throws -> URL {
        try TestSupport.writeManifest(dir, [
            "name": "xor", "output": .string("out-\(seed)"), "batch_size": 64, "data": split("test"),
            "classifier": ["plugin": "org.quac.mlp-classifier", "params": ["input_shape": [2], "hidden": 0, "seed": 1]],
            "attributors": [["plugin": "org.quac.logic-explainer", "name": "len", "params": ["epochs": 600, "learning_rate": 0.003],
                             "train": ["data": split("train"), "val": split("val"), "seed": .int(Int64(seed))]]],
            "scorers": [["plugin": "org.quac.rule-accuracy", "name": "accuracy"], ["plugin": "org.quac.rule-fidelity", "name": "fidelity"],
                        ["plugin": "org.quac.rule-complexity", "name": "complexity"]],
        ], name: name)
    }

    func testLearnsXorRulesThatTheScorersConfirmOnTheConcepts() throws {
        let dir = try TestSupport.tempDir()
        for seed in [0, 2] {
            let r = try TestSupport.quacHost(["run", "-q", try xorPipeline(dir, seed: seed, name: "p\(seed).json").path])
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        let out = dir.appendingPathComponent("out-0")
        let doc = try JSONParser.parse(String(contentsOf: out.appendingPathComponent("attributions/len.json"), encoding: .utf8))
        let rules = try XCTUnwrap(doc["rules"]?["classes"]?.arrayValue)
        XCTAssertEqual(rules.map { $0["complexity"]?.intValue }, [4, 4])
        // Class 1 is XOR: its rule holds exactly on the samples with different concepts.
        let inputs = try Safetensors.read(out.appendingPathComponent("inputs.safetensors"))
        let c = inputs.tensors["concepts"]!.floatArray(), labels = inputs.tensors["label"]!.int64Array()
        let truth = (doc["rule_truth"]?.arrayValue ?? []).map { ($0.arrayValue ?? []).map { $0.boolValue ?? false } }
        XCTAssertEqual(truth.count, 200)
        for s in 0..<200 { XCTAssertEqual(truth[s][1], (c[2 * s] > 0.5) != (c[2 * s + 1] > 0.5), "sample \(s)") }
        // The relevance of a sample: alpha~ signed by the literal, over the concepts.
        let relevance = try Safetensors.read(out.appendingPathComponent("attributions/len.safetensors")).tensors["attribution"]!
        XCTAssertEqual(relevance.shape, [200, 2])
        for s in 0..<200 { for j in 0..<2 { XCTAssertEqual(relevance.floatArray()[2 * s + j] > 0, c[2 * s + j] > 0.5) } }
        // The scorers' per-sample agreement, recomputed from the rules' minterms on the concepts.
        let scores = try JSONParser.parse(String(contentsOf: out.appendingPathComponent("scores/len.json"), encoding: .utf8))
        let accuracy = (scores["scorers"]?["accuracy"]?["score"]?.arrayValue ?? []).compactMap(\.doubleValue)
        func holds(_ rule: JSONValue, _ s: Int) -> Bool {
            (rule["minterms"]?.arrayValue ?? []).contains { m in
                (m.arrayValue ?? []).allSatisfy { l in (c[2 * s + (l[0]?.stringValue == "x1_high" ? 0 : 1)] > 0.5) == (l[1]?.boolValue ?? true) }
            }
        }
        for s in 0..<200 {
            let agree = (0..<2).filter { holds(rules[$0], s) == (labels[s] == Int64($0)) }.count
            XCTAssertEqual(accuracy[s], Double(agree) / 2, accuracy: 1e-6)
        }
        XCTAssertEqual(scores["scorers"]?["accuracy"]?["median"]?.doubleValue, 1)
        XCTAssertEqual(scores["scorers"]?["complexity"]?["better"], "lower")
        // compare over both seeds: each class's rule names both concepts in both runs.
        let cmp = try TestSupport.quacHost(["compare", out.path, dir.appendingPathComponent("out-2").path, "--output", dir.appendingPathComponent("cmp").path])
        XCTAssertEqual(cmp.status, 0, cmp.stderr)
        let comparison = try JSONParser.parse(String(contentsOf: dir.appendingPathComponent("cmp/comparison.json"), encoding: .utf8))
        let consistency = try XCTUnwrap(comparison["consistency"]?.arrayValue)
        XCTAssertEqual(consistency.count, 2)
        for entry in consistency {
            XCTAssertEqual(entry["runs"], 2)
            XCTAssertEqual(entry["concepts"], ["x1_high": 1.0, "x2_high": 1.0])
        }
        XCTAssertEqual(comparison["rules"]?.arrayValue?.count, 4)
        let report = try TestSupport.quacHost(["report", out.path])
        XCTAssertEqual(report.status, 0, report.stderr)
        let html = try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8)
        XCTAssertTrue(html.contains("<h2>Rules</h2>") && html.contains("x1_high &amp; ~x2_high"), "the report shows the rules")
    }

    /// Same seed, same model; 200 epochs then resumed to 400 equals 400 in one go, bit for bit.
    func testTrainingResumesExactly() throws {
        let dir = try TestSupport.tempDir()
        let manifest = try PluginRegistry(searchPath: [TestSupport.builtinPlugins]).manifest(id: "org.quac.logic-explainer")
        let f = try Safetensors.read(Self.data.appendingPathComponent("trigonometry_train.safetensors"))
        let fields: [(String, Tensor)] = [("x", f.tensors["concepts"]!), ("concepts", f.tensors["concepts"]!), ("label", f.tensors["labels"]!)]
        func trained(_ epochs: Int, _ folder: String) throws -> (Data, JSONObject) {
            let p = try PluginInstance(manifest: manifest, params: ["epochs": .int(Int64(epochs)), "batch_size": 128])
            let out = try p.train(fields: fields, val: nil, numClasses: 2, checkpoints: dir.appendingPathComponent(folder), seed: 3)
            let file = dir.appendingPathComponent(folder + ".safetensors")
            try p.save(to: file)
            return (try Data(contentsOf: file), out.json ?? JSONObject())
        }
        let once = try trained(400, "a")
        _ = try trained(200, "b")
        let resumed = try trained(400, "b")
        XCTAssertEqual(resumed.1["resumed_from_epoch"], 200)
        XCTAssertEqual(once.0, resumed.0)
        XCTAssertEqual(once.1["rules"], resumed.1["rules"])
    }

    /// With the cosine schedule the rate of an epoch depends on the run's length: a checkpoint of a
    /// shorter run is refused, not continued on another curve; and the schedule changes the training.
    func testCosineScheduleResumesOnlyARunOfTheSameLength() throws {
        let dir = try TestSupport.tempDir()
        let manifest = try PluginRegistry(searchPath: [TestSupport.builtinPlugins]).manifest(id: "org.quac.logic-explainer")
        let f = try Safetensors.read(Self.data.appendingPathComponent("xor_train.safetensors"))
        let fields: [(String, Tensor)] = [("x", f.tensors["concepts"]!), ("concepts", f.tensors["concepts"]!), ("label", f.tensors["labels"]!)]
        func trained(_ epochs: Int, _ folder: String, _ schedule: String) throws -> Data {
            let p = try PluginInstance(manifest: manifest, params: ["epochs": .int(Int64(epochs)), "learning_rate": 0.01,
                                                                    "lr_schedule": .string(schedule)])
            _ = try p.train(fields: fields, val: nil, numClasses: 2, checkpoints: dir.appendingPathComponent(folder), seed: 1)
            let file = dir.appendingPathComponent(folder + ".safetensors")
            try p.save(to: file)
            return try Data(contentsOf: file)
        }
        _ = try trained(100, "short", "cosine")
        XCTAssertThrowsError(try trained(200, "short", "cosine")) { error in
            XCTAssertTrue("\(error)".contains("other training settings"), "\(error)")
        }
        let cosine = try trained(200, "cosine", "cosine")
        XCTAssertEqual(cosine, try trained(200, "cosine-again", "cosine"), "deterministic")
        XCTAssertNotEqual(cosine, try trained(200, "constant", "constant"))
        XCTAssertThrowsError(try PluginInstance(manifest: manifest, params: ["lr_schedule": "linear"]))
    }

    /// Several networks ("networks": 3): training resumes exactly, the model file keeps network 0
    /// under torch_explain's names and the others under "network<e>.", reloads to the same
    /// explanations, and is refused by an explainer set for another number of networks.
    func testSeveralNetworksResumeSaveAndReload() throws {
        let dir = try TestSupport.tempDir()
        let manifest = try PluginRegistry(searchPath: [TestSupport.builtinPlugins]).manifest(id: "org.quac.logic-explainer")
        let f = try Safetensors.read(Self.data.appendingPathComponent("trigonometry_train.safetensors"))
        let fields: [(String, Tensor)] = [("x", f.tensors["concepts"]!), ("concepts", f.tensors["concepts"]!), ("label", f.tensors["labels"]!)]
        func trained(_ epochs: Int, _ folder: String, networks: Int = 3) throws -> (PluginInstance, URL, JSONObject) {
            // Minibatches: the networks share each epoch's order.
            let p = try PluginInstance(manifest: manifest, params: ["epochs": .int(Int64(epochs)), "networks": .int(Int64(networks)), "batch_size": 256])
            let out = try p.train(fields: fields, val: nil, numClasses: 2, checkpoints: dir.appendingPathComponent(folder), seed: 5)
            let file = dir.appendingPathComponent(folder + ".safetensors")
            try p.save(to: file)
            return (p, file, out.json ?? JSONObject())
        }
        let (plugin, once, _) = try trained(200, "a")
        _ = try trained(100, "b")
        let (_, resumed, record) = try trained(200, "b")
        XCTAssertEqual(record["resumed_from_epoch"], 100)
        XCTAssertEqual(try Data(contentsOf: once), try Data(contentsOf: resumed))
        let file = try Safetensors.read(once)
        XCTAssertTrue(file.names.contains("0.weight") && file.names.contains("network1.0.weight") && file.names.contains("network2.0.weight"))
        XCTAssertFalse(file.names.contains("network3.0.weight"))
        XCTAssertNotEqual(file.tensors["0.weight"]!.floatArray(), file.tensors["network1.0.weight"]!.floatArray(), "each network from its own seed")
        let test = try Safetensors.read(Self.data.appendingPathComponent("trigonometry_test.safetensors")).tensors["concepts"]!
        let loaded = try PluginInstance(manifest: manifest, params: ["networks": 3, "weights": .string(once.path)])
        let a = try plugin.attribute(BatchInputs(x: test, concepts: test)), b = try loaded.attribute(BatchInputs(x: test, concepts: test))
        XCTAssertEqual(a.tensors["attribution"]!.floatArray(), b.tensors["attribution"]!.floatArray())
        XCTAssertEqual(a.json, b.json)
        XCTAssertThrowsError(try PluginInstance(manifest: manifest, params: ["weights": .string(once.path)])) { error in
            XCTAssertTrue("\(error)".contains("holds 3 networks, and the explainer is set for 1"), "\(error)")
        }
        XCTAssertThrowsError(try PluginInstance(manifest: manifest, params: ["networks": 0]))
        // One network: a single network's file (torch_explain's names, no count in the architecture),
        // refused by an explainer set for three.
        let (_, single, _) = try trained(20, "single", networks: 1)
        let singleFile = try Safetensors.read(single)
        XCTAssertEqual(Set(singleFile.names), ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"])
        let arch = try JSONParser.parse(try XCTUnwrap(singleFile.metadata["architecture"]))
        XCTAssertNil(arch["networks"])
        XCTAssertEqual(arch["hidden"], [10, 4])
        XCTAssertThrowsError(try PluginInstance(manifest: manifest, params: ["networks": 3, "weights": .string(single.path)])) { error in
            XCTAssertTrue("\(error)".contains("holds 1 network, and the explainer is set for 3"), "\(error)")
        }
    }

    /// A CNN concept model trained on its splits' own concepts ("targets": "concepts"), then the
    /// logic explainer learning the classifier's predictions from the concepts it predicts.
    func testAConceptModelTrainsOnConceptsAndFeedsTheExplainer() throws {
        let dir = try TestSupport.tempDir()
        // 8x8 images: concept j = quadrant j is bright; label = quadrant 0 or 3 bright.
        func write(_ name: String, _ n: Int, _ seed: UInt64) throws {
            var rng = SeededRandom(seed: seed)
            var x = [Float](), c = [Float](), y = [Int64]()
            for _ in 0..<n {
                let on = (0..<4).map { _ in rng.uniform() > 0.5 }
                for r in 0..<8 { for col in 0..<8 { x.append((on[(r / 4) * 2 + col / 4] ? 0.8 : -0.8) + (rng.uniform() - 0.5) * 0.2) } }
                c += on.map { $0 ? 1 : 0 }
                y.append(on[0] || on[3] ? 1 : 0)
            }
            try Safetensors.write([("images", Tensor(x, shape: [n, 1, 8, 8])), ("labels", Tensor(y, shape: [n])),
                                   ("concepts", Tensor(c, shape: [n, 4]))], metadata: ["concept_names": #"["q0","q1","q2","q3"]"#],
                                  to: dir.appendingPathComponent(name))
        }
        try write("train.safetensors", 128, 1)
        try write("val.safetensors", 32, 2)
        try write("test.safetensors", 16, 3)
        func spec(_ file: String, concepts: Bool) -> JSONValue {
            let base: JSONValue = ["format": "safetensors", "path": .string(file), "x": "images", "label": "labels"]
            var o = base.objectValue!
            if concepts { o["concepts"] = "concepts" }
            return .object(o)
        }
        let cnn: JSONValue = ["input_shape": [1, 8, 8], "channels": [4], "fc": [8], "epochs": 15, "batch_size": 16, "learning_rate": 0.01, "augment_flips": false]
        var conceptParams = cnn.objectValue!
        conceptParams["num_classes"] = 4
        conceptParams["targets"] = "concepts"
        let m = try TestSupport.writeManifest(dir, [
            "name": "cm", "output": "out", "batch_size": 16, "data": spec("test.safetensors", concepts: false),
            "classifier": ["plugin": "org.quac.cnn-classifier", "params": cnn,
                           "train": ["data": spec("train.safetensors", concepts: false), "val": spec("val.safetensors", concepts: false)]],
            "concept_model": ["plugin": "org.quac.cnn-classifier", "name": "cm", "params": .object(conceptParams), "names": ["q0", "q1", "q2", "q3"],
                              "train": ["data": spec("train.safetensors", concepts: true), "val": spec("val.safetensors", concepts: true)]],
            "attributors": [["plugin": "org.quac.logic-explainer", "name": "len", "params": ["epochs": 300, "learning_rate": 0.01],
                             "train": ["data": spec("train.safetensors", concepts: false), "val": spec("val.safetensors", concepts: false), "teacher": true]]],
            "scorers": [["plugin": "org.quac.rule-accuracy", "name": "accuracy"], ["plugin": "org.quac.rule-complexity", "name": "complexity"]],
        ])
        let r = try TestSupport.quacHost(["run", "-q", m.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = dir.appendingPathComponent("out")
        let record = try JSONParser.parse(String(contentsOf: out.appendingPathComponent("models/cm.json"), encoding: .utf8))
        let valAccuracy = (record["history"]?["val_accuracy"]?.arrayValue ?? []).compactMap(\.doubleValue)
        XCTAssertGreaterThan(valAccuracy.last ?? 0, 0.95, "per-concept accuracy of the concept model: \(valAccuracy)")
        // The run's concepts come from the trained model and match the truth.
        let predicted = try Safetensors.read(out.appendingPathComponent("concepts.safetensors")).tensors["concepts"]!.floatArray()
        let truth = try Safetensors.read(dir.appendingPathComponent("test.safetensors")).tensors["concepts"]!.floatArray()
        XCTAssertGreaterThan(Double(zip(predicted, truth).filter { ($0 > 0.5) == ($1 > 0.5) }.count) / Double(truth.count), 0.9)
        // The explainer trained on the concept model's concepts of its splits, against the classifier's predictions.
        let len = try JSONParser.parse(String(contentsOf: out.appendingPathComponent("models/len.json"), encoding: .utf8))
        XCTAssertEqual(len["history"]?["target"], "teacher")
        XCTAssertEqual(len["history"]?["concepts"], ["q0", "q1", "q2", "q3"])
        XCTAssertNotNil(try? Safetensors.read(out.appendingPathComponent("models/len.data/data.safetensors")).tensors["concepts"])
        // Its maps are over the concepts ([16, 4]) while x is the images: the rule scorers still score
        // them (each gets the raw map too, shaped like the concepts), one score per sample.
        let scores = try JSONParser.parse(String(contentsOf: out.appendingPathComponent("scores/len.json"), encoding: .utf8))
        let accuracy = (scores["scorers"]?["accuracy"]?["score"]?.arrayValue ?? []).compactMap(\.doubleValue)
        XCTAssertEqual(accuracy.count, 16)
        XCTAssertTrue(accuracy.allSatisfy { [0, 0.5, 1].contains($0) }, "\(accuracy)")
        let rules = try JSONParser.parse(String(contentsOf: out.appendingPathComponent("attributions/len.json"), encoding: .utf8))["rules"]?["classes"]?.arrayValue ?? []
        let complexity = (scores["scorers"]?["complexity"]?["score"]?.arrayValue ?? []).compactMap(\.doubleValue)
        let labels = try Safetensors.read(dir.appendingPathComponent("test.safetensors")).tensors["labels"]!.int64Array()
        XCTAssertEqual(complexity, labels.map { Double(rules[Int($0)]["complexity"]?.intValue ?? -1) })
    }

    func testRunsWithoutConceptsAreRefused() throws {
        let dir = try TestSupport.tempDir()
        var noConcepts = split("test").objectValue!
        noConcepts["concepts"] = nil
        let m = try TestSupport.writeManifest(dir, [
            "name": "x", "output": "out", "data": .object(noConcepts),
            "classifier": ["plugin": "org.quac.mlp-classifier", "params": ["input_shape": [2], "hidden": 0]],
            "attributors": [["plugin": "org.quac.logic-explainer"]],
        ])
        let r = try TestSupport.quacHost(["validate", m.path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("/attributors/0/plugin") && r.stderr.contains("explains concepts"), r.stderr)
    }
}
