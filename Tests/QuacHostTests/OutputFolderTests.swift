import Foundation
import XCTest
@testable import QuacHost

/// One writer per results folder, no writing into folders that are not results folders, and no reading
/// of a folder whose files were computed on different samples.
final class OutputFolderTests: XCTestCase {
    /// A small working pipeline (6 samples 1x8x8, an MLP, saliency and random, insertion) writing to
    /// `output`, with `limit` samples.
    func manifest(_ dir: URL, output: String = "out", limit: Int = 6, name: String = "pipeline.json") throws -> URL {
        _ = try TestSupport.writeDataset(dir)
        return try TestSupport.writeManifest(dir, [
            "name": "lock", "output": .string(output), "seed": 1, "batch_size": 4,
            "data": ["format": "safetensors", "path": "data.safetensors", "x": "images", "label": "labels",
                     "x_cf": "counterfactuals", "limit": .int(Int64(limit))],
            "classifier": ["plugin": "org.quac.mlp-classifier", "params": ["input_shape": [1, 8, 8], "hidden": 6, "seed": 2]],
            "attributors": [["plugin": "org.quac.saliency", "name": "saliency"], ["plugin": "org.quac.random", "name": "random"]],
            "scorers": [["plugin": "org.quac.insertion", "name": "ins", "params": ["steps": 4]]],
        ], name: name)
    }

    func testASecondWriterIsRefusedNamingTheHolder() throws {
        let dir = try TestSupport.tempDir()
        let m = try manifest(dir)
        let out = dir.appendingPathComponent("out")
        let lock = try OutputLock(writing: out, force: false)
        let refused = try TestSupport.quacHost(["run", m.path, "-q"])
        XCTAssertEqual(refused.status, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("\(out.path) is in use by another quac-host (pid \(getpid()), started "), refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("inputs.safetensors").path), "the refused run wrote")
        let train = try TestSupport.quacHost(["train", m.path, "-q"])
        XCTAssertEqual(train.status, 1, train.stderr)
        lock.release()
        let ok = try TestSupport.quacHost(["run", m.path, "-q"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        // Readers wait for no one once the run is over, and are refused while a run holds the folder.
        XCTAssertEqual(try TestSupport.quacHost(["compare", out.path, "--json"]).status, 0)
        let again = try OutputLock(writing: out, force: false)
        let compare = try TestSupport.quacHost(["compare", out.path, "--json"])
        XCTAssertEqual(compare.status, 1)
        XCTAssertTrue(compare.stderr.contains("is being written by a quac-host run (pid \(getpid())"), compare.stderr)
        let report = try TestSupport.quacHost(["report", out.path])
        XCTAssertEqual(report.status, 1, report.stderr)
        again.release()
    }

    /// A lock dies with its process: a run killed with SIGKILL leaves a folder the next run can use.
    func testALockDoesNotOutliveItsProcess() throws {
        let dir = try TestSupport.tempDir()
        let out = dir.appendingPathComponent("out")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        // One process (bash, then sleep in its place) holds the same kind of lock on the same file.
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        p.arguments = ["bash", "-c", "exec 9>>'\(out.appendingPathComponent(OutputLock.fileName).path)'; flock 9; exec sleep 30"]
        try p.run()
        var held = false
        for _ in 0..<100 where !held {
            held = (try? OutputLock(writing: out, force: false)) == nil
            if !held { usleep(20_000) }
        }
        XCTAssertTrue(held, "flock took the lock")
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTAssertNoThrow(try OutputLock(writing: out, force: false))
    }

    func testAFolderThatIsNotAResultsFolderIsNotWrittenIntoWithoutForce() throws {
        let dir = try TestSupport.tempDir()
        let m = try manifest(dir, output: "mine")
        let mine = dir.appendingPathComponent("mine")
        try FileManager.default.createDirectory(at: mine, withIntermediateDirectories: true)
        try "my notes".write(to: mine.appendingPathComponent("notes.txt"), atomically: true, encoding: .utf8)
        let refused = try TestSupport.quacHost(["run", m.path, "-q"])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("output \(mine.path) exists and is not a quac-host results folder"), refused.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: mine.path), ["notes.txt"], "nothing written")
        let forced = try TestSupport.quacHost(["run", m.path, "-q", "--force"])
        XCTAssertEqual(forced.status, 0, forced.stderr)
        XCTAssertEqual(try String(contentsOf: mine.appendingPathComponent("notes.txt"), encoding: .utf8), "my notes")
        // Once it holds results it is a results folder: no --force needed any more.
        XCTAssertEqual(try TestSupport.quacHost(["run", m.path, "-q"]).status, 0)
    }

    /// Files computed on other samples than inputs.safetensors (two runs with different limits mixed
    /// in one folder) are refused by compare and report, naming the file; a rerun repairs the folder.
    func testAFolderWithFilesOfDifferentInputsIsRefused() throws {
        let dir = try TestSupport.tempDir()
        let all = try manifest(dir, limit: 6)
        XCTAssertEqual(try TestSupport.quacHost(["run", all.path, "-q"]).status, 0)
        let out = dir.appendingPathComponent("out")
        let stale = dir.appendingPathComponent("random-of-6.safetensors")
        try FileManager.default.copyItem(at: out.appendingPathComponent("attributions/random.safetensors"), to: stale)
        let fewer = try manifest(dir, limit: 4, name: "fewer.json")
        XCTAssertEqual(try TestSupport.quacHost(["run", fewer.path, "-q"]).status, 0)
        let file = out.appendingPathComponent("attributions/random.safetensors")
        try FileManager.default.removeItem(at: file)
        try FileManager.default.copyItem(at: stale, to: file)
        for command in [["compare", out.path], ["report", out.path]] {
            let r = try TestSupport.quacHost(command)
            XCTAssertEqual(r.status, 1, "\(command[0]): \(r.stdout)")
            XCTAssertTrue(r.stderr.contains("\(file.path): computed on other samples than"), r.stderr)
        }
        XCTAssertEqual(try TestSupport.quacHost(["run", fewer.path, "-q"]).status, 0)
        XCTAssertEqual(try TestSupport.quacHost(["compare", out.path]).status, 0)
    }
}
