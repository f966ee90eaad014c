import Foundation
import XCTest
@testable import QuacHost

/// A C plugin built with the SDK's make and a Swift plugin built by SwiftPM, in one pipeline: both
/// pass the conformance check, both run, and they agree, because they compute the same thing.
final class PipelineEndToEndTests: XCTestCase {
    func basePipeline(data: URL, attributors: [JSONValue], pluginPaths: [String] = []) -> JSONValue {
        [
            "name": "e2e", "output": "out", "seed": 3, "batch_size": 4,
            "plugin_paths": .array(pluginPaths.map { .string($0) }),
            "data": ["format": "safetensors", "path": .string(data.lastPathComponent), "x": "images", "label": "labels",
                     "x_cf": "counterfactuals"],
            "classifier": ["plugin": "org.quac.mlp-classifier", "params": ["input_shape": [1, 8, 8], "hidden": 12, "seed": 5]],
            "attributors": .array(attributors),
            "scorers": [["plugin": "org.quac.insertion", "name": "insertion", "params": ["steps": 8]]],
        ]
    }

    func testCAndSwiftSaliencyRunSideBySideAndAgree() throws {
        let dir = try TestSupport.tempDir()
        let example = try TestSupport.buildCExample()
        let data = try TestSupport.writeDataset(dir)
        let manifest = try TestSupport.writeManifest(dir, basePipeline(data: data, attributors: [
            ["plugin": "org.quac.saliency", "name": "swift-saliency"],
            ["plugin": "org.quac.example.c-saliency", "name": "c-saliency"],
            ["plugin": "org.quac.residual", "name": "residual"],
        ], pluginPaths: [example.path]))

        let check = try TestSupport.quacHost(["plugins", "check", "org.quac.example.c-saliency", "--plugin-path", example.path])
        XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
        XCTAssertTrue(check.stdout.contains("0 failed"), check.stdout)

        let r = try TestSupport.quacHost(["run", manifest.path, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let summary = try JSONParser.parse(r.stdout)
        XCTAssertEqual(summary["samples"]?.intValue, 6)
        let out = dir.appendingPathComponent("out")
        let swift = try Safetensors.read(out.appendingPathComponent("attributions/swift-saliency.safetensors"))
        let c = try Safetensors.read(out.appendingPathComponent("attributions/c-saliency.safetensors"))
        let a = swift.tensors["attribution"]!.floatArray(), b = c.tensors["attribution"]!.floatArray()
        XCTAssertEqual(a.count, 6 * 64)
        XCTAssertGreaterThan(a.map(abs).max()!, 0, "a saliency map of a random network should not be all zeros")
        for i in a.indices { XCTAssertEqual(a[i], b[i], accuracy: 1e-6 * max(1, abs(a[i]))) }

        // Normalised maps are per-sample min-max of |a|: each sample spans exactly [0, 1].
        let normalized = swift.tensors["normalized"]!.floatArray()
        for s in 0..<6 {
            let row = normalized[(s * 64)..<(s * 64 + 64)]
            XCTAssertEqual(row.min()!, 0, accuracy: 1e-7)
            XCTAssertEqual(row.max()!, 1, accuracy: 1e-6)
        }

        // Residual is |x - x_cf| of the data itself.
        let data0 = try Safetensors.read(data)
        let residual = try Safetensors.read(out.appendingPathComponent("attributions/residual.safetensors")).tensors["attribution"]!.floatArray()
        let xs = data0.tensors["images"]!.floatArray(), cfs = data0.tensors["counterfactuals"]!.floatArray()
        for i in residual.indices { XCTAssertEqual(residual[i], abs(xs[i] - cfs[i]), accuracy: 1e-6) }

        // Scores and the run record.
        let scores = try JSONParser.parse(String(contentsOf: out.appendingPathComponent("scores/swift-saliency.json"), encoding: .utf8))
        XCTAssertEqual(scores["scorers"]?["insertion"]?["score"]?.arrayValue?.count, 6)
        let record = try JSONParser.parse(String(contentsOf: out.appendingPathComponent("run.json"), encoding: .utf8))
        let plugins = record["plugins"]?.arrayValue ?? []
        XCTAssertEqual(Set(plugins.compactMap { $0["plugin"]?.stringValue }),
                       ["org.quac.mlp-classifier", "org.quac.saliency", "org.quac.example.c-saliency", "org.quac.residual", "org.quac.insertion"])
        XCTAssertTrue(plugins.allSatisfy { ($0["library_sha256"]?.stringValue?.count ?? 0) == 64 })
        XCTAssertEqual(record["seed"]?.intValue, 3)

        // A rerun computes nothing; changing one parameter recomputes only what depends on it.
        let again = try JSONParser.parse(try TestSupport.quacHost(["run", manifest.path, "--json"]).stdout)
        XCTAssertEqual(again["computed"]?.arrayValue ?? [], [])
        XCTAssertEqual(again["reused"]?.arrayValue?.count, 1 + 3 + 3)
    }

    func testSwappingThePluginIsOneLine() throws {
        let dir = try TestSupport.tempDir()
        let example = try TestSupport.buildCExample()
        let data = try TestSupport.writeDataset(dir)
        let swiftManifest = try TestSupport.writeManifest(dir, basePipeline(data: data, attributors: [
            ["plugin": "org.quac.saliency", "name": "saliency"]], pluginPaths: [example.path]))
        let text = try String(contentsOf: swiftManifest, encoding: .utf8)
        let swapped = text.replacingOccurrences(of: "\"org.quac.saliency\"", with: "\"org.quac.example.c-saliency\"")
                          .replacingOccurrences(of: "\"out\"", with: "\"out-c\"")
        let diff = zip(text.split(separator: "\n"), swapped.split(separator: "\n")).filter { $0 != $1 }
        XCTAssertEqual(diff.count, 2, "the plugin line and the output line")
        let cManifest = dir.appendingPathComponent("pipeline-c.json")
        try swapped.write(to: cManifest, atomically: true, encoding: .utf8)
        for m in [swiftManifest, cManifest] {
            let r = try TestSupport.quacHost(["run", m.path, "-q"])
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        let a = try Safetensors.read(dir.appendingPathComponent("out/attributions/saliency.safetensors")).tensors["attribution"]!
        let b = try Safetensors.read(dir.appendingPathComponent("out-c/attributions/saliency.safetensors")).tensors["attribution"]!
        XCTAssertEqual(a.floatArray(), b.floatArray())
    }

    /// An installed quac-host (make install's layout, from this build's products) run from / without
    /// QUAC_PLUGIN_PATH finds every built-in plugin, and each passes `plugins check ID` with no options.
    func testEveryInstalledBuiltinPassesTheConformanceCheckWithNoOptions() throws {
        let prefix = try TestSupport.tempDir()
        let home = try TestSupport.tempDir("home")
        let make = try TestSupport.run(URL(fileURLWithPath: "/usr/bin/env"),
                                       ["make", "-s", "-C", TestSupport.repoRoot.path, "install-files", "PREFIX=\(prefix.path)",
                                        "PRODUCTS=\(TestSupport.productsDir.path)"])
        XCTAssertEqual(make.status, 0, make.stdout + make.stderr)
        let host = prefix.appendingPathComponent("bin/quac-host")
        var env = ProcessInfo.processInfo.environment
        env["QUAC_PLUGIN_PATH"] = nil
        env["QUAC_PLUGIN_LIB_PATH"] = nil
        env["HOME"] = home.path
        env["XDG_DATA_HOME"] = nil
        func installed(_ args: [String]) throws -> TestSupport.CommandResult {
            let p = Process()
            p.executableURL = host
            p.arguments = args
            p.currentDirectoryURL = URL(fileURLWithPath: "/")
            p.environment = env
            let out = Pipe(), err = Pipe()
            p.standardOutput = out
            p.standardError = err
            try p.run()
            let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return TestSupport.CommandResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
        }
        let list = try installed(["plugins", "list", "--json"])
        XCTAssertEqual(list.status, 0, list.stderr)
        let entries = try JSONParser.parse(list.stdout)["plugins"]?.arrayValue ?? []
        let shipped = try FileManager.default.contentsOfDirectory(atPath: TestSupport.builtinPlugins.path).filter { $0.hasSuffix(".json") }
        XCTAssertEqual(Set(entries.compactMap { $0["id"]?.stringValue }), Set(shipped.map { String($0.dropLast(5)) }))
        // The TorchScript plugin is built only where libtorch is installed; elsewhere it is listed as absent.
        let torchscript = "org.quac.torchscript-classifier"
        let torchscriptBuilt = FileManager.default.fileExists(atPath: TestSupport.productsDir.appendingPathComponent("libQuacTorchScript.so").path)
        for e in entries {
            if e["id"]?.stringValue == torchscript, !torchscriptBuilt {
                XCTAssertTrue(e["problem"]?.stringValue?.contains("not found") == true, e.serialized())
                continue
            }
            XCTAssertEqual(e["status"]?.stringValue, "ok", e.serialized())
            XCTAssertTrue(e["library"]?.stringValue?.hasPrefix(prefix.appendingPathComponent("lib/quac-host").path) ?? false, e.serialized())
        }
        // Two checks at a time, each taking the next plugin: a check is one process on about one core,
        // and the two slow ones (the 128x128 CNN and the StarGAN, in a debug build) then overlap.
        let ids = entries.compactMap { $0["id"]?.stringValue }.filter { $0 != torchscript || torchscriptBuilt }
        var results = [Result<TestSupport.CommandResult, Error>?](repeating: nil, count: ids.count)
        var next = 0
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: 2) { _ in
            while true {
                let i: Int = lock.withLock { defer { next += 1 }; return next }
                guard i < ids.count else { return }
                let r = Result { try installed(["plugins", "check", ids[i], "--json"]) }
                lock.withLock { results[i] = r }
            }
        }
        for (id, result) in zip(ids, results) {
            let r = try XCTUnwrap(result, id).get()
            let report = try JSONParser.parse(r.stdout)
            let failed = report["plugins"]?[0]?["checks"]?.arrayValue?.filter { $0["passed"] == false } ?? []
            XCTAssertEqual(r.status, 0, "\(id): \(failed.map { $0.serialized() }) \(r.stderr)")
            XCTAssertGreaterThan(report["plugins"]?[0]?["checks"]?.arrayValue?.count ?? 0, 10, id)
        }
        // An unknown id says where the host looked and how to add a folder.
        let unknown = try installed(["plugins", "info", "org.example.nothing"])
        XCTAssertEqual(unknown.status, 1)
        XCTAssertTrue(unknown.stderr.contains(prefix.appendingPathComponent("share/quac-host/plugins").path), unknown.stderr)
        XCTAssertTrue(unknown.stderr.contains("--plugin-path") && unknown.stderr.contains("QUAC_PLUGIN_PATH"), unknown.stderr)
    }
}
