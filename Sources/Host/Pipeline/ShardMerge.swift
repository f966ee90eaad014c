import Foundation

/// `quac-host merge OUTPUT`: joins the shards under `OUTPUT/shards/` into the results layout an
/// unsharded run writes. Every check comes before the first write: the shards must be complete (each
/// wrote its shard.json), of one run (the same fingerprint of tool, manifest, data and plugins), cover
/// every sample exactly once, and hold the same files with the same fingerprints. Tensor files are
/// joined row by row with the metadata an unsharded run writes; per-sample JSON arrays are joined;
/// statistics (medians, quartiles, means) are computed again over all the samples.
public enum ShardMerge {
    public struct Result {
        public var output: URL
        public var shards: Int
        public var samples: Int
        public var files: [String]
    }

    struct Member {
        let shard: Shard
        let root: URL
        let rows: Range<Int>
        let record: JSONValue
        var name: String { shard.folderName }
    }

    /// Merges the shards of `output`; `count` picks the N of `<I>-of-<N>` folders when several are there.
    public static func merge(output: URL, count: Int? = nil) throws -> Result {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: output.path, isDirectory: &isFolder), isFolder.boolValue else {
            throw QuacError("cannot merge \(output.path): no such folder")
        }
        let lock = try OutputLock(writing: output, force: false)
        defer { lock.release() }
        let members = try members(output, count: count)
        // No shard may be rewritten while it is read (a shard run again holds its folder).
        let reading = try members.map { try OutputLock.reading($0.root) }
        defer { for l in reading { l?.release() } }
        let first = members[0]
        let files = first.record["files"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let total = first.record["samples"]?.intValue.map(Int.init) ?? 0

        // Check every file of every shard before writing anything.
        var plans: [() throws -> Void] = []
        for file in files {
            if file.hasSuffix(".safetensors") {
                plans.append(try tensorFile(file, members, into: output))
            } else if file.hasPrefix("scores/") {
                plans.append(try scoresFile(file, members, into: output))
            } else if file.hasPrefix("timings/") {
                plans.append(try timingFile(file, members, into: output))
            } else {
                plans.append(try jsonFile(file, members, into: output))
            }
        }
        guard var run = readJSON(first.root.appendingPathComponent("run.json"))?.objectValue else {
            throw QuacError("cannot merge \(output.path): \(first.root.appendingPathComponent("run.json").path) is missing or not JSON")
        }
        run["shard"] = nil
        run["merged_shards"] = .int(Int64(members.count))
        for plan in plans { try plan() }
        try AtomicFile.write(JSONValue.object(run).serialized(pretty: true) + "\n", to: output.appendingPathComponent("run.json"))
        return Result(output: output, shards: members.count, samples: total, files: files + ["run.json"])
    }

    // MARK: The shards

    /// The shards to merge, by index; throws naming every missing, unfinished, duplicate or foreign one.
    static func members(_ output: URL, count: Int?) throws -> [Member] {
        let folder = output.appendingPathComponent(Shard.folder)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        var found: [(name: String, index: Int, count: Int)] = []
        for name in names.sorted() {
            let parts = name.components(separatedBy: "-of-")
            guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n > 0, i >= 0, i < n else { continue }
            found.append((name, i, n))
        }
        guard !found.isEmpty else {
            throw QuacError("cannot merge \(output.path): \(folder.path) holds no shard folders (<I>-of-<N>, written by quac-host run --shard I/N)")
        }
        let counts = Set(found.map(\.count)).sorted()
        let n: Int
        if let count {
            guard counts.contains(count) else {
                throw QuacError("cannot merge \(output.path): no shards of \(count) there (found shards of \(counts.map(String.init).joined(separator: ", ")))")
            }
            n = count
        } else {
            guard counts.count == 1 else {
                throw QuacError("cannot merge \(output.path): shards of different runs are there (of \(counts.map(String.init).joined(separator: ", ")) shards); pass --shards N to merge the run of N shards, or remove the others")
            }
            n = counts[0]
        }
        let ours = found.filter { $0.count == n }
        var problems: [String] = []
        var members: [Member] = []
        for i in 0..<n {
            let candidates = ours.filter { $0.index == i }
            guard let c = candidates.first else { problems.append("\(i)-of-\(n) (no folder)"); continue }
            if candidates.count > 1 {
                problems.append("\(candidates.map(\.name).joined(separator: " and ")) (duplicate folders of shard \(i))")
                continue
            }
            let root = folder.appendingPathComponent(c.name)
            guard let record = readJSON(root.appendingPathComponent(Shard.recordFile)) else {
                problems.append("\(c.name) (unfinished: it has no \(Shard.recordFile); run that shard again)")
                continue
            }
            guard record["shard"]?.intValue == Int64(i), record["of"]?.intValue == Int64(n),
                  let r = record["rows"]?.arrayValue?.compactMap(\.intValue), r.count == 2 else {
                problems.append("\(c.name) (its \(Shard.recordFile) is not that of shard \(i) of \(n))")
                continue
            }
            guard record["samples"]?.intValue != nil, record["files"]?.arrayValue != nil else {
                problems.append("\(c.name) (its \(Shard.recordFile) lacks \"samples\" or \"files\")")
                continue
            }
            members.append(Member(shard: try Shard(index: i, count: n), root: root, rows: Int(r[0])..<Int(r[1]), record: record))
        }
        guard problems.isEmpty else {
            throw QuacError("cannot merge \(output.path): missing or unusable shards: \(problems.joined(separator: "; ")); nothing was written")
        }
        // One run: the reference is the shard whose fingerprint, sample count and files most shards
        // share (the first such on a tie); the others are named.
        func identity(_ m: Member) -> String {
            [m.record["run"]?.stringValue ?? "", String(m.record["samples"]?.intValue ?? -1),
             (m.record["files"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: "\n")].joined(separator: "|")
        }
        let tally = Dictionary(members.map { (identity($0), 1) }, uniquingKeysWith: +)
        let reference = members.max { tally[identity($0)]! < tally[identity($1)]! || (tally[identity($0)]! == tally[identity($1)]! && $0.shard.index > $1.shard.index) }!
        let total = Int(reference.record["samples"]?.intValue ?? 0)
        let referenceFiles = Set((reference.record["files"]?.arrayValue ?? []).compactMap(\.stringValue))
        for m in members where m.shard != reference.shard {
            if m.record["run"] != reference.record["run"] {
                problems.append("\(m.name) (made by another manifest, data, plugin or trained model than \(reference.name))")
            } else if m.record["samples"] != reference.record["samples"] {
                problems.append("\(m.name) (a slice of \(m.record["samples"]?.intValue ?? 0) samples, \(reference.name) of \(total))")
            } else {
                let files = Set((m.record["files"]?.arrayValue ?? []).compactMap(\.stringValue))
                let lacking = referenceFiles.subtracting(files).sorted(), extra = files.subtracting(referenceFiles).sorted()
                if !lacking.isEmpty { problems.append("\(m.name) (lacks \(lacking.joined(separator: ", ")))") }
                if !extra.isEmpty { problems.append("\(m.name) (has \(extra.joined(separator: ", ")), which \(reference.name) has not)") }
            }
        }
        // Every sample exactly once: each shard holds the rows its index gives.
        for m in members where m.rows != m.shard.rows(of: total) {
            let want = m.shard.rows(of: total)
            problems.append("\(m.name) (holds samples \(m.rows.lowerBound)..<\(m.rows.upperBound); shard \(m.shard.tag) of \(total) samples is \(want.lowerBound)..<\(want.upperBound))")
        }
        guard problems.isEmpty else {
            throw QuacError("cannot merge \(output.path): inconsistent shards: \(problems.joined(separator: "; ")); nothing was written")
        }
        return members
    }

    // MARK: Files

    static func readJSON(_ url: URL) -> JSONValue? {
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        return try? JSONParser.parse([UInt8](data))
    }

    static func fail(_ output: URL, _ m: Member, _ file: String, _ why: String) -> QuacError {
        QuacError("cannot merge \(output.path): inconsistent shards: \(m.name) (\(file): \(why)); nothing was written")
    }

    /// A tensor file: every shard's, checked (the same tensors and metadata, one row per sample), and
    /// the plan that writes them joined row by row.
    static func tensorFile(_ file: String, _ members: [Member], into output: URL) throws -> () throws -> Void {
        var parts: [SafetensorsFile] = []
        for m in members {
            let f: SafetensorsFile
            do { f = try Safetensors.read(m.root.appendingPathComponent(file)) } catch {
                throw fail(output, m, file, QuacError.wrap(error).message)
            }
            for name in f.names where f.tensors[name]!.shape.first != m.rows.count {
                throw fail(output, m, file, "tensor \"\(name)\" has shape \(f.tensors[name]!.shape), not one row per sample of the shard (\(m.rows.count))")
            }
            if let first = parts.first {
                guard f.names == first.names else { throw fail(output, m, file, "tensors \(f.names), \(members[0].name) has \(first.names)") }
                for name in f.names {
                    let (a, b) = (f.tensors[name]!, first.tensors[name]!)
                    guard a.dtype == b.dtype, a.shape.dropFirst() == b.shape.dropFirst() else {
                        throw fail(output, m, file, "tensor \"\(name)\" is \(a.dtype.displayName) \(a.shape), \(b.dtype.displayName) \(b.shape) in \(members[0].name)")
                    }
                }
                guard unsharded(f.metadata) == unsharded(first.metadata) else {
                    throw fail(output, m, file, "its metadata (fingerprint) differs from \(members[0].name)'s: the shards computed it with other inputs")
                }
            }
            parts.append(f)
        }
        return {
            let first = parts[0]
            let tensors = first.names.map { name in (name, Tensor.concatenate(parts.map { $0.tensors[name]! })) }
            try Safetensors.write(tensors, metadata: unsharded(first.metadata), to: output.appendingPathComponent(file))
        }
    }

    /// A file's metadata as an unsharded run writes it.
    static func unsharded(_ metadata: [String: String]) -> [String: String] {
        var m = metadata
        m[ResultsStore.shardKey] = nil
        return m
    }

    static func objects(_ file: String, _ members: [Member], into output: URL) throws -> [JSONObject] {
        try members.map { m in
            guard let o = readJSON(m.root.appendingPathComponent(file))?.objectValue else {
                throw fail(output, m, file, "missing or not a JSON object")
            }
            return o
        }
    }

    /// A method's or converter's JSON: per-sample arrays joined, everything else kept as the batches do.
    static func jsonFile(_ file: String, _ members: [Member], into output: URL) throws -> () throws -> Void {
        let docs = try objects(file, members, into: output)
        return {
            let merged = JSONMerge.batches(docs, sizes: members.map(\.rows.count)) ?? JSONObject()
            try AtomicFile.write(JSONValue.object(merged).serialized(pretty: true) + "\n", to: output.appendingPathComponent(file))
        }
    }

    /// scores/<method>.json: each scorer's entry made again over all the samples (ScoreStage.entry).
    static func scoresFile(_ file: String, _ members: [Member], into output: URL) throws -> () throws -> Void {
        let docs = try objects(file, members, into: output)
        let first = docs[0]
        let scorers = first["scorers"]?.objectValue ?? JSONObject()
        for (m, doc) in zip(members, docs) {
            let keys = (doc["scorers"]?.objectValue ?? JSONObject()).keys
            guard keys == scorers.keys else { throw fail(output, m, file, "scorers \(keys), \(members[0].name) has \(scorers.keys)") }
            for (name, entry) in scorers where doc["scorers"]?[name]?["fingerprint"] != entry["fingerprint"] {
                throw fail(output, m, file, "scorer \(name) has another fingerprint than in \(members[0].name)")
            }
        }
        // The scores as the unsharded run takes them: from the "score" tensor, in sample order. Read
        // here, with the other checks, so that nothing is written when one cannot be read.
        var scoresOf: [String: [Double]] = [:]
        for (name, entry) in scorers {
            let tensors = entry["tensors"]?.stringValue ?? ""
            var scores: [Double] = []
            for m in members {
                guard let f = try? Safetensors.read(m.root.appendingPathComponent(tensors)) else {
                    throw fail(output, m, file, "scorer \(name) names \(tensors), which cannot be read")
                }
                scores += ScoreStage.scores(f.names.map { ($0, f.tensors[$0]!) })
            }
            scoresOf[name] = scores
        }
        return {
            var merged = first
            var entries = JSONObject()
            for (name, entry) in scorers {
                let scores = scoresOf[name] ?? []
                let extras = docs.map { doc -> JSONObject? in
                    var extra = JSONObject()
                    for (k, v) in doc["scorers"]?[name]?.objectValue ?? JSONObject() where !ScoreStage.entryKeys.contains(k) { extra[k] = v }
                    return extra
                }
                let extra = JSONMerge.batches(extras, sizes: members.map(\.rows.count))
                entries[name] = .object(ScoreStage.entry(plugin: entry["plugin"]?.stringValue ?? "", better: entry["better"]?.stringValue ?? "",
                                                         fingerprint: entry["fingerprint"]?.stringValue ?? "", scores: scores,
                                                         extra: extra, tensorFile: entry["tensors"]?.stringValue ?? ""))
            }
            merged["scorers"] = .object(entries)
            try AtomicFile.write(JSONValue.object(merged).serialized(pretty: true) + "\n", to: output.appendingPathComponent(file))
        }
    }

    /// A method's time: the shards' seconds and samples added up.
    static func timingFile(_ file: String, _ members: [Member], into output: URL) throws -> () throws -> Void {
        let docs = try objects(file, members, into: output)
        return {
            let seconds = docs.compactMap { $0["seconds"]?.doubleValue }.reduce(0, +)
            let samples = docs.compactMap { $0["samples"]?.intValue }.reduce(0, +)
            try AtomicFile.write(JSONValue.object(JSONObject([("seconds", .double(seconds)), ("samples", .int(samples))])).serialized(pretty: true) + "\n",
                                 to: output.appendingPathComponent(file))
        }
    }
}
