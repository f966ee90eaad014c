import Foundation

/// OpenCV's 1-D Gaussian kernel, `getGaussianKernel(n, sigma)`, as its bit-exact variant computes it
/// (float64): for sigma <= 0 the sizes 1, 3, 5, 7 and 9 are fixed binomial-like tables, and otherwise
/// sigma = 0.15 n + 0.35 (one rounding, OpenCV's mulAdd; 2.0 for n = 11) and
/// k_i = exp(-0.125 x^2 / sigma^2) with x = 2i - (n - 1), normalised by 1 / sum.
enum GaussianKernel {
    static func sigma(forSize n: Int) -> Double { 0.35.addingProduct(Double(n), 0.15) }

    static func opencv(size n: Int, sigma: Double = 0) -> [Double] {
        precondition(n >= 1, "kernel size must be positive")
        if sigma <= 0 {
            switch n {
            case 1: return [1]
            case 3: return [0.25, 0.5, 0.25]
            case 5: return [0.0625, 0.25, 0.375, 0.25, 0.0625]
            case 7: return [0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125]
            case 9: return [0.015625, 0.05078125, 0.1171875, 0.19921875, 0.234375, 0.19921875, 0.1171875, 0.05078125, 0.015625]
            default: break
            }
        }
        let s = sigma > 0 ? sigma : Self.sigma(forSize: n)
        let scale2X = -0.125 / (s * s)
        let half = (n - 1) / 2
        var values = [Double](repeating: 0, count: half)
        var sum = 0.0
        var x = 1 - n
        for i in 0..<half {
            values[i] = exp(Double(x * x) * scale2X)
            sum += values[i]
            x += 2
        }
        sum *= 2
        sum += 1
        if n % 2 == 0 { sum += 1 }
        let mul1 = 1 / sum
        var result = [Double](repeating: 0, count: n)
        for i in 0..<half {
            result[i] = values[i] * mul1
            result[n - 1 - i] = result[i]
        }
        result[half] = mul1
        if n % 2 == 0 { result[half + 1] = mul1 }
        return result
    }
}

/// `cv2.GaussianBlur(mask.astype(np.float32), (k, k), 0)` of a 0/1 mask: separable, rows then
/// columns, border BORDER_REFLECT_101 (OpenCV's default: ...2 1 | 0 1 2 ... n-1 | n-2 ...).
/// Float because OpenCV filters a float32 image with a float32 kernel. The taps are summed centre
/// first, then symmetric pairs inward to outward (OpenCV's own order depends on its SIMD/IPP path;
/// the difference is a few float32 ulps).
///
/// Successive masks of one map differ in a few places, so each `slot` (one per channel plane) keeps
/// its last input and results. Where a row's bits changed only in columns x0...x1, its row-filtered
/// values can change only in x0 - r ... x1 + r (reflection at the borders stays inside that range),
/// and an output row can change only in the union of those ranges over the rows of its window: only
/// those columns are recomputed, with the same formula. Rows that are all zero or all one (and output
/// rows whose window is) are filled with what the general loop computes for them. Every value is
/// exactly what the full computation gives.
final class MaskBlur {
    let width: Int
    let height: Int
    let kernel: [Float]
    let radius: Int
    private let wordsPerRow: Int
    private var padded: [Float]
    private let columnIndex: [Int]
    private let rowIndex: [Int]
    private var slots: [Slot] = []

    /// One plane's last input and results, in memory of its own (the result is handed out by pointer).
    private final class Slot {
        var valid = false
        let bits: UnsafeMutablePointer<UInt64>
        let rows: UnsafeMutablePointer<Float>
        let out: UnsafeMutablePointer<Float>
        /// Per row: 0 all zero, 1 all one, 2 mixed.
        let kind: UnsafeMutablePointer<UInt8>
        /// Per row, this call: the columns lo...hi whose row-filtered value may have changed (none when
        /// hi < lo).
        let lo: UnsafeMutablePointer<Int>
        let hi: UnsafeMutablePointer<Int>

        init(words: Int, pixels: Int, height: Int) {
            bits = .filled(words, with: 0); rows = .filled(pixels, with: 0); out = .filled(pixels, with: 0)
            kind = .filled(height, with: 0); lo = .filled(height, with: 0); hi = .filled(height, with: -1)
        }

        deinit {
            bits.deallocate(); rows.deallocate(); out.deallocate()
            kind.deallocate(); lo.deallocate(); hi.deallocate()
        }
    }

    init(width: Int, height: Int, kernelSize: Int) {
        precondition(kernelSize >= 1 && kernelSize % 2 == 1, "Gaussian kernel size must be odd")
        self.width = width
        self.height = height
        kernel = GaussianKernel.opencv(size: kernelSize).map { Float($0) }
        radius = kernelSize / 2
        wordsPerRow = BitRows.wordsPerRow(width)
        padded = [Float](repeating: 0, count: width + 2 * radius)
        columnIndex = (-radius..<(width + radius)).map { Self.reflect101($0, width) }
        rowIndex = (-radius..<(height + radius)).map { Self.reflect101($0, height) }
    }

    /// OpenCV's borderInterpolate for BORDER_REFLECT_101.
    static func reflect101(_ p: Int, _ n: Int) -> Int {
        if n == 1 { return 0 }
        var p = p
        while p < 0 || p >= n { p = p < 0 ? -p : 2 * n - 2 - p }
        return p
    }

    /// What the loops below compute for a window whose every input is `v`.
    private func constant(_ v: Float) -> Float {
        var s = kernel[radius] * v
        if radius > 0 { for j in 1...radius { s += kernel[radius - j] * (v + v) } }
        return s
    }

    /// Blurs the bit-row mask `bits` (wordsPerRow words per row) into `out` (height * width floats).
    func blur(_ bits: UnsafePointer<UInt64>, wordsPerRow wpr: Int, into out: UnsafeMutablePointer<Float>, slot: Int = 0) {
        out.update(from: blurred(bits, wordsPerRow: wpr, slot: slot), count: width * height)
    }

    /// Blurs the bit-row mask `bits` and returns the result (height * width floats), which stays valid
    /// until the slot's next call.
    func blurred(_ bits: UnsafePointer<UInt64>, wordsPerRow wpr: Int, slot: Int = 0) -> UnsafePointer<Float> {
        precondition(wpr == wordsPerRow)
        while slots.count <= slot { slots.append(Slot(words: height * wpr, pixels: width * height, height: height)) }
        let cache = slots[slot]
        let w = width, r = radius
        let rowFull = constant(1)
        let colFull = constant(rowFull)
        let fresh = !cache.valid
        let kind = cache.kind, lo = cache.lo, hi = cache.hi, h = cache.rows, o = cache.out
        kernel.withUnsafeBufferPointer { kb in
        padded.withUnsafeMutableBufferPointer { pb in
        columnIndex.withUnsafeBufferPointer { ci in
        rowIndex.withUnsafeBufferPointer { ri in
            let k = kb.baseAddress!, p = pb.baseAddress!
            // Rows.
            for y in 0..<height {
                let row = bits + y * wpr, prev = cache.bits + y * wpr
                // The changed bits' first and last column.
                var first = Int.max, last = -1
                for i in 0..<wpr {
                    let d = fresh ? ~0 : row[i] ^ prev[i]
                    if d != 0 {
                        if first == Int.max { first = 64 * i + d.trailingZeroBitCount }
                        last = 64 * i + 63 - d.leadingZeroBitCount
                    }
                }
                if last < 0 { lo[y] = 0; hi[y] = -1; continue }
                let x0 = max(first - r, 0), x1 = min(last + r, w - 1)
                lo[y] = x0; hi[y] = x1
                prev.update(from: row, count: wpr)
                let ones = BitRows.popcount(row, count: wpr)
                let dst = h + y * w
                if ones == 0 {
                    kind[y] = 0
                    (dst + x0).update(repeating: 0, count: x1 - x0 + 1)
                    continue
                }
                if ones == w {
                    kind[y] = 1
                    (dst + x0).update(repeating: rowFull, count: x1 - x0 + 1)
                    continue
                }
                kind[y] = 2
                // Padded position i holds column i - r; columns x0...x1 read positions x0...x1 + 2r.
                for i in x0...(x1 + 2 * r) {
                    let x = ci[i]
                    p[i] = (row[x >> 6] >> UInt64(x & 63)) & 1 == 1 ? 1 : 0
                }
                let c = k[r]
                for x in x0...x1 { dst[x] = c * p[x + r] }
                if r > 0 {
                    for j in 1...r {
                        let kj = k[r - j]
                        let lp = p + r - j, hp = p + r + j
                        for x in x0...x1 { dst[x] += kj * (lp[x] + hp[x]) }
                    }
                }
            }
            // Columns.
            for y in 0..<height {
                let dst = o + y * w
                var x0 = Int.max, x1 = -1, allZero = true, allOne = true
                for i in 0...(2 * r) {
                    let src = ri[y + i]
                    if hi[src] >= lo[src] { x0 = min(x0, lo[src]); x1 = max(x1, hi[src]) }
                    let kd = kind[src]
                    if kd != 0 { allZero = false }
                    if kd != 1 { allOne = false }
                }
                if x1 < 0 { continue }
                let n = x1 - x0 + 1
                if allZero { (dst + x0).update(repeating: 0, count: n); continue }
                if allOne { (dst + x0).update(repeating: colFull, count: n); continue }
                let c = k[r], center = h + ri[y + r] * w
                for x in x0...x1 { dst[x] = c * center[x] }
                if r > 0 {
                    for j in 1...r {
                        let kj = k[r - j]
                        let up = h + ri[y + r - j] * w, down = h + ri[y + r + j] * w
                        for x in x0...x1 { dst[x] += kj * (up[x] + down[x]) }
                    }
                }
            }
        } } } }
        cache.valid = true
        return UnsafePointer(o)
    }
}
