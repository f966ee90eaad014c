import Foundation
import XCTest
@testable import Engine

/// The engine half of bench/engine_bench.sh: timings, not checks. Skipped unless QUAC_ENGINE_BENCH=1;
/// meant for a release build (swift test -c release --filter BenchmarkTests). Writes its numbers as
/// JSON to $QUAC_ENGINE_BENCH_OUT (when set) for bench/engine_bench.py, which times the same network in
/// PyTorch in the same run and prints both with their ratio.
///
/// Measured on QuAC's VGG (Vgg2D for 1x128x128, channels 12-24-48-96, fc 4096-4096, 2 classes), batch
/// sizes 1, 16 and 64: evaluation forward, forward + input gradient (evaluation mode, the gradient of the
/// target logit with respect to the input, as a classifier's vjp), and a training step (training mode,
/// cross-entropy, Adam). Beside them: the GFLOP/s of each convolution and linear layer's kernels alone
/// (forward, input gradient, weight gradient) and of a large sgemm through cblas (OpenBLAS's own rate,
/// with the engine's thread count).
final class BenchmarkTests: XCTestCase {
    /// QuAC's Vgg2D for 1x128x128 inputs and two classes (channels 12-24-48-96, fc 4096-4096), as a
    /// sequential network (the CNN plugin's "vgg" preset is the same layers laid out as a graph).
    static var quacVGG: JSONValue {
        var features: [JSONValue] = []
        var c: Int64 = 1
        for out: Int64 in [12, 24, 48, 96] {
            features += [["type": "conv2d", "in": .int(c), "out": .int(out), "kernel": 3, "padding": 1],
                         ["type": "batch_norm", "channels": .int(out)], ["type": "relu"],
                         ["type": "conv2d", "in": .int(out), "out": .int(out), "kernel": 3, "padding": 1],
                         ["type": "batch_norm", "channels": .int(out)], ["type": "relu"], ["type": "max_pool2d", "kernel": 2]]
            c = out
        }
        return ["type": "sequential", "init": "kaiming_normal", "layers": .array(features + [
            ["type": "flatten"], ["type": "linear", "in": 6144, "out": 4096], ["type": "relu"],
            ["type": "linear", "in": 4096, "out": 4096], ["type": "relu"], ["type": "linear", "in": 4096, "out": 2]])]
    }

    /// (in channels, out channels, spatial size) of the eight convolutions.
    static let convs: [(Int, Int, Int)] = [(1, 12, 128), (12, 12, 128), (12, 24, 64), (24, 24, 64),
                                           (24, 48, 32), (48, 48, 32), (48, 96, 16), (96, 96, 16)]
    static let linears: [(Int, Int)] = [(6144, 4096), (4096, 4096), (4096, 2)]

    /// Multiply-adds x 2 of one image's convolutions and linear layers (forward).
    static var forwardFLOPs: Double {
        convs.reduce(0.0) { $0 + 2.0 * Double($1.0 * $1.1 * 9 * $1.2 * $1.2) }
            + linears.reduce(0.0) { $0 + 2.0 * Double($1.0 * $1.1) }
    }

    static var firstConvFLOPs: Double { 2.0 * Double(1 * 12 * 9 * 128 * 128) }

    /// Seconds per call: the median of at least `minReps` calls after one warm-up, repeating until
    /// `minSeconds` have passed (at most 50 calls).
    static func seconds(minReps: Int = 3, minSeconds: Double = 1.5, _ body: () -> Void) -> Double {
        body()
        var times: [Double] = []
        let start = Date()
        while times.count < minReps || (Date().timeIntervalSince(start) < minSeconds && times.count < 50) {
            let t = Date()
            body()
            times.append(Date().timeIntervalSince(t))
        }
        times.sort()
        return times[times.count / 2]
    }

    func testQuacVGGBenchmark() throws {
        let env = ProcessInfo.processInfo.environment
        try XCTSkipUnless(env["QUAC_ENGINE_BENCH"] == "1", "set QUAC_ENGINE_BENCH=1")
        let batches = (env["QUAC_ENGINE_BENCH_BATCHES"] ?? "1,16,64").split(separator: ",").compactMap { Int($0) }
        var report: [String: Any] = [
            "threads": EngineThreads.count, "blas_core": EngineThreads.blasCoreName,
            "forward_flops_per_image": Self.forwardFLOPs,
        ]

        // OpenBLAS's own rate: a 2048^3 sgemm, median of the calls.
        let n = 2048
        var rng = RandomGenerator(seed: 0)
        let a = NDArray.uniform([n, n], low: -1, high: 1, rng: &rng), b = NDArray.uniform([n, n], low: -1, high: 1, rng: &rng)
        let c = NDArray.uninitialized([n, n])
        let sgemm = Self.seconds(minReps: 5) { Kernels.gemm(a, b, into: c.pointer) }
        report["sgemm_gflops"] = 2.0 * Double(n * n * n) / sgemm / 1e9
        print(String(format: "engine bench: threads %d, OpenBLAS core %@, sgemm %d^3 %.1f GFLOP/s",
                     EngineThreads.count, EngineThreads.blasCoreName, n, 2.0 * Double(n * n * n) / sgemm / 1e9))

        let net = try ModelBuilder.build(Self.quacVGG, seed: 0)
        let opt = Adam(net.parameters, lr: 1e-4)
        var whole: [[String: Any]] = []
        for batch in batches {
            let x = NDArray.uniform([batch, 1, 128, 128], low: -1, high: 1, rng: &rng)
            let labels = (0..<batch).map { $0 % 2 }
            let seed = NDArray.zeros([batch, 2])
            for (i, y) in labels.enumerated() { seed.pointer[i * 2 + y] = 1 }

            net.eval()
            let forward = Self.seconds { _ = noGrad { net(Var(x)) }.data.contiguous().pointer[0] }
            let inputGrad = Self.seconds {
                let xv = Var(x, requiresGrad: true)
                let out = net(xv)
                _ = gradients(of: [out], wrt: [xv], seeds: [Var(seed)])[0]!.data.contiguous().pointer[0]
            }
            net.train()
            let y = Labels(labels)
            let train = Self.seconds {
                let loss = Loss.crossEntropy(net(Var(x)), y)
                opt.zeroGrad()
                loss.backward()
                opt.step()
            }
            net.eval()
            let f = Self.forwardFLOPs * Double(batch)
            let row: [String: Any] = [
                "batch": batch,
                "forward_s": forward, "input_grad_s": inputGrad, "train_s": train,
                "forward_gflops": f / forward / 1e9,
                "input_grad_gflops": 2 * f / inputGrad / 1e9,
                "train_gflops": (3 * f - Self.firstConvFLOPs * Double(batch)) / train / 1e9,
            ]
            whole.append(row)
            print(String(format: "engine bench batch %d: forward %.1f img/s, forward+input-grad %.1f img/s, train step %.1f img/s",
                         batch, Double(batch) / forward, Double(batch) / inputGrad, Double(batch) / train))
        }
        report["network"] = whole

        // Each layer's kernels alone, at the largest batch.
        let batch = batches.max() ?? 64
        var layers: [[String: Any]] = []
        for (cin, cout, s) in Self.convs {
            let geo = ConvGeometry(stride: 1, padding: 1)
            let x = NDArray.uniform([batch, cin, s, s], low: -1, high: 1, rng: &rng)
            let w = NDArray.uniform([cout, cin, 3, 3], low: -0.1, high: 0.1, rng: &rng)
            let g = NDArray.uniform([batch, cout, s, s], low: -1, high: 1, rng: &rng)
            let flops = 2.0 * Double(batch * cin * cout * 9 * s * s)
            let fwd = Self.seconds(minSeconds: 0.5) { _ = Kernels.conv2d(x, w, geo) }
            let dx = Self.seconds(minSeconds: 0.5) { _ = Kernels.convInputGrad(g, w, inputShape: x.shape, geo) }
            let dw = Self.seconds(minSeconds: 0.5) { _ = Kernels.convWeightGrad(x, g, weightShape: w.shape, geo) }
            layers.append(["name": "conv \(cin)->\(cout) @\(s)x\(s)", "flops": flops,
                           "forward_gflops": flops / fwd / 1e9, "input_grad_gflops": flops / dx / 1e9,
                           "weight_grad_gflops": flops / dw / 1e9])
        }
        for (fin, fout) in Self.linears {
            let x = NDArray.uniform([batch, fin], low: -1, high: 1, rng: &rng)
            let w = NDArray.uniform([fout, fin], low: -0.1, high: 0.1, rng: &rng)
            let g = NDArray.uniform([batch, fout], low: -1, high: 1, rng: &rng)
            let flops = 2.0 * Double(batch * fin * fout)
            // The kernels Var.linear and its backward run: x W^T, g W (without packing on small batches),
            // g^T x.
            let fwd = Self.seconds(minSeconds: 0.5) {
                _ = SmallBatchGEMM.forwardApplies(batch: batch, inFeatures: fin, outFeatures: fout)
                    ? SmallBatchGEMM.forward(x, w, bias: nil) : Kernels.matmul(x, w.transposed(0, 1))
            }
            let dx = Self.seconds(minSeconds: 0.5) {
                _ = SmallBatchGEMM.inputGradApplies(batch: batch, inFeatures: fin, outFeatures: fout)
                    ? SmallBatchGEMM.inputGrad(g, w) : Kernels.matmul(g, w)
            }
            let dw = Self.seconds(minSeconds: 0.5) { _ = Kernels.matmul(g.transposed(0, 1), x) }
            layers.append(["name": "linear \(fin)->\(fout)", "flops": flops,
                           "forward_gflops": flops / fwd / 1e9, "input_grad_gflops": flops / dx / 1e9,
                           "weight_grad_gflops": flops / dw / 1e9])
        }
        report["layers_batch"] = batch
        report["layers"] = layers
        for l in layers {
            print(String(format: "engine bench layer %@ (batch %d): forward %.1f, input grad %.1f, weight grad %.1f GFLOP/s",
                         l["name"] as! String, batch, l["forward_gflops"] as! Double, l["input_grad_gflops"] as! Double,
                         l["weight_grad_gflops"] as! Double))
        }

        if let path = env["QUAC_ENGINE_BENCH_OUT"] {
            let data = try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
            try data.write(to: URL(fileURLWithPath: path))
        }
    }

    /// Where linear layers switch between OpenBLAS and the no-packing kernel: both paths' GFLOP/s for
    /// the VGG's fc layers over batch sizes (SmallBatchGEMM.forwardApplies and inputGradApplies hold
    /// the resulting rules).
    func testLinearPaths() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["QUAC_ENGINE_BENCH"] == "1", "set QUAC_ENGINE_BENCH=1")
        var rng = RandomGenerator(seed: 2)
        let choice = SmallBatchGEMM.choice
        defer { SmallBatchGEMM.choice = choice }
        for (fin, fout) in [(6144, 4096), (4096, 4096), (512, 256)] {
            let w = NDArray.uniform([fout, fin], low: -0.1, high: 0.1, rng: &rng)
            for batch in [1, 4, 8, 16, 32, 64, 128, 256, 512] {
                let x = NDArray.uniform([batch, fin], low: -1, high: 1, rng: &rng)
                let g = NDArray.uniform([batch, fout], low: -1, high: 1, rng: &rng)
                let flops = 2.0 * Double(batch * fin * fout)
                let blasF = Self.seconds(minSeconds: 0.3) { _ = Kernels.matmul(x, w.transposed(0, 1)) }
                let blasB = Self.seconds(minSeconds: 0.3) { _ = Kernels.matmul(g, w) }
                let oursF = Self.seconds(minSeconds: 0.3) { _ = SmallBatchGEMM.forward(x, w, bias: nil) }
                let oursB = Self.seconds(minSeconds: 0.3) { _ = SmallBatchGEMM.inputGrad(g, w) }
                let chosen = { (on: Bool) in on ? "no-pack" : "blas" }
                print(String(format: "engine bench linear %d->%d batch %d: forward blas %.1f / no-pack %.1f (%@ chosen), input grad blas %.1f / no-pack %.1f GFLOP/s (%@ chosen)",
                             fin, fout, batch, flops / blasF / 1e9, flops / oursF / 1e9,
                             chosen(SmallBatchGEMM.forwardApplies(batch: batch, inFeatures: fin, outFeatures: fout)),
                             flops / blasB / 1e9, flops / oursB / 1e9,
                             chosen(SmallBatchGEMM.inputGradApplies(batch: batch, inFeatures: fin, outFeatures: fout))))
            }
        }
    }
}
