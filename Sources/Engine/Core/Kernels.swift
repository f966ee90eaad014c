import COpenBLAS
import Foundation

/// Forward kernels on arrays, without autodiff. Ops (Sources/Plugins/Engine/Ops) pair them with their
/// derivatives.
enum Kernels {
    static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
        let r = Swift.max(a.count, b.count)
        return (0..<r).map { i -> Int in
            let x = i - (r - a.count) >= 0 ? a[i - (r - a.count)] : 1
            let y = i - (r - b.count) >= 0 ? b[i - (r - b.count)] : 1
            precondition(x == y || x == 1 || y == 1, "shapes \(a) and \(b) do not broadcast")
            return x == 1 ? y : x
        }
    }

    /// Merges adjacent dimensions that are contiguous with each other in every operand, so inner loops
    /// run long (a [N,C,H,W] + [1,C,1,1] add runs over H*W at a time).
    static func coalesce(_ shape: [Int], _ strides: [[Int]]) -> ([Int], [[Int]]) {
        var shp: [Int] = []
        var sts: [[Int]] = strides.map { _ in [] }
        for d in 0..<shape.count where shape[d] != 1 {
            if let last = shp.last, strides.indices.allSatisfy({ sts[$0].last! == strides[$0][d] * shape[d] }) {
                shp[shp.count - 1] = last * shape[d]
                for k in strides.indices { sts[k][sts[k].count - 1] = strides[k][d] }
            } else {
                shp.append(shape[d])
                for k in strides.indices { sts[k].append(strides[k][d]) }
            }
        }
        if shp.isEmpty { return ([1], strides.map { _ in [1] }) }
        return (shp, sts)
    }

    /// Visits inner runs of two strided operands over `shape`: body(offA, offB, outIndex, n, strideA, strideB).
    @inline(__always)
    static func forEach2(_ shape: [Int], _ sa: [Int], _ oa: Int, _ sb: [Int], _ ob: Int,
                         _ body: (Int, Int, Int, Int, Int, Int) -> Void) {
        let (shp, st) = coalesce(shape, [sa, sb])
        let a = st[0], b = st[1]
        let r = shp.count
        if shp.contains(0) { return }
        let inner = shp[r - 1]
        var idx = [Int](repeating: 0, count: r)
        var pa = oa, pb = ob, k = 0
        while true {
            body(pa, pb, k, inner, a[r - 1], b[r - 1])
            k += inner
            var d = r - 2
            while d >= 0 {
                idx[d] += 1; pa += a[d]; pb += b[d]
                if idx[d] < shp[d] { break }
                pa -= a[d] * shp[d]; pb -= b[d] * shp[d]
                idx[d] = 0
                d -= 1
            }
            if d < 0 { return }
        }
    }

    // MARK: Elementwise

    @inline(__always)
    static func unary(_ x: NDArray, _ f: (Float) -> Float) -> NDArray {
        let c = x.contiguous()
        let out = NDArray.uninitialized(x.shape)
        let i = c.pointer, o = out.pointer
        // Serial on purpose: a closure handed to a thread pool is not specialized, and these loops are
        // memory-bound anyway.
        for k in 0..<c.count { o[k] = f(i[k]) }
        return out
    }

    @inline(__always)
    static func binary(_ a: NDArray, _ b: NDArray, _ f: (Float, Float) -> Float) -> NDArray {
        let shape = a.shape == b.shape ? a.shape : broadcastShape(a.shape, b.shape)
        let out = NDArray.uninitialized(shape)
        let o = out.pointer
        if a.shape == shape && b.shape == shape && a.isContiguous && b.isContiguous {
            let pa = a.pointer, pb = b.pointer
            for k in 0..<out.count { o[k] = f(pa[k], pb[k]) }
            return out
        }
        let ea = a.expanded(shape), eb = b.expanded(shape)
        let ba = a.storage.base.assumingMemoryBound(to: Float.self)
        let bb = b.storage.base.assumingMemoryBound(to: Float.self)
        forEach2(shape, ea.strides, ea.offset, eb.strides, eb.offset) { oa, ob, k, n, sa, sb in
            let pa = ba + oa, pb = bb + ob, po = o + k
            if sa == 1 && sb == 1 { for i in 0..<n { po[i] = f(pa[i], pb[i]) } }
            else if sa == 1 && sb == 0 { let y = pb.pointee; for i in 0..<n { po[i] = f(pa[i], y) } }
            else if sa == 0 && sb == 1 { let x = pa.pointee; for i in 0..<n { po[i] = f(x, pb[i]) } }
            else { for i in 0..<n { po[i] = f(pa[i * sa], pb[i * sb]) } }
        }
        return out
    }

    @inline(__always)
    static func ternary(_ a: NDArray, _ b: NDArray, _ c: NDArray, _ f: (Float, Float, Float) -> Float) -> NDArray {
        precondition(a.shape == b.shape && b.shape == c.shape, "ternary kernel shapes differ")
        let ca = a.contiguous(), cb = b.contiguous(), cc = c.contiguous()
        let out = NDArray.uninitialized(a.shape)
        let pa = ca.pointer, pb = cb.pointer, pc = cc.pointer, o = out.pointer
        for k in 0..<out.count { o[k] = f(pa[k], pb[k], pc[k]) }
        return out
    }

    // MARK: Reductions

    /// Sum over `axes`, keeping them as size 1.
    static func sum(_ x: NDArray, axes: [Int]) -> NDArray {
        var outShape = x.shape
        for a in axes { outShape[a] = 1 }
        let out = NDArray.zeros(outShape)
        if x.count == 0 { return out }
        // Output strides with 0 on reduced axes: accumulate x into out in x's own order.
        var os = out.strides
        for a in axes { os[a] = 0 }
        let bx = x.storage.base.assumingMemoryBound(to: Float.self), o = out.pointer
        forEach2(x.shape, x.strides, x.offset, os, 0) { ox, oo, _, n, sx, so in
            let px = bx + ox
            if so == 0 {
                // Double accumulation keeps long sums close to PyTorch's pairwise summation.
                var acc: Double = 0
                if sx == 1 { acc = DoubleSums.sum(px, n) } else { for i in 0..<n { acc += Double(px[i * sx]) } }
                o[oo] += Float(acc)
            } else {
                let po = o + oo
                for i in 0..<n { po[i * so] += px[i * sx] }
            }
        }
        return out
    }

    /// Max over `axes` (kept as size 1) and a 0/1 mask of x's shape marking the first maximum of each
    /// reduced group.
    static func maxReduce(_ x: NDArray, axes: [Int]) -> (NDArray, NDArray) {
        let keep = (0..<x.rank).filter { !axes.contains($0) }
        let order = keep + axes.sorted()
        let p = x.permuted(order).contiguous()
        let k = axes.reduce(1) { $0 * x.shape[$1] }
        let m = x.count / Swift.max(k, 1)
        var outShape = x.shape
        for a in axes { outShape[a] = 1 }
        let out = NDArray.uninitialized(outShape)
        let maskP = NDArray.zeros(p.shape)
        let src = p.pointer, dst = out.pointer, mp = maskP.pointer
        parallelChunks(m, cost: k) { r in
            for row in r {
                let base = src + row * k
                var best = base[0], at = 0
                for j in 1..<Swift.max(k, 1) where base[j] > best {
                    best = base[j]; at = j
                }
                dst[row] = best
                mp[row * k + at] = 1
            }
        }
        var inverse = [Int](repeating: 0, count: order.count)
        for (i, d) in order.enumerated() { inverse[d] = i }
        return (out, maskP.permuted(inverse).contiguous())
    }

    // MARK: Matrix products

    /// (pointer, leading dimension, transposed) for a 2-D view BLAS can read without copying.
    static func blasOperand(_ a: NDArray) -> (NDArray, Int32, Bool) {
        let (r, c) = (a.shape[0], a.shape[1])
        // Rows (or columns) further apart than their length are fine: BLAS takes the leading dimension.
        if a.strides[1] == 1 && (a.strides[0] >= c || r == 1) { return (a, Int32(Swift.max(r == 1 ? c : a.strides[0], 1)), false) }
        if a.strides[0] == 1 && (a.strides[1] >= r || c == 1) { return (a, Int32(Swift.max(c == 1 ? r : a.strides[1], 1)), true) }
        let cc = a.copy()
        return (cc, Int32(Swift.max(c, 1)), false)
    }

    /// C[M,N] = alpha * A[M,K] B[K,N] + beta * C, with A and B any 2-D views; C's rows are `ldc` apart
    /// (default N).
    static func gemm(_ a: NDArray, _ b: NDArray, into c: UnsafeMutablePointer<Float>, beta: Float = 0, alpha: Float = 1,
                     ldc: Int? = nil) {
        EngineThreads.ensureApplied()
        let (m, k, n) = (a.shape[0], a.shape[1], b.shape[1])
        precondition(b.shape[0] == k, "matmul \(a.shape) x \(b.shape)")
        if m == 0 || n == 0 { return }
        if k == 0 {
            let ld = ldc ?? n
            for i in 0..<m {
                let row = c + i * ld
                if beta == 0 { row.update(repeating: 0, count: n) } else { for j in 0..<n { row[j] *= beta } }
            }
            return
        }
        let (aa, lda, ta) = blasOperand(a), (bb, ldb, tb) = blasOperand(b)
        let call = {
            cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), alpha, aa.pointer, lda, bb.pointer, ldb, beta, c, Int32(ldc ?? n))
        }
        // OpenBLAS threads products from 2^18 multiply-adds on, and its woken workers then spin (sched_yield)
        // for a while, taking cores from the engine's own loops; products this small gain nothing from them.
        if m * n * k < 1 << 22 && EngineThreads.count > 1 { BLASThreads.withSingleThread(call) } else { call() }
    }

    static func matmul(_ a: NDArray, _ b: NDArray) -> NDArray {
        if a.rank == 2 && b.rank == 2 {
            let out = NDArray.uninitialized([a.shape[0], b.shape[1]])
            gemm(a, b, into: out.pointer)
            return out
        }
        precondition(a.rank == 3 && b.rank == 3 && a.shape[0] == b.shape[0], "batched matmul \(a.shape) x \(b.shape)")
        let (bs, m, n) = (a.shape[0], a.shape[1], b.shape[2])
        let out = NDArray.uninitialized([bs, m, n])
        for i in 0..<bs { gemm(a.batch(i), b.batch(i), into: out.pointer + i * m * n) }
        return out
    }
}

extension NDArray {
    /// The i-th slice along dimension 0, as a view.
    func batch(_ i: Int) -> NDArray {
        NDArray(storage: storage, offset: offset + i * strides[0], shape: Array(shape.dropFirst()), strides: Array(strides.dropFirst()))
    }
}

/// Sums of float rows accumulated in Double over eight independent lanes: one running sum would chain
/// every addition on the previous one (latency-bound, no vectors); eight lanes vectorize.
enum DoubleSums {
    @inline(__always)
    static func sum(_ p: UnsafePointer<Float>, _ n: Int) -> Double {
        var l = SIMD8<Double>(repeating: 0)
        var j = 0
        while j + 8 <= n {
            l += SIMD8<Double>(SIMD8<Float>(UnsafeRawPointer(p + j).loadUnaligned(as: SIMD8<Float>.self)))
            j += 8
        }
        var t = l.sum()
        while j < n { t += Double(p[j]); j += 1 }
        return t
    }

    @inline(__always)
    static func squaredDeviations(_ p: UnsafePointer<Float>, _ n: Int, from mu: Double) -> Double {
        var l = SIMD8<Double>(repeating: 0)
        let m = SIMD8<Double>(repeating: mu)
        var j = 0
        while j + 8 <= n {
            let d = SIMD8<Double>(SIMD8<Float>(UnsafeRawPointer(p + j).loadUnaligned(as: SIMD8<Float>.self))) - m
            l += d * d
            j += 8
        }
        var t = l.sum()
        while j < n { let d = Double(p[j]) - mu; t += d * d; j += 1 }
        return t
    }

    /// Sum of the float products a[j] * b[j] (each rounded to float first, as before).
    @inline(__always)
    static func sumOfProducts(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Double {
        var l = SIMD8<Double>(repeating: 0)
        var j = 0
        while j + 8 <= n {
            let x = UnsafeRawPointer(a + j).loadUnaligned(as: SIMD8<Float>.self)
            let y = UnsafeRawPointer(b + j).loadUnaligned(as: SIMD8<Float>.self)
            l += SIMD8<Double>(x * y)
            j += 8
        }
        var t = l.sum()
        while j < n { t += Double(a[j] * b[j]); j += 1 }
        return t
    }
}
