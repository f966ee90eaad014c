import Foundation

/// Where a pipeline's data comes from.
public struct DataSpec {
    public enum Source {
        case safetensors(file: URL, x: String, label: String, xCF: String?, target: String?)
        case npy(x: URL, label: URL, xCF: URL?, target: URL?)
        case csv(file: URL, labelColumn: String)
        case imageFolder(dir: URL, size: Int, channels: Int, extensions: [String], skipUnreadable: Bool)
    }
    public enum TargetMode: String { case next, allOthers = "all-others" }

    public let source: Source
    public let limit: Int?
    public let targets: TargetMode
    /// The samples' concepts, when the data has them, and names for them from the manifest.
    public let concepts: Concepts.Source?
    public let conceptNames: [String]?
    /// Where in which file this spec was written, for messages.
    public let file: String
    public let pointer: String

    init(_ v: JSONValue, file: String, pointer: String, resolve: (String) -> URL) throws {
        self.file = file
        self.pointer = pointer
        func str(_ k: String) throws -> String {
            guard let s = v[k]?.stringValue else { throw QuacError.at(file, pointer, "missing required property \"\(k)\"") }
            return s
        }
        switch v["format"]?.stringValue {
        case "safetensors":
            source = .safetensors(file: resolve(try str("path")), x: try str("x"), label: try str("label"),
                                  xCF: v["x_cf"]?.stringValue, target: v["target"]?.stringValue)
        case "npy":
            source = .npy(x: resolve(try str("x")), label: resolve(try str("label")),
                          xCF: v["x_cf"]?.stringValue.map(resolve), target: v["target"]?.stringValue.map(resolve))
        case "csv":
            source = .csv(file: resolve(try str("path")), labelColumn: v["label_column"]?.stringValue ?? "label")
        case "image-folder":
            source = .imageFolder(dir: resolve(try str("path")), size: Int(v["size"]?.intValue ?? 128),
                                  channels: Int(v["channels"]?.intValue ?? 1),
                                  extensions: (v["extensions"]?.arrayValue ?? [".png", ".tif", ".tiff"]).compactMap(\.stringValue),
                                  skipUnreadable: v["skip_unreadable"]?.boolValue ?? false)
        case let other:
            throw QuacError.at(file, pointer + "/format", "expected one of safetensors, npy, csv, image-folder, found \(other.map { "\"\($0)\"" } ?? "nothing")")
        }
        switch (v["concepts"]?.stringValue, v["format"]?.stringValue) {
        case (nil, _): concepts = nil
        case (let c?, _) where c.hasSuffix(".csv"): concepts = .csv(resolve(c))
        case (let c?, "safetensors"): concepts = .tensor(c)
        case (let c?, "npy"): concepts = .npy(resolve(c))
        case (_, let f): throw QuacError.at(file, pointer + "/concepts", "with \(f ?? "this") data, concepts come from a .csv file (a header row of names, a row per sample)")
        }
        conceptNames = v["concept_names"]?.arrayValue?.compactMap(\.stringValue)
        limit = v["limit"]?.intValue.map(Int.init)
        targets = TargetMode(rawValue: v["targets"]?.stringValue ?? "next") ?? .next
    }

    /// The files the data is read from (their hashes go into run.json).
    public var files: [URL] {
        var extra: [URL] = []
        switch concepts {
        case .npy(let u), .csv(let u): extra = [u]
        default: break
        }
        return sourceFiles + extra
    }

    private var sourceFiles: [URL] {
        switch source {
        case .safetensors(let f, _, _, _, _), .csv(let f, _): return [f]
        case .npy(let x, let l, let c, let t): return [x, l] + [c, t].compactMap { $0 }
        case .imageFolder(let dir, _, _, let extensions, _):
            // Every image file, in loading order: their contents fingerprint the data like any other file.
            return (try? ImageFolder.list(dir, extensions: extensions))?.entries.map(\.url) ?? []
        }
    }
}
