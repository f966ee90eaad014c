import Foundation
import XCTest
@testable import QuacHost

/// `quac-host slurm` on a real single-node Slurm (scripts/slurm-local.sh): a training job, 4 shards
/// after it and a merge after them give the bytes of the unsharded run of the same manifest.
final class SlurmTests: XCTestCase {
    func testFourShardsOnSlurmEqualTheUnshardedRun() throws {
        let dir = try TestSupport.tempDir()
        let slurm = dir.appendingPathComponent("slurm")
        let script = TestSupport.repoRoot.appendingPathComponent("scripts/slurm-local.sh")
        let start = try TestSupport.run(URL(fileURLWithPath: "/bin/bash"), [script.path, "start", slurm.path])
        defer { _ = try? TestSupport.run(URL(fileURLWithPath: "/bin/bash"), [script.path, "stop", slurm.path]) }
        guard start.status == 0 else {
            throw XCTSkip("no single-node Slurm here: \(start.stderr.trimmingCharacters(in: .whitespacesAndNewlines)) (scripts/setup.sh --test installs slurm-wlm and munge; slurmd needs root)")
        }
        let env = ["SLURM_CONF": slurm.appendingPathComponent("slurm.conf").path]

        // The unsharded run, in a folder of its own.
        let single = try ShardTests.fixture(dir, output: "single")
        var clock = Date()
        for args in [["train", single.path, "-q"], ["run", single.path, "-q"]] {
            let r = try TestSupport.quacHost(args, env: env)
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        let singleSeconds = Date().timeIntervalSince(clock)

        // The same manifest on Slurm: training, 4 shards, merge.
        let sharded = try ShardTests.fixture(dir, output: "sharded")
        clock = Date()
        let submitted = try TestSupport.quacHost(["slurm", sharded.path, "--shards", "4"], env: env)
        XCTAssertEqual(submitted.status, 0, submitted.stderr)
        let ids = submitted.stdout.components(separatedBy: "job ").dropFirst().compactMap { $0.split(separator: " ").first.map(String.init) }
        XCTAssertEqual(ids.count, 3, "a training job, a shard array and a merge job: \(submitted.stdout)")
        XCTAssertTrue(submitted.stdout.contains("squeue -j \(ids.joined(separator: ","))"), submitted.stdout)
        let squeue = URL(fileURLWithPath: "/usr/bin/squeue")
        var pending = true
        while pending && Date().timeIntervalSince(clock) < 180 {
            Thread.sleep(forTimeInterval: 0.5)
            let q = try TestSupport.run(squeue, ["-h", "-j", ids.joined(separator: ",")], env: env)
            pending = q.status == 0 && !q.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
        }
        let slurmSeconds = Date().timeIntervalSince(clock)
        XCTAssertFalse(pending, "the jobs did not finish in 180 s")
        print(String(format: "SlurmTests: unsharded train+run %.1f s; slurm training + 4 shards + merge %.1f s (submission to the end of the merge)",
                     singleSeconds, slurmSeconds))

        let out = dir.appendingPathComponent("sharded"), logs = out.appendingPathComponent("slurm/logs")
        func log(_ name: String) -> String { (try? String(contentsOf: logs.appendingPathComponent(name), encoding: .utf8)) ?? "(no log)" }
        XCTAssertTrue(log("train.log").contains("trained: clf"), log("train.log"))
        for i in 0..<4 { XCTAssertTrue(log("shard-\(i)-of-4.log").contains("shards/\(i)-of-4"), log("shard-\(i)-of-4.log")) }
        XCTAssertTrue(log("merge.log").contains("merged 4 shards (30 samples"), log("merge.log"))

        let expected = ShardTests.results(dir.appendingPathComponent("single"))
        XCTAssertFalse(expected.isEmpty)
        XCTAssertEqual(ShardTests.results(out), expected)
        for f in expected {
            let a = try Data(contentsOf: dir.appendingPathComponent("single").appendingPathComponent(f))
            let b = try? Data(contentsOf: out.appendingPathComponent(f))
            XCTAssertTrue(a == b, "\(f): the Slurm run's merge differs from the unsharded run")
        }
        // Training ran once, as its own job: the shards reused its model, which equals the unsharded run's.
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("models/clf.safetensors")),
                       try Data(contentsOf: dir.appendingPathComponent("single/models/clf.safetensors")))
    }
}
