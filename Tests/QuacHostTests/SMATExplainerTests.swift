import Foundation
import XCTest
@testable import QuacHost

/// The SMAT-style explainer (org.quac.smat-explainer) through the pipeline: other attributors' maps
/// reach it in every batch and as training fields, its explanation is the softmax of the learned mix
/// of those maps, the simulability study lands in compare and the report, training resumes exactly,
/// and bad manifests are refused by name.
final class SMATExplainerTests: XCTestCase {
    /// Images [n, 1, 8, 8] in [-1, 1] with alternating labels.
    func writeImages(_ url: URL, n: Int, seed: UInt64) throws {
        var rng = SeededRandom(seed: seed)
        try Safetensors.write([("images", Tensor((0..<(n * 64)).map { _ in rng.uniform() * 2 - 1 }, shape: [n, 1, 8, 8])),
                               ("labels", Tensor((0..<n).map { Int64($0 % 2) }, shape: [n])),
                               ("counterfactuals", Tensor((0..<(n * 64)).map { _ in rng.uniform() * 2 - 1 }, shape: [n, 1, 8, 8]))], to: url)
    }

    func split(_ file: String) -> JSONValue { ["format": "safetensors", "path": .string(file), "x": "images", "label": "labels"] }

    /// A run: a random linear classifier, saliency and random as heads, and the explainer.
    func pipeline(_ dir: URL, smat: JSONValue = [:], extraAttributors: [JSONValue] = []) throws -> URL {
        try writeImages(dir.appendingPathComponent("data.safetensors"), n: 6, seed: 1)
        try writeImages(dir.appendingPathComponent("train.safetensors"), n: 24, seed: 2)
        try writeImages(dir.appendingPathComponent("val.safetensors"), n: 16, seed: 3)
        let defaults: JSONValue = ["input_shape": [1, 8, 8], "heads": ["saliency", "random"], "student_channels": [2, 3], "epochs": 2,
                                   "batch_size": 8, "budgets": [4, 8], "simulation_seeds": 2, "simulation_epochs": 2]
        var params = defaults.objectValue!
        for (k, v) in smat.objectValue ?? JSONObject() { params[k] = v }
        return try TestSupport.writeManifest(dir, [
            "name": "smat", "output": "out", "batch_size": 4,
            "data": ["format": "safetensors", "path": "data.safetensors", "x": "images", "label": "labels", "x_cf": "counterfactuals"],
            "classifier": ["plugin": "org.quac.mlp-classifier", "params": ["input_shape": [1, 8, 8], "hidden": 0, "seed": 3]],
            "attributors": .array([["plugin": "org.quac.saliency", "name": "saliency"], ["plugin": "org.quac.random", "name": "random"],
                                   ["plugin": "org.quac.smat-explainer", "name": "smat", "params": .object(params),
                                    "train": ["data": split("train.safetensors"), "val": split("val.safetensors"), "teacher": true]]] + extraAttributors),
            "scorers": [["plugin": "org.quac.quac-evaluator", "name": "quac"]],
        ])
    }

    func testExplanationIsTheSoftmaxOfTheLearnedMixOfTheOtherMethodsMaps() throws {
        let dir = try TestSupport.tempDir()
        let m = try pipeline(dir)
        let r = try TestSupport.quacHost(["run", "-q", m.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = dir.appendingPathComponent("out")
        func raw(_ name: String) throws -> [Float] { try Safetensors.read(out.appendingPathComponent("attributions/\(name).safetensors")).tensors["attribution"]!.floatArray() }
        let explanation = try raw("smat"), saliency = try raw("saliency"), random = try raw("random")
        let doc = try JSONParser.parse(String(contentsOf: out.appendingPathComponent("attributions/smat.json"), encoding: .utf8))
        let weights = (doc["heads"]?["weights"]?.arrayValue ?? []).map { ($0["name"]?.stringValue ?? "", $0["weight"]?.doubleValue ?? .nan) }
        XCTAssertEqual(weights.map(\.0), ["saliency", "random"])
        XCTAssertEqual(weights.map(\.1).reduce(0, +), 1, accuracy: 1e-5)
        // Recomputed here: per sample, each head's |map| standardized over the 64 positions, mixed by the
        // reported weights, softmax over positions.
        func standardized(_ v: ArraySlice<Float>) -> [Double] {
            let a = v.map { Double(abs($0)) }, mean = a.reduce(0, +) / 64
            let std = (a.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 64 + 1e-12).squareRoot()
            return a.map { ($0 - mean) / (std + 1e-5) }
        }
        for s in 0..<6 {
            let range = (s * 64)..<(s * 64 + 64)
            let z = zip(standardized(saliency[range]), standardized(random[range])).map { weights[0].1 * $0 + weights[1].1 * $1 }
            let top = z.max()!, norm = z.map { exp($0 - top) }.reduce(0, +)
            for (i, v) in z.enumerated() { XCTAssertEqual(Double(explanation[s * 64 + i]), exp(v - top) / norm, accuracy: 1e-5) }
        }
        // The training record holds the study: every condition at every budget, over 2 seeds.
        let record = try JSONParser.parse(String(contentsOf: out.appendingPathComponent("models/smat.json"), encoding: .utf8))
        let study = try XCTUnwrap(record["history"]?["simulability"])
        XCTAssertEqual(study["held_out"], 8)
        XCTAssertEqual((study["conditions"]?.arrayValue ?? []).map { $0["name"]?.stringValue ?? "" }, ["none", "uniform", "saliency", "random", "learned"])
        for c in study["conditions"]?.arrayValue ?? [] {
            XCTAssertEqual((c["results"]?.arrayValue ?? []).map { $0["budget"]?.intValue ?? 0 }, [4, 8])
            for b in c["results"]?.arrayValue ?? [] {
                let values = (b["values"]?.arrayValue ?? []).compactMap(\.doubleValue)
                XCTAssertEqual(values.count, 2)
                XCTAssertTrue(values.allSatisfy { $0 >= 0 && $0 <= 1 && ($0 * 8).rounded() == $0 * 8 }, "accuracies over 8 held-out samples: \(values)")
                XCTAssertEqual(b["median"]?.doubleValue ?? .nan, values.reduce(0, +) / 2, accuracy: 1e-12)
            }
        }
        // The training fields include the heads' maps of the training samples.
        let fields = try Safetensors.read(out.appendingPathComponent("models/smat.data/data.safetensors"))
        XCTAssertEqual(fields.tensors["maps.saliency"]?.shape, [24, 1, 8, 8])
        XCTAssertEqual(fields.tensors["maps.random"]?.shape, [24, 1, 8, 8])

        // compare: the learned explainer and each head get their simulability at the smallest budget.
        let cmp = try TestSupport.quacHost(["compare", out.path, "--output", dir.appendingPathComponent("cmp").path])
        XCTAssertEqual(cmp.status, 0, cmp.stderr)
        let table = try JSONParser.parse(String(contentsOf: dir.appendingPathComponent("cmp/comparison.json"), encoding: .utf8))
        let conditions = study["conditions"]!.arrayValue!
        func median(_ name: String) -> Double? { conditions.first { $0["name"]?.stringValue == name }?["results"]?[0]?["median"]?.doubleValue }
        for (method, condition) in [("smat", "learned"), ("saliency", "saliency"), ("random", "random")] {
            let row = try XCTUnwrap(table["table"]?.arrayValue?.first { $0["method"]?.stringValue == method })
            XCTAssertEqual(row["simulability"]?.doubleValue, median(condition), method)
            XCTAssertEqual(row["simulability_budget"], 4)
        }
        XCTAssertEqual(table["simulability"]?.arrayValue?.count, 1)
        let report = try TestSupport.quacHost(["report", out.path])
        XCTAssertEqual(report.status, 0, report.stderr)
        let html = try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8)
        XCTAssertTrue(html.contains("<h2>Simulability</h2>") && html.contains("learned (learned)") && html.contains("<th>simulability</th>"))
    }

    /// Same seed, same model; 2 epochs then resumed to 4 equals 4 in one go, bit for bit.
    func testTrainingIsDeterministicAndResumesExactly() throws {
        let dir = try TestSupport.tempDir()
        let manifest = try PluginRegistry(searchPath: [TestSupport.builtinPlugins]).manifest(id: "org.quac.smat-explainer")
        var rng = SeededRandom(seed: 5)
        func fields(_ n: Int) -> [(String, Tensor)] {
            [("x", Tensor((0..<(n * 64)).map { _ in rng.uniform() * 2 - 1 }, shape: [n, 1, 8, 8])),
             ("label", Tensor([Int64](repeating: 0, count: n), shape: [n])),
             ("teacher", Tensor((0..<n).map { Int64($0 % 3) }, shape: [n])),
             ("maps.a", Tensor((0..<(n * 64)).map { _ in rng.uniform() }, shape: [n, 1, 8, 8])),
             ("maps.b", Tensor((0..<(n * 64)).map { _ in rng.uniform() }, shape: [n, 1, 8, 8]))]
        }
        let train = fields(24), val = fields(10)
        func trained(epochs: Int, checkpoints: URL, name: String) throws -> (Data, JSONObject) {
            let instance = try PluginInstance(manifest: manifest, params: [
                "input_shape": [1, 8, 8], "heads": ["a", "b"], "student_channels": [2, 3], "epochs": .int(Int64(epochs)), "batch_size": 8,
                "student_reset_steps": 3, "budgets": [4], "simulation_seeds": 1, "simulation_epochs": 2])
            let out = try instance.train(fields: train, val: val, numClasses: 3, checkpoints: checkpoints, seed: 11)
            let file = dir.appendingPathComponent(name)
            try instance.save(to: file)
            return (try Data(contentsOf: file), out.json ?? JSONObject())
        }
        let once = try trained(epochs: 4, checkpoints: dir.appendingPathComponent("a"), name: "a.safetensors")
        XCTAssertEqual(once.0, try trained(epochs: 4, checkpoints: dir.appendingPathComponent("b"), name: "b.safetensors").0)
        _ = try trained(epochs: 2, checkpoints: dir.appendingPathComponent("c"), name: "c2.safetensors")
        let resumed = try trained(epochs: 4, checkpoints: dir.appendingPathComponent("c"), name: "c4.safetensors")
        XCTAssertEqual(resumed.1["resumed_from_epoch"], 2)
        XCTAssertEqual(once.0, resumed.0)
        XCTAssertEqual(once.1["outer_loss"], resumed.1["outer_loss"])
        XCTAssertEqual(once.1["simulability"], resumed.1["simulability"])
        // Meta-training moved phi away from uniform.
        let weights = (once.1["heads"]?.arrayValue ?? []).compactMap { $0["weight"]?.doubleValue }
        XCTAssertEqual(weights.count, 2)
        XCTAssertNotEqual(weights[0], 0.5)
        // A saved model loads back as the same explainer; over other heads it is refused.
        let loaded = try PluginInstance(manifest: manifest, params: ["input_shape": [1, 8, 8], "heads": ["a", "b"],
                                                                     "weights": .string(dir.appendingPathComponent("a.safetensors").path)])
        let x = train[0].1.rows(0..<2), maps = [("a", train[3].1.rows(0..<2)), ("b", train[4].1.rows(0..<2))]
        var batch = BatchInputs(x: x, source: Tensor([0, 1] as [Int64], shape: [2]))
        batch.maps = maps
        let json = try loaded.attribute(batch).json
        XCTAssertEqual(json?["heads"]?["weights"]?.arrayValue?.compactMap { $0["weight"]?.doubleValue }, weights)
        XCTAssertThrowsError(try PluginInstance(manifest: manifest, params: ["input_shape": [1, 8, 8], "heads": ["b", "a"],
                                                                            "weights": .string(dir.appendingPathComponent("a.safetensors").path)])) {
            XCTAssertTrue("\($0)".contains("learned over the heads"), "\($0)")
        }
    }

    func testBadManifestsAreRefusedByName() throws {
        let dir = try TestSupport.tempDir()
        func validate(_ smat: JSONValue, extra: [JSONValue] = [], train: Bool = true, command: String = "validate") throws -> String {
            let m = try pipeline(dir, smat: smat, extraAttributors: extra)
            if !train {
                var doc = try JSONParser.parse(String(contentsOf: m, encoding: .utf8)).objectValue!
                var attributors = doc["attributors"]!.arrayValue!
                var s = attributors[2].objectValue!
                var t = s["train"]!.objectValue!
                t["teacher"] = nil
                t["val"] = nil
                s["train"] = .object(t)
                attributors[2] = .object(s)
                doc["attributors"] = .array(attributors)
                try (JSONValue.object(doc).serialized() + "\n").write(to: m, atomically: true, encoding: .utf8)
                let r = try TestSupport.quacHost(["run", "-q", m.path])
                XCTAssertNotEqual(r.status, 0)
                return r.stderr
            }
            let r = try TestSupport.quacHost([command, m.path])
            XCTAssertNotEqual(r.status, 0)
            return r.stderr
        }
        let unknown = try validate(["heads": ["saliency", "nothing"]])
        XCTAssertTrue(unknown.contains("/attributors/2/params/heads") && unknown.contains("\"nothing\""), unknown)
        let own = try validate(["heads": ["smat"]])
        XCTAssertTrue(own.contains("cannot take its own maps"), own)
        let circle = try validate(["heads": ["saliency", "other"]], extra: [["plugin": "org.quac.smat-explainer", "name": "other",
                                                "params": ["input_shape": [1, 8, 8], "heads": ["smat"]]]],)
        XCTAssertTrue(circle.contains("in a circle"), circle)
        let noHeads = try validate(["heads": []], command: "run")
        XCTAssertTrue(noHeads.contains("no heads"), noHeads)
        let untaught = try validate([:], train: false)
        XCTAssertTrue(untaught.contains("\"teacher\": true") || untaught.contains("validation split"), untaught)
    }
}
