import Foundation
import Logging

/// Class-per-folder image datasets as QuAC (and torchvision's ImageFolder) lay them out:
/// `dir/<class>/**/<image>`, class index = position of the folder name in sorted order.
///
/// Order: class folders sorted by name, then each class's files sorted by (folder, name), all in Unicode
/// code-point order (Python's `sorted`, so indices match a classifier trained with torchvision). Files
/// are chosen by extension, case-insensitively, in subfolders too (as torchvision walks them). Hidden
/// files and folders (names starting with ".") are ignored, unlike torchvision, so macOS "._x.png"
/// droppings do not count as images.
public enum ImageFolder {
    public struct Entry: Sendable {
        public let url: URL
        /// Path relative to the dataset folder, e.g. "1_positive/0003.png" (the sample id).
        public let relativePath: String
        public let label: Int
    }

    public struct Listing: Sendable {
        public let classNames: [String]
        public let entries: [Entry]
    }

    public struct Loaded {
        /// [N, channels, size, size], in [-1, 1].
        public let x: Tensor
        /// [N] int64 class indices.
        public let labels: Tensor
        public let classNames: [String]
        public let sampleIDs: [String]
        /// Files left out with skip_unreadable, with the reason.
        public let skipped: [(path: String, reason: String)]
    }

    /// Python's `sorted` order on str.
    static func codePointLess(_ a: String, _ b: String) -> Bool {
        a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars)
    }

    static func isDirectory(_ url: URL) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) && isDir.boolValue
    }

    /// The classes and image files of `dir`, in loading order.
    public static func list(_ dir: URL, extensions: [String]) throws -> Listing {
        guard FileManager.default.fileExists(atPath: dir.path) else { throw QuacError("\(dir.path): no such folder") }
        guard isDirectory(dir) else { throw QuacError("\(dir.path): not a folder (image-folder data is a folder with one subfolder per class)") }
        let suffixes = extensions.map { ($0.hasPrefix(".") ? $0 : "." + $0).lowercased() }
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: dir.path) } catch {
            throw QuacError("\(dir.path): cannot list: \((error as NSError).localizedDescription)")
        }
        let classNames = names.filter { !$0.hasPrefix(".") && isDirectory(dir.appendingPathComponent($0)) }.sorted(by: codePointLess)
        guard !classNames.isEmpty else {
            throw QuacError("\(dir.path): no class subfolders (expected \(dir.path)/<class>/<image>, class index = sorted folder names)")
        }
        var entries: [Entry] = []
        for (label, name) in classNames.enumerated() {
            var files: [(folder: String, name: String)] = []
            try walk(dir.appendingPathComponent(name), relative: "", suffixes: suffixes, into: &files)
            files.sort { $0.folder != $1.folder ? codePointLess($0.folder, $1.folder) : codePointLess($0.name, $1.name) }
            guard !files.isEmpty else {
                throw QuacError("\(dir.appendingPathComponent(name).path): class folder \"\(name)\" has no files ending in \(suffixes.joined(separator: ", "))")
            }
            for f in files {
                let rel = f.folder.isEmpty ? f.name : f.folder + "/" + f.name
                entries.append(Entry(url: dir.appendingPathComponent(name).appendingPathComponent(rel),
                                     relativePath: name + "/" + rel, label: label))
            }
        }
        return Listing(classNames: classNames, entries: entries)
    }

    private static func walk(_ folder: URL, relative: String, suffixes: [String], into files: inout [(folder: String, name: String)]) throws {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: folder.path) } catch {
            throw QuacError("\(folder.path): cannot list: \((error as NSError).localizedDescription)")
        }
        for name in names where !name.hasPrefix(".") {
            let url = folder.appendingPathComponent(name)
            if isDirectory(url) {
                try walk(url, relative: relative.isEmpty ? name : relative + "/" + name, suffixes: suffixes, into: &files)
            } else if suffixes.contains(where: { name.lowercased().hasSuffix($0) }) {
                files.append((relative, name))
            }
        }
    }

    /// Reads, converts (`channels` 1 or 3), resizes (`size` x `size`, see ImageResize) and scales to
    /// [-1, 1] every image of `dir`, or the first `limit` readable ones. An unreadable image fails the
    /// load with its path and reason, unless `skipUnreadable`: then it is left out and listed in one
    /// warning on `logger`.
    public static func load(_ dir: URL, size: Int, channels: Int, extensions: [String], skipUnreadable: Bool,
                            limit: Int? = nil, logger: Logger = Logger(label: "quac-host.data")) throws -> Loaded {
        guard size >= 1 else { throw QuacError("image-folder: size must be at least 1, got \(size)") }
        guard channels == 1 || channels == 3 else { throw QuacError("image-folder: channels must be 1 or 3, got \(channels)") }
        let listing = try list(dir, extensions: extensions)
        let entries = listing.entries
        let wanted = min(limit ?? entries.count, entries.count)
        if let problem = MemoryBudget.problem([("images", wanted), ("channels", channels), ("size", size), ("size", size)]) {
            throw QuacError("image-folder \(dir.path): the images at this size: \(problem); lower size or limit")
        }

        var values: [Float] = []
        var kept: [Int] = []
        var skipped: [(path: String, reason: String)] = []
        var notes: [(String, String)] = []
        var next = 0
        while kept.count < wanted && next < entries.count {
            // Decode the next batch in parallel: as many files as samples are still wanted.
            let batch = Array(next..<min(entries.count, next + max(wanted - kept.count, 1)))
            next = batch.last! + 1
            let results = decode(batch.map { entries[$0].url }, size: size, channels: channels)
            for (k, result) in zip(batch, results) {
                switch result {
                case .success(let r):
                    if kept.count < wanted {
                        values += r.values
                        kept.append(k)
                        for n in r.notes { notes.append((entries[k].url.path, n)) }
                    }
                case .failure(let e):
                    let reason = (e as? FileError)?.reason ?? String(describing: e)
                    guard skipUnreadable else {
                        throw QuacError("cannot read image \(entries[k].url.path): \(reason) (set \"skip_unreadable\": true to leave unreadable images out)")
                    }
                    skipped.append((entries[k].url.path, reason))
                }
            }
        }
        if !skipped.isEmpty {
            let shown = skipped.prefix(20).map { "\($0.path): \($0.reason)" }.joined(separator: "; ")
            let more = skipped.count > 20 ? "; and \(skipped.count - 20) more" : ""
            logger.warning("image-folder \(dir.path): skipped \(skipped.count) unreadable image\(skipped.count == 1 ? "" : "s") (skip_unreadable): \(shown)\(more)")
        }
        if !notes.isEmpty {
            let shown = notes.prefix(5).map { "\($0.0): \($0.1)" }.joined(separator: "; ")
            logger.info("image-folder \(dir.path): \(notes.count) note\(notes.count == 1 ? "" : "s"): \(shown)\(notes.count > 5 ? "; ..." : "")")
        }
        guard !kept.isEmpty else {
            throw QuacError("\(dir.path): no readable images (\(skipped.count) skipped as unreadable)")
        }
        return Loaded(x: Tensor(values, shape: [kept.count, channels, size, size]),
                      labels: Tensor(kept.map { Int64(entries[$0].label) }, shape: [kept.count]),
                      classNames: listing.classNames, sampleIDs: kept.map { entries[$0].relativePath },
                      skipped: skipped)
    }

    /// Decodes files concurrently; results in input order.
    static func decode(_ urls: [URL], size: Int, channels: Int) -> [Result<(values: [Float], notes: [String]), Error>] {
        let results = UnsafeMutableBufferPointer<Result<(values: [Float], notes: [String]), Error>?>.allocate(capacity: urls.count)
        results.initialize(repeating: nil)
        defer { results.deinitialize(); results.deallocate() }
        DispatchQueue.concurrentPerform(iterations: urls.count) { i in
            results[i] = Result { try ImageFile.loadInput(urls[i], size: size, channels: channels) }
        }
        return results.map { $0! }
    }
}
