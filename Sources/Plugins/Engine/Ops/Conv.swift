import Foundation

/// Stride, padding and dilation of a 2-D convolution (height, width).
public struct ConvGeometry: Sendable, Equatable {
    public var stride: (Int, Int)
    public var padding: (Int, Int)
    public var dilation: (Int, Int)

    public init(stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int) = (1, 1)) {
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
    }

    public init(stride: Int = 1, padding: Int = 0, dilation: Int = 1) {
        self.init(stride: (stride, stride), padding: (padding, padding), dilation: (dilation, dilation))
    }

    public static func == (a: ConvGeometry, b: ConvGeometry) -> Bool {
        a.stride == b.stride && a.padding == b.padding && a.dilation == b.dilation
    }

    func outputSize(_ h: Int, _ w: Int, _ kh: Int, _ kw: Int) -> (Int, Int) {
        ((h + 2 * padding.0 - dilation.0 * (kh - 1) - 1) / stride.0 + 1,
         (w + 2 * padding.1 - dilation.1 * (kw - 1) - 1) / stride.1 + 1)
    }
}

// Convolution as im2col + GEMM. Three ops close the set under differentiation: conv2d(x, w), its
// input gradient (a transposed convolution) and its weight gradient; each one's derivative is made of
// the other two, so double backward through convolutions works.

extension Var {
    /// Cross-correlation of x [N,C,H,W] with w [O,C,kh,kw], plus bias [O], as F.conv2d.
    public func conv2d(_ w: Var, bias: Var? = nil, _ geo: ConvGeometry = ConvGeometry()) -> Var {
        let y = conv2dNoBias(w, geo)
        guard let bias else { return y }
        return y + bias.reshape([1, bias.count, 1, 1])
    }

    func conv2dNoBias(_ w: Var, _ geo: ConvGeometry) -> Var {
        let x = self
        precondition(x.rank == 4 && w.rank == 4 && x.shape[1] == w.shape[1],
                     "conv2d of input \(x.shape) with weight \(w.shape)")
        return Var.make("conv2d", Kernels.conv2d(x.data, w.data, geo), [x, w]) { g, _ in
            [x.requiresGrad ? Var.convInputGrad(g, w, inputShape: x.shape, geo) : nil,
             w.requiresGrad ? Var.convWeightGrad(x, g, weightShape: w.shape, geo) : nil]
        }
    }

    /// The adjoint of conv2d in x: maps g [N,O,Ho,Wo] to [N,C,H,W] (`inputShape`).
    static func convInputGrad(_ g: Var, _ w: Var, inputShape: [Int], _ geo: ConvGeometry) -> Var {
        make("conv2d_input_grad", Kernels.convInputGrad(g.data, w.data, inputShape: inputShape, geo), [g, w]) { h, _ in
            [g.requiresGrad ? h.conv2dNoBias(w, geo) : nil,
             w.requiresGrad ? convWeightGrad(h, g, weightShape: w.shape, geo) : nil]
        }
    }

    /// d(sum(conv2d(x, w) * g))/dw.
    static func convWeightGrad(_ x: Var, _ g: Var, weightShape: [Int], _ geo: ConvGeometry) -> Var {
        make("conv2d_weight_grad", Kernels.convWeightGrad(x.data, g.data, weightShape: weightShape, geo), [x, g]) { h, _ in
            [x.requiresGrad ? convInputGrad(g, h, inputShape: x.shape, geo) : nil,
             g.requiresGrad ? x.conv2dNoBias(h, geo) : nil]
        }
    }

    /// Transposed convolution, as F.conv_transpose2d: x [N,Cin,H,W], w [Cin,Cout,kh,kw].
    public func convTranspose2d(_ w: Var, bias: Var? = nil, _ geo: ConvGeometry = ConvGeometry(),
                                outputPadding: (Int, Int) = (0, 0)) -> Var {
        let (n, h, wd) = (shape[0], shape[2], shape[3])
        let (kh, kw) = (w.shape[2], w.shape[3])
        let oh = (h - 1) * geo.stride.0 - 2 * geo.padding.0 + geo.dilation.0 * (kh - 1) + outputPadding.0 + 1
        let ow = (wd - 1) * geo.stride.1 - 2 * geo.padding.1 + geo.dilation.1 * (kw - 1) + outputPadding.1 + 1
        let y = Var.convInputGrad(self, w, inputShape: [n, w.shape[1], oh, ow], geo)
        guard let bias else { return y }
        return y + bias.reshape([1, bias.count, 1, 1])
    }
}

extension Kernels {
    /// The output columns j whose input column j * stride + base lies inside [0, w).
    @inline(__always)
    static func validColumns(base: Int, stride: Int, w: Int, ow: Int) -> Range<Int> {
        let lo = base >= 0 ? 0 : Swift.min(ow, (-base + stride - 1) / stride)
        let hi = w - 1 - base < 0 ? 0 : Swift.min(ow, (w - 1 - base) / stride + 1)
        return lo..<Swift.max(lo, hi)
    }

    /// cols [C*kh*kw, Ho*Wo] of one sample x [C,H,W].
    static func im2col(_ x: UnsafePointer<Float>, c: Int, h: Int, w: Int, kh: Int, kw: Int,
                       _ geo: ConvGeometry, oh: Int, ow: Int, into cols: UnsafeMutablePointer<Float>) {
        let (sh, sw) = geo.stride, (ph, pw) = geo.padding, (dh, dw) = geo.dilation
        let plane = oh * ow
        parallelChunks(c, cost: kh * kw * plane) { range in
            for ch in range {
                let src = x + ch * h * w
                for ki in 0..<kh {
                    for kj in 0..<kw {
                        let row = cols + ((ch * kh + ki) * kw + kj) * plane
                        let base = kj * dw - pw
                        // Columns that read padding are zeroed; the rest copy without bounds checks.
                        let valid = validColumns(base: base, stride: sw, w: w, ow: ow)
                        for i in 0..<oh {
                            let ih = i * sh - ph + ki * dh
                            let dst = row + i * ow
                            if ih < 0 || ih >= h { dst.update(repeating: 0, count: ow); continue }
                            let line = src + ih * w + base
                            if valid.lowerBound > 0 { dst.update(repeating: 0, count: valid.lowerBound) }
                            if valid.upperBound < ow { (dst + valid.upperBound).update(repeating: 0, count: ow - valid.upperBound) }
                            if sw == 1 {
                                (dst + valid.lowerBound).update(from: line + valid.lowerBound, count: valid.count)
                            } else {
                                for j in valid { dst[j] = line[j * sw] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Adds cols [C*kh*kw, Ho*Wo] back into dx [C,H,W] (the adjoint of im2col).
    static func col2im(_ cols: UnsafePointer<Float>, c: Int, h: Int, w: Int, kh: Int, kw: Int,
                       _ geo: ConvGeometry, oh: Int, ow: Int, into dx: UnsafeMutablePointer<Float>) {
        let (sh, sw) = geo.stride, (ph, pw) = geo.padding, (dh, dw) = geo.dilation
        let plane = oh * ow
        parallelChunks(c, cost: kh * kw * plane) { range in
            for ch in range {
                let dst = dx + ch * h * w
                for ki in 0..<kh {
                    for kj in 0..<kw {
                        let row = cols + ((ch * kh + ki) * kw + kj) * plane
                        let base = kj * dw - pw
                        let valid = validColumns(base: base, stride: sw, w: w, ow: ow)
                        for i in 0..<oh {
                            let ih = i * sh - ph + ki * dh
                            if ih < 0 || ih >= h { continue }
                            let line = dst + ih * w + base, src = row + i * ow
                            if sw == 1 {
                                for j in valid { line[j] += src[j] }
                            } else {
                                for j in valid { line[j * sw] += src[j] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// True when im2col would be the identity (1x1 kernel, stride 1, no padding).
    static func isPointwise(_ kh: Int, _ kw: Int, _ geo: ConvGeometry) -> Bool {
        kh == 1 && kw == 1 && geo.stride == (1, 1) && geo.padding == (0, 0)
    }

    static func conv2d(_ x: NDArray, _ w: NDArray, _ geo: ConvGeometry) -> NDArray {
        let xc = x.contiguous(), wc = w.contiguous()
        let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (o, kh, kw) = (w.shape[0], w.shape[2], w.shape[3])
        let (oh, ow) = geo.outputSize(h, wd, kh, kw)
        precondition(oh > 0 && ow > 0, "conv2d output would be empty for input \(x.shape), kernel \(w.shape)")
        let out = NDArray.uninitialized([n, o, oh, ow])
        let ckk = c * kh * kw, plane = oh * ow
        let wm = wc.reshaped([o, ckk])
        let pointwise = isPointwise(kh, kw, geo)
        let cols = pointwise ? nil : NDArray.uninitialized([ckk, plane])
        for s in 0..<n {
            let xs = xc.pointer + s * c * h * wd
            let colsArray: NDArray
            if let cols {
                im2col(xs, c: c, h: h, w: wd, kh: kh, kw: kw, geo, oh: oh, ow: ow, into: cols.pointer)
                colsArray = cols
            } else {
                colsArray = NDArray(storage: xc.storage, offset: xc.offset + s * c * h * wd, shape: [ckk, plane])
            }
            gemm(wm, colsArray, into: out.pointer + s * o * plane)
        }
        return out
    }

    static func convInputGrad(_ g: NDArray, _ w: NDArray, inputShape: [Int], _ geo: ConvGeometry) -> NDArray {
        let gc = g.contiguous(), wc = w.contiguous()
        let (n, c, h, wd) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
        let (o, kh, kw) = (w.shape[0], w.shape[2], w.shape[3])
        let (oh, ow) = (g.shape[2], g.shape[3])
        precondition(g.shape[0] == n && g.shape[1] == o, "conv input gradient \(g.shape) for weight \(w.shape)")
        let ckk = c * kh * kw, plane = oh * ow
        let wt = wc.reshaped([o, ckk]).transposed(0, 1)
        let pointwise = isPointwise(kh, kw, geo)
        let dx = pointwise ? NDArray.uninitialized(inputShape) : NDArray.zeros(inputShape)
        let cols = pointwise ? nil : NDArray.uninitialized([ckk, plane])
        for s in 0..<n {
            let gs = NDArray(storage: gc.storage, offset: gc.offset + s * o * plane, shape: [o, plane])
            if let cols {
                gemm(wt, gs, into: cols.pointer)
                col2im(cols.pointer, c: c, h: h, w: wd, kh: kh, kw: kw, geo, oh: oh, ow: ow, into: dx.pointer + s * c * h * wd)
            } else {
                gemm(wt, gs, into: dx.pointer + s * c * h * wd)
            }
        }
        return dx
    }

    static func convWeightGrad(_ x: NDArray, _ g: NDArray, weightShape: [Int], _ geo: ConvGeometry) -> NDArray {
        let xc = x.contiguous(), gc = g.contiguous()
        let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (o, kh, kw) = (weightShape[0], weightShape[2], weightShape[3])
        let (oh, ow) = (g.shape[2], g.shape[3])
        let ckk = c * kh * kw, plane = oh * ow
        let dw = NDArray.zeros(weightShape)
        let pointwise = isPointwise(kh, kw, geo)
        let cols = pointwise ? nil : NDArray.uninitialized([ckk, plane])
        for s in 0..<n {
            let colsArray: NDArray
            if let cols {
                im2col(xc.pointer + s * c * h * wd, c: c, h: h, w: wd, kh: kh, kw: kw, geo, oh: oh, ow: ow, into: cols.pointer)
                colsArray = cols
            } else {
                colsArray = NDArray(storage: xc.storage, offset: xc.offset + s * c * h * wd, shape: [ckk, plane])
            }
            let gs = NDArray(storage: gc.storage, offset: gc.offset + s * o * plane, shape: [o, plane])
            gemm(gs, colsArray.transposed(0, 1), into: dw.pointer, beta: 1)
        }
        return dw
    }
}
