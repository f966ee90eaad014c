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

    /// Every results file renamed into place is followed by an fsync of its folder (a rename lives in
    /// the folder; without it a power cut can forget the file). Watched with strace, when it can trace.
    func testEveryRenameIntoTheResultsFolderIsFollowedByAnFsyncOfTheFolder() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/strace"),
              (try? TestSupport.run(URL(fileURLWithPath: "/usr/bin/strace"), ["-f", "-o", "/dev/null", "true"]).status) == 0 else {
            throw XCTSkip("strace is missing or cannot trace here (scripts/setup.sh --test installs it)")
        }
        let dir = try TestSupport.tempDir()
        _ = try TestSupport.writeDataset(dir)
        let m = try manifest(dir, data: ["format": "safetensors", "path": "data.safetensors", "x": "images", "label": "labels", "x_cf": "counterfactuals"])
        let trace = dir.appendingPathComponent("trace.txt")
        var env = ProcessInfo.processInfo.environment
        env["QUAC_PLUGIN_PATH"] = TestSupport.builtinPlugins.path
        let r = try TestSupport.run(URL(fileURLWithPath: "/usr/bin/strace"),
                                    ["-f", "-e", "trace=rename,renameat,renameat2,openat,fsync,close", "-o", trace.path,
                                     TestSupport.hostBinary.path, "run", "-q", "--isolation", "none", m.path], cwd: dir, env: env)
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = dir.appendingPathComponent("out").path
        // Per traced process: the renames into out/, and the folders opened with O_DIRECTORY then fsynced.
        var pendingFolders: [String] = [], openDirs: [String: String] = [:]
        var renames = 0
        for line in try String(contentsOf: trace, encoding: .utf8).split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 1)
            guard fields.count == 2 else { continue }
            let pid = String(fields[0]), call = fields[1].trimmingCharacters(in: .whitespaces)   // strace pads short pids
            let quoted = call.split(separator: "\"").enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
            if call.hasPrefix("rename"), call.hasSuffix("= 0"), let target = quoted.last, target.hasPrefix(out) {
                renames += 1
                pendingFolders.append(URL(fileURLWithPath: target).deletingLastPathComponent().path)
            } else if call.hasPrefix("openat("), call.contains("O_DIRECTORY"), let path = quoted.first,
                      let fd = call.split(separator: "=").last.map({ $0.trimmingCharacters(in: .whitespaces) }) {
                openDirs[pid + "/" + fd] = path
            } else if call.hasPrefix("fsync("), let fd = call.dropFirst("fsync(".count).split(separator: ")").first,
                      let folder = openDirs[pid + "/" + fd] {
                pendingFolders.removeAll { $0 == folder }
            } else if call.hasPrefix("close("), let fd = call.dropFirst("close(".count).split(separator: ")").first {
                openDirs[pid + "/" + fd] = nil   // the number may name a file next
            }
        }
        XCTAssertGreaterThan(renames, 5, "results files renamed into place")
        XCTAssertEqual(pendingFolders, [], "folders not fsynced after a rename into them")
    }
}
