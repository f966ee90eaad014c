/// The QuAC curve and score, as the reference's Report computes them (all float64, as NumPy/SciPy do):
///
///     f = interp1d(concatenate([[1], sizes, [0]]), concatenate([[changes[0]], changes, [0]]))
///     curve = [f(s) for s in np.arange(0.0, 1.0001, 0.01)]
///     score = np.trapz(curve, np.arange(0.0, 1.0001, 0.01))
///
/// interp1d sorts the points stably (mergesort) and, for float64 data and kind "linear", delegates
/// to `np.interp` (SciPy 1.10). np.interp finds the last point whose size is <= s: at a size that
/// occurs several times it returns the change of the last of them in sorted order (for size 0 that
/// is the appended (0, 0)); between sizes it interpolates linearly from the left point.
enum QuacCurve {
    /// The 101 sizes the curve is sampled at (np.arange(0.0, 1.0001, 0.01)).
    static let grid: [Double] = NumpyArange.values(start: 0, stop: 1.0001, step: 0.01)

    /// The curve at `grid` from the per-threshold sizes and score changes (same length, >= 1).
    static func interpolated(sizes: [Double], changes: [Double], at xs: [Double] = grid) -> [Double] {
        precondition(sizes.count == changes.count && !sizes.isEmpty)
        let xp0 = [1.0] + sizes + [0.0]
        let fp0 = [changes[0]] + changes + [0.0]
        // Stable sort by size (np.argsort kind="mergesort").
        let order = xp0.indices.sorted { xp0[$0] < xp0[$1] || (xp0[$0] == xp0[$1] && $0 < $1) }
        let xp = order.map { xp0[$0] }, fp = order.map { fp0[$0] }
        return xs.map { numpyInterp($0, xp, fp) }
    }

    /// np.interp(x, xp, fp) for one x, xp ascending (NumPy's arr_interp).
    static func numpyInterp(_ x: Double, _ xp: [Double], _ fp: [Double]) -> Double {
        let n = xp.count
        if x.isNaN { return x }
        if x < xp[0] { return fp[0] }
        if x > xp[n - 1] { return fp[n - 1] }
        // j: the last index with xp[j] <= x.
        var lo = 0, hi = n
        while lo < hi {
            let mid = (lo + hi) >> 1
            if x >= xp[mid] { lo = mid + 1 } else { hi = mid }
        }
        let j = lo - 1
        if j == n - 1 || xp[j] == x { return fp[j] }
        let slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
        var y = slope * (x - xp[j]) + fp[j]
        if y.isNaN {
            y = slope * (x - xp[j + 1]) + fp[j + 1]
            if y.isNaN && fp[j] == fp[j + 1] { y = fp[j] }
        }
        return y
    }

    /// np.trapz(y, x): sum of (x[i+1] - x[i]) * (y[i+1] + y[i]) / 2.0, added up as NumPy's add.reduce
    /// does (the first term, plus the pairwise sum of the rest).
    static func trapezoid(_ y: [Double], _ x: [Double] = grid) -> Double {
        precondition(x.count == y.count)
        guard y.count >= 2 else { return 0 }
        var terms = [Double](repeating: 0, count: y.count - 1)
        for i in 0..<(y.count - 1) {
            let dx: Double = x[i + 1] - x[i]
            let sum: Double = y[i + 1] + y[i]
            terms[i] = dx * sum / 2.0
        }
        return terms[0] + pairwiseSum(terms[1...])
    }

    /// NumPy's pairwise summation (pairwise_sum in loops_utils.h): 8 running sums below 128 terms,
    /// halves above.
    static func pairwiseSum(_ a: ArraySlice<Double>) -> Double {
        let n = a.count, base = a.startIndex
        if n < 8 {
            var res = 0.0
            for i in 0..<n { res += a[base + i] }
            return res
        }
        if n <= 128 {
            var r = (0..<8).map { a[base + $0] }
            var i = 8
            while i < n - (n % 8) {
                for k in 0..<8 { r[k] += a[base + i + k] }
                i += 8
            }
            var res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
            while i < n { res += a[base + i]; i += 1 }
            return res
        }
        var n2 = n / 2
        n2 -= n2 % 8
        return pairwiseSum(a[base..<(base + n2)]) + pairwiseSum(a[(base + n2)...])
    }

    /// The reference's optimal threshold: the first index minimising |size| - change (float64; the
    /// float32 change is widened, as NumPy does when it subtracts a float32 array from a float64 one).
    static func optimalIndex(sizes: [Double], changes: [Double]) -> Int {
        var best = 0, bestValue = Double.infinity
        for i in sizes.indices {
            let v = abs(sizes[i]) - changes[i]
            if v.isNaN { return i }  // np.argmin stops at the first NaN
            if v < bestValue { bestValue = v; best = i }
        }
        return best
    }
}
