import Foundation
import XCTest
@testable import QuacHost

/// Ctrl-C: the run stops after the current batch, keeps what it finished, and exits 130 (the shell's
/// code for SIGINT), not 1, which the CLI reserves for bad input.
final class CancellationTests: XCTestCase {
    func testInterruptedRunExits130AndKeepsFinishedWork() throws {
        let dir = try TestSupport.tempDir()
        let data = try TestSupport.quacHost(["data", "toy", "--output", dir.appendingPathComponent("data").path, "--count", "64", "--size", "16"])
        XCTAssertEqual(data.status, 0, data.stderr)
        // One sample per batch and a slow method: the run is still attributing when the signal comes.
        let manifest = try TestSupport.writeManifest(dir, [
            "name": "interrupted", "output": "out", "batch_size": 1,
            "data": ["format": "safetensors", "path": "data/data.safetensors", "x": "images", "label": "labels"],
            "classifier": ["plugin": "org.quac.mlp-classifier", "params": ["input_shape": [1, 16, 16], "hidden": 64]],
            "attributors": [["plugin": "org.quac.smoothgrad", "params": ["nt_samples": 200, "nt_samples_batch_size": 1]]],
        ])
        let p = Process()
        p.executableURL = TestSupport.hostBinary
        p.arguments = ["run", manifest.path]
        var env = ProcessInfo.processInfo.environment
        env["QUAC_PLUGIN_PATH"] = TestSupport.builtinPlugins.path
        p.environment = env
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let predictions = dir.appendingPathComponent("out/predictions.safetensors")
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: predictions.path) && p.isRunning && Date() < deadline { usleep(20_000) }
        XCTAssertTrue(p.isRunning, "the run ended before it could be interrupted")
        kill(p.processIdentifier, SIGINT)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 130, stderr)
        XCTAssertTrue(stderr.contains("cancelled"), stderr)
        // Finished work stays; the interrupted stage left neither a result nor a temporary file.
        let files = TestSupport.files(under: dir.appendingPathComponent("out"))
        XCTAssertTrue(files.contains("predictions.safetensors"), "\(files)")
        XCTAssertFalse(files.contains { $0.hasPrefix("attributions/") || $0.contains(".tmp") }, "\(files)")
    }
}
