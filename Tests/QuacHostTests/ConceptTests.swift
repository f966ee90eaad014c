import Foundation
import XCTest
@testable import QuacHost

/// Concepts: from the data (names from the file's metadata) or from a concept model (its outputs through
/// a sigmoid), handed to every call in quac_batch.concepts with their names from the host's concepts
/// service, and to a learned explainer's training data.
final class ConceptTests: XCTestCase {
    func writeData(_ dir: URL, concepts: [Float], names: String = #"["round","bright","large"]"#) throws {
        var rng = SeededRandom(seed: 7)
        let x = Tensor((0..<(6 * 64)).map { _ in rng.uniform() * 2 - 1 }, shape: [6, 1, 8, 8])
        try Safetensors.write([("images", x), ("labels", Tensor((0..<6).map { Int64($0 % 2) }, shape: [6])),
                               ("concepts", Tensor(concepts, shape: [6, 3]))],
                              metadata: ["concept_names": names], to: dir.appendingPathComponent("data.safetensors"))
    }

    func pipeline(_ dir: URL, _ fx: URL, data: JSONValue, extra: [String: JSONValue] = [:]) throws -> URL {
        var o: JSONObject = JSONObject([("name", "concepts"), ("output", "out"), ("batch_size", 4), ("plugin_paths", [.string(fx.path)]),
                                        ("data", data),
                                        ("classifier", ["plugin": "org.quac.mlp-classifier", "params": ["input_shape": [1, 8, 8], "seed": 1]]),
                                        ("attributors", [["plugin": "org.quac.test.concept-echo", "name": "echo"]])])
        for (k, v) in extra { o[k] = v }
        return try TestSupport.writeManifest(dir, .object(o))
    }

    func echoSums(_ out: URL) throws -> [Float] {
        let a = try Safetensors.read(out.appendingPathComponent("attributions/echo.safetensors")).tensors["attribution"]!
        return (0..<a.shape[0]).map { a.floatArray()[$0 * 64] }
    }

    func testConceptsFromTheDataReachEveryCallWithTheirNames() throws {
        let fx = try TestSupport.fixtures()
        let dir = try TestSupport.tempDir()
        let values: [Float] = (0..<18).map { Float($0 % 7) / 6 }
        try writeData(dir, concepts: values)
        let m = try pipeline(dir, fx, data: ["format": "safetensors", "path": "data.safetensors", "x": "images", "label": "labels",
                                             "concepts": "concepts"])
        let r = try TestSupport.quacHost(["run", "-q", m.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = dir.appendingPathComponent("out")
        let sums = try echoSums(out)
        for s in 0..<6 { XCTAssertEqual(sums[s], values[(s * 3)..<(s * 3 + 3)].reduce(0, +), accuracy: 1e-6) }
        let doc = try JSONParser.parse(String(contentsOf: out.appendingPathComponent("attributions/echo.json"), encoding: .utf8))
        XCTAssertEqual(doc["concept_names"], ["round", "bright", "large"])
        let inputs = try Safetensors.read(out.appendingPathComponent("inputs.safetensors"))
        XCTAssertEqual(inputs.tensors["concepts"]?.floatArray(), values)
        XCTAssertEqual(inputs.metadata["concept_names"], #"["round","bright","large"]"#)
    }

    func testConceptsFromACSVFileTakeTheHeaderAsNames() throws {
        let fx = try TestSupport.fixtures()
        let dir = try TestSupport.tempDir()
        try writeData(dir, concepts: Array(repeating: 0, count: 18))
        let rows = (0..<6).map { s in "\(Float(s) / 10), 0.5, \(1 - Float(s) / 10)" }
        try ("striped, dark, small\n" + rows.joined(separator: "\n") + "\n").write(to: dir.appendingPathComponent("concepts.csv"), atomically: true, encoding: .utf8)
        let m = try pipeline(dir, fx, data: ["format": "safetensors", "path": "data.safetensors", "x": "images", "label": "labels",
                                             "concepts": "concepts.csv"])
        let r = try TestSupport.quacHost(["run", "-q", m.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = dir.appendingPathComponent("out")
        for sum in try echoSums(out) { XCTAssertEqual(sum, 1.5, accuracy: 1e-6) }
        let doc = try JSONParser.parse(String(contentsOf: out.appendingPathComponent("attributions/echo.json"), encoding: .utf8))
        XCTAssertEqual(doc["concept_names"], ["striped", "dark", "small"])
    }

    func testAConceptModelsSigmoidOutputsAreTheConcepts() throws {
        let fx = try TestSupport.fixtures()
        let dir = try TestSupport.tempDir()
        try writeData(dir, concepts: Array(repeating: 0, count: 18))
        _ = try TestSupport.writeDataset(dir, n: 8, file: "train.safetensors")
        let model: JSONValue = ["input_shape": [1, 8, 8], "num_classes": 3, "hidden": 5, "seed": 9]
        let m = try pipeline(dir, fx, data: ["format": "safetensors", "path": "data.safetensors", "x": "images", "label": "labels"],
                             extra: ["concept_model": ["plugin": "org.quac.mlp-classifier", "name": "cm", "params": model, "names": ["a", "b", "c"]],
                                     "attributors": [["plugin": "org.quac.test.concept-echo", "name": "echo"],
                                                     ["plugin": "org.quac.test.mean-map", "name": "learned",
                                                      "train": ["data": ["format": "safetensors", "path": "train.safetensors", "x": "images", "label": "labels"],
                                                                "targets_from": "echo"]]]])
        let r = try TestSupport.quacHost(["run", "-q", m.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = dir.appendingPathComponent("out")

        // The reference: the same model's logits, through a sigmoid.
        let registry = PluginRegistry(searchPath: [TestSupport.builtinPlugins])
        let reference = try PluginInstance(manifest: try registry.manifest(id: "org.quac.mlp-classifier"), params: model)
        let x = try Safetensors.read(out.appendingPathComponent("inputs.safetensors")).tensors["x"]!
        let expected = try reference.forward(x).floatArray().map { 1 / (1 + exp(-$0)) }
        let file = try Safetensors.read(out.appendingPathComponent("concepts.safetensors"))
        let concepts = try XCTUnwrap(file.tensors["concepts"])
        XCTAssertEqual(concepts.shape, [6, 3])
        for (a, b) in zip(concepts.floatArray(), expected) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        XCTAssertEqual(file.metadata["concept_names"], #"["a","b","c"]"#)
        let sums = try echoSums(out)
        for s in 0..<6 { XCTAssertEqual(sums[s], expected[(s * 3)..<(s * 3 + 3)].reduce(0, +), accuracy: 1e-5) }
        let doc = try JSONParser.parse(String(contentsOf: out.appendingPathComponent("attributions/echo.json"), encoding: .utf8))
        XCTAssertEqual(doc["concept_names"], ["a", "b", "c"])
        // The learned explainer's training data got the concept model's concepts of its own split.
        let record = try JSONParser.parse(String(contentsOf: out.appendingPathComponent("models/learned.json"), encoding: .utf8))
        XCTAssertTrue(record["history"]?["fields"]?.arrayValue?.contains("concepts") ?? false, record.serialized())
    }

    func testBadConceptsNameTheFieldAndTheSample() throws {
        let fx = try TestSupport.fixtures()
        let dir = try TestSupport.tempDir()
        var values: [Float] = Array(repeating: 0.5, count: 18)
        values[7] = 1.5
        try writeData(dir, concepts: values)
        let data: JSONValue = ["format": "safetensors", "path": "data.safetensors", "x": "images", "label": "labels", "concepts": "concepts"]
        let m = try pipeline(dir, fx, data: data)
        let r = try TestSupport.quacHost(["run", "-q", m.path])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("/data/concepts") && r.stderr.contains("concept 1 of sample 2") && r.stderr.contains("[0, 1]"), r.stderr)
        let both = try pipeline(dir, fx, data: data, extra: ["concept_model": ["plugin": "org.quac.mlp-classifier"]])
        let r2 = try TestSupport.quacHost(["validate", both.path])
        XCTAssertEqual(r2.status, 1)
        XCTAssertTrue(r2.stderr.contains("/concept_model") && r2.stderr.contains("not both"), r2.stderr)
    }
}
