import Foundation

/// One of `count` equal slices of a run's samples (`quac-host run --shard I/N`). Shard `index` explains
/// samples [index*n/count, (index+1)*n/count) of the n samples the manifest resolves to (after `limit`
/// and target expansion), into `<output>/shards/<index>-of-<count>/`; `quac-host merge` joins the
/// shards into the results an unsharded run writes (ShardMerge).
public struct Shard: Equatable, Sendable {
    public let index: Int
    public let count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1 else { throw QuacError("--shard: the number of shards must be at least 1, got \(count)") }
        guard index >= 0, index < count else { throw QuacError("--shard: the shard index must be in 0..\(count - 1), got \(index)") }
        self.index = index
        self.count = count
    }

    /// Parses "I/N".
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]) else {
            throw QuacError("--shard: expected I/N (shard I of N, counted from 0), got \"\(text)\"")
        }
        try self.init(index: i, count: n)
    }

    /// The samples of this shard among `total`.
    public func rows(of total: Int) -> Range<Int> {
        (index * total / count)..<((index + 1) * total / count)
    }

    /// "I/N", as in the shard's tensor files' metadata.
    public var tag: String { "\(index)/\(count)" }
    /// The shard's folder under `<output>/shards/`.
    public var folderName: String { "\(index)-of-\(count)" }

    public static let folder = "shards"
    /// Written last by a shard run that finished every unit: what merge reads to check the shards.
    public static let recordFile = "shard.json"

    public func root(in output: URL) -> URL {
        output.appendingPathComponent(Self.folder).appendingPathComponent(folderName)
    }
}
