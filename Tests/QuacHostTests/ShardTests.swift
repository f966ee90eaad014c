import Foundation
import XCTest
@testable import QuacHost

/// Sharded runs without Slurm: `run --shard I/N` and `merge` give the bytes of an unsharded run, a
/// shard never trains, merge refuses incomplete or foreign shards and writes nothing, and `slurm
/// --dry-run` prints the jobs.
final class ShardTests: XCTestCase {
    /// A trained classifier and random methods and scorers (their noise must be per sample), on 30
    /// samples in batches of 4, so shard boundaries fall inside batches.
    static func fixture(_ dir: URL, output: String = "out", batchSize: Int = 4, smoothgradSamples: Int = 4, name: String? = nil) throws -> URL {
        for (split, count, seed) in [("train", 48, UInt64(1)), ("test", 30, UInt64(2))]
        where !FileManager.default.fileExists(atPath: dir.appendingPathComponent("\(split)/data.safetensors").path) {
            var o = ToyDataset.Options()
            o.count = count; o.size = 8; o.patch = 3; o.seed = seed
            try ToyDataset.write(to: dir.appendingPathComponent(split), options: o)
        }
        return try TestSupport.writeManifest(dir, [
            "name": "sharded", "output": .string(output), "seed": 3, "batch_size": .int(Int64(batchSize)),
            "data": ["format": "safetensors", "path": "test/data.safetensors", "x": "images", "label": "labels", "x_cf": "counterfactuals"],
            "classifier": ["plugin": "org.quac.mlp-classifier", "name": "clf", "params": ["input_shape": [1, 8, 8], "hidden": 4, "epochs": 3],
                           "train": ["data": ["format": "safetensors", "path": "train/data.safetensors", "x": "images", "label": "labels"]]],
            "attributors": [["plugin": "org.quac.saliency", "name": "saliency"], ["plugin": "org.quac.random", "name": "random"],
                            ["plugin": "org.quac.smoothgrad", "name": "smoothgrad", "params": ["nt_samples": .int(Int64(smoothgradSamples))]]],
            "scorers": [["plugin": "org.quac.insertion", "name": "insertion", "params": ["steps": 5]],
                        ["plugin": "org.quac.infidelity", "name": "infidelity"]],
        ], name: name ?? "\(output).json")
    }

    /// The results an unsharded run and a merge must agree on: every tensor and JSON file but the
    /// records (run.json, timings, hashes) and the trained models.
    static func results(_ out: URL) -> [String] {
        TestSupport.files(under: out).filter { f in
            (f.hasSuffix(".safetensors") || f.hasSuffix(".json")) && !f.hasPrefix("models/") && !f.hasPrefix("shards/")
                && !f.hasPrefix("timings/") && !f.hasPrefix("slurm/") && f != "run.json" && !f.split(separator: "/").contains { $0.hasPrefix(".") }
        }
    }

    func run(_ args: [String], _ why: String = "") throws -> TestSupport.CommandResult {
        let r = try TestSupport.quacHost(args)
        XCTAssertEqual(r.status, 0, "\(args.joined(separator: " ")) \(why): \(r.stderr)")
        return r
    }

    func testShardsMergeIntoTheBytesOfTheUnshardedRun() throws {
        let dir = try TestSupport.tempDir()
        let manifest = try Self.fixture(dir)
        let out = dir.appendingPathComponent("out")
        try run(["train", manifest.path, "-q"])
        try run(["run", manifest.path, "-q"])
        let files = Self.results(out)
        XCTAssertTrue(files.contains("attributions/smoothgrad.safetensors") && files.contains("scores/random.json"), "\(files)")
        var single: [String: Data] = [:]
        for f in files { single[f] = try Data(contentsOf: out.appendingPathComponent(f)) }
        for f in files { try FileManager.default.removeItem(at: out.appendingPathComponent(f)) }

        // Three shards of 30 samples in batches of 4: 0..<10, 10..<20, 20..<30.
        for i in 0..<3 { try run(["run", manifest.path, "--shard", "\(i)/3", "-q"], "shard \(i)") }
        let middle = try Safetensors.read(out.appendingPathComponent("shards/1-of-3/attributions/random.safetensors"))
        XCTAssertEqual(middle.tensors["attribution"]!.shape.first, 10)
        XCTAssertEqual(middle.metadata[ResultsStore.shardKey], "1/3")
        let merged = try run(["merge", out.path])
        XCTAssertTrue(merged.stdout.contains("merged 3 shards (30 samples"), merged.stdout)

        XCTAssertEqual(Self.results(out), files, "the merge writes the files of the unsharded run, no more, no fewer")
        for f in files {
            let bytes = try Data(contentsOf: out.appendingPathComponent(f))
            XCTAssertTrue(bytes == single[f], "\(f): the merge differs from the unsharded run (\(bytes.count) vs \(single[f]?.count ?? 0) bytes)")
        }
        XCTAssertNil(try Safetensors.read(out.appendingPathComponent("attributions/random.safetensors")).metadata[ResultsStore.shardKey])
        let timing = try JSONParser.parse(String(contentsOf: out.appendingPathComponent("timings/saliency.json"), encoding: .utf8))
        XCTAssertEqual(timing["samples"]?.intValue, 30, "the shards' times add up over all samples")

        // A rerun of a finished shard reuses every unit.
        let again = try run(["run", manifest.path, "--shard", "2/3", "--json"])
        let summary = try JSONParser.parse(again.stdout)
        XCTAssertEqual(summary["computed"]?.arrayValue?.count, 0, again.stdout)
        XCTAssertEqual(summary["shard"]?.stringValue, "2/3")

        // The batch size changes no sample's results: maps made in batches of 7 equal those made in 4.
        let seven = try Self.fixture(dir, output: "out7", batchSize: 7)
        try run(["train", seven.path, "-q"])
        try run(["run", seven.path, "-q", "--isolation", "none"])
        for method in ["random", "smoothgrad", "saliency"] {
            let a = try Safetensors.read(out.appendingPathComponent("attributions/\(method).safetensors")).tensors["attribution"]!
            let b = try Safetensors.read(dir.appendingPathComponent("out7/attributions/\(method).safetensors")).tensors["attribution"]!
            XCTAssertTrue(a.bitwiseEqual(b), "\(method): batches of 7 and of 4 give other maps")
        }
    }

    func testAShardNeverTrains() throws {
        let dir = try TestSupport.tempDir()
        let manifest = try Self.fixture(dir)
        let r = try TestSupport.quacHost(["run", manifest.path, "--shard", "0/2", "-q"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("/classifier/train") && r.stderr.contains("a shard does not train")
                      && r.stderr.contains("quac-host train \(manifest.path)"), r.stderr)
        let out = dir.appendingPathComponent("out")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("models").path), "nothing was trained")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("shards/0-of-2/shard.json").path), "the shard is not finished")

        // Bad shard specifications.
        for (spec, words) in [("2/2", "0..1"), ("1", "expected I/N"), ("0/0", "at least 1")] {
            let bad = try TestSupport.quacHost(["run", manifest.path, "--shard", spec, "-q"])
            XCTAssertEqual(bad.status, 1, "--shard \(spec): \(bad.stderr)")
            XCTAssertTrue(bad.stderr.contains("--shard") && bad.stderr.contains(words), "--shard \(spec): \(bad.stderr)")
        }
    }

    func testMergeNamesMissingUnfinishedDuplicateAndForeignShardsAndWritesNothing() throws {
        let dir = try TestSupport.tempDir()
        let manifest = try Self.fixture(dir)
        let out = dir.appendingPathComponent("out"), shards = out.appendingPathComponent("shards")
        let fm = FileManager.default
        try run(["train", manifest.path, "-q"])
        for i in 0..<3 { try run(["run", manifest.path, "--shard", "\(i)/3", "-q", "--isolation", "none"], "shard \(i)") }

        func refused(_ words: [String], _ args: [String] = [], _ what: String) throws {
            let before = TestSupport.files(under: out)
            let r = try TestSupport.quacHost(["merge", out.path] + args)
            XCTAssertEqual(r.status, 1, "\(what): \(r.stderr)")
            for w in words { XCTAssertTrue(r.stderr.contains(w), "\(what): \(r.stderr) lacks \(w)") }
            XCTAssertEqual(TestSupport.files(under: out), before, "\(what): the refused merge wrote something")
        }
        let parked = dir.appendingPathComponent("parked")
        try fm.moveItem(at: shards.appendingPathComponent("2-of-3"), to: parked)
        try refused(["2-of-3 (no folder)", "nothing was written"], [], "missing shard")
        try fm.moveItem(at: parked, to: shards.appendingPathComponent("2-of-3"))

        let record = shards.appendingPathComponent("1-of-3/shard.json")
        let kept = try Data(contentsOf: record)
        try fm.removeItem(at: record)
        try refused(["1-of-3 (unfinished"], [], "unfinished shard")
        try kept.write(to: record)

        try fm.copyItem(at: shards.appendingPathComponent("1-of-3"), to: shards.appendingPathComponent("01-of-3"))
        try refused(["01-of-3 and 1-of-3 (duplicate"], [], "duplicate shard")
        try fm.removeItem(at: shards.appendingPathComponent("01-of-3"))

        // A shard's folder holding another shard's samples.
        try fm.moveItem(at: shards.appendingPathComponent("2-of-3"), to: parked)
        try fm.copyItem(at: shards.appendingPathComponent("1-of-3"), to: shards.appendingPathComponent("2-of-3"))
        try refused(["2-of-3 (its shard.json is not that of shard 2 of 3)"], [], "a copy of another shard")
        try fm.removeItem(at: shards.appendingPathComponent("2-of-3"))
        try fm.moveItem(at: parked, to: shards.appendingPathComponent("2-of-3"))

        // A shard run with other settings (here another number of SmoothGrad samples) into the same output.
        let other = try Self.fixture(dir, output: "out", smoothgradSamples: 5, name: "other.json")
        try fm.moveItem(at: shards.appendingPathComponent("1-of-3"), to: parked)
        try run(["run", other.path, "--shard", "1/3", "-q", "--isolation", "none"], "the other manifest's shard")
        try refused(["1-of-3 (made by another manifest", "inconsistent shards"], [], "foreign shard")
        try fm.removeItem(at: shards.appendingPathComponent("1-of-3"))
        try fm.moveItem(at: parked, to: shards.appendingPathComponent("1-of-3"))

        let tooMany = try TestSupport.quacHost(["run", manifest.path, "--shard", "0/31", "-q"])
        XCTAssertTrue(tooMany.status == 1 && tooMany.stderr.contains("--shard 0/31: 31 shards of 30 samples") && tooMany.stderr.contains("at most 30"), tooMany.stderr)
        XCTAssertFalse(fm.fileExists(atPath: shards.appendingPathComponent("0-of-31").path), "a refused shard leaves no folder")

        // Shards of two runs: merge asks which.
        try run(["run", manifest.path, "--shard", "0/2", "-q", "--isolation", "none"], "a shard of 2")
        try refused(["of 2, 3 shards", "--shards N"], [], "two runs' shards")
        try run(["merge", out.path, "--shards", "3"], "choosing the run of 3 shards")
        XCTAssertEqual(try Safetensors.read(out.appendingPathComponent("predictions.safetensors")).tensors["logits"]!.shape.first, 30)
    }

    func testSlurmDryRunPrintsTheJobsAndWritesNothing() throws {
        let dir = try TestSupport.tempDir()
        let manifest = try Self.fixture(dir)
        let out = dir.appendingPathComponent("out")
        let r = try run(["slurm", manifest.path, "--shards", "3", "--dry-run", "--partition", "gpu", "--time", "2:00:00",
                         "--cpus-per-task", "4", "--mem", "16G", "--isolation", "none"])
        let text = r.stdout
        let host = TestSupport.hostBinary.resolvingSymlinksInPath().path
        let m = manifest.standardizedFileURL.path
        for line in ["#SBATCH --job-name=quac-sharded-train", "exec '\(host)' train '\(m)' --isolation none",
                     "#SBATCH --array=0-2", "#SBATCH --output=\(out.path)/slurm/logs/shard-%a-of-3.log",
                     "exec '\(host)' run '\(m)' --shard \"${SLURM_ARRAY_TASK_ID}/3\" --isolation none",
                     "exec '\(host)' merge '\(out.path)' --shards 3",
                     "#SBATCH --partition=gpu", "#SBATCH --time=2:00:00", "#SBATCH --cpus-per-task=4", "#SBATCH --mem=16G",
                     "#SBATCH --kill-on-invalid-dep=yes",
                     "sbatch --parsable --dependency=afterok:<train job id> \(out.path)/slurm/shards.sbatch",
                     "sbatch --parsable --dependency=afterok:<shards job id> \(out.path)/slurm/merge.sbatch"] {
            XCTAssertTrue(text.contains(line), "the dry run lacks \(line):\n\(text)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "a dry run writes nothing")

        // Resubmitting shard 1: its task and a merge, no training.
        let only = try run(["slurm", manifest.path, "--shards", "3", "--only", "1", "--dry-run"]).stdout
        XCTAssertTrue(only.contains("#SBATCH --array=1\n") && only.contains("merge '\(out.path)' --shards 3"), only)
        XCTAssertFalse(only.contains("train.sbatch"), only)

        // A manifest that trains nothing has no training job.
        var plain = try JSONParser.parse(String(contentsOf: manifest, encoding: .utf8)).objectValue!
        plain["classifier"] = ["plugin": "org.quac.mlp-classifier", "params": ["num_classes": 2, "input_shape": [1, 8, 8], "hidden": 0,
                                                                               "weights": "test/model.safetensors"]]
        let untrained = try TestSupport.writeManifest(dir, .object(plain), name: "plain.json")
        let noTrain = try run(["slurm", untrained.path, "--shards", "2", "--dry-run"]).stdout
        XCTAssertFalse(noTrain.contains("train.sbatch"), noTrain)
        XCTAssertTrue(noTrain.contains("#SBATCH --array=0-1"), noTrain)

        for (args, words) in [(["--shards", "3", "--only", "3"], "--only: shard 3"), (["--shards", "0"], "--shards")] {
            let bad = try TestSupport.quacHost(["slurm", manifest.path, "--dry-run"] + args)
            XCTAssertEqual(bad.status, 1, bad.stderr)
            XCTAssertTrue(bad.stderr.contains(words), bad.stderr)
        }
    }
}
