/// Joins the JSON documents of a stage's batches into one: an array with one entry per sample is
/// concatenated across batches; anything else is kept per batch under "batches".
enum JSONMerge {
    static func batches(_ docs: [JSONObject?], sizes: [Int]) -> JSONObject? {
        guard docs.contains(where: { $0 != nil }) else { return nil }
        var keys: [String] = []
        for d in docs.compactMap({ $0 }) { for k in d.keys where !keys.contains(k) { keys.append(k) } }
        var out = JSONObject()
        var perBatch: [JSONValue] = []
        for k in keys {
            let perSample = zip(docs, sizes).allSatisfy { doc, n in doc?[k]?.arrayValue?.count == n }
            if perSample {
                out[k] = .array(docs.flatMap { $0?[k]?.arrayValue ?? [] })
            }
        }
        for d in docs {
            var rest = JSONObject()
            for (k, v) in d ?? JSONObject() where out[k] == nil { rest[k] = v }
            perBatch.append(.object(rest))
        }
        if perBatch.contains(where: { !($0.objectValue?.isEmpty ?? true) }) {
            // The same per-batch value everywhere (e.g. a curve's x axis) is stored once.
            if perBatch.allSatisfy({ $0 == perBatch[0] }) {
                for (k, v) in perBatch[0].objectValue! { out[k] = v }
            } else {
                out["batches"] = .array(perBatch)
            }
        }
        return out
    }
}

extension JSONMerge {
    /// `base` with the keys of `top` replacing its own (both objects; anything else: `top`).
    static func overlay(_ base: JSONValue, _ top: JSONValue) -> JSONValue {
        guard var out = base.objectValue, let t = top.objectValue else { return top }
        for (k, v) in t { out[k] = v }
        return .object(out)
    }
}

extension JSONMerge {
    /// A merged document cut to `rows`: arrays with one entry per sample (`count` of them) are sliced,
    /// everything else is kept.
    static func rows(_ doc: JSONObject, _ rows: Range<Int>, of count: Int) -> JSONObject {
        var out = JSONObject()
        for (k, v) in doc {
            if let a = v.arrayValue, a.count == count { out[k] = .array(Array(a[rows])) } else { out[k] = v }
        }
        return out
    }
}
