import Foundation
import XCTest
@testable import QuacHost

/// org.quac.python (SDK/python/bridge): methods written in Python run through the same C ABI as every
/// plugin. The NumPy Saliency example equals the built-in one; a Python classifier serves a built-in
/// attributor; a Python scorer scores; errors name the Python file and line.
final class PythonBridgeTests: XCTestCase {
    func pipeline(_ data: URL, classifier: JSONValue? = nil, attributors: [JSONValue], scorers: [JSONValue] = [], output: String = "out") -> JSONValue {
        [
            "name": "python-bridge", "output": .string(output), "seed": 3, "batch_size": 4,
            "data": ["format": "safetensors", "path": .string(data.lastPathComponent), "x": "images", "label": "labels",
                     "x_cf": "counterfactuals"],
            "classifier": classifier ?? ["plugin": "org.quac.mlp-classifier", "params": ["input_shape": [1, 8, 8], "hidden": 12, "seed": 5]],
            "attributors": .array(attributors),
            "scorers": .array(scorers),
        ]
    }

    static let saliencyExample = TestSupport.repoRoot.appendingPathComponent("examples/python/saliency.py").path

    func python(_ module: String, _ cls: String, name: String, _ extra: JSONValue = [:]) -> JSONValue {
        var params = JSONObject([("module", .string(module)), ("class", .string(cls))])
        for (k, v) in extra.objectValue ?? JSONObject() { params[k] = v }
        return ["plugin": "org.quac.python.attributor", "name": .string(name), "params": .object(params)]
    }

    func attribution(_ out: URL, _ name: String) throws -> [Float] {
        try Safetensors.read(out.appendingPathComponent("attributions/\(name).safetensors")).tensors["attribution"]!.floatArray()
    }

    func testNumPySaliencyEqualsTheBuiltinAndEachKindPassesTheCheck() throws {
        let bridge = try TestSupport.pythonBridge()
        // Each kind's manifest checks an example of that kind (examples/python/): the conformance
        // checks, the classifier's gradient against finite differences included.
        for kind in ["attributor", "scorer", "converter", "classifier"] {
            let check = try TestSupport.quacHost(["plugins", "check", "org.quac.python.\(kind)", "--plugin-path", bridge.path])
            XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
            XCTAssertTrue(check.stdout.contains(" 0 failed") && !check.stdout.contains("FAIL"), check.stdout)
        }

        let dir = try TestSupport.tempDir()
        let data = try TestSupport.writeDataset(dir)
        let manifest = try TestSupport.writeManifest(dir, pipeline(data, attributors: [
            ["plugin": "org.quac.saliency", "name": "builtin"],
            python(Self.saliencyExample, "Saliency", name: "python"),
            ["plugin": "org.quac.saliency", "name": "builtin-signed", "params": ["absolute": false]],
            python(Self.saliencyExample, "Saliency", name: "python-signed", ["absolute": false]),
        ]))
        let r = try TestSupport.quacHost(["run", manifest.path, "-q", "--plugin-path", bridge.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = dir.appendingPathComponent("out")
        for (a, b) in [("builtin", "python"), ("builtin-signed", "python-signed")] {
            let x = try attribution(out, a), y = try attribution(out, b)
            XCTAssertEqual(x.count, 6 * 64)
            XCTAssertGreaterThan(x.map(abs).max()!, 0)
            for i in x.indices { XCTAssertEqual(x[i], y[i], accuracy: 1e-6 * max(1, abs(x[i])), "\(a) vs \(b) at \(i)") }
        }
        XCTAssertTrue(try attribution(out, "python-signed").contains { $0 < 0 }, "absolute: false keeps the sign")
    }

    /// A method's own manifest (examples/python/saliency.json: "bridge" names the bridge plugin and its
    /// module) gives it an id, a parameter schema and requirements the host knows without loading code:
    /// `plugins info` shows them and `validate` checks a pipeline's parameters against them. It passes
    /// the conformance check, runs, equals the built-in, and its record names the bridge and hashes the
    /// module.
    func testAMethodsOwnManifestWorksForInfoValidateCheckAndRun() throws {
        let bridge = try TestSupport.pythonBridge()
        let dir = try TestSupport.tempDir()
        let methods = dir.appendingPathComponent("methods")
        try FileManager.default.createDirectory(at: methods, withIntermediateDirectories: true)
        let example = TestSupport.repoRoot.appendingPathComponent("examples/python/saliency.json")
        try String(contentsOf: example, encoding: .utf8)
            .replacingOccurrences(of: "\"../../SDK/python/bridge/build/libquac_python.so\"", with: "\"\(bridge.path)/build/libquac_python.so\"")
            .replacingOccurrences(of: "\"saliency.py\"", with: "\"\(Self.saliencyExample)\"")
            .write(to: methods.appendingPathComponent("saliency.json"), atomically: true, encoding: .utf8)
        let id = "org.quac.example.python-saliency"

        let info = try TestSupport.quacHost(["plugins", "info", id, "--plugin-path", methods.path, "--json"])
        XCTAssertEqual(info.status, 0, info.stderr)
        let entry = try JSONParser.parse(info.stdout)
        XCTAssertEqual(entry["parameters"]?["properties"]?["absolute"]?["type"]?.stringValue, "boolean")
        XCTAssertEqual(entry["requires"]?.arrayValue?.compactMap(\.stringValue), ["classifier.vjp"])
        XCTAssertEqual(entry["bridge"]?["plugin"]?.stringValue, "org.quac.python.attributor")

        let data = try TestSupport.writeDataset(dir)
        let bad = try TestSupport.writeManifest(dir, pipeline(data, attributors: [["plugin": .string(id), "name": "s", "params": ["absolute": 3]]]), name: "bad.json")
        let v = try TestSupport.quacHost(["validate", bad.path, "--plugin-path", methods.path])
        XCTAssertEqual(v.status, 1, v.stdout + v.stderr)
        XCTAssertTrue(v.stderr.contains("/attributors/0/params/absolute"), v.stderr)

        let check = try TestSupport.quacHost(["plugins", "check", id, "--plugin-path", methods.path])
        XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
        XCTAssertTrue(check.stdout.contains(" 0 failed"), check.stdout)

        let manifest = try TestSupport.writeManifest(dir, pipeline(data, attributors: [
            ["plugin": "org.quac.saliency", "name": "builtin", "params": ["absolute": false]],
            ["plugin": .string(id), "name": "python", "params": ["absolute": false]],
        ]))
        let r = try TestSupport.quacHost(["run", manifest.path, "-q", "--plugin-path", methods.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = dir.appendingPathComponent("out")
        let a = try attribution(out, "builtin"), b = try attribution(out, "python")
        XCTAssertTrue(a.contains { $0 < 0 })
        for i in a.indices { XCTAssertEqual(a[i], b[i], accuracy: 1e-6 * max(1, abs(a[i]))) }
        let record = try JSONParser.parse(String(contentsOf: out.appendingPathComponent("run.json"), encoding: .utf8))
        let python = try XCTUnwrap(record["plugins"]?.arrayValue?.first { $0["plugin"]?.stringValue == id })
        XCTAssertEqual(python["bridge"]?["plugin"]?.stringValue, "org.quac.python.attributor")
        XCTAssertEqual(python["param_files_sha256"]?[Self.saliencyExample]?.stringValue?.count, 64)
    }

    /// The module's file is part of the plugin's fingerprint: a rerun reuses the maps until the file
    /// changes, then computes them again (with the new code).
    func testEditingTheModuleRecomputesItsMaps() throws {
        let bridge = try TestSupport.pythonBridge()
        let dir = try TestSupport.tempDir()
        let data = try TestSupport.writeDataset(dir)
        let module = dir.appendingPathComponent("method.py")
        let source = try String(contentsOfFile: Self.saliencyExample, encoding: .utf8)
        try source.write(to: module, atomically: true, encoding: .utf8)
        let manifest = try TestSupport.writeManifest(dir, pipeline(data, attributors: [python(module.path, "Saliency", name: "s")]))
        let first = try JSONParser.parse(try TestSupport.quacHost(["run", manifest.path, "--json", "--plugin-path", bridge.path]).stdout)
        XCTAssertFalse(first["computed"]?.arrayValue?.isEmpty ?? true)
        let again = try JSONParser.parse(try TestSupport.quacHost(["run", manifest.path, "--json", "--plugin-path", bridge.path]).stdout)
        XCTAssertEqual(again["computed"]?.arrayValue ?? [], [])
        let before = try attribution(dir.appendingPathComponent("out"), "s")

        try source.replacingOccurrences(of: "np.abs(grad) if self.absolute else grad", with: "2 * np.abs(grad) if self.absolute else grad")
            .write(to: module, atomically: true, encoding: .utf8)
        let edited = try JSONParser.parse(try TestSupport.quacHost(["run", manifest.path, "--json", "--plugin-path", bridge.path]).stdout)
        XCTAssertFalse(edited["computed"]?.arrayValue?.isEmpty ?? true, "the edited module's maps are computed again")
        let after = try attribution(dir.appendingPathComponent("out"), "s")
        for i in before.indices { XCTAssertEqual(after[i], 2 * before[i], accuracy: 1e-6 * max(1, abs(after[i]))) }
    }

    /// Methods that fail in each way the issue names, one class per line range: the line numbers below
    /// are asserted.
    static let badMethods = """
    import numpy as np
    class Raises:
        kind = "attributor"
        def __init__(self, host): pass
        def attribute(self, batch):
            raise ValueError("no luck with %d queries" % len(batch["x"]))
    class WrongShape:
        kind = "attributor"
        def __init__(self, host): pass
        def attribute(self, batch):
            return {"attribution": batch["x"][:, 0]}
    class MakesNaN:
        kind = "attributor"
        def __init__(self, host): pass
        def attribute(self, batch):
            a = np.zeros(batch["x"].shape, np.float32)
            a[1, 0, 2, 3] = np.nan
            return {"attribution": a}
    class IsAScorer:
        kind = "scorer"
        def __init__(self, host): pass
        def score(self, batch):
            return {"score": np.zeros(len(batch["x"]), np.float32)}
    class FailsInNumPy:
        kind = "attributor"
        def __init__(self, host): pass
        def attribute(self, batch):
            return {"attribution": np.reshape(batch["x"], (7, 7))}

    """

    func testFailuresNameThePythonFileAndLineAndTheRunGoesOn() throws {
        let bridge = try TestSupport.pythonBridge()
        let dir = try TestSupport.tempDir()
        let data = try TestSupport.writeDataset(dir)
        let module = dir.appendingPathComponent("bad_methods.py")
        try Self.badMethods.write(to: module, atomically: true, encoding: .utf8)
        // Failures while attributing: each is reported, the other methods run, the run exits 1.
        let failing: [(cls: String, expected: [String])] = [
            ("Raises", ["ValueError: no luck with 4 queries", "bad_methods.py:6)"]),
            ("WrongShape", ["bad_methods.py:10 (WrongShape.attribute)", "\"attribution\" has shape [4, 8, 8], expected [4, 1, 8, 8]"]),
            ("MakesNaN", ["bad_methods.py:15 (MakesNaN.attribute)", "NaN at [1, 0, 2, 3]"]),
            ("FailsInNumPy", ["ValueError: cannot reshape", "from \(module.path):28"]),
        ]
        let manifest = try TestSupport.writeManifest(dir, pipeline(data, attributors:
            failing.map { python(module.path, $0.cls, name: $0.cls) } + [["plugin": "org.quac.saliency", "name": "saliency"]]))
        let r = try TestSupport.quacHost(["run", manifest.path, "-q", "--plugin-path", bridge.path])
        XCTAssertEqual(r.status, 1, r.stderr)
        for c in failing {
            for e in c.expected { XCTAssertTrue(r.stderr.contains(e), "\(c.cls): expected \"\(e)\" in: \(r.stderr)") }
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/attributions/\(c.cls).safetensors").path))
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/attributions/saliency.safetensors").path), "the other method ran")

        // A class of another kind is refused when the plugin is created, before anything runs.
        let wrongKind = try TestSupport.writeManifest(dir, pipeline(data, attributors: [python(module.path, "IsAScorer", name: "scorer")], output: "out2"), name: "p2.json")
        let k = try TestSupport.quacHost(["run", wrongKind.path, "-q", "--plugin-path", bridge.path])
        XCTAssertEqual(k.status, 1, k.stderr)
        for e in ["bad_methods.py:19", "IsAScorer.kind is \"scorer\"", "org.quac.python.scorer"] { XCTAssertTrue(k.stderr.contains(e), k.stderr) }
    }

    func testTheMethodsParametersAreCheckedAgainstItsSchema() throws {
        let bridge = try TestSupport.pythonBridge()
        let dir = try TestSupport.tempDir()
        let data = try TestSupport.writeDataset(dir)
        let cases: [(JSONValue, String)] = [
            (["absolute": 3], "parameter \"absolute\": expected boolean, got 3"),
            (["bogus": true], "unknown parameter \"bogus\" (known: absolute)"),
        ]
        for (i, (params, expected)) in cases.enumerated() {
            let manifest = try TestSupport.writeManifest(dir, pipeline(data, attributors: [python(Self.saliencyExample, "Saliency", name: "s", params)], output: "o\(i)"), name: "p\(i).json")
            let r = try TestSupport.quacHost(["run", manifest.path, "-q", "--plugin-path", bridge.path])
            XCTAssertEqual(r.status, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains(expected) && r.stderr.contains("saliency.py:6"), r.stderr)
        }
    }

    /// The linear classifier in NumPy (examples/python/linear_classifier.py) serves the built-in
    /// (Swift) Saliency: its maps are |W[y]|, exactly. The Python scorer (mean_score.py) gets the maps
    /// and returns each one's mean.
    func testAPythonClassifierServesABuiltinAttributorAndAPythonScorerScores() throws {
        let bridge = try TestSupport.pythonBridge()
        let dir = try TestSupport.tempDir()
        let data = try TestSupport.writeDataset(dir)
        let examples = TestSupport.repoRoot.appendingPathComponent("examples/python")
        let manifest = try TestSupport.writeManifest(dir, pipeline(data,
            classifier: ["plugin": "org.quac.python.classifier",
                         "params": ["module": .string(examples.appendingPathComponent("linear_classifier.py").path), "class": "Linear", "seed": 7]],
            attributors: [["plugin": "org.quac.saliency", "name": "saliency"]],
            scorers: [["plugin": "org.quac.python.scorer", "name": "mean",
                       "params": ["module": .string(examples.appendingPathComponent("mean_score.py").path), "class": "MeanScore"]]]))
        let r = try TestSupport.quacHost(["run", manifest.path, "-q", "--plugin-path", bridge.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = dir.appendingPathComponent("out")
        let saliency = try Safetensors.read(out.appendingPathComponent("attributions/saliency.safetensors"))
        let maps = saliency.tensors["attribution"]!.floatArray()
        let labels = try Safetensors.read(data).tensors["labels"]!
        let w = try Self.numpyLinearWeights(seed: 7)
        for s in 0..<6 {
            let y = Int(labels.int64Array()[s])
            for j in 0..<64 { XCTAssertEqual(maps[s * 64 + j], abs(w[y * 64 + j]), accuracy: 1e-6) }
        }
        let normalized = saliency.tensors["normalized"]!.floatArray()
        let scores = try JSONParser.parse(String(contentsOf: out.appendingPathComponent("scores/saliency.json"), encoding: .utf8))
        let mean = try XCTUnwrap(scores["scorers"]?["mean"]?["score"]?.arrayValue)
        XCTAssertEqual(mean.count, 6)
        for s in 0..<6 {
            let expected = normalized[(s * 64)..<(s * 64 + 64)].reduce(0, +) / 64
            XCTAssertEqual(mean[s].doubleValue ?? .nan, Double(expected), accuracy: 1e-6)
        }
    }

    /// linear_classifier.py's weights: sin(0.37 k + seed), k = 0..<192, as 3 rows of 64.
    static func numpyLinearWeights(seed: Int) throws -> [Float] {
        (0..<192).map { sin(Float($0) * 0.37 + Float(seed)) }
    }

    /// A virtual environment whose Python imports torch and captum, for the Captum tests:
    /// QUAC_TEST_TORCH_VENV, else ~/.cache/quac-oracle. Skips, saying so, when there is none.
    static func torchVenv() throws -> URL {
        let env = ProcessInfo.processInfo.environment
        let candidates = [env["QUAC_TEST_TORCH_VENV"], env["HOME"].map { "\($0)/.cache/quac-oracle" }].compactMap { $0 }
        for c in candidates {
            let python = URL(fileURLWithPath: c).appendingPathComponent("bin/python")
            guard FileManager.default.isExecutableFile(atPath: python.path) else { continue }
            // The bridge embeds Debian's Python: the venv must be of the same version.
            let r = try TestSupport.run(python, ["-c", "import sys, torch, captum; print('%d.%d' % sys.version_info[:2])"])
            let embedded = try TestSupport.run(URL(fileURLWithPath: "/usr/bin/python3"), ["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
            if r.status == 0 && r.stdout == embedded.stdout { return URL(fileURLWithPath: c) }
        }
        throw XCTSkip("no virtual environment with torch and captum for the embedded Python (set QUAC_TEST_TORCH_VENV): the Captum tests are skipped")
    }

    /// Captum's IntegratedGradients through the bridge, against the engine's CNN, equals the built-in
    /// org.quac.vanilla-integrated-gradients (same path, zero baseline, Gauss-Legendre 50 steps).
    func testCaptumIntegratedGradientsThroughTheBridgeEqualsTheBuiltin() throws {
        let bridge = try TestSupport.pythonBridge()
        let venv = try Self.torchVenv()
        let captum = TestSupport.repoRoot.appendingPathComponent("examples/python/captum_methods.py").path
        let sdkPython = TestSupport.repoRoot.appendingPathComponent("SDK/python").path
        let common: JSONValue = ["python_path": [.string(sdkPython)], "venv": .string(venv.path)]
        for cls in ["IntegratedGradientsMethod", "GradientShapMethod", "SmoothIntegratedGradients"] {
            var params = common.objectValue!
            params["module"] = .string(captum)
            params["class"] = .string(cls)
            let check = try TestSupport.quacHost(["plugins", "check", "org.quac.python.attributor", "--plugin-path", bridge.path,
                                                  "--params", JSONValue.object(params).serialized()])
            XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
            XCTAssertTrue(check.stdout.contains(" 0 failed"), "\(cls): \(check.stdout)")
        }
        let dir = try TestSupport.tempDir()
        let data = try TestSupport.writeDataset(dir)
        var ig = common.objectValue!
        ig["n_steps"] = 50
        let manifest = try TestSupport.writeManifest(dir, pipeline(data,
            classifier: ["plugin": "org.quac.cnn-classifier", "params": ["input_shape": [1, 8, 8], "num_classes": 2, "channels": [4, 8], "fc": [16], "seed": 3]],
            attributors: [
                ["plugin": "org.quac.vanilla-integrated-gradients", "name": "builtin", "params": ["n_steps": 50]],
                python(captum, "IntegratedGradientsMethod", name: "captum", .object(ig)),
            ]))
        let r = try TestSupport.quacHost(["run", manifest.path, "-q", "--plugin-path", bridge.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = dir.appendingPathComponent("out")
        let a = try attribution(out, "builtin"), b = try attribution(out, "captum")
        XCTAssertGreaterThan(a.map(abs).max()!, 0)
        for i in a.indices { XCTAssertEqual(a[i], b[i], accuracy: 1e-5, "at \(i)") }
    }
}
