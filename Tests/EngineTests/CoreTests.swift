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

    func testBufferPoolReusesFreedBuffers() {
        func step() { _ = (Var(NDArray.ones([123, 7])) * 3 + 1).sum().item }
        step()
        let before = BufferPool.shared.allocations
        for _ in 0..<5 { step() }
        XCTAssertEqual(BufferPool.shared.allocations, before, "a repeated step allocates nothing new")
        XCTAssertGreaterThan(BufferPool.shared.reuses, 0)
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

    func testThreadCountSettingGivesSameResults() {
        var rng = RandomGenerator(seed: 2)
        let x = Var(NDArray.uniform([2, 8, 20, 20], rng: &rng)), w = Var(NDArray.uniform([8, 8, 3, 3], rng: &rng))
        let old = EngineThreads.count
        defer { EngineThreads.count = old }
        EngineThreads.count = 1
        let one = x.conv2d(w, ConvGeometry(padding: 1)).maxPool2d(kernel: 2).array
        EngineThreads.count = 2
        let two = x.conv2d(w, ConvGeometry(padding: 1)).maxPool2d(kernel: 2).array
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
}
