import Foundation

/// A pipeline's samples in memory: inputs, labels, and optionally counterfactuals and targets.
public struct Dataset {
    public var x: Tensor
    public var labels: Tensor
    public var xCF: Tensor?
    public var target: Tensor?
    /// Class names by index, where the data names them (image folders: the sorted folder names).
    public var classNames: [String]? = nil
    /// One id per sample, where the data has them (image folders: the path relative to the folder).
    public var sampleIDs: [String]? = nil
    /// Concepts [N, k] in [0, 1] and their names, where the data has them.
    public var concepts: Concepts? = nil
    public var count: Int { x.shape[0] }

    /// Loads and checks the data a spec names. Every error names the file and what is wrong with it.
    public static func load(_ spec: DataSpec) throws -> Dataset {
        var d: Dataset
        var safetensors: SafetensorsFile?
        switch spec.source {
        case .safetensors(let url, let xName, let labelName, let cfName, let targetName):
            let file = try Safetensors.read(url)
            safetensors = file
            func get(_ name: String, _ field: String) throws -> Tensor {
                guard let t = file.tensors[name] else {
                    throw QuacError.at(spec.file, "\(spec.pointer)/\(field)", "\(url.path) has no tensor \"\(name)\" (it has: \(file.names.joined(separator: ", ")))")
                }
                return t
            }
            d = Dataset(x: try floats(try get(xName, "x"), "\(url.path): tensor \"\(xName)\""),
                        labels: try integers(try get(labelName, "label"), "\(url.path): tensor \"\(labelName)\""),
                        xCF: try cfName.map { try floats(try get($0, "x_cf"), "\(url.path): tensor \"\($0)\"") },
                        target: try targetName.map { try integers(try get($0, "target"), "\(url.path): tensor \"\($0)\"") })
        case .npy(let xURL, let labelURL, let cfURL, let targetURL):
            d = Dataset(x: try floats(try NPY.read(xURL), xURL.path),
                        labels: try integers(try NPY.read(labelURL), labelURL.path),
                        xCF: try cfURL.map { try floats(try NPY.read($0), $0.path) },
                        target: try targetURL.map { try integers(try NPY.read($0), $0.path) })
        case .csv(let url, let labelColumn):
            d = try CSVTable.load(url, labelColumn: labelColumn)
        case .imageFolder(let dir, let size, let channels, let extensions, let skipUnreadable):
            let loaded: ImageFolder.Loaded
            do {
                loaded = try ImageFolder.load(dir, size: size, channels: channels, extensions: extensions,
                                              skipUnreadable: skipUnreadable, limit: spec.limit)
            } catch {
                throw QuacError.wrap(error, context: "\(spec.file): \(JSONPointer.display(spec.pointer + "/path"))")
            }
            d = Dataset(x: loaded.x, labels: loaded.labels, classNames: loaded.classNames, sampleIDs: loaded.sampleIDs)
        }
        try d.checkConsistent(spec)
        if let source = spec.concepts {
            // An image folder is loaded already limited: its concepts' rows are cut the same way.
            var limitedRows = false
            if case .imageFolder(_, _, _, _, let skip) = spec.source {
                if skip { throw QuacError.at(spec.file, spec.pointer + "/concepts", "concepts of an image folder follow its sorted images row by row: they cannot be used with \"skip_unreadable\"") }
                limitedRows = spec.limit != nil
            }
            d.concepts = try Concepts.load(source, names: spec.conceptNames, count: d.count, safetensors: safetensors, spec: spec,
                                           firstRowsOfMore: limitedRows)
        }
        if let limit = spec.limit, limit < d.count { d = d.prefix(limit) }
        return d
    }

    func prefix(_ n: Int) -> Dataset { rows(0..<n) }

    /// The samples `r` (a shard's).
    func rows(_ r: Range<Int>) -> Dataset {
        Dataset(x: x.rows(r).copy(), labels: labels.rows(r).copy(),
                xCF: xCF?.rows(r).copy(), target: target?.rows(r).copy(),
                classNames: classNames, sampleIDs: sampleIDs.map { Array($0[r]) },
                concepts: concepts.map { Concepts(values: $0.values.rows(r).copy(), names: $0.names) })
    }

    private func checkConsistent(_ spec: DataSpec) throws {
        let n = count
        func fail(_ field: String, _ why: String) -> QuacError { QuacError.at(spec.file, "\(spec.pointer)/\(field)", why) }
        if labels.shape != [n] { throw fail("label", "labels have shape \(labels.shape), expected [\(n)] (one per sample of x \(x.shape))") }
        if let c = xCF, c.shape != x.shape { throw fail("x_cf", "counterfactuals have shape \(c.shape), expected x's \(x.shape)") }
        if let t = target, t.shape != [n] { throw fail("target", "targets have shape \(t.shape), expected [\(n)]") }
        if let i = labels.int64s.firstIndex(where: { $0 < 0 }) { throw fail("label", "label of sample \(i) is negative (\(labels.int64s[i]))") }
    }

    /// x as float32, refusing NaN and infinity (they would poison every method silently).
    static func floats(_ t: Tensor, _ what: String) throws -> Tensor {
        guard t.rank >= 2 else { throw QuacError("\(what): expected [N, ...] samples, got shape \(t.shape)") }
        let f: Tensor
        switch t.dtype {
        case .float32: f = t
        case .float64, .float16, .bfloat16:
            f = Tensor(t.doubleArray().map { Float($0) }, shape: t.shape)
        default: throw QuacError("\(what): expected a float tensor, got \(t.dtype.displayName)")
        }
        if let i = f.floats.firstIndex(where: { !$0.isFinite }) {
            let per = max(f.count / max(f.shape[0], 1), 1)
            throw QuacError("\(what): sample \(i / per) contains \(f.floats[i].isNaN ? "NaN" : "infinity") (element \(i))")
        }
        return f
    }

    /// Labels as int64.
    static func integers(_ t: Tensor, _ what: String) throws -> Tensor {
        switch t.dtype {
        case .int64: return t
        case .int32, .int16, .int8, .uint8, .uint16, .uint32, .uint64:
            return Tensor(t.doubleArray().map { Int64($0) }, shape: t.shape)
        default: throw QuacError("\(what): expected integer labels, got \(t.dtype.displayName)")
        }
    }

    /// Target classes: given by the data, or derived from the labels. "all-others" repeats each sample
    /// once per other class.
    public func withTargets(mode: DataSpec.TargetMode, numClasses: Int) -> Dataset {
        if target != nil { return self }
        let y = labels.int64Array()
        switch mode {
        case .next:
            var d = self
            d.target = Tensor(y.map { ($0 + 1) % Int64(numClasses) }, shape: [count])
            return d
        case .allOthers:
            var rows: [Int] = [], targets: [Int64] = []
            for (i, label) in y.enumerated() {
                for t in 0..<Int64(numClasses) where t != label { rows.append(i); targets.append(t) }
            }
            return Dataset(x: gather(x, rows), labels: Tensor(rows.map { y[$0] }, shape: [rows.count]),
                           xCF: xCF.map { gather($0, rows) }, target: Tensor(targets, shape: [rows.count]),
                           classNames: classNames, sampleIDs: sampleIDs.map { ids in rows.map { ids[$0] } },
                           concepts: concepts.map { Concepts(values: gather($0.values, rows), names: $0.names) })
        }
    }

    private func gather(_ t: Tensor, _ rows: [Int]) -> Tensor {
        Tensor.concatenate(rows.map { t.rows($0..<$0 + 1) }) 
    }
}

/// A CSV table of features (all columns but the label) and an integer label column.
enum CSVTable {
    /// The header's column names and the data rows' cells, each row as long as the header.
    static func read(_ url: URL) throws -> (columns: [String], rows: [[String]]) {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw QuacError("\(url.path): cannot read: \((error as NSError).localizedDescription)")
        }
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).map(String.init)
        while lines.last?.trimmingCharacters(in: .whitespaces).isEmpty == true { lines.removeLast() }
        func cells(_ line: String) -> [String] {
            line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        }
        guard let header = lines.first else { throw QuacError("\(url.path): empty file, expected a header row") }
        let columns = cells(header)
        let rows = try lines.dropFirst().enumerated().map { i, line -> [String] in
            let row = cells(line)
            guard row.count == columns.count else { throw QuacError("\(url.path): line \(i + 2): \(row.count) cells, the header has \(columns.count)") }
            return row
        }
        return (columns, rows)
    }

    static func load(_ url: URL, labelColumn: String) throws -> Dataset {
        let (columns, rows) = try read(url)
        guard let labelIndex = columns.firstIndex(of: labelColumn) else {
            throw QuacError("\(url.path): line 1: no column \"\(labelColumn)\" (columns: \(columns.joined(separator: ", ")))")
        }
        var features: [Float] = [], labels: [Int64] = []
        for (i, cells) in rows.enumerated() {
            for (j, cell) in cells.enumerated() {
                if j == labelIndex {
                    guard let y = Int64(cell), y >= 0 else { throw QuacError("\(url.path): line \(i + 2), column \"\(columns[j])\": expected a class index, found \"\(cell)\"") }
                    labels.append(y)
                } else {
                    guard let v = Float(cell), v.isFinite else { throw QuacError("\(url.path): line \(i + 2), column \"\(columns[j])\": expected a finite number, found \"\(cell)\"") }
                    features.append(v)
                }
            }
        }
        guard !labels.isEmpty else { throw QuacError("\(url.path): no data rows") }
        return Dataset(x: Tensor(features, shape: [labels.count, columns.count - 1]), labels: Tensor(labels, shape: [labels.count]))
    }
}
