/// The distinct closed masks of one attribution map over all thresholds, each found once.
///
/// Binary mask i is {a > float32(t_i)} per channel (or, with channel_wise off, {max over channels of
/// a > float32(t_i)} for every channel, as the reference's np.any). A pixel's *level* is the number of
/// thresholds below its value, so it is in mask i exactly when i < level. Masks shrink as i grows and
/// mask i differs from mask i - 1 only where pixels have level i; thresholds where none do reuse the
/// previous mask without closing it again. Closing is monotone, so equal closed masks are adjacent in
/// threshold order: each closed mask is compared with the previous distinct one only, and every
/// threshold maps to the index of its distinct closed mask (all negative thresholds, for example,
/// share the full mask).
struct QuacMaskSet {
    /// Per threshold: the index of its distinct closed mask.
    var maskIndex: [Int] = []
    /// Per distinct mask: the number of ones over all C channels (the reference's mask_size).
    var sizes: [Int] = []
    /// The distinct closed masks, `planes` bit-row planes each, back to back.
    var words: [UInt64] = []
    /// Bit planes per mask: C when channel-wise, else 1 (shared by every channel).
    let planes: Int
    let wordsPerPlane: Int

    var count: Int { sizes.count }

    init(map: UnsafePointer<Float>, channels: Int, height: Int, width: Int, channelWise: Bool,
         thresholds: QuacThresholds, closing: BinaryClosing) {
        let pixels = height * width
        planes = channelWise ? channels : 1
        let wpr = BitRows.wordsPerRow(width)
        wordsPerPlane = height * wpr
        let t = thresholds.count
        // Levels, bucketed by a counting sort (pixel indices within the planes).
        var level = [Int32](repeating: 0, count: planes * pixels)
        if channelWise {
            for i in 0..<(channels * pixels) { level[i] = Int32(thresholds.level(of: map[i])) }
        } else {
            for p in 0..<pixels {
                var l = 0
                for c in 0..<channels { l = max(l, thresholds.level(of: map[c * pixels + p])) }
                level[p] = Int32(l)
            }
        }
        var start = [Int](repeating: 0, count: t + 2)
        for l in level { start[Int(l) + 1] += 1 }
        for i in 0..<(t + 1) { start[i + 1] += start[i] }
        var bucket = [Int32](repeating: 0, count: level.count)
        var fill = start
        for (i, l) in level.enumerated() { bucket[fill[Int(l)]] = Int32(i); fill[Int(l)] += 1 }

        // Binary mask before the first threshold: every pixel (bits beyond the width stay 0).
        var bits = [UInt64](repeating: 0, count: planes * wordsPerPlane)
        let tailBits = width % 64
        let lastMask: UInt64 = tailBits == 0 ? ~0 : (UInt64(1) << UInt64(tailBits)) - 1
        for r in 0..<(planes * height) {
            for w in 0..<wpr { bits[r * wpr + w] = w == wpr - 1 ? lastMask : ~0 }
        }
        var closed = [UInt64](repeating: 0, count: planes * wordsPerPlane)
        var changed = [Bool](repeating: true, count: planes)
        maskIndex.reserveCapacity(t)
        let perPlane = wordsPerPlane
        for i in 0..<t {
            let removed = start[i]..<start[i + 1]
            if i > 0 && removed.isEmpty {
                maskIndex.append(maskIndex[i - 1])
                continue
            }
            for k in removed {
                let idx = Int(bucket[k])
                let plane = idx / pixels, p = idx % pixels
                let y = p / width, x = p % width
                bits[plane * perPlane + y * wpr + (x >> 6)] &= ~(UInt64(1) << UInt64(x & 63))
                changed[plane] = true
            }
            let previous = sizes.count - 1
            bits.withUnsafeBufferPointer { b in
                closed.withUnsafeMutableBufferPointer { c in
                    words.withUnsafeBufferPointer { prior in
                        for plane in 0..<planes {
                            let dst = c.baseAddress! + plane * perPlane
                            if changed[plane] || previous < 0 {
                                closing.close(b.baseAddress! + plane * perPlane, into: dst, slot: plane)
                            } else {
                                // Same binary plane as the previous threshold: same closed plane.
                                dst.update(from: prior.baseAddress! + (previous * planes + plane) * perPlane, count: perPlane)
                            }
                        }
                    }
                }
            }
            for plane in 0..<planes { changed[plane] = false }
            let same = previous >= 0 && words.withUnsafeBufferPointer { prior in
                closed.withUnsafeBufferPointer { c in
                    memcmp(prior.baseAddress! + previous * planes * perPlane, c.baseAddress!, planes * perPlane * 8) == 0
                }
            }
            if same {
                maskIndex.append(previous)
            } else {
                words.append(contentsOf: closed)
                let ones = closed.withUnsafeBufferPointer { BitRows.popcount($0.baseAddress!, count: $0.count) }
                sizes.append(channelWise ? ones : ones * channels)
                maskIndex.append(sizes.count - 1)
            }
        }
    }

    /// Bit plane `plane` of distinct mask `index`.
    func withPlane<R>(_ index: Int, _ plane: Int, _ body: (UnsafePointer<UInt64>) -> R) -> R {
        words.withUnsafeBufferPointer { body($0.baseAddress! + (index * planes + plane) * wordsPerPlane) }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
