import XCTest
@testable import Engine

/// Every op's gradient (and second derivative where double backward applies) against finite differences.
final class OpGradientTests: XCTestCase {
    let r = GradCheck.randomInputs

    func testBroadcastArithmetic() {
        let x = r([[2, 3, 4], [3, 1]], 1, -1, 1)
        GradCheck.check(x, secondOrder: true) { $0[0] + $0[1] }
        GradCheck.check(x, secondOrder: true) { $0[0] - $0[1] }
        GradCheck.check(x, secondOrder: true) { $0[0] * $0[1] * $0[1] }
        let pos = r([[2, 3, 4], [1, 4]], 2, 0.5, 2)
        GradCheck.check(pos, secondOrder: true) { $0[0] / $0[1] }
        GradCheck.check(pos, secondOrder: true) { 2 / $0[0] + $0[1] * 3 - 1 }
        GradCheck.check(x) { Var.maximum($0[0], $0[1]) }
    }

    func testUnary() {
        let x = r([[3, 4]], 3, -1.5, 1.5)
        let pos = r([[3, 4]], 4, 0.3, 2)
        GradCheck.check(x, secondOrder: true) { $0[0].exp() }
        GradCheck.check(pos, secondOrder: true) { $0[0].log() }
        GradCheck.check(pos, secondOrder: true) { $0[0].sqrt() }
        GradCheck.check(pos, secondOrder: true) { $0[0].rsqrt() }
        GradCheck.check(pos, secondOrder: true) { $0[0].pow(1.7) }
        GradCheck.check(x, secondOrder: true) { $0[0].square() }
        GradCheck.check(x, secondOrder: true) { $0[0].abs() * $0[0] }
        GradCheck.check(x, secondOrder: true) { $0[0].tanh() }
        GradCheck.check(x, secondOrder: true) { $0[0].sigmoid() }
        GradCheck.check(x, secondOrder: true) { $0[0].relu() * $0[0] }
        GradCheck.check(x, secondOrder: true) { $0[0].leakyRelu(0.2) * $0[0] }
        GradCheck.check(x, secondOrder: true) { ($0[0] * 4).softplus(beta: 2) }
        GradCheck.check(x) { $0[0].clamp(min: -0.5, max: 0.7) }
        GradCheck.check(x, secondOrder: true) { -$0[0] }
    }

    func testReductions() {
        let x = r([[2, 3, 4]], 5, -1, 1)
        GradCheck.check(x, secondOrder: true) { $0[0].sum(axes: [1]).square() }
        GradCheck.check(x, secondOrder: true) { $0[0].sum(axes: [0, 2], keepDims: true) * $0[0] }
        GradCheck.check(x, secondOrder: true) { $0[0].mean().square() }
        GradCheck.check(x, secondOrder: true) { $0[0].variance(axes: [1, 2]) }
        GradCheck.check(x, secondOrder: true) { $0[0].logSumExp(axes: [2]) }
        GradCheck.check([GradCheck.spreadInputs([2, 3, 4])], secondOrder: true) { $0[0].max(axes: [1]).square() }
        GradCheck.check([GradCheck.spreadInputs([2, 3, 4])]) { $0[0].max() }
    }

    func testShapeOps() {
        let x = r([[2, 3, 4], [2, 2, 4]], 6, -1, 1)
        GradCheck.check(x, secondOrder: true) { $0[0].reshape([6, 4]).square() }
        GradCheck.check(x, secondOrder: true) { $0[0].permute([2, 0, 1]).square() }
        GradCheck.check(x, secondOrder: true) { $0[0].transpose(0, 2).contiguous() * $0[0].transpose(0, 2) }
        GradCheck.check(x, secondOrder: true) { Var.concat([$0[0], $0[1]], axis: 1).square() }
        GradCheck.check(x, secondOrder: true) { $0[0].slice(axis: 2, 1..<3).square() }
        GradCheck.check(x, secondOrder: true) { $0[0].pad([(0, 0), (1, 2), (2, 0)], value: 0.5).square() }
        GradCheck.check(x, secondOrder: true) { $0[0].flip([0, 2]) * $0[0] }
        GradCheck.check(r([[3, 1]], 7, -1, 1), secondOrder: true) { $0[0].expand([2, 3, 4]).square() }
        GradCheck.check(x) { Var.stack([$0[0].slice(axis: 1, 0..<2), $0[1]], axis: 1).square() }
        GradCheck.check(x) { v in let c = v[0].chunk(2, axis: 2); return c[0] * c[1] }
    }

    func testMatmulAndSoftmax() {
        let x = r([[3, 4], [4, 5], [5]], 8, -1, 1)
        GradCheck.check(x, secondOrder: true) { $0[0].matmul($0[1]) }
        GradCheck.check(x, secondOrder: true) { $0[0].matmul($0[1]).square() }
        GradCheck.check(r([[2, 3, 4], [2, 4, 2]], 9, -1, 1), secondOrder: true) { $0[0].matmul($0[1]).square() }
        GradCheck.check(r([[3, 4], [5, 4], [5]], 10, -1, 1), secondOrder: true) { $0[0].linear($0[1], $0[2]).tanh() }
        let s = r([[3, 5]], 11, -2, 2)
        GradCheck.check(s, secondOrder: true) { $0[0].softmax(axis: 1) }
        GradCheck.check(s, secondOrder: true) { $0[0].logSoftmax(axis: 1) }
        GradCheck.check(r([[2, 3, 2, 2]], 12, -2, 2), secondOrder: true) { $0[0].softmax(axis: 1) }
        GradCheck.check([GradCheck.spreadInputs([3, 6], gap: 0.3)], secondOrder: true) { $0[0].sparsemax().square() }
        // Analytic values: the projection of (1, 2, 3) onto the simplex is (0, 0, 1); of (0.9, 0.6, 0.1)
        // it is (0.65, 0.35, 0).
        XCTAssertEqual(Var([1, 2, 3], shape: [3]).sparsemax().array, [0, 0, 1])
        let p = Var([0.9, 0.6, 0.1], shape: [3]).sparsemax().array
        XCTAssertEqual(p[0], 0.65, accuracy: 1e-6); XCTAssertEqual(p[1], 0.35, accuracy: 1e-6); XCTAssertEqual(p[2], 0)
    }

    func testConvolutions() {
        let x = r([[2, 3, 5, 6], [4, 3, 3, 3], [4]], 13, -1, 1)
        GradCheck.check(x, secondOrder: true) { $0[0].conv2d($0[1], bias: $0[2], ConvGeometry(padding: 1)).square() }
        GradCheck.check(x) { $0[0].conv2d($0[1], bias: $0[2], ConvGeometry(stride: 2, padding: 1)) }
        GradCheck.check(x) {
            $0[0].conv2d($0[1], bias: nil, ConvGeometry(stride: (1, 2), padding: (2, 1), dilation: (2, 1)))
        }
        GradCheck.check(r([[2, 3, 4, 4], [5, 3, 1, 1]], 14, -1, 1), secondOrder: true) { $0[0].conv2d($0[1]).square() }
        // Transposed convolution: weight [Cin, Cout, k, k].
        GradCheck.check(r([[2, 3, 3, 3], [3, 2, 3, 3], [2]], 15, -1, 1), secondOrder: true) {
            $0[0].convTranspose2d($0[1], bias: $0[2], ConvGeometry(stride: 2, padding: 1), outputPadding: (1, 1)).square()
        }
    }

    func testPoolingAndResampling() {
        let x = [GradCheck.spreadInputs([2, 2, 5, 5])]
        GradCheck.check(x, secondOrder: true) { $0[0].maxPool2d(kernel: 2).square() }
        GradCheck.check(x) { $0[0].maxPool2d(kernel: 3, stride: 2, padding: 1) }
        GradCheck.check(x, secondOrder: true) { $0[0].avgPool2d(kernel: 3, stride: 2, padding: 1).square() }
        GradCheck.check(x) { $0[0].avgPool2d(kernel: 2, countIncludePad: false) }
        GradCheck.check(x, secondOrder: true) { $0[0].adaptiveAvgPool2d(3, 2).square() }
        GradCheck.check(r([[1, 2, 3, 2]], 16, -1, 1), secondOrder: true) { $0[0].upsampleNearest(2).square() }
    }

    func testNormalization() {
        let x = r([[3, 2, 3, 3], [2], [2]], 17, -1, 1)
        GradCheck.check(x, secondOrder: true) {
            $0[0].batchNorm(runningMean: nil, runningVar: nil, weight: $0[1], bias: $0[2], training: true).square()
        }
        let rm = NDArray([0.1, -0.2]), rv = NDArray([0.5, 1.5])
        GradCheck.check(x, secondOrder: true) {
            $0[0].batchNorm(runningMean: rm, runningVar: rv, weight: $0[1], bias: $0[2], training: false).square()
        }
        GradCheck.check(x, secondOrder: true) { $0[0].instanceNorm(weight: $0[1], bias: $0[2]).square() }
        GradCheck.check(r([[2, 2, 3, 3], [2, 2], [2, 2]], 18, -1, 1), secondOrder: true) {
            $0[0].adaIN(gamma: $0[1], beta: $0[2]).square()
        }
    }

    func testLosses() {
        let logits = r([[4, 3]], 19, -2, 2)
        let labels = Labels([0, 2, 1, 2])
        GradCheck.check(logits, secondOrder: true) { Loss.crossEntropy($0[0], labels) }
        let pair = r([[4, 3], [4, 3]], 20, -2, 2)
        let targets = Var(r([[4, 3]], 21, 0, 1)[0])
        GradCheck.check(logits, secondOrder: true) { Loss.bceWithLogits($0[0], targets) }
        GradCheck.check(pair, secondOrder: true) { Loss.mse($0[0], $0[1]) }
        GradCheck.check(pair) { Loss.l1($0[0], $0[1], reduction: .sum) }
        let probs = Var(r([[4, 3]], 22, 0.1, 1)[0]).softmax(axis: 1).detach()
        GradCheck.check(logits, secondOrder: true) { Loss.klDiv($0[0].logSoftmax(axis: 1), probs, reduction: .batchMean) }
    }
}
