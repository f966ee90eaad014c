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

    func testTrainingStepTiming() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["QUAC_ENGINE_BENCH"] != nil, "set QUAC_ENGINE_BENCH=1")
        let net = try ModelBuilder.build(Self.vggish, seed: 0)
        let opt = Adam(net.parameters, lr: 1e-3)
        var rng = RandomGenerator(seed: 0)
        let x = Var(NDArray.uniform([16, 3, 64, 64], low: -1, high: 1, rng: &rng))
        let y = Labels((0..<16).map { $0 % 4 })
        func step() {
            let loss = Loss.crossEntropy(net(x), y)
            opt.zeroGrad()
            loss.backward()
            opt.step()
        }
        step()
        let n = 5
        let t0 = Date()
        for _ in 0..<n { step() }
        let train = Date().timeIntervalSince(t0) / Double(n)
        net.eval()
        let t1 = Date()
        for _ in 0..<n { _ = noGrad { net(x) }.item(0) }
        let infer = Date().timeIntervalSince(t1) / Double(n)
        print(String(format: "engine bench: threads %d, train step %.1f ms, eval forward %.1f ms", EngineThreads.count, train * 1000, infer * 1000))
    }
}

extension Var {
    func item(_ i: Int) -> Float { data.contiguous().pointer[i] }
}
