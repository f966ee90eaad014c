/// QuAC's normalisation of attribution maps (docs/algorithms.md, "Normalising attribution maps"): per sample, |a| then min-max over all
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
