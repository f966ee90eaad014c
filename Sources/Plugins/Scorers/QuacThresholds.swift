import Foundation

/// numpy.arange for float64 arguments, reproduced value for value. The QuAC reference draws its
/// thresholds from `np.arange(vmin, vmax, (vmax - vmin) / num_thresholds)` and its curve's sizes from
/// `np.arange(0.0, 1.0001, 0.01)`; numpy fills element i as `start + i * delta` with
/// `delta = (start + step) - start` (not `step`), so t_100 of the default thresholds is 8.9e-16, not 0.
/// Double because numpy computes these in float64.
enum NumpyArange {
    static func values(start: Double, stop: Double, step: Double) -> [Double] {
        precondition(step != 0, "arange step must not be 0")
        let length = Int(((stop - start) / step).rounded(.up))
        guard length > 0 else { return [] }
        var out = [Double]()
        out.reserveCapacity(length)
        out.append(start)
        guard length > 1 else { return out }
        let second = start + step
        out.append(second)
        let delta = second - start
        for i in 2..<length { out.append(start + Double(i) * delta) }
        return out
    }
}

/// The thresholds of the QuAC evaluator and how a map is cut by them.
struct QuacThresholds {
    /// The reference's threshold values (float64, reported as `optimal_threshold`).
    let values: [Double]
    /// The same values rounded to float32: under NumPy 1.x (the reference's numpy; the oracle runs
    /// 1.24) `float32_map > np.float64_scalar` casts the scalar to float32 before comparing
    /// (value-based casting), so a map value equal to float32(t) is not above t.
    let compared: [Float]

    init(vmin: Double, vmax: Double, count: Int) {
        values = NumpyArange.values(start: vmin, stop: vmax, step: (vmax - vmin) / Double(count))
        compared = values.map { Float($0) }
    }

    var count: Int { values.count }

    /// The number of thresholds t with float32(t) < v, i.e. how many of the (ascending) thresholds
    /// keep a pixel of value v in the binary mask: the pixel is in mask i exactly when i < level(v).
    /// NaN is above no threshold (NumPy's comparison is false), so its level is 0.
    @inline(__always)
    func level(of v: Float) -> Int {
        var lo = 0, hi = compared.count
        // First index whose threshold is not below v; compared is non-decreasing.
        compared.withUnsafeBufferPointer { t in
            while lo < hi {
                let mid = (lo + hi) >> 1
                if t[mid] < v { lo = mid + 1 } else { hi = mid }
            }
        }
        return lo
    }
}
