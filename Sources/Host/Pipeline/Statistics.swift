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
