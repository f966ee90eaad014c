import EngineKernels
import XCTest
@testable import Engine

/// The no-packing GEMM (EngineKernels' ek_gemm) behind linear layers on small batches, in every
/// instruction set this CPU has, against sums in Double: the forward (with and without bias) and the
/// input gradient over shapes that cover every register tile (rows 1 to 6 past the last whole tile,
/// batches narrower than a vector and not a multiple of it, inner sizes across the 512-step blocks),
/// plus thread-count independence and the autodiff op on this path (first and second derivatives).
final class SmallBatchGEMMTests: XCTestCase {
    /// (batch, in features, out features)
    static let shapes: [(Int, Int, Int)] = [(1, 3, 1), (5, 17, 7), (16, 64, 13), (17, 100, 6), (8, 513, 35),
                                            (64, 1030, 40), (70, 33, 129), (3, 2049, 11)]


    func testEveryTileAgainstDoubleSums() {
        var ran: [String] = []
        for isa in ["avx512", "avx2", "sse"] {
            let supported = DirectConv.withISA(isa) {
                for (t, (m, k, n)) in Self.shapes.enumerated() {
                    var rng = RandomGenerator(seed: UInt64(40 + t))
                    let x = NDArray.uniform([m, k], low: -1, high: 1, rng: &rng)
                    let w = NDArray.uniform([n, k], low: -1, high: 1, rng: &rng)
                    let bias = NDArray.uniform([n], low: -1, high: 1, rng: &rng)
                    let g = NDArray.uniform([m, n], low: -1, high: 1, rng: &rng)
                    let label = "\(isa) batch \(m), \(k) -> \(n)"
                    var y = [Double](repeating: 0, count: m * n), dx = [Double](repeating: 0, count: m * k)
                    for i in 0..<m {
                        for j in 0..<n {
                            for p in 0..<k {
                                let wv = Double(w.pointer[j * k + p])
                                y[i * n + j] += Double(x.pointer[i * k + p]) * wv
                                dx[i * k + p] += Double(g.pointer[i * n + j]) * wv
                            }
                        }
                    }
                    assertClose(SmallBatchGEMM.forward(x, w, bias: nil), y, "\(label): x W^T")
                    assertClose(SmallBatchGEMM.forward(x, w, bias: bias),
                                y.enumerated().map { $0.element + Double(bias.pointer[$0.offset % n]) }, "\(label): x W^T + b")
                    assertClose(SmallBatchGEMM.inputGrad(g, w), dx, "\(label): g W")
                }
            }
            if supported { ran.append(isa) }
        }
        XCTAssertTrue(ran.contains("sse"), "every x86-64 CPU has the SSE kernels")
        print("no-packing GEMM checked with: \(ran.joined(separator: ", ")) (running: \(DirectConv.isa))")
    }

    /// Every entry sums in one order whatever the thread count, so results are bit for bit the same.
    func testIndependentOfThreads() {
        var rng = RandomGenerator(seed: 3)
        let x = NDArray.uniform([48, 1500], low: -1, high: 1, rng: &rng)
        let w = NDArray.uniform([700, 1500], low: -1, high: 1, rng: &rng)
        let g = NDArray.uniform([48, 700], low: -1, high: 1, rng: &rng)
        let threads = EngineThreads.count
        defer { EngineThreads.count = threads }
        var results: [[Float]] = []
        for t in [1, 2, 3] {
            EngineThreads.count = t
            results.append(SmallBatchGEMM.forward(x, w, bias: nil).array + SmallBatchGEMM.inputGrad(g, w).array)
        }
        XCTAssertEqual(results[0], results[1])
        XCTAssertEqual(results[0], results[2])
    }

    /// Var.linear on this path: the automatic choice takes it for W1's shapes, the gradients of x, W
    /// and b match finite differences (and again through a second derivative, where the input gradient
    /// falls back to a recorded matmul), and the values match the BLAS path.
    func testLinearOpOnThisPath() {
        if DirectConv.isa != "sse" && SmallBatchGEMM.choice == .automatic {
            XCTAssertTrue(SmallBatchGEMM.forwardApplies(batch: 64, inFeatures: 6144, outFeatures: 4096))
            XCTAssertTrue(SmallBatchGEMM.inputGradApplies(batch: 64, inFeatures: 6144, outFeatures: 4096))
            XCTAssertFalse(SmallBatchGEMM.forwardApplies(batch: 512, inFeatures: 6144, outFeatures: 4096))
            XCTAssertFalse(SmallBatchGEMM.forwardApplies(batch: 64, inFeatures: 512, outFeatures: 256))
        }
        let choice = SmallBatchGEMM.choice
        defer { SmallBatchGEMM.choice = choice }
        var rng = RandomGenerator(seed: 8)
        let inputs = [NDArray.uniform([9, 20], low: -1, high: 1, rng: &rng), NDArray.uniform([7, 20], low: -1, high: 1, rng: &rng),
                      NDArray.uniform([7], low: -1, high: 1, rng: &rng)]
        SmallBatchGEMM.choice = .always
        GradCheck.check(inputs, secondOrder: true) { $0[0].linear($0[1], $0[2]).tanh() }
        GradCheck.check(Array(inputs[0...1]), secondOrder: true) { $0[0].linear($0[1], nil).square() }

        func run() -> [Float] {
            let vs = inputs.map { Var($0, requiresGrad: true) }
            let y = vs[0].linear(vs[1], vs[2])
            let grads = gradients(of: [y.tanh()], wrt: vs)
            return y.data.array + grads.flatMap { $0!.data.array }
        }
        let ours = run()
        SmallBatchGEMM.choice = .never
        let blas = run()
        let worst = zip(ours, blas).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThan(worst, 1e-5)
    }
}
