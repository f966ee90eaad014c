import Foundation

/// `shard.json`: what a shard run that finished every unit writes last into its folder, and all that
/// merge needs to check the shards belong together: which slice of how many samples it holds, a
/// fingerprint of what produced it (tool, manifest, data, plugins and trained models), and its files.
enum ShardRecord {
    static func write(_ run: RunState, shard: Shard, seconds: Double) throws {
        let rows = run.rowOffset..<(run.rowOffset + run.samples.count)
        let record: JSONValue = [
            "shard": .int(Int64(shard.index)), "of": .int(Int64(shard.count)),
            "rows": [.int(Int64(rows.lowerBound)), .int(Int64(rows.upperBound))],
            "samples": .int(Int64(run.totalSamples)),
            "run": .string(try runFingerprint(run)),
            "inputs": run.store.inputsFingerprint.map { .string($0) } ?? .null,
            "seconds": .double(seconds),
            "files": .array(try resultFiles(in: run.store.root).map { .string($0) }),
        ]
        try run.store.writeJSON(Shard.recordFile, record)
    }

    /// Equal for shards of one run: the tool, the manifest, the data, the seed and every plugin's
    /// identity, library hash, parameters and trained model (not the library's path, which may differ
    /// between the machines of a cluster).
    static func runFingerprint(_ run: RunState) throws -> String {
        var plugins = [run.classifierRecord]
        for (use, _) in run.manifest.pluginUses where use.pointer != "/classifier" { plugins.append(try run.record(try run.instance(use))) }
        let portable = plugins.map { p -> JSONValue in
            guard var o = p.objectValue else { return p }
            o["library"] = nil
            return .object(o)
        }
        return Fingerprint.of(["tool_version": .string(PipelineRunner.toolVersion), "manifest": run.manifest.raw,
                               "data": .string(run.dataFingerprint), "seed": .int(Int64(run.manifest.seed)),
                               "plugins": .array(portable)])
    }

    /// The results files of a folder, relative and sorted: tensor and JSON files, without the run's and
    /// the shard's records and hidden files (locks, hashes, temporary files).
    static func resultFiles(in root: URL) throws -> [String] {
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey]) else { return [] }
        var files: [String] = []
        let base = root.standardizedFileURL.path + "/"
        for case let url as URL in walker {
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true else { continue }
            let path = url.standardizedFileURL.path
            guard path.hasPrefix(base) else { continue }
            let relative = String(path.dropFirst(base.count))
            if relative.split(separator: "/").contains(where: { $0.hasPrefix(".") }) { continue }
            guard relative.hasSuffix(".safetensors") || relative.hasSuffix(".json") else { continue }
            if relative == "run.json" || relative == Shard.recordFile { continue }
            files.append(relative)
        }
        return files.sorted()
    }
}
