import EngineKernels
import Foundation

/// Linear layers on small batches through EngineKernels' ek_gemm, which does not pack the weight into
/// a blocked layout. A packing GEMM (OpenBLAS) copies and rearranges both operands on every call; with
/// a batch of tens the product does only a few dozen multiply-adds per weight, so the packing costs
/// about as much as the product (W1's fc layers: 6144 x 4096 and 4096 x 4096 weights, batch 64). The
/// kernel instead reads the weight once, straight from its rows:
/// - forward, y^T = W x^T: W's entries are broadcast, x^T's rows (the batch, padded to whole vectors)
///   are the vectors; y^T goes back to y with one small transpose;
/// - input gradient, dx = g W: g's entries are broadcast, W's rows are the vectors (a block of rows at
///   a time copied as plain rows, since W's rows are pages apart).
/// Every entry sums its products in the same order whatever the thread count.
enum SmallBatchGEMM {
    /// Which linear layers take this path: QUAC_ENGINE_LINEAR=blas or nopack forces one (benchmarks and
    /// tests compare both); by default the rules below, from `BenchmarkTests.testLinearPaths` (AMD EPYC,
    /// 2 threads, AVX-512, on 6144x4096 and 4096x4096 weights: the forward without packing is 1.1x to
    /// 1.7x OpenBLAS for batches 1 to 64, even at 128, behind from 256 on; the input gradient 1.1x to 2x
    /// for batches 1 to 128, about even at 256; on a 512x256 weight OpenBLAS's forward wins). The SSE
    /// build is there for correctness, not speed.
    nonisolated(unsafe) static var choice =
        KernelChoice.fromEnvironment("QUAC_ENGINE_LINEAR", always: "nopack", never: "blas")

    /// The no-packing forward for a batch of `batch` rows through a weight [outFeatures, inFeatures]?
    static func forwardApplies(batch: Int, inFeatures: Int, outFeatures: Int) -> Bool {
        guard batch > 0 && inFeatures > 0 && outFeatures > 0 else { return false }
        switch choice {
        case .never: return false
        case .always: return true
        case .automatic:
            return DirectConv.isa != "sse" && batch <= 128 && inFeatures * outFeatures >= 1 << 20
        }
    }

    /// The no-packing input gradient for that layer?
    static func inputGradApplies(batch: Int, inFeatures: Int, outFeatures: Int) -> Bool {
        guard batch > 0 && inFeatures > 0 && outFeatures > 0 else { return false }
        switch choice {
        case .never: return false
        case .always: return true
        case .automatic:
            let weight = inFeatures * outFeatures
            return DirectConv.isa != "sse" && batch <= 256 && weight >= 1 << 16 && inFeatures >= 64
                && (batch >= 8 || weight >= 1 << 20)
        }
    }

    /// x [m, k] W^T [k, n] + bias [n] for W [n, k] (PyTorch's layout).
    static func forward(_ x: NDArray, _ w: NDArray, bias: NDArray?) -> NDArray {
        let (m, k, n) = (x.shape[0], x.shape[1], w.shape[0])
        precondition(w.shape[1] == k, "linear of input \(x.shape) with weight \(w.shape)")
        let wc = w.contiguous(), bc = bias?.contiguous()
        // x^T with its rows padded to whole vectors: the padding columns are zero and are not read back.
        let vector = ek_gemm_vector_floats()
        let mp = (m + vector - 1) / vector * vector
        let xt = NDArray.zeros([k, mp])
        let xc = x.contiguous()
        transpose(xc.pointer, rows: m, cols: k, ld: k, into: xt.pointer, ld: mp)
        let yt = NDArray.uninitialized([n, mp])
        let (wp, xtp, ytp) = (wc.pointer, xt.pointer, yt.pointer)
        let bp = bc.map { UnsafePointer($0.pointer) }
        let unit = 6  // rows per chunk unit (the kernel's register tile; any split gives the same sums)
        parallelChunks((n + unit - 1) / unit, cost: unit * k) { range in
            ek_gemm(Int32(k), wp, k, xtp, mp, ytp, mp, bp, range.lowerBound * unit,
                    Swift.min(range.upperBound * unit, n), 0, mp)
        }
        let y = NDArray.uninitialized([m, n])
        transpose(yt.pointer, rows: n, cols: m, ld: mp, into: y.pointer, ld: n)
        return y
    }

    /// g [m, n] W [n, k]: the input gradient of the linear layer with weight W.
    static func inputGrad(_ g: NDArray, _ w: NDArray) -> NDArray {
        let (m, n, k) = (g.shape[0], g.shape[1], w.shape[1])
        precondition(w.shape[0] == n, "linear input gradient of \(g.shape) with weight \(w.shape)")
        let gc = g.contiguous(), wc = w.contiguous()
        let dx = NDArray.uninitialized([m, k])
        let (gp, wp, dxp) = (gc.pointer, wc.pointer, dx.pointer)
        let block = ek_gemm_column_block()
        parallelChunks((k + block - 1) / block, cost: block * n) { range in
            ek_gemm(Int32(n), gp, n, wp, k, dxp, k, nil, 0, m, range.lowerBound * block,
                    Swift.min(range.upperBound * block, k))
        }
        return dx
    }

    /// dst[j * ld + i] = src[i * srcLd + j] for a rows x cols source, in cache-sized blocks.
    static func transpose(_ src: UnsafePointer<Float>, rows: Int, cols: Int, ld sld: Int,
                          into dst: UnsafeMutablePointer<Float>, ld: Int) {
        let tile = 32
        var i0 = 0
        while i0 < rows {
            let i1 = Swift.min(i0 + tile, rows)
            var j0 = 0
            while j0 < cols {
                let j1 = Swift.min(j0 + tile, cols)
                for i in i0..<i1 { for j in j0..<j1 { dst[j * ld + i] = src[i * sld + j] } }
                j0 = j1
            }
            i0 = i1
        }
    }
}
