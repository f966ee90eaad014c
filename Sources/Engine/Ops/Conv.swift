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
        conv2dFused(w, bias: bias, geo, relu: false)
    }

    /// conv2d with its bias and, when `relu`, a ReLU after it, as one op: the bias and the ReLU run in
    /// the convolution's output pass, and in the backward pass the ReLU's mask is applied as the input
    /// gradient kernel reads the output gradient (ConvFusion uses this in evaluation mode).
    func conv2dFused(_ w: Var, bias: Var?, _ geo: ConvGeometry, relu: Bool) -> Var {
        let x = self
        precondition(x.rank == 4 && w.rank == 4 && x.shape[1] == w.shape[1],
                     "conv2d of input \(x.shape) with weight \(w.shape)")
        precondition(bias == nil || bias!.shape == [w.shape[0]], "conv2d bias \(bias!.shape) for weight \(w.shape)")
        let out = Kernels.conv2d(x.data, w.data, geo, bias: bias?.data, relu: relu)
        return Var.make(relu ? "conv2d_relu" : "conv2d", out, [x, w] + (bias.map { [$0] } ?? [])) { g, y in
            let biasNeeded = bias?.gradNeeded ?? false
            let biasSlot: [Var?] = bias == nil ? [] : [nil]
            if relu && !GradMode.isEnabled && !w.gradNeeded && !biasNeeded {
                // First order, input gradient only: the mask costs nothing inside the kernel.
                let dx = x.gradNeeded ? Var(Kernels.convInputGrad(g.data, w.data, inputShape: x.shape, geo, mask: y.data)) : nil
                return [dx, nil] + biasSlot
            }
            let gz = relu ? g.scaledWhere(positive: y.data, else: 0) : g
            return [x.gradNeeded ? Var.convInputGrad(gz, w, inputShape: x.shape, geo) : nil,
                    w.gradNeeded ? Var.convWeightGrad(x, gz, weightShape: w.shape, geo) : nil]
                + (biasNeeded ? [gz.sum(axes: [0, 2, 3])] : biasSlot)
        }
    }

    func conv2dNoBias(_ w: Var, _ geo: ConvGeometry) -> Var { conv2dFused(w, bias: nil, geo, relu: false) }

    /// The adjoint of conv2d in x: maps g [N,O,Ho,Wo] to [N,C,H,W] (`inputShape`).
    static func convInputGrad(_ g: Var, _ w: Var, inputShape: [Int], _ geo: ConvGeometry) -> Var {
        make("conv2d_input_grad", Kernels.convInputGrad(g.data, w.data, inputShape: inputShape, geo), [g, w]) { h, _ in
            [g.gradNeeded ? h.conv2dNoBias(w, geo) : nil,
             w.gradNeeded ? convWeightGrad(h, g, weightShape: w.shape, geo) : nil]
        }
    }

    /// d(sum(conv2d(x, w) * g))/dw.
    static func convWeightGrad(_ x: Var, _ g: Var, weightShape: [Int], _ geo: ConvGeometry) -> Var {
        make("conv2d_weight_grad", Kernels.convWeightGrad(x.data, g.data, weightShape: weightShape, geo), [x, g]) { h, _ in
            [x.gradNeeded ? convInputGrad(g, h, inputShape: x.shape, geo) : nil,
             g.gradNeeded ? x.conv2dNoBias(h, geo) : nil]
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

/// Sizes of one convolution, shared by its three kernels.
struct ConvShape {
    let n: Int, c: Int, h: Int, w: Int, o: Int, kh: Int, kw: Int, oh: Int, ow: Int
    let geo: ConvGeometry

    init(input x: [Int], weight: [Int], output: (Int, Int)? = nil, _ geo: ConvGeometry) {
        (n, c, h, w) = (x[0], x[1], x[2], x[3])
        (o, kh, kw) = (weight[0], weight[2], weight[3])
        (oh, ow) = output ?? geo.outputSize(h, w, kh, kw)
        self.geo = geo
    }

    var plane: Int { oh * ow }
    var ckk: Int { c * kh * kw }
    var inputSize: Int { c * h * w }
    /// im2col would copy x unchanged (1x1 kernel, stride 1, no padding).
    var isPointwise: Bool { kh == 1 && kw == 1 && geo.stride == (1, 1) && geo.padding == (0, 0) }
    /// Samples per GEMM: small output planes are batched side by side so each GEMM has enough columns.
    var samplesPerGEMM: Int { Swift.max(1, Swift.min(n, 2048 / Swift.max(plane, 1))) }
    /// Output rows per band when one sample's columns are large: im2col and GEMM (or GEMM and col2im)
    /// then go band by band, so the columns stay in cache (about 1 MB) between the two instead of
    /// making a round trip through memory. The whole plane when it is small enough.
    var rowsPerBand: Int { Swift.max(1, Swift.min(oh, (1 << 18) / Swift.max(ckk * ow, 1))) }
}

extension Kernels {
    /// The output columns j whose input column j * stride + base lies inside [0, w).
    @inline(__always)
    static func validColumns(base: Int, stride: Int, w: Int, ow: Int) -> Range<Int> {
        let lo = base >= 0 ? 0 : Swift.min(ow, (-base + stride - 1) / stride)
        let hi = w - 1 - base < 0 ? 0 : Swift.min(ow, (w - 1 - base) / stride + 1)
        return lo..<Swift.max(lo, hi)
    }

    /// Writes one sample x [C,H,W] as columns: row (c, ki, kj) of `cols` (row stride `ld`) holds the
    /// Ho*Wo input values that kernel tap meets.
    /// `rows` limits it to a band of output rows (column 0 of `cols` is then the band's first pixel).
    static func im2col(_ x: UnsafePointer<Float>, _ s: ConvShape, into cols: UnsafeMutablePointer<Float>, ld: Int, parallel: Bool,
                       rows: Range<Int>? = nil) {
        let (sh, sw) = s.geo.stride, (ph, pw) = s.geo.padding, (dh, dw) = s.geo.dilation
        let (h, w, kh, kw, ow) = (s.h, s.w, s.kh, s.kw, s.ow)
        let band = rows ?? 0..<s.oh
        parallelChunks(s.c, cost: parallel ? kh * kw * band.count * ow : 0) { range in
            for ch in range {
                let src = x + ch * h * w
                for ki in 0..<kh {
                    for kj in 0..<kw {
                        let row = cols + ((ch * kh + ki) * kw + kj) * ld
                        let base = kj * dw - pw
                        // Columns that read padding are zeroed; the rest copy without bounds checks.
                        let valid = validColumns(base: base, stride: sw, w: w, ow: ow)
                        for i in band {
                            let ih = i * sh - ph + ki * dh
                            let dst = row + (i - band.lowerBound) * ow
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

    /// Adds columns (row stride `ld`) back into one sample dx [C,H,W]: the adjoint of im2col.
    /// `rows`: the columns hold only that band of output rows (as im2col's `rows`).
    static func col2im(_ cols: UnsafePointer<Float>, ld: Int, _ s: ConvShape, into dx: UnsafeMutablePointer<Float>, parallel: Bool,
                       rows: Range<Int>? = nil) {
        let (sh, sw) = s.geo.stride, (ph, pw) = s.geo.padding, (dh, dw) = s.geo.dilation
        let (h, w, kh, kw, ow) = (s.h, s.w, s.kh, s.kw, s.ow)
        let band = rows ?? 0..<s.oh
        parallelChunks(s.c, cost: parallel ? kh * kw * band.count * ow : 0) { range in
            for ch in range {
                let dst = dx + ch * h * w
                for ki in 0..<kh {
                    for kj in 0..<kw {
                        let row = cols + ((ch * kh + ki) * kw + kj) * ld
                        let base = kj * dw - pw
                        let valid = validColumns(base: base, stride: sw, w: w, ow: ow)
                        for i in band {
                            let ih = i * sh - ph + ki * dh
                            if ih < 0 || ih >= h { continue }
                            let line = dst + ih * w + base, src = row + (i - band.lowerBound) * ow
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

    /// Runs body(samples, parallel) over the batch: split between threads (each with single-threaded
    /// BLAS) when there is at least one sample per thread, else on this thread with threaded BLAS.
    /// Samples are independent, so results do not depend on the split.
    static func overSamples(_ n: Int, cost: Int, _ body: (Range<Int>, Bool) -> Void) {
        let threads = EngineThreads.count
        if threads > 1 && n >= threads && cost >= 65_536 {
            BLASThreads.withSingleThread {
                DispatchQueue.concurrentPerform(iterations: threads) { t in
                    let lo = n * t / threads, hi = n * (t + 1) / threads
                    if lo < hi { body(lo..<hi, false) }
                }
            }
        } else {
            body(0..<n, true)
        }
    }

    /// Calls body(first, count) for consecutive groups of at most `size` samples of `range`.
    @inline(__always)
    static func inGroups(_ range: Range<Int>, of size: Int, _ body: (Int, Int) -> Void) {
        var start = range.lowerBound
        while start < range.upperBound {
            let b = Swift.min(size, range.upperBound - start)
            body(start, b)
            start += b
        }
    }

    /// Copies b samples' [rows, plane] blocks of a [N, rows, plane] array into one [rows, b*plane]
    /// matrix (`toMatrix`), or back (`!toMatrix`).
    static func regroup(_ batch: UnsafeMutablePointer<Float>, _ matrix: UnsafeMutablePointer<Float>,
                        first: Int, b: Int, rows: Int, plane: Int, toMatrix: Bool) {
        for j in 0..<b {
            for r in 0..<rows {
                let p = batch + ((first + j) * rows + r) * plane, q = matrix + r * b * plane + j * plane
                if toMatrix { q.update(from: p, count: plane) } else { p.update(from: q, count: plane) }
            }
        }
    }

    /// conv2d(x, w) + bias, through a ReLU when `relu`.
    static func conv2d(_ x: NDArray, _ w: NDArray, _ geo: ConvGeometry, bias: NDArray? = nil, relu: Bool = false) -> NDArray {
        let s = ConvShape(input: x.shape, weight: w.shape, geo)
        precondition(s.oh > 0 && s.ow > 0, "conv2d output would be empty for input \(x.shape), kernel \(w.shape)")
        let xc = x.contiguous()
        if DirectConv.forward(s) { return DirectConv.run(xc, w, bias: bias, relu: relu, mask: nil, s, adjoint: false) }
        let out = conv2dGEMM(xc, w, s)
        if bias != nil || relu { addBiasReLU(out, bias, relu: relu) }
        return out
    }

    /// out[n, o] = max(out[n, o] + bias[o], 0) (no bias: 0; no relu: no max), in place.
    static func addBiasReLU(_ out: NDArray, _ bias: NDArray?, relu: Bool) {
        let (c, plane) = (out.shape[1], out.count / Swift.max(out.shape[0] * out.shape[1], 1))
        let b = bias?.contiguous()
        let p = out.pointer
        parallelChunks(out.shape[0] * c, cost: plane) { range in
            for q in range {
                let v = p + q * plane, add = b?.pointer[q % c] ?? 0
                if relu {
                    for k in 0..<plane { let z = v[k] + add; v[k] = z > 0 ? z : 0 }
                } else {
                    for k in 0..<plane { v[k] += add }
                }
            }
        }
    }

    static func conv2dGEMM(_ xc: NDArray, _ w: NDArray, _ s: ConvShape) -> NDArray {
        let wm = w.contiguous().reshaped([s.o, s.ckk])
        let out = NDArray.uninitialized([s.n, s.o, s.oh, s.ow])
        let (plane, ckk) = (s.plane, s.ckk)
        overSamples(s.n, cost: ckk * plane) { samples, parallel in
            inGroups(samples, of: s.samplesPerGEMM) { first, b in
                if b == 1 && s.isPointwise {
                    let xs = NDArray(storage: xc.storage, offset: xc.offset + first * s.inputSize, shape: [ckk, plane])
                    gemm(wm, xs, into: out.pointer + first * s.o * plane)
                    return
                }
                if b == 1 && s.rowsPerBand < s.oh {
                    let cols = NDArray.uninitialized([ckk, s.rowsPerBand * s.ow])
                    var r0 = 0
                    while r0 < s.oh {
                        let band = r0..<Swift.min(s.oh, r0 + s.rowsPerBand), width = band.count * s.ow
                        im2col(xc.pointer + first * s.inputSize, s, into: cols.pointer, ld: width, parallel: parallel, rows: band)
                        let bandCols = NDArray(storage: cols.storage, offset: cols.offset, shape: [ckk, width])
                        gemm(wm, bandCols, into: out.pointer + first * s.o * plane + r0 * s.ow, ldc: plane)
                        r0 = band.upperBound
                    }
                    return
                }
                let cols = NDArray.uninitialized([ckk, b * plane])
                for j in 0..<b {
                    im2col(xc.pointer + (first + j) * s.inputSize, s, into: cols.pointer + j * plane, ld: b * plane, parallel: parallel)
                }
                if b == 1 {
                    gemm(wm, cols, into: out.pointer + first * s.o * plane)
                } else {
                    let y = NDArray.uninitialized([s.o, b * plane])
                    gemm(wm, cols, into: y.pointer)
                    regroup(out.pointer, y.pointer, first: first, b: b, rows: s.o, plane: plane, toMatrix: false)
                }
            }
        }
        return out
    }

    /// The input gradient of conv2d for output gradient g; with `mask` (shaped like g), g is taken as
    /// 0 wherever mask <= 0 (the backward pass of a ReLU after the convolution, mask = its output).
    static func convInputGrad(_ g: NDArray, _ w: NDArray, inputShape: [Int], _ geo: ConvGeometry,
                              mask: NDArray? = nil) -> NDArray {
        let s = ConvShape(input: inputShape, weight: w.shape, output: (g.shape[2], g.shape[3]), geo)
        precondition(g.shape[0] == s.n && g.shape[1] == s.o, "conv input gradient \(g.shape) for weight \(w.shape)")
        precondition(mask == nil || mask!.shape == g.shape, "mask \(mask!.shape) for gradient \(g.shape)")
        if DirectConv.inputGrad(s) {
            return DirectConv.run(g.contiguous(), w, bias: nil, relu: false, mask: mask?.contiguous(), s, adjoint: true)
        }
        let gc = mask.map { m in binary(g, m) { $1 > 0 ? $0 : 0 } } ?? g.contiguous()
        let wt = w.contiguous().reshaped([s.o, s.ckk]).transposed(0, 1)
        let (plane, ckk) = (s.plane, s.ckk)
        let direct = s.isPointwise && s.samplesPerGEMM == 1
        let dx = direct ? NDArray.uninitialized(inputShape) : NDArray.zeros(inputShape)
        overSamples(s.n, cost: ckk * plane) { samples, parallel in
            inGroups(samples, of: s.samplesPerGEMM) { first, b in
                let gm: NDArray
                if b == 1 {
                    gm = NDArray(storage: gc.storage, offset: gc.offset + first * s.o * plane, shape: [s.o, plane])
                } else {
                    gm = NDArray.uninitialized([s.o, b * plane])
                    regroup(gc.pointer, gm.pointer, first: first, b: b, rows: s.o, plane: plane, toMatrix: true)
                }
                if direct {
                    gemm(wt, gm, into: dx.pointer + first * s.inputSize)
                    return
                }
                if b == 1 && s.rowsPerBand < s.oh {
                    let cols = NDArray.uninitialized([ckk, s.rowsPerBand * s.ow])
                    var r0 = 0
                    while r0 < s.oh {
                        let band = r0..<Swift.min(s.oh, r0 + s.rowsPerBand), width = band.count * s.ow
                        let gBand = NDArray(storage: gm.storage, offset: gm.offset + r0 * s.ow, shape: [s.o, width],
                                            strides: [gm.strides[0], 1])
                        gemm(wt, gBand, into: cols.pointer)
                        col2im(cols.pointer, ld: width, s, into: dx.pointer + first * s.inputSize, parallel: parallel, rows: band)
                        r0 = band.upperBound
                    }
                    return
                }
                let cols = NDArray.uninitialized([ckk, b * plane])
                gemm(wt, gm, into: cols.pointer)
                for j in 0..<b {
                    col2im(cols.pointer + j * plane, ld: b * plane, s, into: dx.pointer + (first + j) * s.inputSize, parallel: parallel)
                }
            }
        }
        return dx
    }

    /// dW = sum over samples of g [O, Ho*Wo] times cols^T; samples in a fixed order, so the result
    /// does not depend on the thread count.
    static func convWeightGrad(_ x: NDArray, _ g: NDArray, weightShape: [Int], _ geo: ConvGeometry) -> NDArray {
        let s = ConvShape(input: x.shape, weight: weightShape, output: (g.shape[2], g.shape[3]), geo)
        let xc = x.contiguous(), gc = g.contiguous()
        if DirectConv.weightGrad(s) { return DirectConv.weightGradient(xc, gc, s) }
        let (plane, ckk) = (s.plane, s.ckk)
        let dw = NDArray.zeros(weightShape)
        let dwm = dw.reshaped([s.o, ckk])
        inGroups(0..<s.n, of: s.samplesPerGEMM) { first, b in
            let cols: NDArray, gm: NDArray
            if b == 1 {
                gm = NDArray(storage: gc.storage, offset: gc.offset + first * s.o * plane, shape: [s.o, plane])
            } else {
                gm = NDArray.uninitialized([s.o, b * plane])
                regroup(gc.pointer, gm.pointer, first: first, b: b, rows: s.o, plane: plane, toMatrix: true)
            }
            if b == 1 && s.isPointwise {
                cols = NDArray(storage: xc.storage, offset: xc.offset + first * s.inputSize, shape: [ckk, plane])
            } else {
                cols = NDArray.uninitialized([ckk, b * plane])
                for j in 0..<b {
                    im2col(xc.pointer + (first + j) * s.inputSize, s, into: cols.pointer + j * plane, ld: b * plane, parallel: true)
                }
            }
            gemm(gm, cols.transposed(0, 1), into: dwm.pointer, beta: 1)
        }
        return dw
    }
}
