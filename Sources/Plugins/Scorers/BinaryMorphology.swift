import Foundation

/// OpenCV's `morphologyEx(mask, MORPH_CLOSE, element)` on a 0/1 image, as `dilate` then `erode` with
/// the same element and anchor and OpenCV's default border (pixels outside the image never win: 0
/// for dilation, 1 for erosion). OpenCV computes, for both operations,
///     dst(x, y) = op over element pixels (i, j) of src(x + j - anchorX, y + i - anchorY)
/// (max for dilate, min for erode; the element is not mirrored for either).
///
/// Images are packed bit rows (`BitRows`), so one machine word covers 64 pixels: each element row is
/// a run of ones, and a run is an OR (AND) of shifted copies of a bit row. Integer work only, exact.
///
/// Each pass is a horizontal step (row y's runs depend on source row y only) and a vertical step
/// (output row y depends on the runs of the rows in its window). The evaluator closes a sequence of
/// masks that differ in a few rows, so each `slot` keeps its last source and every intermediate row:
/// a call recomputes only the rows whose inputs changed, and every other row is the value the full
/// computation gives. One instance per image size; not thread-safe (one per worker, reused).
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
    /// Element rows that hold ones, as (row offset from the anchor, span).
    private let taps: [(dy: Int, span: Int)]
    private var extended: [UInt64]
    private var slots: [Slot] = []

    /// One image sequence's last source and the intermediate rows computed from it, in memory of its
    /// own.
    private final class Slot {
        var valid = false
        let source: UnsafeMutablePointer<UInt64>
        let dilateRuns: UnsafeMutablePointer<UInt64>
        let dilated: UnsafeMutablePointer<UInt64>
        let erodeRuns: UnsafeMutablePointer<UInt64>
        let closed: UnsafeMutablePointer<UInt64>
        let row: UnsafeMutablePointer<UInt64>
        /// Per row: the rows whose input changed in this call, and the rows that need recomputing.
        let changed: UnsafeMutablePointer<Bool>
        let affected: UnsafeMutablePointer<Bool>

        init(spans: Int, height: Int, wordsPerRow: Int) {
            let plane = height * wordsPerRow
            source = .filled(plane, with: 0); dilateRuns = .filled(spans * plane, with: 0); dilated = .filled(plane, with: 0)
            erodeRuns = .filled(spans * plane, with: 0); closed = .filled(plane, with: 0); row = .filled(wordsPerRow, with: 0)
            changed = .filled(height, with: false); affected = .filled(height, with: false)
        }

        deinit {
            for p in [source, dilateRuns, dilated, erodeRuns, closed, row] { p.deallocate() }
            changed.deallocate(); affected.deallocate()
        }
    }

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
        taps = self.rowSpan.enumerated().compactMap { i, s in s < 0 ? nil : (dy: i - element.anchorY, span: s) }
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
    }

    /// Closes `source` (height * wordsPerRow words, bits beyond `width` zero) into `destination`
    /// (same layout; bits beyond `width` left zero). `slot` names the sequence of images this one
    /// follows (one per channel plane): rows that did not change since its last call are reused.
    func close(_ source: UnsafePointer<UInt64>, into destination: UnsafeMutablePointer<UInt64>, slot: Int = 0) {
        while slots.count <= slot { slots.append(Slot(spans: max(spans.count, 1), height: height, wordsPerRow: wordsPerRow)) }
        let st = slots[slot]
        let wpr = wordsPerRow, fresh = !st.valid
        let changed = st.changed, affected = st.affected, row = st.row
        // Dilation: the runs of the source rows that changed, then every row whose window holds one.
        var any = false
        for y in 0..<height {
            let a = source + y * wpr, b = st.source + y * wpr
            changed[y] = fresh || memcmp(a, b, wpr * 8) != 0
            if changed[y] {
                any = true
                b.update(from: a, count: wpr)
                horizontal(b, y: y, runs: st.dilateRuns, dilate: true)
            }
        }
        if any {
            markWindows(changed, into: affected)
            // Erosion follows the dilated rows that actually changed.
            for y in 0..<height {
                changed[y] = false
                guard affected[y] else { continue }
                vertical(y: y, runs: st.dilateRuns, into: row, dilate: true)
                let d = st.dilated + y * wpr
                if fresh || memcmp(row, d, wpr * 8) != 0 {
                    d.update(from: row, count: wpr)
                    changed[y] = true
                    horizontal(d, y: y, runs: st.erodeRuns, dilate: false)
                }
            }
            markWindows(changed, into: affected)
            for y in 0..<height where affected[y] {
                vertical(y: y, runs: st.erodeRuns, into: st.closed + y * wpr, dilate: false)
            }
        }
        destination.update(from: st.closed, count: height * wpr)
        st.valid = true
    }

    /// affected[y]: some row in output row y's window (the element's rows around it) is marked.
    private func markWindows(_ marked: UnsafePointer<Bool>, into affected: UnsafeMutablePointer<Bool>) {
        for y in 0..<height {
            var hit = false
            for t in taps {
                let sy = y + t.dy
                if sy >= 0 && sy < height && marked[sy] { hit = true; break }
            }
            affected[y] = hit
        }
    }

    /// Row y's runs: runs[s * height + y] bit x = op over d in span s of row(x + d).
    private func horizontal(_ row: UnsafePointer<UInt64>, y: Int, runs hor: UnsafeMutablePointer<UInt64>, dilate: Bool) {
        let wpr = wordsPerRow, g = guardWords
        // Outside the image: the value that never wins (0 for max, 1 for min).
        let fill: UInt64 = dilate ? 0 : ~0
        let lastMask = lastWordMask
        // A row of only the value that never wins stays so (all 0 under dilation, all 1 under
        // erosion): every run of it is the same row.
        var uniform = true
        for w in 0..<wpr where (row[w] & (w == wpr - 1 ? lastMask : ~0)) != (fill & (w == wpr - 1 ? lastMask : ~0)) { uniform = false; break }
        if uniform {
            for s in 0..<spans.count { (hor + (s * height + y) * wpr).update(repeating: fill, count: wpr) }
            return
        }
        extended.withUnsafeMutableBufferPointer { extBuffer in
            let ext = extBuffer.baseAddress!
            for w in 0..<extBuffer.count { ext[w] = fill }
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
    }

    /// Output row y: element row i reads the runs of image row y + i - anchorY; rows outside are skipped.
    private func vertical(y: Int, runs hor: UnsafePointer<UInt64>, into out: UnsafeMutablePointer<UInt64>, dilate: Bool) {
        let wpr = wordsPerRow
        for w in 0..<wpr { out[w] = dilate ? 0 : ~0 }
        for t in taps {
            let sy = y + t.dy
            guard sy >= 0 && sy < height else { continue }
            let src = hor + (t.span * height + sy) * wpr
            if dilate { for w in 0..<wpr { out[w] |= src[w] } } else { for w in 0..<wpr { out[w] &= src[w] } }
        }
        out[wpr - 1] &= lastWordMask
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
