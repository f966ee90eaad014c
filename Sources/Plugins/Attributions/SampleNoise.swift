import Foundation
import QuacPluginKit

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
