import XCTest
@testable import Engine

/// Evaluation-mode fusion of conv2d -> batch_norm -> relu (ConvFusion) against the same layers run
/// one by one: outputs, the input gradient (the fused first-order path with the ReLU mask inside the
/// kernel), parameter gradients, and a second derivative through the fused op.
final class ConvFusionTests: XCTestCase {
    func makeNet() -> Sequential {
        var rng = RandomGenerator(seed: 21)
        let conv1 = Conv2d(2, 6, kernel: 3, padding: 1, rng: &rng)
        let bn1 = BatchNorm(6)
        let conv2 = Conv2d(6, 5, kernel: 3, stride: 2, padding: 1, bias: false, rng: &rng)  // the GEMM path
        let bn2 = BatchNorm(5)
        for bn in [bn1, bn2] {
            let c = bn.runningMean.count
            bn.runningMean.pointer.update(from: NDArray.uniform([c], low: -0.5, high: 0.5, rng: &rng).pointer, count: c)
            bn.runningVar.pointer.update(from: NDArray.uniform([c], low: 0.5, high: 2, rng: &rng).pointer, count: c)
            bn.weight!.setData(NDArray.uniform([c], low: 0.5, high: 1.5, rng: &rng))
            bn.bias!.setData(NDArray.uniform([c], low: -0.3, high: 0.3, rng: &rng))
        }
        let net = Sequential([conv1, bn1, Lambda("relu") { $0.relu() },
                              conv2, bn2, Lambda("relu") { $0.relu() },
                              Lambda("max_pool2d") { $0.maxPool2d(kernel: 2) },
                              Conv2d(5, 3, kernel: 3, padding: 1, rng: &rng)])  // alone: not fused
        net.eval()
        return net
    }

    /// The layers one by one, as Sequential ran them before fusion.
    func unfused(_ net: Sequential, _ x: Var) -> Var { net.layers.reduce(x) { $1($0) } }

    func assertClose(_ a: NDArray, _ b: NDArray, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.shape, b.shape, what, file: file, line: line)
        let scale = max(1e-6, b.array.map(abs).max() ?? 0)
        let worst = zip(a.array, b.array).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThan(worst / scale, 2e-6, what, file: file, line: line)
    }

    func testFusedEqualsLayerByLayer() {
        let net = makeNet()
        var rng = RandomGenerator(seed: 4)
        let xd = NDArray.uniform([3, 2, 12, 14], low: -1, high: 1, rng: &rng)
        let x1 = Var(xd, requiresGrad: true), x2 = Var(xd, requiresGrad: true)
        let y1 = net(x1), y2 = unfused(net, x2)
        assertClose(y1.data, y2.data, "output")
        let seed = NDArray.uniform(y1.shape, low: -1, high: 1, rng: &rng)
        // Input gradient alone (the fused kernel path) ...
        let g1 = gradients(of: [y1], wrt: [x1], seeds: [Var(seed)])[0]!
        let g2 = gradients(of: [y2], wrt: [x2], seeds: [Var(seed)])[0]!
        assertClose(g1.data, g2.data, "input gradient")
        // ... and with every parameter (the masked gradient feeds the weight and bias gradients).
        let params = net.parameters
        let all1 = gradients(of: [net(x1)], wrt: [x1] + params, seeds: [Var(seed)])
        let all2 = gradients(of: [unfused(net, x2)], wrt: [x2] + params, seeds: [Var(seed)])
        XCTAssertEqual(all1.count, all2.count)
        for (k, (a, b)) in zip(all1, all2).enumerated() {
            XCTAssertNotNil(a, "gradient \(k)")
            if let a, let b { assertClose(a.data, b.data, "gradient of input/parameter \(k)") }
        }
        // Second order: the gradient of sum(dL/dx * v) with respect to the first convolution's weight.
        let v = Var(NDArray.uniform(xd.shape, low: -1, high: 1, rng: &rng))
        func second(_ y: (Var) -> Var) -> NDArray {
            let x = Var(xd, requiresGrad: true)
            let gx = gradients(of: [y(x)], wrt: [x], seeds: [Var(seed)], createGraph: true)[0]!
            return gradients(of: [(gx * v).sum()], wrt: [params[0]])[0]!.data
        }
        assertClose(second { net($0) }, second { unfused(net, $0) }, "second derivative")
    }

    func testFusionOnlyWhereItApplies() {
        let net = makeNet()
        var rng = RandomGenerator(seed: 8)
        let x = Var(NDArray.uniform([2, 2, 8, 8], low: -1, high: 1, rng: &rng), requiresGrad: true)
        XCTAssertEqual(net(x).node?.op, "conv2d", "the last convolution has nothing to fuse with")
        let firstThree = Sequential(Array(net.layers[0..<3]))
        firstThree.eval()
        XCTAssertEqual(firstThree(x).node?.op, "conv2d_relu")
        XCTAssertNotEqual(withBackwardRule(.guided) { firstThree(x) }.node?.op, "conv2d_relu",
                          "guided backpropagation keeps its own ReLU")
        firstThree.train()
        XCTAssertNotEqual(firstThree(x).node?.op, "conv2d_relu", "training mode normalizes with batch statistics")
    }
}
