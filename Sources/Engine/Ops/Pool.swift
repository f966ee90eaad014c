import EngineKernels
import Foundation

// Pooling and resampling over the last two dimensions of [N,C,H,W]. Each op comes with its adjoint
// (max pooling: scatter by argmax / gather; average pooling: spread / average; nearest upsampling:
// block sums), and each adjoint's derivative is the op again, so all of them support double backward.

/// Positions in an input plane chosen by max pooling, one per output element (-1: none).
final class PlaneIndices: @unchecked Sendable {
    let values: [Int32]
    let inputPlane: Int, outputPlane: Int
    init(values: [Int32], inputPlane: Int, outputPlane: Int) {
        self.values = values
        self.inputPlane = inputPlane
        self.outputPlane = outputPlane
    }
}

/// Averaging windows along one axis: clipped [start, end) and the divisor's factor for each output.
struct AxisWindows {
    var start: [Int], end: [Int], divisor: [Int]
    var count: Int { start.count }

    /// k when the windows tile an axis of `size` exactly (k wide, stride k, one divisor for all), else
    /// nil: the common 2x2 pooling and block sums, which the kernels run without per-window lookups.
    func tileWidth(size: Int) -> Int? {
        guard let k = end.first, k >= 1, count * k == size, let d = divisor.first else { return nil }
        for i in 0..<count where start[i] != i * k || end[i] != i * k + k || divisor[i] != d { return nil }
        return k
    }

    /// nn.AvgPool2d's windows (count_include_pad: the divisor counts padding but not beyond it).
    static func pooling(size: Int, kernel: Int, stride: Int, padding: Int, includePad: Bool) -> AxisWindows {
        let out = (size + 2 * padding - kernel) / stride + 1
        var w = AxisWindows(start: [], end: [], divisor: [])
        for i in 0..<out {
            let s = i * stride - padding
            let e = Swift.min(s + kernel, size + padding)
            let (cs, ce) = (Swift.max(s, 0), Swift.min(e, size))
            w.start.append(cs); w.end.append(ce)
            w.divisor.append(includePad ? e - s : ce - cs)
        }
        return w
    }

    /// nn.AdaptiveAvgPool2d's windows: [floor(i*size/out), ceil((i+1)*size/out)).
    static func adaptive(size: Int, out: Int) -> AxisWindows {
        var w = AxisWindows(start: [], end: [], divisor: [])
        for i in 0..<out {
            let s = (i * size) / out, e = ((i + 1) * size + out - 1) / out
            w.start.append(s); w.end.append(e); w.divisor.append(e - s)
        }
        return w
    }
}

extension Var {
    // MARK: Max pooling

    /// nn.MaxPool2d (padding counts as -infinity).
    public func maxPool2d(kernel: Int, stride: Int? = nil, padding: Int = 0, dilation: Int = 1) -> Var {
        let (out, idx) = Kernels.maxPool(data, kernel: kernel, stride: stride ?? kernel, padding: padding, dilation: dilation)
        let x = self
        if ThreadContext.current.rule == .deepLiftRescale {
            return Var.make("deeplift_max_pool2d", out, [x]) { g, out in [Var.deepLiftMaxPool(g, x, out, idx)] }
        }
        return Var.make("max_pool2d", out, [x]) { g, _ in [Var.scatterPlanes(g, idx, inputShape: x.shape)] }
    }

    /// out[n,c,idx[p]] += g[n,c,p].
    static func scatterPlanes(_ g: Var, _ idx: PlaneIndices, inputShape: [Int]) -> Var {
        let planes = g.count / Swift.max(idx.outputPlane, 1)
        // Each plane is zeroed below; only an empty output (no planes to visit) needs zeros up front.
        let covered = planes * idx.inputPlane == inputShape.reduce(1, *)
        let out = covered ? NDArray.uninitialized(inputShape) : NDArray.zeros(inputShape)
        let gc = g.data.contiguous()
        let src = gc.pointer, dst = out.pointer
        idx.values.withUnsafeBufferPointer { iv in
            parallelChunks(planes, cost: idx.outputPlane) { r in
                for p in r {
                    let d = dst + p * idx.inputPlane, s = src + p * idx.outputPlane, ii = iv.baseAddress! + p * idx.outputPlane
                    // Zeroed plane by plane, so the scatter finds it in cache (one pass over memory, not two).
                    d.update(repeating: 0, count: idx.inputPlane)
                    for k in 0..<idx.outputPlane where ii[k] >= 0 { d[Int(ii[k])] += s[k] }
                }
            }
        }
        let outShape = g.shape
        return make("max_pool2d_backward", out, [g]) { h, _ in [gatherPlanes(h, idx, outputShape: outShape)] }
    }

    /// out[n,c,p] = h[n,c,idx[p]].
    static func gatherPlanes(_ h: Var, _ idx: PlaneIndices, outputShape: [Int]) -> Var {
        let out = NDArray.uninitialized(outputShape)
        let hc = h.data.contiguous()
        let planes = out.count / Swift.max(idx.outputPlane, 1)
        let src = hc.pointer, dst = out.pointer
        idx.values.withUnsafeBufferPointer { iv in
            parallelChunks(planes, cost: idx.outputPlane) { r in
                for p in r {
                    let s = src + p * idx.inputPlane, d = dst + p * idx.outputPlane, ii = iv.baseAddress! + p * idx.outputPlane
                    for k in 0..<idx.outputPlane { d[k] = ii[k] >= 0 ? s[Int(ii[k])] : 0 }
                }
            }
        }
        let inShape = h.shape
        return make("gather_planes", out, [h]) { g, _ in [scatterPlanes(g, idx, inputShape: inShape)] }
    }

    // MARK: Average pooling

    /// nn.AvgPool2d (count_include_pad by default, as PyTorch).
    public func avgPool2d(kernel: Int, stride: Int? = nil, padding: Int = 0, countIncludePad: Bool = true) -> Var {
        let s = stride ?? kernel
        let hw = AxisWindows.pooling(size: shape[2], kernel: kernel, stride: s, padding: padding, includePad: countIncludePad)
        let ww = AxisWindows.pooling(size: shape[3], kernel: kernel, stride: s, padding: padding, includePad: countIncludePad)
        return windowAverage(hw, ww)
    }

    /// nn.AdaptiveAvgPool2d to (oh, ow).
    public func adaptiveAvgPool2d(_ oh: Int, _ ow: Int) -> Var {
        windowAverage(.adaptive(size: shape[2], out: oh), .adaptive(size: shape[3], out: ow))
    }

    func windowAverage(_ hw: AxisWindows, _ ww: AxisWindows) -> Var {
        let inShape = shape
        return Var.make("avg_pool2d", Kernels.windowAverage(data, hw, ww), [self]) { g, _ in
            [Var.windowSpread(g, hw, ww, inputShape: inShape)]
        }
    }

    /// The adjoint of windowAverage: each output's gradient / divisor, added over its window.
    static func windowSpread(_ g: Var, _ hw: AxisWindows, _ ww: AxisWindows, inputShape: [Int]) -> Var {
        make("avg_pool2d_backward", Kernels.windowSpread(g.data, hw, ww, inputShape: inputShape), [g]) { h, _ in
            [h.windowAverage(hw, ww)]
        }
    }

    // MARK: Nearest upsampling

    /// nn.Upsample(scale_factor: s, mode: "nearest") with an integer factor.
    public func upsampleNearest(_ s: Int) -> Var {
        Var.make("upsample_nearest", Kernels.upsample(data, s), [self]) { g, _ in [g.blockSum(s)] }
    }

    /// Sums s x s blocks (the adjoint of nearest upsampling).
    func blockSum(_ s: Int) -> Var {
        let hw = AxisWindows(start: (0..<shape[2] / s).map { $0 * s }, end: (0..<shape[2] / s).map { $0 * s + s },
                             divisor: [Int](repeating: 1, count: shape[2] / s))
        let ww = AxisWindows(start: (0..<shape[3] / s).map { $0 * s }, end: (0..<shape[3] / s).map { $0 * s + s },
                             divisor: [Int](repeating: 1, count: shape[3] / s))
        return Var.make("block_sum", Kernels.windowAverage(data, hw, ww), [self]) { g, _ in [g.upsampleNearest(s)] }
    }
}

extension Kernels {
    static func maxPool(_ x: NDArray, kernel k: Int, stride s: Int, padding p: Int, dilation d: Int) -> (NDArray, PlaneIndices) {
        let xc = x.contiguous()
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let oh = (h + 2 * p - d * (k - 1) - 1) / s + 1, ow = (w + 2 * p - d * (k - 1) - 1) / s + 1
        let out = NDArray.uninitialized([n, c, oh, ow])
        // Every output writes its index, so the array needs no initial value.
        var idx = [Int32](unsafeUninitializedCapacity: n * c * oh * ow) { _, count in count = n * c * oh * ow }
        let src = xc.pointer, dst = out.pointer
        idx.withUnsafeMutableBufferPointer { iv in
            let ip = iv.baseAddress!
            if k == 2 && s == 2 && p == 0 && d == 1 {
                // The common 2x2 pooling: EngineKernels' vectorized kernel.
                parallelChunks(n * c, cost: oh * ow * 4) { r in
                    ek_max_pool_2x2(src, Int32(h), Int32(w), dst, ip, r.lowerBound, r.upperBound)
                }
                return
            }
            parallelChunks(n * c, cost: oh * ow * k * k) { r in
                for plane in r {
                    let sp = src + plane * h * w, dp = dst + plane * oh * ow, xp = ip + plane * oh * ow
                    for i in 0..<oh {
                        for j in 0..<ow {
                            var best = -Float.infinity, at: Int32 = -1
                            for ki in 0..<k {
                                let ih = i * s - p + ki * d
                                if ih < 0 || ih >= h { continue }
                                for kj in 0..<k {
                                    let iw = j * s - p + kj * d
                                    if iw < 0 || iw >= w { continue }
                                    let v = sp[ih * w + iw]
                                    if v > best || at < 0 || v.isNaN { best = v; at = Int32(ih * w + iw) }
                                }
                            }
                            dp[i * ow + j] = best
                            xp[i * ow + j] = at
                        }
                    }
                }
            }
        }
        return (out, PlaneIndices(values: idx, inputPlane: h * w, outputPlane: oh * ow))
    }

    static func windowAverage(_ x: NDArray, _ hw: AxisWindows, _ ww: AxisWindows) -> NDArray {
        let xc = x.contiguous()
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = (hw.count, ww.count)
        let out = NDArray.uninitialized([n, c, oh, ow])
        let src = xc.pointer, dst = out.pointer
        if let kh = hw.tileWidth(size: h), let kw = ww.tileWidth(size: w) {
            // Same sums in the same order as below, without the windows' arrays in the inner loop.
            let d = Float(hw.divisor[0] * ww.divisor[0])
            parallelChunks(n * c, cost: h * w) { r in
                for plane in r {
                    let sp = src + plane * h * w, dp = dst + plane * oh * ow
                    for i in 0..<oh {
                        let rows = sp + i * kh * w, o = dp + i * ow
                        if kh == 2 && kw == 2 {
                            let r1 = rows + w
                            for j in 0..<ow { o[j] = (Float(0) + rows[2 * j] + rows[2 * j + 1] + r1[2 * j] + r1[2 * j + 1]) / d }
                            continue
                        }
                        for j in 0..<ow {
                            var acc: Float = 0
                            for a in 0..<kh { let line = rows + a * w + j * kw; for b in 0..<kw { acc += line[b] } }
                            o[j] = acc / d
                        }
                    }
                }
            }
            return out
        }
        parallelChunks(n * c, cost: h * w) { r in
            for plane in r {
                let sp = src + plane * h * w, dp = dst + plane * oh * ow
                for i in 0..<oh {
                    for j in 0..<ow {
                        var acc: Float = 0
                        for ih in hw.start[i]..<hw.end[i] {
                            let line = sp + ih * w
                            for iw in ww.start[j]..<ww.end[j] { acc += line[iw] }
                        }
                        dp[i * ow + j] = acc / Float(hw.divisor[i] * ww.divisor[j])
                    }
                }
            }
        }
        return out
    }

    static func windowSpread(_ g: NDArray, _ hw: AxisWindows, _ ww: AxisWindows, inputShape: [Int]) -> NDArray {
        let gc = g.contiguous()
        let (h, w) = (inputShape[2], inputShape[3])
        let (oh, ow) = (hw.count, ww.count)
        if let kh = hw.tileWidth(size: h), let kw = ww.tileWidth(size: w) {
            // Windows that tile the plane: every input gets exactly one output's share (0 + v, as below).
            let out = NDArray.uninitialized(inputShape)
            let src = gc.pointer, dst = out.pointer
            let d = Float(hw.divisor[0] * ww.divisor[0])
            parallelChunks(inputShape[0] * inputShape[1], cost: h * w) { r in
                for plane in r {
                    let sp = src + plane * oh * ow, dp = dst + plane * h * w
                    for i in 0..<oh {
                        let g = sp + i * ow, line = dp + i * kh * w
                        for j in 0..<ow { let v = Float(0) + g[j] / d; for b in 0..<kw { line[j * kw + b] = v } }
                        for a in 1..<max(kh, 1) { (line + a * w).update(from: line, count: w) }
                    }
                }
            }
            return out
        }
        let out = NDArray.zeros(inputShape)
        let src = gc.pointer, dst = out.pointer
        parallelChunks(inputShape[0] * inputShape[1], cost: h * w) { r in
            for plane in r {
                let sp = src + plane * oh * ow, dp = dst + plane * h * w
                for i in 0..<oh {
                    for j in 0..<ow {
                        let v = sp[i * ow + j] / Float(hw.divisor[i] * ww.divisor[j])
                        for ih in hw.start[i]..<hw.end[i] {
                            let line = dp + ih * w
                            for iw in ww.start[j]..<ww.end[j] { line[iw] += v }
                        }
                    }
                }
            }
        }
        return out
    }

    static func upsample(_ x: NDArray, _ s: Int) -> NDArray {
        let xc = x.contiguous()
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let out = NDArray.uninitialized([n, c, h * s, w * s])
        let src = xc.pointer, dst = out.pointer
        parallelChunks(n * c, cost: h * w * s * s) { r in
            for plane in r {
                let sp = src + plane * h * w, dp = dst + plane * h * w * s * s
                for i in 0..<h {
                    let line = sp + i * w, o = dp + i * s * w * s
                    if s == 2 {
                        for j in 0..<w { o[2 * j] = line[j]; o[2 * j + 1] = line[j] }
                    } else {
                        for j in 0..<w { for b in 0..<s { o[j * s + b] = line[j] } }
                    }
                    for a in 1..<max(s, 1) { (o + a * w * s).update(from: o, count: w * s) }
                }
            }
        }
        return out
    }
}
