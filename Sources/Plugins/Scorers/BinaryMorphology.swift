/// OpenCV's `morphologyEx(mask, MORPH_CLOSE, element)` on a 0/1 image, as `dilate` then `erode` with
/// the same element and anchor and OpenCV's default border (pixels outside the image never win: 0
/// for dilation, 1 for erosion). OpenCV computes, for both operations,
///     dst(x, y) = op over element pixels (i, j) of src(x + j - anchorX, y + i - anchorY)
/// (max for dilate, min for erode; the element is not mirrored for either).
///
/// Images are packed bit rows (`BitRows`), so one machine word covers 64 pixels: each element row is
/// a run of ones, and a run is an OR (AND) of shifted copies of a bit row. Integer work only, exact.
/// One instance per image size; it owns its scratch buffers (not thread-safe, reuse it).
final class BinaryClosing {
    let width: Int
    let height: Int
    let wordsPerRow: Int
    private let element: EllipticalStructuringElement
    /// The distinct horizontal runs as column offsets relative to the anchor, inclusive.
    private let spans: [(lo: Int, hi: Int)]
    /// For each element row: its index in `spans`, or -1 for an empty row.
    private let rowSpan: [Int]
    /// Per span: the shifts it adds to the previous (narrower) span when it extends it, else all.
    private let shifts: [[Int]]
    private let extendsPrevious: [Bool]
    private let guardWords: Int
    private let lastWordMask: UInt64
    private var extended: [UInt64]
    private var horizontal: [UInt64]
    private var dilated: [UInt64]

    init(width: Int, height: Int, element: EllipticalStructuringElement) {
        self.width = width
        self.height = height
        self.element = element
        wordsPerRow = BitRows.wordsPerRow(width)
        var spans: [(lo: Int, hi: Int)] = []
        var rowSpan: [Int] = []
        for run in element.runs {
            guard run.start < run.end else { rowSpan.append(-1); continue }
            let span = (lo: run.start - element.anchorX, hi: run.end - 1 - element.anchorX)
            if let k = spans.firstIndex(where: { $0 == span }) { rowSpan.append(k) } else { spans.append(span); rowSpan.append(spans.count - 1) }
        }
        // Narrowest first, so a run contained in the next one is extended instead of recomputed.
        let order = spans.indices.sorted { spans[$0].hi - spans[$0].lo < spans[$1].hi - spans[$1].lo }
        let sorted = order.map { spans[$0] }
        self.spans = sorted
        self.rowSpan = rowSpan.map { $0 < 0 ? -1 : order.firstIndex(of: $0)! }
        var shifts: [[Int]] = [], extends: [Bool] = []
        for (k, span) in sorted.enumerated() {
            let inner = k > 0 ? sorted[k - 1] : (lo: 1, hi: 0)
            let inside = k > 0 && inner.lo >= span.lo && inner.hi <= span.hi
            extends.append(inside)
            shifts.append((span.lo...span.hi).filter { d in !(inside && d >= inner.lo && d <= inner.hi) })
        }
        self.shifts = shifts
        extendsPrevious = extends
        let reach = spans.reduce(0) { max($0, abs($1.lo), abs($1.hi)) }
        guardWords = (reach + 63) / 64
        let tailBits = width % 64
        lastWordMask = tailBits == 0 ? ~0 : (UInt64(1) << UInt64(tailBits)) - 1
        extended = [UInt64](repeating: 0, count: wordsPerRow + 2 * guardWords + 1)
        horizontal = [UInt64](repeating: 0, count: max(spans.count, 1) * height * wordsPerRow)
        dilated = [UInt64](repeating: 0, count: height * wordsPerRow)
    }

    /// Closes `source` (height * wordsPerRow words, bits beyond `width` zero) into `destination`
    /// (same layout; bits beyond `width` left zero).
    func close(_ source: UnsafePointer<UInt64>, into destination: UnsafeMutablePointer<UInt64>) {
        dilated.withUnsafeMutableBufferPointer { d in
            pass(source, into: d.baseAddress!, dilate: true)
            pass(UnsafePointer(d.baseAddress!), into: destination, dilate: false)
        }
    }

    private func pass(_ source: UnsafePointer<UInt64>, into destination: UnsafeMutablePointer<UInt64>, dilate: Bool) {
        let wpr = wordsPerRow, g = guardWords
        // Outside the image: the value that never wins (0 for max, 1 for min).
        let fill: UInt64 = dilate ? 0 : ~0
        let lastMask = lastWordMask
        extended.withUnsafeMutableBufferPointer { extBuffer in
            horizontal.withUnsafeMutableBufferPointer { horBuffer in
                let ext = extBuffer.baseAddress!, hor = horBuffer.baseAddress!
                let extCount = extBuffer.count
                // Horizontal runs: hor[s][y] bit x = op over d in span s of src(x + d, y).
                for y in 0..<height {
                    let row = source + y * wpr
                    // A row of only the value that never wins stays so (all 0 under dilation, all 1
                    // under erosion): every run of it is the same row.
                    var uniform = true
                    for w in 0..<wpr where (row[w] & (w == wpr - 1 ? lastMask : ~0)) != (fill & (w == wpr - 1 ? lastMask : ~0)) { uniform = false; break }
                    if uniform {
                        for s in 0..<spans.count { (hor + (s * height + y) * wpr).update(repeating: fill, count: wpr) }
                        continue
                    }
                    for w in 0..<extCount { ext[w] = fill }
                    for w in 0..<wpr { ext[g + w] = row[w] }
                    ext[g + wpr - 1] = (row[wpr - 1] & lastMask) | (fill & ~lastMask)
                    for s in 0..<spans.count {
                        let out = hor + (s * height + y) * wpr
                        let extend = extendsPrevious[s]
                        shifts[s].withUnsafeBufferPointer { ds in
                            for w in 0..<wpr {
                                // Bit b of a shifted word is bit (64 w + b + d) of the row, i.e. bit
                                // 64 (w + g) + b + d of the guarded row.
                                var acc: UInt64 = extend ? out[w - wpr * height] : fill  // the identity of the operation
                                if dilate {
                                    for d in ds {
                                        let p = 64 * (w + g) + d, q = p >> 6, r = UInt64(p & 63)
                                        acc |= r == 0 ? ext[q] : (ext[q] >> r) | (ext[q + 1] << (64 - r))
                                    }
                                } else {
                                    for d in ds {
                                        let p = 64 * (w + g) + d, q = p >> 6, r = UInt64(p & 63)
                                        acc &= r == 0 ? ext[q] : (ext[q] >> r) | (ext[q + 1] << (64 - r))
                                    }
                                }
                                out[w] = acc
                            }
                        }
                    }
                }
                // Vertical: element row i reads image row y + i - anchorY; rows outside are skipped.
                for y in 0..<height {
                    let out = destination + y * wpr
                    for w in 0..<wpr { out[w] = dilate ? 0 : ~0 }
                    for (i, s) in rowSpan.enumerated() where s >= 0 {
                        let sy = y + i - element.anchorY
                        guard sy >= 0 && sy < height else { continue }
                        let src = hor + (s * height + sy) * wpr
                        if dilate { for w in 0..<wpr { out[w] |= src[w] } } else { for w in 0..<wpr { out[w] &= src[w] } }
                    }
                    out[wpr - 1] &= lastMask
                }
            }
        }
    }
}

/// Packed binary images: row-major, `wordsPerRow(width)` words per row, pixel x of a row in bit
/// x % 64 of word x / 64; bits beyond the width are 0.
enum BitRows {
    static func wordsPerRow(_ width: Int) -> Int { max((width + 63) / 64, 1) }

    /// Number of ones.
    static func popcount(_ words: UnsafePointer<UInt64>, count: Int) -> Int {
        var n = 0
        for i in 0..<count { n += words[i].nonzeroBitCount }
        return n
    }

    /// Packs a 0/1 byte image (row-major) into bit rows.
    static func pack(_ bytes: [UInt8], width: Int, height: Int) -> [UInt64] {
        let wpr = wordsPerRow(width)
        var words = [UInt64](repeating: 0, count: wpr * height)
        for y in 0..<height { for x in 0..<width where bytes[y * width + x] != 0 {
            words[y * wpr + x / 64] |= UInt64(1) << UInt64(x % 64)
        } }
        return words
    }

    /// Unpacks bit rows into a 0/1 byte image.
    static func unpack(_ words: [UInt64], width: Int, height: Int) -> [UInt8] {
        let wpr = wordsPerRow(width)
        return (0..<(width * height)).map { i in
            let y = i / width, x = i % width
            return UInt8((words[y * wpr + x / 64] >> UInt64(x % 64)) & 1)
        }
    }
}
