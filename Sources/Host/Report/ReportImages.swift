import Foundation

/// Images of the report as inline PNG data URIs: inputs in [-1, 1] as they are, attribution maps in a
/// perceptual colour map, masks as an overlay on the query.
enum ReportImages {
    /// One sample [C, H, W] in [-1, 1] (C = 1 or 3) as an 8-bit gray or RGB PNG.
    static func image(_ t: Tensor, sample: Int) -> String? {
        guard t.rank == 4, [1, 3].contains(t.shape[1]) else { return nil }
        let (c, h, w) = (t.shape[1], t.shape[2], t.shape[3])
        let v = t.floats, base = sample * c * h * w
        var bytes = [UInt8](repeating: 0, count: c * h * w)
        for y in 0..<h { for x in 0..<w { for ch in 0..<c {
            let f = v[base + (ch * h + y) * w + x]
            bytes[(y * w + x) * c + ch] = UInt8(max(0, min(255, ((f + 1) * 127.5).rounded())))
        } } }
        return dataURI(RasterImage(width: w, height: h, channels: c, samples: .uint8(bytes)))
    }

    /// A map [C, H, W] in [0, 1], averaged over channels, in the colour map.
    static func heatmap(_ t: Tensor, sample: Int) -> String? {
        guard t.rank == 4 else { return nil }
        let (c, h, w) = (t.shape[1], t.shape[2], t.shape[3])
        let v = t.floats, base = sample * c * h * w
        var bytes = [UInt8](repeating: 0, count: 3 * h * w)
        for p in 0..<(h * w) {
            var s: Float = 0
            for ch in 0..<c { s += v[base + ch * h * w + p] }
            let rgb = colour(s / Float(c))
            bytes[3 * p] = rgb.0; bytes[3 * p + 1] = rgb.1; bytes[3 * p + 2] = rgb.2
        }
        return dataURI(RasterImage(width: w, height: h, channels: 3, samples: .uint8(bytes)))
    }

    /// The query in gray with the mask (in [0, 1]) tinted red over it.
    static func overlay(query: Tensor, mask: Tensor, sample: Int) -> String? {
        guard query.rank == 4, mask.shape == query.shape else { return nil }
        let (c, h, w) = (query.shape[1], query.shape[2], query.shape[3])
        let q = query.floats, m = mask.floats, base = sample * c * h * w
        var bytes = [UInt8](repeating: 0, count: 3 * h * w)
        for p in 0..<(h * w) {
            var g: Float = 0, a: Float = 0
            for ch in 0..<c { g += (q[base + ch * h * w + p] + 1) / 2; a = max(a, m[base + ch * h * w + p]) }
            g /= Float(c)
            let alpha = 0.6 * max(0, min(1, a))
            let rgb = (g * (1 - alpha) + alpha, g * (1 - alpha), g * (1 - alpha))
            bytes[3 * p] = UInt8(max(0, min(255, rgb.0 * 255))); bytes[3 * p + 1] = UInt8(max(0, min(255, rgb.1 * 255)))
            bytes[3 * p + 2] = UInt8(max(0, min(255, rgb.2 * 255)))
        }
        return dataURI(RasterImage(width: w, height: h, channels: 3, samples: .uint8(bytes)))
    }

    static func dataURI(_ image: RasterImage) -> String? {
        guard let png = try? PNGFile.encode(image, path: "report image") else { return nil }
        return "data:image/png;base64," + Data(png).base64EncodedString()
    }

    /// A dark-to-bright sequential colour map (black, purple, red, orange, pale yellow), interpolated.
    static func colour(_ value: Float) -> (UInt8, UInt8, UInt8) {
        let stops: [(Float, Float, Float)] = [(0, 0, 4), (87, 16, 110), (188, 55, 84), (249, 142, 9), (252, 255, 164)]
        let v = max(0, min(1, value.isFinite ? value : 0)) * Float(stops.count - 1)
        let i = min(Int(v), stops.count - 2), f = v - Float(i)
        let a = stops[i], b = stops[i + 1]
        return (UInt8(a.0 + (b.0 - a.0) * f), UInt8(a.1 + (b.1 - a.1) * f), UInt8(a.2 + (b.2 - a.2) * f))
    }
}
