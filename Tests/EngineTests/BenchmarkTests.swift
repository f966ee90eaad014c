import Foundation
import XCTest
@testable import Engine

/// Timings, not checks: run with QUAC_ENGINE_BENCH=1 in a release build
/// (swift test -c release --filter BenchmarkTests). scripts/golden/engine_bench.py times the same
/// network in PyTorch.
final class BenchmarkTests: XCTestCase {
    static let vggish: JSONValue = ["type": "sequential", "init": "kaiming_normal", "layers": [
        ["type": "conv2d", "in": 3, "out": 32, "kernel": 3, "padding": 1], ["type": "batch_norm", "channels": 32], ["type": "relu"],
        ["type": "conv2d", "in": 32, "out": 32, "kernel": 3, "padding": 1], ["type": "batch_norm", "channels": 32], ["type": "relu"],
        ["type": "max_pool2d", "kernel": 2],
        ["type": "conv2d", "in": 32, "out": 64, "kernel": 3, "padding": 1], ["type": "batch_norm", "channels": 64], ["type": "relu"],
        ["type": "conv2d", "in": 64, "out": 64, "kernel": 3, "padding": 1], ["type": "batch_norm", "channels": 64], ["type": "relu"],
        ["type": "max_pool2d", "kernel": 2],
        ["type": "adaptive_avg_pool2d", "size": [1, 1]], ["type": "flatten"], ["type": "linear", "in": 64, "out": 4],
    ]]

    /// QuAC's Vgg2D for 1x128x128 inputs and two classes (channels 12-24-48-96, fc 4096-4096).
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

    func testTrainingStepTiming() throws {
        try time(Self.vggish, input: [16, 3, 64, 64], classes: 4, name: "vggish 16x3x64x64")
    }

    func testQuacVGGTiming() throws {
        try time(Self.quacVGG, input: [8, 1, 128, 128], classes: 2, name: "QuAC VGG 8x1x128x128")
    }

    func time(_ arch: JSONValue, input: [Int], classes: Int, name: String) throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["QUAC_ENGINE_BENCH"] != nil, "set QUAC_ENGINE_BENCH=1")
        let net = try ModelBuilder.build(arch, seed: 0)
        let opt = Adam(net.parameters, lr: 1e-3)
        var rng = RandomGenerator(seed: 0)
        let x = Var(NDArray.uniform(input, low: -1, high: 1, rng: &rng))
        let y = Labels((0..<input[0]).map { $0 % classes })
        func step() {
            let loss = Loss.crossEntropy(net(x), y)
            opt.zeroGrad()
            loss.backward()
            opt.step()
        }
        // CPU time as well as wall time: the machine is shared, and CPU time is what contention distorts least.
        func cpu() -> Double {
            var u = rusage()
            getrusage(RUSAGE_SELF.rawValue, &u)
            return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
        }
        step()
        let n = 5
        let (t0, c0) = (Date(), cpu())
        for _ in 0..<n { step() }
        let (train, trainCPU) = (Date().timeIntervalSince(t0) / Double(n), (cpu() - c0) / Double(n))
        net.eval()
        let (t1, c1) = (Date(), cpu())
        for _ in 0..<n { _ = noGrad { net(x) }.item(0) }
        let (infer, inferCPU) = (Date().timeIntervalSince(t1) / Double(n), (cpu() - c1) / Double(n))
        print(String(format: "engine bench %@: threads %d, train step %.1f ms (cpu %.1f), eval forward %.1f ms (cpu %.1f)",
                     name, EngineThreads.count, train * 1000, trainCPU * 1000, infer * 1000, inferCPU * 1000))
    }
}

extension Var {
    func item(_ i: Int) -> Float { data.contiguous().pointer[i] }
}
