import Foundation
import XCTest
@testable import QuacCore

/// The schema files shipped in schemas/ are the ones the host validates manifests with: check that
/// they compile, accept the documented examples and point at the field of typical mistakes.
final class ManifestSchemaTests: XCTestCase {
    private static let repoRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    private func loadSchema(_ name: String) throws -> JSONSchema {
        try JSONSchema(contentsOfFile: Self.repoRoot.appendingPathComponent("schemas/\(name)").path)
    }

    private let plugin = #"""
        {
          "$schema": "../schemas/plugin-manifest.schema.json",
          "id": "org.quac.saliency",
          "name": "Saliency",
          "version": "1.0.0",
          "kind": "attributor",
          "abi_version": "1.0",
          "library": "libQuacAttributions.so",
          "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          "description": "Gradient of the target logit with respect to the input.",
          "requires": ["classifier", "classifier.vjp"],
          "trainable": false,
          "parameters": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
              "absolute": {"type": "boolean", "default": true},
              "steps": {"type": "integer", "minimum": 1, "default": 50}
            }
          }
        }
        """#

    private let pipeline = #"""
        {
          "$schema": "../schemas/pipeline-manifest.schema.json",
          "name": "demo",
          "output": "runs/demo",
          "seed": 0,
          "batch_size": 16,
          "plugin_paths": ["extra/plugins"],
          "data": {"format": "safetensors", "path": "data.safetensors", "x": "images", "label": "labels",
                   "x_cf": "cf", "target": "targets", "limit": 100, "targets": "next"},
          "classifier": {"plugin": "org.quac.linear-classifier", "params": {"weights": "model.safetensors"}},
          "converter": {"plugin": "org.quac.stargan", "params": {}},
          "attributors": [
            {"plugin": "org.quac.saliency", "name": "saliency", "params": {"absolute": true}},
            {"plugin": "org.quac.integrated-gradients", "params": {"steps": 50}}
          ],
          "scorers": [{"plugin": "org.quac.mask-score", "name": "quac"}]
        }
        """#

    /// `document` with the value at a simple pointer (no escapes) replaced, or removed when nil.
    private func setting(_ document: JSONValue, _ pointer: String, _ value: JSONValue?) -> JSONValue {
        func set(_ doc: JSONValue, _ path: ArraySlice<Substring>) -> JSONValue {
            let head = String(path.first!)
            switch doc {
            case .object(var o):
                o[head] = path.count == 1 ? value : set(o[head]!, path.dropFirst())
                return .object(o)
            case .array(var a):
                let i = Int(head)!
                if path.count > 1 { a[i] = set(a[i], path.dropFirst()) } else if let value { a[i] = value } else { a.remove(at: i) }
                return .array(a)
            default:
                XCTFail("no container at \(pointer)")
                return doc
            }
        }
        return set(document, pointer.split(separator: "/")[...])
    }

    private func json(_ text: String) -> JSONValue { try! JSONParser.parse(text) }

    // MARK: plugin manifests

    func testPluginManifestExamplesPass() throws {
        let schema = try loadSchema("plugin-manifest.schema.json")
        let manifest = json(plugin)
        XCTAssertEqual(schema.validate(manifest), [])

        let minimal = json(#"{"id":"org.example.x","name":"X","version":"0.1.0-beta.1+build.5","kind":"scorer","abi_version":"1.12","library":"../lib/libx.so"}"#)
        XCTAssertEqual(schema.validate(minimal), [])
        let completed = schema.applyingDefaults(to: minimal)
        XCTAssertEqual(completed["parameters"], ["type": "object"])
        XCTAssertEqual(completed["trainable"], false)
        XCTAssertEqual(completed["requires"], [])

        // The parameters block is itself a schema the host compiles and checks params with.
        let params = try JSONSchema(manifest["parameters"]!, source: "org.quac.saliency.json#/parameters")
        XCTAssertEqual(params.applyingDefaults(to: ["steps": 8]), ["steps": 8, "absolute": true])
        XCTAssertEqual(params.validate(["stpes": 8], at: "/attributors/1/params"), [SchemaViolation(
            pointer: "/attributors/1/params", message: #"unexpected property "stpes" (allowed: absolute, steps)"#)])
    }

    func testPluginManifestMistakesPointAtTheField() throws {
        let schema = try loadSchema("plugin-manifest.schema.json")
        let base = json(plugin)
        let cases: [(pointer: String, value: JSONValue?, at: String, message: String)] = [
            ("/id", nil, "", #"missing required property "id""#),
            ("/id", "Org.Quac.Saliency", "/id", #"must match the pattern ^[a-z0-9]+(\.[a-z0-9][a-z0-9-]*)+$, found "Org.Quac.Saliency""#),
            ("/id", "saliency", "/id", "must match the pattern"),
            ("/kind", "explainer", "/kind", #"must be one of "classifier", "converter", "attributor", "scorer", found "explainer""#),
            ("/version", "1.0", "/version", "must match the pattern"),
            ("/abi_version", "1", "/abi_version", "must match the pattern"),
            ("/abi_version", 1.0, "/abi_version", "expected string, found number 1"),
            ("/sha256", "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", "/sha256", "must match the pattern"),
            ("/library", "", "/library", "must have at least 1 character, found 0"),
            ("/requires", ["classifier", "classifier"], "/requires/1", #"must be unique, but equals item 0 ("classifier")"#),
            ("/requires/1", "gradients", "/requires/1", #"must be one of "classifier", "classifier.vjp""#),
            ("/trainable", "no", "/trainable", #"expected boolean, found string "no""#),
            ("/parameters", [], "/parameters", "expected object, found empty array"),
        ]
        for c in cases {
            let found = schema.validate(setting(base, c.pointer, c.value))
            XCTAssertEqual(found.map(\.pointer), [c.at], "\(c.pointer): \(found)")
            XCTAssertTrue(found.first?.message.contains(c.message) == true, "\(c.pointer): \(found)")
        }

        // A misspelled key: both halves of the mistake are reported, on the manifest object.
        let misspelled = setting(setting(base, "/library", nil), "/libary", "libx.so")
        XCTAssertEqual(schema.validate(misspelled).map(\.description), [
            #"/: missing required property "library""#,
            #"/: unexpected property "libary" (allowed: $schema, id, name, version, kind, abi_version, library, sha256, description, requires, explains, scores, better, trainable, bridge, check, parameters)"#,
        ])
    }

    // MARK: pipeline manifests

    func testPipelineManifestExamplesPass() throws {
        let schema = try loadSchema("pipeline-manifest.schema.json")
        let base = json(pipeline)
        XCTAssertEqual(schema.validate(base), [])
        for data in [
            #"{"format": "npy", "x": "x.npy", "label": "y.npy", "x_cf": "cf.npy", "target": "t.npy"}"#,
            #"{"format": "csv", "path": "concepts.csv", "label_column": "label", "targets": "all-others"}"#,
            #"{"format": "image-folder", "path": "data/test", "size": 128, "channels": 1, "extensions": [".png", ".tif", ".tiff"], "skip_unreadable": false, "limit": 10}"#,
        ] {
            XCTAssertEqual(schema.validate(setting(base, "/data", json(data))), [], data)
        }
        let foreign = json(#"""
            {"foreign": {"library": "libmodel.so", "symbol": "predict",
                         "signature": "void predict(const float *x, int64_t n, float *logits)",
                         "num_classes": 2, "input_shape": [1, 28, 28]}}
            """#)
        XCTAssertEqual(schema.validate(setting(base, "/classifier", foreign)), [])
    }

    func testPipelineDefaultsCompleteAMinimalManifest() throws {
        let schema = try loadSchema("pipeline-manifest.schema.json")
        let minimal = json(#"""
            {"name": "m", "output": "o", "data": {"format": "image-folder", "path": "d"},
             "classifier": {"plugin": "org.quac.cnn"}, "attributors": [{"plugin": "org.quac.saliency"}]}
            """#)
        XCTAssertEqual(schema.validate(minimal), [])
        let completed = schema.applyingDefaults(to: minimal)
        XCTAssertEqual(completed, json(#"""
            {"name": "m", "output": "o", "seed": 0, "batch_size": 16,
             "data": {"format": "image-folder", "path": "d", "targets": "next",
                      "extensions": [".png", ".tif", ".tiff"], "skip_unreadable": false},
             "classifier": {"plugin": "org.quac.cnn", "params": {}},
             "attributors": [{"plugin": "org.quac.saliency", "params": {}}]}
            """#))
        XCTAssertEqual(schema.validate(completed), [])
    }

    func testPipelineManifestMistakesPointAtTheField() throws {
        let schema = try loadSchema("pipeline-manifest.schema.json")
        let base = json(pipeline)
        let cases: [(pointer: String, value: JSONValue?, at: String, message: String)] = [
            ("/attributors/1/plugin", nil, "/attributors/1", #"missing required property "plugin""#),
            ("/classifier/plugin", nil, "/classifier", #"missing required property "plugin""#),
            ("/data", nil, "", #"missing required property "data""#),
            ("/atributors", [], "", #"unexpected property "atributors" (allowed: $schema, name, output, seed, batch_size, plugin_paths, data, classifier, concept_model, converter, attributors, scorers, convergence)"#),
            ("/batch_size", 0, "/batch_size", "must be >= 1, found 0"),
            ("/seed", -1, "/seed", "must be >= 0, found -1"),
            ("/seed", 1.5, "/seed", "expected integer, found number 1.5"),
            ("/name", "my demo", "/name", #"must match the pattern ^[A-Za-z0-9._-]+$, found "my demo""#),
            ("/output", "", "/output", "must have at least 1 character"),
            ("/plugin_paths", "extra", "/plugin_paths", #"expected array, found string "extra""#),
            ("/data/format", "npz", "/data/format", #"must be one of "safetensors", "npy", "csv", "image-folder", found "npz""#),
            ("/data", ["format": "npy", "x": "x.npy"], "/data", #"missing required property "label""#),
            ("/data", ["format": "csv", "path": "c.csv", "x": "x"], "/data",
             #"unexpected property "x" (allowed: format, path, label_column, limit, targets, concepts, concept_names)"#),
            ("/data", ["format": "image-folder", "path": "d", "channels": 2], "/data/channels", "must be one of 1, 3, found 2"),
            ("/data/targets", "others", "/data/targets", #"must be one of "next", "all-others", found "others""#),
            ("/data/limit", 0, "/data/limit", "must be >= 1, found 0"),
            ("/attributors/0/params", [], "/attributors/0/params", "expected object, found empty array"),
            ("/attributors/0/plugin", "Saliency", "/attributors/0/plugin", "must match the pattern"),
            ("/attributors/0/name", "two words", "/attributors/0/name", "must match the pattern"),
            ("/attributors/0/nmae", "x", "/attributors/0", #"unexpected property "nmae" (allowed: plugin, name, params, train, timeout)"#),
            ("/scorers", ["org.quac.mask-score"], "/scorers/0", #"expected object, found string "org.quac.mask-score""#),
            ("/converter/nmae", "c", "/converter", #"unexpected property "nmae" (allowed: plugin, name, params, train, timeout)"#),
            ("/classifier/train", ["seed": 1], "/classifier/train", #"missing required property "data""#),
            ("/classifier", ["foreign": ["library": "libm.so", "symbol": "predict", "num_classes": 2]], "/classifier/foreign",
             #"missing required property "input_shape""#),
            ("/classifier", ["foreign": ["library": "libm.so", "symbol": "predict", "num_classes": 2, "input_shape": [1, 0]]],
             "/classifier/foreign/input_shape/1", "must be >= 1, found 0"),
        ]
        for c in cases {
            let found = schema.validate(setting(base, c.pointer, c.value))
            XCTAssertEqual(found.map(\.pointer), [c.at], "\(c.pointer): \(found)")
            XCTAssertTrue(found.first?.message.contains(c.message) == true, "\(c.pointer): \(found)")
        }
    }
}
