import Foundation

/// Concepts of the samples: a table [N, k] of values in [0, 1] with a name per column, read from the
/// data (a safetensors tensor whose file's metadata entry "concept_names" names the columns, an NPY
/// file, or a CSV file whose header row names them) or made by a concept model.
public struct Concepts {
    public var values: Tensor
    public var names: [String]

    /// Where a data spec's concepts come from.
    public enum Source {
        case tensor(String)
        case npy(URL)
        case csv(URL)
    }

    /// Reads and checks the concepts of `count` samples. `safetensors` is the data's file, for a tensor
    /// source; `names` from the manifest replace the file's; `firstRowsOfMore`: the samples are the
    /// first `count` of the file's rows (data loaded with a limit).
    static func load(_ source: Source, names given: [String]?, count: Int, safetensors: SafetensorsFile?, spec: DataSpec,
                     firstRowsOfMore: Bool = false) throws -> Concepts {
        let pointer = spec.pointer + "/concepts"
        var values: Tensor, names: [String]?
        switch source {
        case .tensor(let name):
            guard let file = safetensors, let t = file.tensors[name] else {
                throw QuacError.at(spec.file, pointer, "the data file has no tensor \"\(name)\" (it has: \(safetensors?.names.joined(separator: ", ") ?? "none"))")
            }
            values = t
            names = file.metadata["concept_names"].map(Self.parseNames)
        case .npy(let url):
            values = try NPY.read(url)
        case .csv(let url):
            (values, names) = try Self.readCSV(url)
        }
        if values.dtype != .float32 {
            guard [.float64, .float16, .bfloat16].contains(values.dtype) else {
                throw QuacError.at(spec.file, pointer, "concepts must be floats in [0, 1], got \(values.dtype.displayName)")
            }
            values = Tensor(values.doubleArray().map { Float($0) }, shape: values.shape)
        }
        if firstRowsOfMore, values.rank == 2, values.shape[0] > count { values = values.rows(0..<count).copy() }
        guard values.rank == 2, values.shape[0] == count else {
            throw QuacError.at(spec.file, pointer, "concepts have shape \(values.shape), expected [\(count), k] (one row per sample)")
        }
        let k = values.shape[1]
        if let i = values.floats.firstIndex(where: { !($0 >= 0 && $0 <= 1) }) {
            throw QuacError.at(spec.file, pointer, "concept \(i % max(k, 1)) of sample \(i / max(k, 1)) is \(values.floats[i]), not in [0, 1]")
        }
        let final = given ?? names ?? (0..<k).map { "c\($0)" }
        guard final.count == k else {
            throw QuacError.at(spec.file, spec.pointer + (given != nil ? "/concept_names" : "/concepts"), "\(final.count) concept names for \(k) concepts")
        }
        return Concepts(values: values, names: final)
    }

    /// A metadata entry's names: a JSON array of strings, or comma-separated.
    static func parseNames(_ text: String) -> [String] {
        if let a = (try? JSONParser.parse(text))?.arrayValue { return a.compactMap(\.stringValue) }
        return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// A CSV file: a header row of concept names, then one row of numbers per sample.
    static func readCSV(_ url: URL) throws -> (Tensor, [String]) {
        let (names, rows) = try CSVTable.read(url)
        var values: [Float] = []
        for (i, cells) in rows.enumerated() {
            for (j, c) in cells.enumerated() {
                guard let v = Float(c) else { throw QuacError("\(url.path): line \(i + 2), column \"\(names[j])\": expected a number, found \"\(c)\"") }
                values.append(v)
            }
        }
        return (Tensor(values, shape: [rows.count, names.count]), names)
    }
}
