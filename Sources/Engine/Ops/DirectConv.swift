import EngineKernels
import Foundation

/// Direct convolution (EngineKernels' ek_conv2d_rows) for stride-1 layers. With few channels,
/// im2col + GEMM spends most of its time writing and packing the column matrix (9x the input for a
/// 3x3 kernel); the direct kernel reads each input row from cache and keeps a tile of outputs in
/// registers. The input gradient of a stride-1 convolution is itself one (with the kernel flipped and
/// transposed, padding k - 1 - p), so it runs on the same kernel.
enum DirectConv {
    /// Which convolutions take the direct path: QUAC_ENGINE_CONV=gemm or direct forces one (benchmarks
    /// and tests compare both); by default, stride-1 undilated kernels larger than 1x1 whose channel
    /// counts keep im2col's copying the larger part of the work.
    nonisolated(unsafe) static var choice =
        KernelChoice.fromEnvironment("QUAC_ENGINE_CONV", always: "direct", never: "gemm")

    /// The instruction set the kernels run with ("avx512", "avx2", "sse").
    static var isa: String { String(cString: ek_isa()) }

    /// Runs body with the kernels built for `isa`; false (and body not run) when this CPU lacks it.
    @discardableResult
    static func withISA(_ isa: String, _ body: () throws -> Void) rethrows -> Bool {
        let old = Self.isa
        guard ek_set_isa(isa) == 0 else { return false }
        defer { ek_set_isa(old) }
        try body()
        return true
    }

    /// Direct for the forward pass and the input gradient of s? (The input gradient is a convolution
    /// with s.o inputs and s.c outputs and padding k - 1 - p, so it needs p < k.) Wide layers run
    /// im2col + GEMM, except the 3x3 ones Winograd takes: fewer multiplies (StarGAN's 256- and 512-wide
    /// layers at 128x128: a training step 21% faster than with GEMM).
    static func forward(_ s: ConvShape) -> Bool {
        narrow(s) || (choice == .automatic && stridedOne(s)
            && Winograd.applies(inC: s.c, outC: s.o, h: s.h, w: s.w, kh: s.kh, kw: s.kw, ph: s.geo.padding.0, pw: s.geo.padding.1))
    }

    /// The direct kernel's own rule, without Winograd's wide layers: the weight gradient has no Winograd
    /// form here, and on wide layers GEMM computes it faster than the direct kernel.
    static func narrow(_ s: ConvShape) -> Bool {
        guard stridedOne(s) else { return false }
        switch choice {
        case .never: return false
        case .always: return true
        case .automatic: return s.c <= 128 && s.o <= 128
        }
    }

    private static func stridedOne(_ s: ConvShape) -> Bool {
        s.geo.stride == (1, 1) && s.geo.dilation == (1, 1) && !(s.kh == 1 && s.kw == 1)
            && s.geo.padding.0 < s.kh && s.geo.padding.1 < s.kw
    }

    /// (The input must be exactly what the output covers: a transposed convolution's output padding
    /// would leave columns the stride-1 adjoint does not produce.)
    static func inputGrad(_ s: ConvShape) -> Bool {
        forward(s) && s.h == s.oh + s.kh - 1 - 2 * s.geo.padding.0 && s.w == s.ow + s.kw - 1 - 2 * s.geo.padding.1
    }

    /// Direct for the weight gradient of s? Kernels 3 wide only (the tile keeps the columns in registers).
    static func weightGrad(_ s: ConvShape) -> Bool { narrow(s) && s.kw == 3 }

    /// dw [o, c, kh, 3] of conv2d for input x [n, c, h, w] and output gradient g [n, o, oh, ow], both
    /// contiguous: chunk by chunk (samples in order), each chunk's tiles spread over the threads.
    /// Every entry sums in the same order whatever the thread count.
    static func weightGradient(_ x: NDArray, _ g: NDArray, _ s: ConvShape) -> NDArray {
        let plan = ek_wgrad_plan_for(Int32(s.o), Int32(s.oh), Int32(s.ow), Int32(s.c), Int32(s.n))
        let dw = NDArray.zeros([s.o, s.c, s.kh, s.kw])
        let (xp, gp, dwp) = (x.pointer, g.pointer, dw.pointer)
        let (c, h, w, o, kh) = (Int32(s.c), Int32(s.h), Int32(s.w), Int32(s.o), Int32(s.kh))
        let (ph, pw) = (Int32(s.geo.padding.0), Int32(s.geo.padding.1))
        var sample0 = 0
        while sample0 < s.n {
            let samples = Swift.min(Int(plan.samples), s.n - sample0)
            var row0 = 0
            while row0 < s.oh {
                let rows = Swift.min(Int(plan.rows), s.oh - row0)
                let cost = samples * rows * Int(plan.owp) * s.kh * s.kw  // products per tile and output channel
                parallelChunks(plan.tiles, cost: cost) { range in
                    let status = ek_wgrad_chunk(plan, xp, gp, c, h, w, o, kh, ph, pw, sample0, Int32(samples),
                                                Int32(row0), Int32(rows), dwp, range.lowerBound, range.upperBound)
                    precondition(status == 0, "out of memory in a convolution weight gradient")
                }
                row0 += rows
            }
            sample0 += samples
        }
        return dw
    }

    /// y = conv2d(x, w) + bias (through a ReLU when `relu`) for a contiguous x [n, c, h, w]; or, when
    /// `adjoint`, conv2d's input gradient: x is then the output gradient [n, o, oh, ow] (read as 0
    /// where `mask` <= 0) and the result [n, c, h, w].
    static func run(_ x: NDArray, _ w: NDArray, bias: NDArray?, relu: Bool, mask: NDArray?, _ s: ConvShape,
                    adjoint: Bool) -> NDArray {
        let wc = w.contiguous()
        // The convolution actually computed: inputs (c, h, w) -> outputs o with padding (ph, pw).
        let (inC, inH, inW, outC) = adjoint ? (s.o, s.oh, s.ow, s.c) : (s.c, s.h, s.w, s.o)
        let (ph, pw) = adjoint ? (s.kh - 1 - s.geo.padding.0, s.kw - 1 - s.geo.padding.1) : s.geo.padding
        let (outH, outW) = (inH + 2 * ph - s.kh + 1, inW + 2 * pw - s.kw + 1)
        if Winograd.applies(inC: inC, outC: outC, h: inH, w: inW, kh: s.kh, kw: s.kw, ph: ph, pw: pw) {
            return Winograd.run(x, w, bias: bias, relu: relu, mask: mask, n: s.n, inC: inC, outC: outC, h: inH,
                                width: inW, adjoint: adjoint)
        }
        let plan = ek_conv_plan_for(Int32(outC), Int32(outW))
        var packed = [Float](repeating: 0, count: ek_conv_packed_count(plan, Int32(outC), Int32(inC), Int32(s.kh), Int32(s.kw)))
        packed.withUnsafeMutableBufferPointer {
            ek_conv_pack(plan, wc.pointer, Int32(s.o), Int32(s.c), Int32(s.kh), Int32(s.kw), adjoint ? 1 : 0, $0.baseAddress)
        }
        let out = NDArray.uninitialized([s.n, outC, outH, outW])
        let biasData = bias?.contiguous()
        let rows = s.n * outH
        let xp = x.pointer, yp = out.pointer, mp = mask.map { UnsafePointer($0.pointer) }
        packed.withUnsafeBufferPointer { pk in
            parallelChunks(rows, cost: inC * s.kh * s.kw * outC * outW / 4) { range in
                let status = ek_conv2d_rows(plan, xp, Int32(inC), Int32(inH), Int32(inW), pk.baseAddress, Int32(outC),
                                            Int32(s.kh), Int32(s.kw), Int32(ph), Int32(pw), biasData?.pointer,
                                            relu ? 1 : 0, mp, yp,
                                            range.lowerBound, range.upperBound)
                precondition(status == 0, "out of memory in a direct convolution")
            }
        }
        return out
    }
}
