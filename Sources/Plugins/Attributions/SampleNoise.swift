import Foundation
import QuacPluginKit

/// Random numbers for one sample of a batch, so that a batch of N gives the same result as N batches
/// of one under the same seed (the conformance check's batch invariance): each sample's generator is
/// seeded from the batch seed and a hash of the sample's own float32 bytes (FNV-1a, 64 bit), never from
/// its position in the batch. Identical images in one batch therefore get identical noise; a different
/// seed gives different noise for every image.
enum SampleNoise {
    static func generator(seed: UInt64, sample: UnsafeMutableBufferPointer<Float>.SubSequence, salt: UInt64 = 0) -> SeededRandom {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for v in sample {
            var bits = v.bitPattern
            for _ in 0..<4 {
                h ^= UInt64(bits & 0xff)
                h = h &* 0x0000_0100_0000_01b3
                bits >>= 8
            }
        }
        // Mix so that nearby seeds and hashes give unrelated streams (SeededRandom runs SplitMix64 on it).
        return SeededRandom(seed: h ^ (seed &* 0x9E37_79B9_7F4A_7C15) ^ (salt &* 0xD1B5_4A32_D192_ED03))
    }
}

/// scipy.ndimage.gaussian_filter semantics on one sample of any rank: a separable Gaussian along every
/// axis (channels included, as QuAC's reference filters the whole C x H x W array), kernel radius
/// int(truncate * sigma + 0.5) with truncate 4, weights exp(-x^2 / 2 sigma^2) normalized to sum 1, and
/// scipy's default boundary mode "reflect" (d c b a | a b c d | d c b a, repeated for short axes).
enum GaussianFilter {
    static func kernel(sigma: Double, truncate: Double = 4) -> [Double] {
        let radius = Int(truncate * sigma + 0.5)
        let raw = (-radius...radius).map { exp(-0.5 * Double($0 * $0) / (sigma * sigma)) }
        let total = raw.reduce(0, +)
        return raw.map { $0 / total }
    }

    /// Index of position i (any integer) in an axis of length n under "reflect".
    @inline(__always) static func reflect(_ i: Int, _ n: Int) -> Int {
        let period = 2 * n
        var k = i % period
        if k < 0 { k += period }
        return k < n ? k : period - 1 - k
    }

    /// Filters `values` (row-major with `shape`) in place, in double.
    static func apply(_ values: inout [Double], shape: [Int], sigma: Double) {
        guard sigma > 0, !values.isEmpty else { return }
        let w = kernel(sigma: sigma)
        let radius = w.count / 2
        var line = [Double](), out = [Double]()
        for axis in shape.indices {
            let n = shape[axis]
            guard n > 0 else { return }
            let inner = shape[(axis + 1)...].reduce(1, *)
            let outer = shape[..<axis].reduce(1, *)
            line = [Double](repeating: 0, count: n)
            out = [Double](repeating: 0, count: n)
            for o in 0..<outer {
                for q in 0..<inner {
                    let base = o * n * inner + q
                    for i in 0..<n { line[i] = values[base + i * inner] }
                    for i in 0..<n {
                        var s = 0.0
                        for j in 0..<w.count { s += w[j] * line[reflect(i + j - radius, n)] }
                        out[i] = s
                    }
                    for i in 0..<n { values[base + i * inner] = out[i] }
                }
            }
        }
    }
}
