import Foundation
import XCTest
@testable import QuacHost

/// Numbers a user writes cannot crash the host: every numeric parameter of every built-in, and every
/// number of the pipeline schema, is bounded; values past the bounds are refused naming the field;
/// values within them that would need more memory than there is are refused with the arithmetic.
final class ParameterBoundsTests: XCTestCase {
    var registry: PluginRegistry { PluginRegistry(searchPath: [TestSupport.builtinPlugins]) }

    /// Every numeric schema below `schema` with its JSON pointer: (pointer, schema).
    func numbers(_ schema: JSONValue, at pointer: String) -> [(String, JSONValue)] {
        var out: [(String, JSONValue)] = []
        if let t = schema["type"]?.stringValue, t == "integer" || t == "number" { out.append((pointer, schema)) }
        for (k, v) in schema["properties"]?.objectValue ?? JSONObject() { out += numbers(v, at: pointer + "/" + k) }
        if let items = schema["items"] { out += numbers(items, at: pointer + "/items") }
        for key in ["anyOf", "oneOf", "allOf"] {
            for (i, v) in (schema[key]?.arrayValue ?? []).enumerated() { out += numbers(v, at: pointer + "/\(key)/\(i)") }
        }
        for (k, v) in schema["$defs"]?.objectValue ?? JSONObject() { out += numbers(v, at: pointer + "/$defs/\(k)") }
        for key in ["then", "else"] { if let sub = schema[key] { out += numbers(sub, at: pointer + "/\(key)") } }
        return out
    }

    func testEveryNumberABuiltinOrAPipelineTakesIsBounded() throws {
        var unbounded: [String] = []
        for entry in registry.entries {
            let m = try XCTUnwrap(entry.manifest)
            for (pointer, s) in numbers(m.parameters, at: m.id) {
                let upper = s["maximum"] ?? s["exclusiveMaximum"], lower = s["minimum"] ?? s["exclusiveMinimum"]
                if upper?.doubleValue == nil || lower?.doubleValue == nil { unbounded.append(pointer) }
            }
        }
        let pipeline = try JSONParser.parse([UInt8](try Data(contentsOf: HostResources.directory.appendingPathComponent("schemas/pipeline-manifest.schema.json"))))
        for (pointer, s) in numbers(pipeline, at: "pipeline") where (s["maximum"] ?? s["exclusiveMaximum"]) == nil {
            unbounded.append(pointer)
        }
        XCTAssertEqual(unbounded, [], "numbers without both bounds")
        XCTAssertGreaterThan(registry.entries.count, 20)
    }

    /// Past each bound of each top-level numeric parameter (and of each numeric list's items), the
    /// parameters are refused before any code loads, naming the field.
    func testValuesPastTheBoundsAreRefusedNamingTheField() throws {
        var checked = 0
        for entry in registry.entries {
            let m = try XCTUnwrap(entry.manifest)
            for (name, s) in m.parameters["properties"]?.objectValue ?? JSONObject() {
                let isList = s["type"]?.stringValue == "array"
                let number = isList ? (s["items"] ?? .null) : s
                guard let type = number["type"]?.stringValue, type == "integer" || type == "number" else { continue }
                var outside: [Double] = []
                if let hi = (number["maximum"] ?? number["exclusiveMaximum"])?.doubleValue { outside.append(type == "integer" ? hi + 1 : hi * 2 + 1) }
                if let lo = (number["minimum"] ?? number["exclusiveMinimum"])?.doubleValue { outside.append(type == "integer" ? lo - 1 : lo * 2 - 1) }
                for v in outside {
                    let value: JSONValue = type == "integer" && abs(v) < 9e15 ? .int(Int64(v)) : .double(v)
                    let count = max(s["minItems"]?.intValue ?? 1, 1)
                    var params = JSONObject([(name, isList ? .array(Array(repeating: value, count: Int(count))) : value)])
                    // Required parameters get valid values, so the one past its bound is what is refused.
                    for key in m.parameters["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where key != name {
                        let type = m.parameters["properties"]?[key]?["type"]?.stringValue
                        params[key] = type == "array" ? [1] : type == "string" ? "required.file" : nil
                    }
                    XCTAssertThrowsError(try ResolvedPlugin.resolve(m, params: .object(params), base: URL(fileURLWithPath: "/")), "\(m.id) \(name) = \(v)") { error in
                        let message = "\(error)"
                        XCTAssertTrue(message.contains("/\(name)"), "\(m.id) \(name) = \(v): \(message)")
                    }
                    checked += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 150)
    }

    // MARK: The values that crashed the host, through the CLI

    /// A pipeline on 6 samples 1x8x8 with an MLP and the given attributor / classifier parameters.
    func pipeline(_ dir: URL, attributor: JSONValue = ["plugin": "org.quac.saliency"], classifier: JSONValue? = nil,
                  scorer: JSONValue = ["plugin": "org.quac.insertion", "params": ["steps": 4]], extra: [String: JSONValue] = [:]) throws -> URL {
        _ = try TestSupport.writeDataset(dir)
        let base: JSONValue = [
            "name": "bounds", "output": "out", "seed": 1, "batch_size": 4,
            "data": ["format": "safetensors", "path": "data.safetensors", "x": "images", "label": "labels", "x_cf": "counterfactuals"],
            "classifier": classifier ?? ["plugin": "org.quac.mlp-classifier", "params": ["input_shape": [1, 8, 8], "hidden": 6, "seed": 2]],
            "attributors": [attributor], "scorers": [scorer],
        ]
        var m = base.objectValue!
        for (k, v) in extra { m[k] = v }
        return try TestSupport.writeManifest(dir, .object(m))
    }

    /// Exit 1 (never a signal), one line naming each fragment.
    func assertRefused(_ r: TestSupport.CommandResult, _ fragments: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 1, "status; stderr: \(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr, file: file, line: line)
        for f in fragments { XCTAssertTrue(r.stderr.contains(f), "lacks \(f): \(r.stderr)", file: file, line: line) }
    }

    func testTheValuesThatCrashedTheHostAreRefusedNamingTheField() throws {
        let dir = try TestSupport.tempDir()
        let cases: [(JSONValue, String)] = [
            (["plugin": "org.quac.random", "params": ["sigma": .double(4.611686018427388e18)]], "/attributors/0/params/sigma"),
            (["plugin": "org.quac.smoothgrad", "params": ["nt_samples": .int(Int64.max)]], "/attributors/0/params/nt_samples"),
            (["plugin": "org.quac.vanilla-integrated-gradients", "params": ["n_steps": .int(Int64.max)]], "/attributors/0/params/n_steps"),
            (["plugin": "org.quac.d-integrated-gradients", "params": ["n_steps": .int(1 << 53)]], "/attributors/0/params/n_steps"),
            // Found by scripts/extreme_params.py: Gauss-Legendre nodes for 100,000 steps take minutes to
            // compute (n^2), inside plugin creation, where no unit timeout applies.
            (["plugin": "org.quac.layer-integrated-gradients", "params": ["n_steps": 100000]], "/attributors/0/params/n_steps"),
        ]
        for (attributor, pointer) in cases {
            let m = try pipeline(dir, attributor: attributor)
            assertRefused(try TestSupport.quacHost(["validate", m.path]), [m.path, pointer])
        }
        for (params, pointer) in [(["vmin": -1e308] as JSONValue, "vmin"), (["vmax": 1e308], "vmax")] {
            let m = try pipeline(dir, scorer: ["plugin": "org.quac.quac-evaluator", "params": params])
            assertRefused(try TestSupport.quacHost(["validate", m.path]), [m.path, "/scorers/0/params/\(pointer)"])
        }
        for (params, pointer) in [(["input_shape": [1, 8, 8], "hidden": .int(1 << 40)] as JSONValue, "hidden"),
                                  (["input_shape": [1, 8, 8], "num_classes": .int(1 << 40)], "num_classes"),
                                  (["input_shape": [.int(1 << 31), .int(1 << 31), .int(1 << 31)]], "input_shape/0")] {
            let m = try pipeline(dir, classifier: ["plugin": "org.quac.mlp-classifier", "params": params])
            assertRefused(try TestSupport.quacHost(["validate", m.path]), [m.path, "/classifier/params/\(pointer)"])
        }
        let folder = try pipeline(dir, extra: ["data": ["format": "image-folder", "path": ".", "size": 100000]])
        assertRefused(try TestSupport.quacHost(["validate", folder.path]), [folder.path, "/data/size"])
        let seed = try pipeline(dir, extra: ["seed": .double(1.9e19)])
        assertRefused(try TestSupport.quacHost(["validate", seed.path]), [seed.path, "/seed"])
    }

    /// Within the bounds: sizes whose memory the machine does not have are refused with the
    /// arithmetic (a small budget stands for a small machine); the others run.
    func testValuesWithinTheBoundsRunOrAreRefusedForTheirMemory() throws {
        let dir = try TestSupport.tempDir()
        let small = ["QUAC_MEMORY_BUDGET_MB": "64"]
        let wide = try pipeline(dir, classifier: ["plugin": "org.quac.mlp-classifier", "params": ["input_shape": [1, 8, 8], "hidden": 65536, "num_classes": 65536]])
        assertRefused(try TestSupport.quacHost(["run", wide.path, "-q"], env: small),
                      ["/classifier", "the weights: num_classes 65536 x hidden or inputs 65536 x 4 bytes = 16.0 GiB, more than the memory budget (64.0 MiB"])
        let huge = try pipeline(dir, classifier: ["plugin": "org.quac.mlp-classifier", "params": ["input_shape": [65536, 65536, 65536]]])
        assertRefused(try TestSupport.quacHost(["run", huge.path, "-q"]), ["/classifier", "input_shape[0] 65536 x input_shape[1] 65536 x input_shape[2] 65536 x 4 bytes = 1.0 PiB, more than the memory budget"])
        let noisy = try pipeline(dir, attributor: ["plugin": "org.quac.smoothgrad", "params": ["nt_samples": 100000]])
        assertRefused(try TestSupport.quacHost(["run", noisy.path, "-q"], env: small), ["/attributors/0", "nt_samples 100000", "lower nt_samples"])
        // Found by scripts/extreme_params.py: StarGAN widths and mapping sizes at their bounds trapped
        // (SIGILL) or were killed for memory while the networks were built.
        for (params, fragment) in [(["channels": 65536] as JSONValue, "a 3x3 convolution's weights: widest width 65536 x widest width 65536 x kernel 9 x 4 bytes = 144.0 GiB"),
                                   (["mapping_dim": 65536], "the mapping network's weights: mapping_dim 65536 x mapping_dim 65536 x layers (3 + 3 x num_classes) 9 x 4 bytes = 144.0 GiB")] {
            var p = (["image_size": 8, "input_channels": 1, "num_classes": 2, "channels": 4, "max_channels": 8] as JSONValue).objectValue!
            for (k, v) in params.objectValue! { p[k] = v }
            let wide = try pipeline(dir, extra: ["converter": ["plugin": "org.quac.stargan-converter", "params": .object(p)],
                                                 "data": ["format": "safetensors", "path": "data.safetensors", "x": "images", "label": "labels"]])
            assertRefused(try TestSupport.quacHost(["run", wide.path, "-q"], env: small), ["/converter", fragment])
        }
        // Extreme but affordable values run.
        let filtered = try pipeline(dir, attributor: ["plugin": "org.quac.random", "params": ["sigma": 1000]],
                                    scorer: ["plugin": "org.quac.quac-evaluator", "params": ["vmin": -1000000, "vmax": 1000000]])
        let r = try TestSupport.quacHost(["run", filtered.path, "-q"])
        XCTAssertEqual(r.status, 0, r.stderr)
    }
}
