import EngineKernels
import XCTest
@testable import Engine

/// The Winograd F(2x2, 3x3) kernels (EngineKernels' ek_winograd_conv3x3), in every instruction set this
/// CPU has, against the convolution summed in Double (DirectConvTests' references): the forward with
/// bias and ReLU, the input gradient with and without a ReLU mask, over shapes that cover tile rows
/// narrower and wider than a vector, output channels that are not a multiple of the register tile,
/// one-tile planes and planes split into several blocks.
final class WinogradTests: XCTestCase {
    typealias Case = DirectConvTests.Case

    static let cases: [Case] = [
        Case(n: 2, c: 3, h: 8, w: 10, o: 7, kh: 3, kw: 3, ph: 1, pw: 1),
        Case(n: 1, c: 16, h: 6, w: 34, o: 13, kh: 3, kw: 3, ph: 1, pw: 1),
        Case(n: 2, c: 20, h: 4, w: 64, o: 6, kh: 3, kw: 3, ph: 1, pw: 1),
        Case(n: 1, c: 5, h: 2, w: 2, o: 1, kh: 3, kw: 3, ph: 1, pw: 1),
        Case(n: 3, c: 17, h: 20, w: 20, o: 30, kh: 3, kw: 3, ph: 1, pw: 1),
        Case(n: 1, c: 2, h: 132, w: 70, o: 4, kh: 3, kw: 3, ph: 1, pw: 1),
    ]


    func testEveryShapeAgainstDoubleSums() {
        let (choice, direct) = (Winograd.choice, DirectConv.choice)
        Winograd.choice = .always
        DirectConv.choice = .always
        defer { Winograd.choice = choice; DirectConv.choice = direct }
        var ran: [String] = []
        for isa in ["avx512", "avx2", "sse"] {
            let supported = DirectConv.withISA(isa) {
                for (k, t) in Self.cases.enumerated() {
                    var rng = RandomGenerator(seed: UInt64(70 + k))
                    let x = NDArray.uniform([t.n, t.c, t.h, t.w], low: -1, high: 1, rng: &rng)
                    let w = NDArray.uniform([t.o, t.c, 3, 3], low: -1, high: 1, rng: &rng)
                    let bias = NDArray.uniform([t.o], low: -1, high: 1, rng: &rng)
                    XCTAssertTrue(Winograd.applies(inC: t.c, outC: t.o, h: t.h, w: t.w, kh: 3, kw: 3, ph: 1, pw: 1))
                    _ = checkForwardAndInputGrad(x, w, bias, t, "\(isa) case \(k) \(t)", tolerance: 2e-6, rng: &rng)
                }
            }
            if supported { ran.append(isa) }
        }
        XCTAssertTrue(ran.contains("sse"), "every x86-64 CPU has the SSE kernels")
        print("Winograd convolution checked with: \(ran.joined(separator: ", ")) (running: \(DirectConv.isa))")
    }

    /// Work goes out as blocks of tile rows, so one sample spreads over threads; each output is computed
    /// by one block in a fixed order, so results are bit for bit the same with any thread count.
    func testOneSampleOverThreads() {
        let (choice, direct) = (Winograd.choice, DirectConv.choice)
        Winograd.choice = .always
        DirectConv.choice = .always
        defer { Winograd.choice = choice; DirectConv.choice = direct }
        var rng = RandomGenerator(seed: 9)
        let x = NDArray.uniform([1, 20, 96, 64], low: -1, high: 1, rng: &rng)
        let w = NDArray.uniform([24, 20, 3, 3], low: -1, high: 1, rng: &rng)
        XCTAssertGreaterThan(ek_winograd_blocks(20, 96, 64, 24), 2, "the plane must make several blocks")
        let geo = ConvGeometry(stride: 1, padding: 1)
        let threads = EngineThreads.count
        defer { EngineThreads.count = threads }
        var results: [[Float]] = []
        for t in [1, 2, 3] {
            EngineThreads.count = t
            let y = Kernels.conv2d(x, w, geo, bias: nil, relu: false)
            results.append(y.array + Kernels.convInputGrad(y, w, inputShape: x.shape, geo, mask: y).array)
        }
        XCTAssertEqual(results[0], results[1])
        XCTAssertEqual(results[0], results[2])
    }

    /// A training step of a small VGG (training-mode batch norm, cross-entropy): every parameter's
    /// gradient with Winograd in the forward and backward passes matches the direct kernels' to 1e-4
    /// of its largest entry (they differ by rounding only; training runs still drift apart over many
    /// steps, as with any change of rounding).
    func testTrainingStepGradientsMatchDirect() throws {
        var layers: [JSONValue] = []
        var c: Int64 = 1
        for out: Int64 in [8, 16, 32, 32] {
            layers += [["type": "conv2d", "in": .int(c), "out": .int(out), "kernel": 3, "padding": 1],
                       ["type": "batch_norm", "channels": .int(out)], ["type": "relu"],
                       ["type": "conv2d", "in": .int(out), "out": .int(out), "kernel": 3, "padding": 1],
                       ["type": "batch_norm", "channels": .int(out)], ["type": "relu"], ["type": "max_pool2d", "kernel": 2]]
            c = out
        }
        let spec: JSONValue = ["type": "sequential", "init": "kaiming_normal", "layers": .array(layers + [
            ["type": "flatten"], ["type": "linear", "in": 128, "out": 64], ["type": "relu"], ["type": "linear", "in": 64, "out": 2]])]
        let net = try ModelBuilder.build(spec, seed: 3)
        net.train()
        var rng = RandomGenerator(seed: 4)
        let x = NDArray.uniform([16, 1, 32, 32], low: -1, high: 1, rng: &rng)
        let labels = Labels((0..<16).map { $0 % 2 })
        let (choice, direct) = (Winograd.choice, DirectConv.choice)
        defer { Winograd.choice = choice; DirectConv.choice = direct }
        DirectConv.choice = .always
        var grads: [[[Float]]] = []
        for w in [KernelChoice.never, .always] {
            Winograd.choice = w
            let params = net.parameters
            params.forEach { $0.zeroGrad() }
            Loss.crossEntropy(net(Var(x)), labels).backward()
            grads.append(params.map { $0.grad!.data.array })
        }
        XCTAssertEqual(grads[0].count, grads[1].count)
        // The convolutions' biases feed training-mode batch norm, which cancels them: their gradients are
        // zero up to rounding, so each parameter is measured against at least 1% of the largest entry.
        let overall = grads[0].map { $0.map(abs).max() ?? 0 }.max() ?? 0
        for (k, (a, b)) in zip(grads[0], grads[1]).enumerated() {
            let scale = max(a.map(abs).max() ?? 0, 1e-2 * overall)
            let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThan(worst / scale, 1e-4, "parameter \(k)")
        }
    }

    /// Layers wider than the direct kernel's 128 channels take Winograd by default for the forward pass
    /// and the input gradient (and only 3x3, padding 1, even planes), while their weight gradient stays
    /// on im2col + GEMM; the results agree with the Double sums.
    func testWideLayersTakeWinogradByDefault() {
        let (choice, direct) = (Winograd.choice, DirectConv.choice)
        (Winograd.choice, DirectConv.choice) = (.automatic, .automatic)
        defer { Winograd.choice = choice; DirectConv.choice = direct }
        let t = Case(n: 2, c: 136, h: 6, w: 8, o: 144, kh: 3, kw: 3, ph: 1, pw: 1)
        let geo = ConvGeometry(stride: (1, 1), padding: (1, 1))
        let wide = ConvShape(input: [t.n, t.c, t.h, t.w], weight: [t.o, t.c, 3, 3], geo)
        XCTAssertTrue(DirectConv.forward(wide) && DirectConv.inputGrad(wide), "wide 3x3 layers run Winograd")
        XCTAssertFalse(DirectConv.weightGrad(wide), "their weight gradient stays on GEMM")
        let odd = ConvShape(input: [1, 136, 7, 8], weight: [144, 136, 3, 3], geo)
        XCTAssertFalse(DirectConv.forward(odd), "an odd plane is not Winograd's, and too wide for the direct kernel")
        let narrow = ConvShape(input: [1, 64, 7, 8], weight: [64, 64, 3, 3], geo)
        XCTAssertTrue(DirectConv.forward(narrow) && DirectConv.weightGrad(narrow), "narrow layers keep the direct kernels")
        var rng = RandomGenerator(seed: 12)
        let x = NDArray.uniform([t.n, t.c, t.h, t.w], low: -1, high: 1, rng: &rng)
        let w = NDArray.uniform([t.o, t.c, 3, 3], low: -1, high: 1, rng: &rng)
        let bias = NDArray.uniform([t.o], low: -1, high: 1, rng: &rng)
        _ = checkForwardAndInputGrad(x, w, bias, t, "wide \(t)", tolerance: 2e-6, rng: &rng)
    }

    /// Only 3x3 kernels with padding 1 on even planes take it; the rest stays direct.
    func testWhereItApplies() {
        let choice = Winograd.choice
        Winograd.choice = .automatic
        defer { Winograd.choice = choice }
        XCTAssertTrue(Winograd.applies(inC: 24, outC: 24, h: 64, w: 64, kh: 3, kw: 3, ph: 1, pw: 1))
        XCTAssertFalse(Winograd.applies(inC: 12, outC: 12, h: 128, w: 128, kh: 3, kw: 3, ph: 1, pw: 1), "few channels")
        XCTAssertFalse(Winograd.applies(inC: 24, outC: 24, h: 63, w: 64, kh: 3, kw: 3, ph: 1, pw: 1), "odd height")
        XCTAssertFalse(Winograd.applies(inC: 24, outC: 24, h: 64, w: 64, kh: 3, kw: 3, ph: 0, pw: 0), "padding 0")
        XCTAssertFalse(Winograd.applies(inC: 24, outC: 24, h: 64, w: 64, kh: 5, kw: 5, ph: 2, pw: 2), "5x5")
    }
}
