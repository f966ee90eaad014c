import Foundation

/// Resizing of planar float images.
///
/// The method is antialiased bilinear (a triangle filter whose support widens with the shrink factor,
/// so shrinking averages over the area each output pixel covers instead of sampling 4 input pixels),
/// with pixel centers at i + 0.5 (align_corners = false), applied separably (rows, then columns), and
/// weights clipped at the border and renormalised. This is PIL's BILINEAR resize and
/// `torch.nn.functional.interpolate(mode="bilinear", antialias=True, align_corners=False)`, so it is what
/// `torchvision.transforms.Resize((size, size), antialias=True)` computes; Tests/QuacCoreTests checks it
/// against PyTorch. When enlarging it is ordinary bilinear interpolation. One difference with a
/// torchvision pipeline on PIL images: PIL rounds the resized 8-bit image to integers before ToTensor;
/// here the result stays float (the difference is at most 0.5/127.5 after scaling to [-1, 1]).
public enum ImageResize {
    /// Per output index: the first input index, the number of taps and their weights (stride `taps`).
    struct Kernel {
        var start: [Int]
        var count: [Int]
        var weights: [Float]
        var taps: Int
    }

    static func kernel(input: Int, output: Int) -> Kernel {
        let scale = Double(input) / Double(output)
        let support = scale >= 1 ? scale : 1.0
        let invScale = scale >= 1 ? 1 / scale : 1.0
        let taps = Int(support.rounded(.up)) * 2 + 1
        var k = Kernel(start: [], count: [], weights: [Float](repeating: 0, count: output * taps), taps: taps)
        for i in 0..<output {
            let center = scale * (Double(i) + 0.5)
            let xmin = max(Int(center - support + 0.5), 0)
            let xsize = min(Int(center + support + 0.5), input) - xmin
            var w = [Double](repeating: 0, count: max(xsize, 0))
            var total = 0.0
            for j in 0..<max(xsize, 0) {
                let x = abs((Double(j + xmin) - center + 0.5) * invScale)
                w[j] = x < 1 ? 1 - x : 0
                total += w[j]
            }
            for j in 0..<min(w.count, taps) { k.weights[i * taps + j] = Float(total != 0 ? w[j] / total : 0) }
            k.start.append(xmin)
            k.count.append(min(max(xsize, 0), taps))
        }
        return k
    }

    /// Resizes `channels` planes of `height` x `width` (channel-major) to `toHeight` x `toWidth`.
    public static func resize(_ planes: [Float], channels: Int, height: Int, width: Int, toHeight: Int, toWidth: Int) -> [Float] {
        precondition(planes.count == channels * height * width, "\(planes.count) values for \(channels)x\(height)x\(width)")
        precondition(height > 0 && width > 0 && toHeight > 0 && toWidth > 0, "empty image size")
        if height == toHeight && width == toWidth { return planes }
        // Rows first (width), then columns (height), as PIL and PyTorch do.
        var mid = planes
        if width != toWidth {
            let k = kernel(input: width, output: toWidth)
            mid = [Float](repeating: 0, count: channels * height * toWidth)
            planes.withUnsafeBufferPointer { src in
                mid.withUnsafeMutableBufferPointer { dst in
                    k.weights.withUnsafeBufferPointer { wt in
                        for row in 0..<(channels * height) {
                            let s = row * width, d = row * toWidth
                            for x in 0..<toWidth {
                                var acc: Float = 0
                                let w0 = x * k.taps, x0 = s + k.start[x]
                                for j in 0..<k.count[x] { acc += wt[w0 + j] * src[x0 + j] }
                                dst[d + x] = acc
                            }
                        }
                    }
                }
            }
        }
        if height == toHeight { return mid }
        let k = kernel(input: height, output: toHeight)
        var out = [Float](repeating: 0, count: channels * toHeight * toWidth)
        mid.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                k.weights.withUnsafeBufferPointer { wt in
                    for c in 0..<channels {
                        let s = c * height * toWidth, d = c * toHeight * toWidth
                        for y in 0..<toHeight {
                            let w0 = y * k.taps, o = d + y * toWidth
                            for j in 0..<k.count[y] {
                                let weight = wt[w0 + j]
                                let r = s + (k.start[y] + j) * toWidth
                                for x in 0..<toWidth { dst[o + x] += weight * src[r + x] }
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}
