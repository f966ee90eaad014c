import Foundation
import XCTest
@testable import QuacHost

/// With process isolation (the CLI's default), a plugin that crashes, aborts, exits or hangs fails only
/// its unit: the other methods run, with the classifier's services, and the run exits 1 naming the unit
/// and what happened; a rerun retries only it.
final class ProcessIsolationTests: XCTestCase {
    func pipeline(_ dir: URL) throws -> URL {
        let fixtures = try TestSupport.fixtures()
        _ = try TestSupport.writeDataset(dir)
        return try TestSupport.writeManifest(dir, [
            "name": "isolated", "output": "out", "seed": 1, "batch_size": 4,
            "plugin_paths": [.string(fixtures.path)],
            "data": ["format": "safetensors", "path": "data.safetensors", "x": "images", "label": "labels", "x_cf": "counterfactuals"],
            "classifier": ["plugin": "org.quac.mlp-classifier", "params": ["input_shape": [1, 8, 8], "hidden": 6, "seed": 2]],
            "attributors": [["plugin": "org.quac.test.misbehaving", "name": "bad"], ["plugin": "org.quac.saliency", "name": "saliency"]],
            "scorers": [["plugin": "org.quac.insertion", "name": "ins", "params": ["steps": 4]]],
        ])
    }

    func run(_ dir: URL, _ mode: String, _ extra: [String] = []) throws -> TestSupport.CommandResult {
        try TestSupport.quacHost(["run", "-q", try pipeline(dir).path] + extra, env: ["QUAC_TEST_MISBEHAVE": mode])
    }

    func assertOtherMethodFinished(_ dir: URL, file: StaticString = #filePath, line: UInt = #line) {
        let out = dir.appendingPathComponent("out")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("attributions/saliency.safetensors").path), "saliency ran", file: file, line: line)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("scores/saliency.json").path), "and was scored", file: file, line: line)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("attributions/bad.safetensors").path), file: file, line: line)
    }

    func testACrashOrAbortFailsOnlyItsUnit() throws {
        for (mode, signal) in [("segv", SIGSEGV), ("abort", SIGABRT)] {
            let dir = try TestSupport.tempDir("isolation-\(mode)")
            let r = try run(dir, mode)
            XCTAssertEqual(r.status, 1, "\(mode): \(r.stderr)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains("attribute bad: the worker crashed (signal \(signal)"), "\(mode): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("score bad"), "the unit that needed it is listed: \(r.stderr)")
            assertOtherMethodFinished(dir)
        }
    }

    func testAPluginThatExitsZeroMidwayIsAFailedUnit() throws {
        let dir = try TestSupport.tempDir()
        let r = try run(dir, "exit0")
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("attribute bad: the worker ended (exit status 0) without finishing the unit"), r.stderr)
        assertOtherMethodFinished(dir)
    }

    func testAHangingPluginTimesOut() throws {
        let dir = try TestSupport.tempDir()
        let started = Date()
        let r = try run(dir, "hang", ["--timeout", "3"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("attribute bad: no batch finished for 3 s: the worker was killed"), r.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(started), 120)
        assertOtherMethodFinished(dir)
        // The rerun retries only the failed unit: with the plugin well-behaved now, the run completes.
        let fixed = try run(dir, "")
        XCTAssertEqual(fixed.status, 0, fixed.stderr)
    }

    /// A plugin that crashes or hangs while it is created does so first in the worker: the run stops
    /// before any work with exit 1 naming the plugin and what happened, instead of dying of the signal
    /// or hanging.
    func testACrashOrHangWhileCreatingStopsTheRunNamingThePlugin() throws {
        let crash = try TestSupport.tempDir("create-segv")
        let r = try run(crash, "create-segv")
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("/attributors/0: plugin org.quac.test.misbehaving crashed while being created (signal \(SIGSEGV)"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: crash.appendingPathComponent("out/attributions").path), "nothing ran")

        let hang = try TestSupport.tempDir("create-hang")
        let started = Date()
        let h = try run(hang, "create-hang", ["--timeout", "2"])
        XCTAssertEqual(h.status, 1, h.stderr)
        XCTAssertTrue(h.stderr.contains("/attributors/0: plugin org.quac.test.misbehaving was not created after 2 s (the worker creating it was killed"), h.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(started), 60)
    }

    /// In-process (--isolation none) the same crash takes the run down: isolation is what saves it.
    func testWithoutIsolationACrashEndsTheRun() throws {
        let dir = try TestSupport.tempDir()
        let r = try run(dir, "abort", ["--isolation", "none"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/scores/saliency.json").path))
    }

    /// Results computed in workers equal in-process ones, bit for bit.
    func testWorkersComputeWhatTheRunWouldInProcess() throws {
        let a = try TestSupport.tempDir("workers-a"), b = try TestSupport.tempDir("workers-b")
        XCTAssertEqual(try run(a, "").status, 0)
        XCTAssertEqual(try run(b, "", ["--isolation", "none"]).status, 0)
        for file in ["attributions/saliency.safetensors", "attributions/bad.safetensors", "scores/saliency.ins.safetensors"] {
            let x = try Safetensors.read(a.appendingPathComponent("out/" + file)), y = try Safetensors.read(b.appendingPathComponent("out/" + file))
            for name in y.names { XCTAssertEqual(x.tensors[name]?.floatArray(), y.tensors[name]?.floatArray(), "\(file) \(name)") }
        }
        // The run records the same classifier and plugins: with a worker, the run's own process records
        // the classifier from its library without creating it (the worker announced what it is).
        func plugins(_ dir: URL) throws -> [JSONValue] {
            try JSONParser.parse(String(contentsOf: dir.appendingPathComponent("out/run.json"), encoding: .utf8))["plugins"]?.arrayValue ?? []
        }
        let isolated = try plugins(a), inProcess = try plugins(b)
        XCTAssertEqual(isolated.count, 4)
        XCTAssertEqual(isolated, inProcess)
        XCTAssertEqual(isolated.first?["plugin"]?.stringValue, "org.quac.mlp-classifier")
        XCTAssertEqual(isolated.first?["library_sha256"]?.stringValue?.count, 64)
    }

    /// The run's own view of a classifier the worker announced: `info` is the announcement, and the
    /// instance is created only when something calls it, once.
    func testAnAnnouncedClassifierIsCreatedOnlyWhenCalled() throws {
        let registry = try PluginRegistry(searchPath: [TestSupport.builtinPlugins])
        let manifest = try registry.manifest(id: "org.quac.mlp-classifier")
        let resolved = try ResolvedPlugin.resolve(manifest, params: ["input_shape": [1, 2, 2], "hidden": 0, "seed": 3], name: "mlp",
                                                  base: URL(fileURLWithPath: "/"), paramsSource: "test")
        let (library, descriptor) = try PluginInstance.openLibrary(manifest)
        let identity = PluginIdentity(manifest: manifest, library: library, descriptor: descriptor, name: "mlp", parameters: resolved.parameters)
        var info = ClassifierInfo(numClasses: 2, sampleShape: [1, 2, 2], hasVJP: true, hasModifiedBackward: true)
        info.hasRandomize = true
        XCTAssertEqual(ClassifierInfo(json: info.json), info)
        XCTAssertNil(ClassifierInfo(json: ["num_classes": 2]))
        var creations = 0
        let announced = AnnouncedClassifier(identity: identity, info: info) {
            creations += 1
            return try PluginInstance(resolved)
        }
        XCTAssertEqual(try announced.info(), info)
        XCTAssertEqual(creations, 0)
        let x = Tensor([0.5, -1, 2, 0.25], shape: [1, 1, 2, 2])
        let logits = try announced.forward(x)
        XCTAssertEqual(creations, 1)
        XCTAssertEqual(logits.floatArray(), try PluginInstance(resolved).forward(x).floatArray())
        _ = try announced.forward(x)
        XCTAssertEqual(creations, 1)
    }
}
