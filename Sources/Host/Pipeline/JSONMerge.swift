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

/// Median, quartiles and mean of a list of scores (linear interpolation between order statistics,
/// as numpy.percentile does by default).
public struct Statistics {
    public let median: Double, q25: Double, q75: Double, mean: Double

    public init(_ values: [Double]) {
        let v = values.filter { $0.isFinite }.sorted()
        func pct(_ p: Double) -> Double {
            guard !v.isEmpty else { return .nan }
            let pos = p * Double(v.count - 1)
            let lo = Int(pos.rounded(.down)), hi = Int(pos.rounded(.up))
            return v[lo] + (v[hi] - v[lo]) * (pos - Double(lo))
        }
        median = pct(0.5); q25 = pct(0.25); q75 = pct(0.75)
        mean = v.isEmpty ? .nan : v.reduce(0, +) / Double(v.count)
    }
}

/// QuAC's normalisation of attribution maps (ALGORITHMS.md 1.1): per sample, |a| then min-max over all
/// of its elements; a constant map becomes zeros (the reference returns NaN there).
public enum AttributionMaps {
    public static func normalizedPerSample(_ a: Tensor) -> Tensor {
        let out = Tensor(zeros: a.shape)
        let n = a.shape.first ?? 0
        guard n > 0 else { return out }
        let per = a.count / n
        let src = a.floats, dst = out.floats
        for s in 0..<n {
            let range = (s * per)..<((s + 1) * per)
            var lo = Float.infinity, hi = -Float.infinity
            for i in range { let v = abs(src[i]); lo = min(lo, v); hi = max(hi, v) }
            guard hi > lo else { continue }
            let scale = 1 / (hi - lo)
            for i in range { dst[i] = (abs(src[i]) - lo) * scale }
        }
        return out
    }
}
