import Foundation
import XCTest
@testable import Engine

final class CoreTests: XCTestCase {
    func testViewsShareStorageAndCopyWhenNeeded() {
        let a = NDArray((0..<6).map(Float.init), shape: [2, 3])
        let t = a.permuted([1, 0])
        XCTAssertFalse(t.isContiguous)
        XCTAssertEqual(t.array, [0, 3, 1, 4, 2, 5])
        XCTAssertEqual(t.storage.base, a.storage.base)
        XCTAssertEqual(a.reshaped([3, 2]).storage.base, a.storage.base)
        XCTAssertEqual(a.expanded([4, 2, 3]).array.count, 24)
        XCTAssertEqual(Var(a).flip([1]).array, [2, 1, 0, 5, 4, 3])
        XCTAssertEqual(Var(a).slice(axis: 1, 1..<3).array, [1, 2, 4, 5])
        XCTAssertEqual(NDArray([0.1, 0.7, 0.2, 0.9, 0.05, 0.05], shape: [2, 3]).argmax(), [1, 0])
        XCTAssertEqual(Var.stack([Var(a), Var(a)], axis: 1).shape, [2, 2, 3])
    }

    func testBridgingToHostTensorsAndTheABIWithoutCopying() throws {
        let host = QuacCore.Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
        let a = NDArray(host)
        XCTAssertEqual(a.pointer, host.data.assumingMemoryBound(to: Float.self))
        let back = (Var(a) * 2).data.tensor
        XCTAssertEqual(back.shape, [2, 3])
        XCTAssertEqual(back.floatArray(), [2, 4, 6, 8, 10, 12])
        XCTAssertEqual(a.tensor.data, host.data)
        // An ABI tensor borrowed in place, and a strided one copied.
        try host.withABITensor { abi in
            let b = try NDArray.borrowing(abi.pointee)
            XCTAssertEqual(b.pointer, host.data.assumingMemoryBound(to: Float.self))
            XCTAssertEqual(b.shape, [2, 3])
        }
        var shape: [Int64] = [3, 2], strides: [Int64] = [1, 3]
        let values: [Float] = [1, 2, 3, 4, 5, 6]
        try values.withUnsafeBufferPointer { buf in
            try shape.withUnsafeMutableBufferPointer { sp in
                try strides.withUnsafeMutableBufferPointer { st in
                    let abi = quac_tensor(data: UnsafeMutableRawPointer(mutating: buf.baseAddress!),
                                          device: quac_device(device_type: Int32(QUAC_DEVICE_CPU), device_id: 0),
                                          ndim: 2, dtype: DType.float32.abi, shape: sp.baseAddress,
                                          strides: st.baseAddress, byte_offset: 0)
                    XCTAssertEqual(try NDArray.borrowing(abi).array, [1, 4, 2, 5, 3, 6])
                }
            }
        }
    }

    func testCopyIntoAnABIOutput() throws {
        let out = QuacCore.Tensor(zeros: [3, 2], dtype: .float32)
        try out.withABITensor { try Var([1, 2, 3, 4, 5, 6], shape: [2, 3]).transpose().data.copy(into: $0.pointee) }
        XCTAssertEqual(out.floatArray(), [1, 4, 2, 5, 3, 6])
        let wrong = QuacCore.Tensor(zeros: [2, 3], dtype: .float32)
        XCTAssertThrowsError(try wrong.withABITensor { try NDArray.zeros([3, 2]).copy(into: $0.pointee) })
    }

    func testBufferPoolReusesFreedBuffers() {
        func step() { _ = (Var(NDArray.ones([123, 7])) * 3 + 1).sum().item }
        step()
        let before = BufferPool.shared.allocations
        for _ in 0..<5 { step() }
        XCTAssertEqual(BufferPool.shared.allocations, before, "a repeated step allocates nothing new")
        XCTAssertGreaterThan(BufferPool.shared.reuses, 0)
    }

    /// A full pool makes room for the buffer freed last by dropping the ones freed longest ago.
    func testBufferPoolEvictsOldestWhenFull() {
        let pool = BufferPool()
        pool.capacityBytes = 4096
        _ = pool.storage(count: 512)  // 2 KB, back in the pool at once
        _ = pool.storage(count: 768)  // 3 KB: the pool would hold 5 KB, so the 2 KB buffer goes
        let (allocations, reuses) = (pool.allocations, pool.reuses)
        _ = pool.storage(count: 768)
        XCTAssertEqual(pool.reuses, reuses + 1, "the newest size is kept")
        XCTAssertEqual(pool.allocations, allocations)
        _ = pool.storage(count: 512)
        XCTAssertEqual(pool.allocations, allocations + 1, "the oldest size was dropped")
    }

    func testSeededInitialization() {
        var r1 = RandomGenerator(seed: 5), r2 = RandomGenerator(seed: 5)
        XCTAssertEqual(NDArray.normal([10], rng: &r1).array, NDArray.normal([10], rng: &r2).array)
        var rng = RandomGenerator(seed: 1)
        let w = NDArray.kaimingNormal([64, 32, 3, 3], rng: &rng).array
        let mean = w.reduce(0, +) / Float(w.count)
        let std = (w.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(w.count)).squareRoot()
        XCTAssertEqual(mean, 0, accuracy: 0.01)
        XCTAssertEqual(std, (2 / Float(32 * 9)).squareRoot(), accuracy: 0.003)
        let u = NDArray.uniform([1000], low: -2, high: 3, rng: &rng).array
        XCTAssertGreaterThanOrEqual(u.min()!, -2)
        XCTAssertLessThan(u.max()!, 3)
    }

    /// Large enough that convolutions split the batch between threads: results must not depend on it.
    func testThreadCountSettingGivesSameResults() {
        var rng = RandomGenerator(seed: 2)
        let x = NDArray.uniform([2, 16, 24, 24], rng: &rng), w = NDArray.uniform([8, 16, 3, 3], rng: &rng)
        let old = EngineThreads.count
        defer { EngineThreads.count = old }
        func run() -> [[Float]] {
            let xv = Var(x, requiresGrad: true), wv = Var(w, requiresGrad: true)
            let y = xv.conv2d(wv, ConvGeometry(padding: 1)).maxPool2d(kernel: 2)
            let g = gradients(of: [y.square().sum()], wrt: [xv, wv])
            return [y.array, g[0]!.array, g[1]!.array]
        }
        EngineThreads.count = 1
        let one = run()
        EngineThreads.count = 2
        let two = run()
        XCTAssertEqual(one, two)
    }

    func testGradientAccumulationAndNoGrad() {
        let x = Var([1, 2], shape: [2], requiresGrad: true)
        (x * x).sum().backward()
        (x * 3).sum().backward()
        XCTAssertEqual(x.grad!.array, [5, 7])
        let y = noGrad { x * x }
        XCTAssertFalse(y.requiresGrad)
        // A gradient of a gradient: d/dx (d/dx x^3) = 6x.
        let g = gradient(of: x.pow(3).sum(), wrt: x, createGraph: true)!
        XCTAssertEqual(gradient(of: g.sum(), wrt: x)!.array, [6, 12])
    }

    /// backward(freeGraph: true) gives the same gradients and lets go of every intermediate value while
    /// the loss is still held; a plain backward keeps them (the graph can be differentiated again).
    func testBackwardFreeingTheGraph() {
        var rng = RandomGenerator(seed: 5)
        let w = Var(NDArray.uniform([3, 4], low: -1, high: 1, rng: &rng), requiresGrad: true)
        let x = Var(NDArray.uniform([5, 3], low: -1, high: 1, rng: &rng))
        var grads: [[Float]] = []
        for free in [false, true] {
            weak var hidden: Var?
            let loss: Var = {
                let h = x.matmul(w).tanh()
                hidden = h
                return (h * h).sum()
            }()
            w.zeroGrad()
            loss.backward(freeGraph: free)
            grads.append(w.grad!.array)
            if free {
                XCTAssertNil(hidden, "the intermediate value is released during the backward pass")
            } else {
                XCTAssertNotNil(hidden, "without freeGraph the graph (and what it saved) stays")
            }
            XCTAssertTrue(loss.item.isFinite, "the loss keeps its value")
        }
        XCTAssertEqual(grads[0], grads[1])
    }

    /// Buffers of 4 MiB and more come straight from the OS and go back to it: filled, freed past the
    /// pool's capacity and asked for again, they are fresh zeroed pages, and reuse still works.
    func testLargeBuffersAreMappedAndReused() {
        let pool = BufferPool()
        let count = BufferPool.mappedBytes / 4 + 16
        do {
            let s = pool.storage(count: count)
            let p = s.base.assumingMemoryBound(to: Float.self)
            for i in stride(from: 0, to: count, by: 1024) { p[i] = 1 }
        }
        XCTAssertEqual(pool.allocations, 1)
        do {
            // The reused buffer holds the ones written above; asked for zeros, it is cleared.
            let s = pool.storage(count: count, zeroed: true)
            let p = s.base.assumingMemoryBound(to: Float.self)
            XCTAssertTrue(stride(from: 0, to: count, by: 1024).allSatisfy { p[$0] == 0 }, "a reused buffer asked for zeros is cleared")
        }
        XCTAssertEqual(pool.reuses, 1, "a freed large buffer is reused while the pool has room")
        XCTAssertEqual(NDArray.zeros([3, 5]).array, [Float](repeating: 0, count: 15))
        pool.drain()
        pool.capacityBytes = 0
        for _ in 0..<2 {
            let s = pool.storage(count: count, zeroed: true)
            let p = s.base.assumingMemoryBound(to: Float.self)
            XCTAssertEqual(p[0], 0, "past the pool's capacity a buffer is unmapped; a new one is fresh zeroed pages")
            p[0] = 2
        }
        XCTAssertEqual(pool.allocations, 3)
    }

    func testDropoutMasksAndScales() {
        let x = Var(NDArray.ones([10_000]), requiresGrad: true)
        var rng = RandomGenerator(seed: 3)
        let y = x.dropout(0.25, training: true, rng: &rng)
        let kept = y.array.filter { $0 != 0 }
        XCTAssertEqual(Float(kept.count) / 10_000, 0.75, accuracy: 0.02)
        XCTAssertTrue(kept.allSatisfy { $0 == 1 / 0.75 })
        // The gradient passes exactly where the value did, with the same scale.
        XCTAssertEqual(gradient(of: y.sum(), wrt: x)!.array, y.array)
        XCTAssertTrue(x.dropout(0.25, training: false, rng: &rng) === x)
        let layer = Dropout(0.5, seed: 1)
        let a = layer(x).array, b = layer(x).array
        XCTAssertNotEqual(a, b, "each call draws a new mask")
        XCTAssertEqual(layer.calls, 2)
    }
}

/// Ops given strided views (transposed, flipped, sliced, broadcast) must agree with the same ops given
/// compact copies, values and gradients.
final class ViewInputTests: XCTestCase {
    func testOpsOnViewsMatchCompactInputs() {
        var rng = RandomGenerator(seed: 21)
        let base = NDArray.uniform([3, 2, 6, 5], low: -1, high: 1, rng: &rng)
        let w = Var(NDArray.uniform([4, 2, 3, 3], low: -1, high: 1, rng: &rng))
        let views: [(String, (Var) -> Var)] = [
            ("permute", { $0.permute([0, 1, 3, 2]) }),
            ("flip", { $0.flip([2, 3]) }),
            ("slice", { $0.slice(axis: 3, 1..<5) }),
            ("batch slice", { $0.slice(axis: 0, 1..<3) }),
        ]
        let ops: [(String, (Var) -> Var)] = [
            ("conv", { $0.conv2d(w, ConvGeometry(padding: 1)) }),
            ("max pool", { $0.maxPool2d(kernel: 2) }),
            ("avg pool", { $0.avgPool2d(kernel: 2) }),
            ("upsample", { $0.upsampleNearest(2) }),
            ("batch norm", { $0.batchNorm(runningMean: nil, runningVar: nil, weight: nil, bias: nil, training: true) }),
            ("instance norm", { $0.instanceNorm() }),
            ("softmax", { $0.softmax(axis: 1) }),
            ("log softmax", { $0.logSoftmax(axis: -1) }),
            ("sum", { $0.sum(axes: [1, 3]) }),
            ("max", { $0.max(axes: [2]) }),
            ("matmul", { $0.reshape([-1, $0.shape[3]]).matmul($0.reshape([-1, $0.shape[3]]).transpose()) }),
            ("sparsemax", { $0.sparsemax() }),
            ("broadcast add", { $0 + Var(NDArray.ones([1, 2, 1, 1])) * $0 }),
            ("relu", { $0.relu() * $0 }),
        ]
        for (vn, view) in views {
            for (on, op) in ops {
                let x1 = Var(base, requiresGrad: true), x2 = Var(base.copy(), requiresGrad: true)
                let v = view(x1)
                let y1 = op(v), y2 = op(view(x2).contiguous().reshape(v.shape))
                XCTAssertEqual(y1.array, y2.array, "\(on) of a \(vn) view")
                let seed = Var(NDArray.uniform(y1.shape, rng: &rng))
                let g1 = gradients(of: [y1], wrt: [x1], seeds: [seed])[0]!.array
                let g2 = gradients(of: [y2], wrt: [x2], seeds: [seed])[0]!.array
                XCTAssertEqual(g1, g2, "gradient of \(on) of a \(vn) view")
            }
        }
    }
}

/// In evaluation mode samples are independent: a batch's outputs equal each sample's own (up to GEMM
/// rounding, which depends on matrix sizes), whatever grouping the convolutions use for the batch.
final class BatchConsistencyTests: XCTestCase {
    func testBatchedForwardAndInputGradientMatchPerSample() throws {
        let arch: JSONValue = ["type": "sequential", "init": "kaiming_normal", "layers": [
            ["type": "conv2d", "in": 1, "out": 4, "kernel": 3, "padding": 1], ["type": "batch_norm", "channels": 4], ["type": "relu"],
            ["type": "max_pool2d", "kernel": 2],
            ["type": "conv2d", "in": 4, "out": 6, "kernel": 3, "padding": 1], ["type": "relu"], ["type": "max_pool2d", "kernel": 2],
            ["type": "flatten"], ["type": "linear", "in": 96, "out": 2]]]
        let net = try ModelBuilder.build(arch, seed: 4)
        net.eval()
        var rng = RandomGenerator(seed: 9)
        let n = 37
        let x = NDArray.uniform([n, 1, 16, 16], low: -1, high: 1, rng: &rng)
        let seed = NDArray.uniform([n, 2], low: -1, high: 1, rng: &rng)
        let xv = Var(x, requiresGrad: true)
        let y = net(xv)
        let gx = gradients(of: [y], wrt: [xv], seeds: [Var(seed)])[0]!.array
        for i in [0, 5, 17, 36] {
            let xi = Var(Var(x).slice(axis: 0, i..<i + 1).data.copy(), requiresGrad: true)
            let yi = net(xi)
            for (a, b) in zip(yi.array, y.array[2 * i..<2 * i + 2]) { XCTAssertEqual(a, b, accuracy: 1e-5, "sample \(i) output") }
            let gi = gradients(of: [yi], wrt: [xi], seeds: [Var(seed).slice(axis: 0, i..<i + 1).contiguous()])[0]!.array
            for (a, b) in zip(gi, gx[i * 256..<(i + 1) * 256]) { XCTAssertEqual(a, b, accuracy: 1e-6, "sample \(i) input gradient") }
        }
    }
}

/// The input gradient of a VGG-style network in evaluation mode (batch norm with non-trivial running
/// statistics, ReLU, max pooling, linear layers; parameters require gradients but only the input's is
/// asked for) against central differences, skipping coordinates whose +-h steps cross a kink.
final class NetworkInputGradientTests: XCTestCase {
    func testVGGStyleInputGradient() throws {
        var layers: [JSONValue] = []
        var c: Int64 = 1
        for out: Int64 in [4, 8] {
            layers += [["type": "conv2d", "in": .int(c), "out": .int(out), "kernel": 3, "padding": 1],
                       ["type": "batch_norm", "channels": .int(out)], ["type": "relu"],
                       ["type": "conv2d", "in": .int(out), "out": .int(out), "kernel": 3, "padding": 1],
                       ["type": "batch_norm", "channels": .int(out)], ["type": "relu"], ["type": "max_pool2d", "kernel": 2]]
            c = out
        }
        let arch: JSONValue = ["type": "sequential", "init": "kaiming_normal", "layers": .array(layers + [
            ["type": "flatten"], ["type": "linear", "in": 128, "out": 32], ["type": "relu"], ["type": "linear", "in": 32, "out": 2]])]
        let net = try ModelBuilder.build(arch, seed: 5)
        var rng = RandomGenerator(seed: 6)
        for (name, b) in net.namedBuffers() {
            let values = name.hasSuffix("running_var") ? NDArray.uniform(b.shape, low: 0.5, high: 2, rng: &rng)
                                                       : NDArray.uniform(b.shape, low: -0.3, high: 0.3, rng: &rng)
            b.assign(from: values)
        }
        net.eval()
        let x = NDArray.uniform([2, 1, 16, 16], low: -1, high: 1, rng: &rng)
        let g = NDArray.uniform([2, 2], low: -1, high: 1, rng: &rng)
        let xv = Var(x, requiresGrad: true)
        let gx = gradients(of: [net(xv)], wrt: [xv], seeds: [Var(g)])[0]!.array
        let scale = gx.map { Swift.abs($0) }.max()!
        func f(_ v: NDArray) -> Double {
            zip(noGrad { net(Var(v)) }.array, g.array).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        // Float32 logits carry rounding of about an ulp of their size, which a difference quotient
        // divides by h; the tolerance adds that bound to 1e-3 of the gradient's scale.
        let h: Float = 1e-2
        let largest = noGrad { net(Var(x)) }.array.map { Swift.abs($0) }.max()!
        let tol = 1e-3 * Double(scale) + 8 * Double(largest.ulp) * g.array.map { Double(Swift.abs($0)) }.reduce(0, +) / Double(h)
        var checked = 0, worst = 0.0
        for i in stride(from: 3, to: 512, by: 7) {
            let p = x.copy(), m = x.copy()
            p.pointer[i] += h
            m.pointer[i] -= h
            let (fp, f0, fm) = (f(p), f(x), f(m))
            let forward = (fp - f0) / Double(h), backward = (f0 - fm) / Double(h)
            if Swift.abs(forward - backward) > tol { continue }  // a kink within +-h
            XCTAssertEqual((fp - fm) / Double(2 * h), Double(gx[i]), accuracy: tol, "pixel \(i)")
            worst = Swift.max(worst, Swift.abs((fp - fm) / Double(2 * h) - Double(gx[i])) / tol)
            checked += 1
        }
        XCTAssertGreaterThan(checked, 50)
        print("VGG-style input gradient: \(checked) pixels checked, worst error \(worst) of the tolerance")
    }
}
