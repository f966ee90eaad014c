import Foundation
import XCTest
@testable import QuacHost

/// Files and limits that used to hang or kill a run: FIFOs named like data, a file-size limit, an
/// empty dataset, names too long for a file name.
final class HostileFilesTests: XCTestCase {
    func manifest(_ dir: URL, data: JSONValue, attributorName: String = "saliency") throws -> URL {
        try TestSupport.writeManifest(dir, [
            "name": "hostile", "output": "out", "seed": 1, "batch_size": 4, "data": data,
            "classifier": ["plugin": "org.quac.mlp-classifier", "params": ["input_shape": [1, 8, 8], "hidden": 6, "seed": 2]],
            "attributors": [["plugin": "org.quac.saliency", "name": .string(attributorName)]],
            "scorers": [],
        ])
    }

    /// Runs quac-host with a wall-clock guard: a hang is a failure, not a stuck suite.
    func quacHost(_ args: [String], seconds: Double = 60, shell prefix: String? = nil) throws -> (status: Int32, signaled: Bool, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        let command = ([TestSupport.hostBinary.path] + args).map { "'\($0)'" }.joined(separator: " ")
        p.arguments = ["-c", (prefix.map { $0 + "; " } ?? "") + "exec " + command]
        var env = ProcessInfo.processInfo.environment
        env["QUAC_PLUGIN_PATH"] = TestSupport.builtinPlugins.path
        p.environment = env
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(seconds)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            XCTFail("quac-host \(args.joined(separator: " ")) hung for \(seconds) s")
        }
        p.waitUntilExit()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (p.terminationStatus, p.terminationReason == .uncaughtSignal, text)
    }

    func testAFIFONamedLikeAnImageOrADataFileIsRefusedNotWaitedOn() throws {
        let dir = try TestSupport.tempDir()
        let images = dir.appendingPathComponent("images")
        for c in ["a", "b"] { try FileManager.default.createDirectory(at: images.appendingPathComponent(c), withIntermediateDirectories: true) }
        try PNGFile.write(RasterImage(width: 8, height: 8, channels: 1, samples: .uint8([UInt8](repeating: 128, count: 64))), to: images.appendingPathComponent("a/one.png"))
        XCTAssertEqual(mkfifo(images.appendingPathComponent("b/pipe.png").path, 0o644), 0)
        let m = try manifest(dir, data: ["format": "image-folder", "path": "images", "size": 8, "channels": 1])
        let r = try quacHost(["run", m.path, "-q"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("b/pipe.png") && r.stderr.contains("not a regular file"), r.stderr)

        XCTAssertEqual(mkfifo(dir.appendingPathComponent("data.safetensors").path, 0o644), 0)
        let fifo = try manifest(dir, data: ["format": "safetensors", "path": "data.safetensors", "x": "images", "label": "labels"])
        let f = try quacHost(["validate", fifo.path])
        let run = f.status == 0 ? try quacHost(["run", fifo.path, "-q"]) : f
        XCTAssertEqual(run.status, 1, run.stderr)
        XCTAssertTrue(run.stderr.contains("data.safetensors") && run.stderr.contains("not a regular file"), run.stderr)
    }

    /// Past `ulimit -f` a write fails with a message and leaves no temporary file (SIGXFSZ ignored).
    func testAFileSizeLimitIsAnErrorWithAMessageNotASignal() throws {
        let dir = try TestSupport.tempDir()
        _ = try TestSupport.writeDataset(dir)
        let m = try manifest(dir, data: ["format": "safetensors", "path": "data.safetensors", "x": "images", "label": "labels", "x_cf": "counterfactuals"])
        // 1 KiB files at most: the first results file is larger.
        let r = try quacHost(["run", m.path, "-q"], shell: "ulimit -f 1")
        XCTAssertFalse(r.signaled, "killed by a signal: \(r.stderr)")
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("File too large"), r.stderr)
        let leftovers = TestSupport.files(under: dir.appendingPathComponent("out")).filter { $0.contains(".tmp-") }
        XCTAssertEqual(leftovers, [], "temporary files left behind")
    }

    func testAnEmptyDatasetIsAnError() throws {
        let dir = try TestSupport.tempDir()
        try Safetensors.write([("images", Tensor([Float](), shape: [0, 1, 8, 8])), ("labels", Tensor([Int64](), shape: [0]))],
                              to: dir.appendingPathComponent("empty.safetensors"))
        let m = try manifest(dir, data: ["format": "safetensors", "path": "empty.safetensors", "x": "images", "label": "labels"])
        let r = try quacHost(["run", m.path, "-q"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("/data") && r.stderr.contains("no samples"), r.stderr)
    }

    func testAMethodNameTooLongForAFileNameIsRefusedByValidate() throws {
        let dir = try TestSupport.tempDir()
        _ = try TestSupport.writeDataset(dir)
        let m = try manifest(dir, data: ["format": "safetensors", "path": "data.safetensors", "x": "images", "label": "labels", "x_cf": "counterfactuals"],
                             attributorName: String(repeating: "n", count: 300))
        let r = try quacHost(["validate", m.path])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("/attributors/0/name"), r.stderr)
    }
}
