import Foundation
import XCTest
@testable import Engine

final class TrainingTests: XCTestCase {
    /// torch.optim trajectories under a fixed gradient sequence (Golden/engine_optim.safetensors).
    func testOptimizersMatchPyTorch() throws {
        let file = try Safetensors.read(GoldenTests.dir.appendingPathComponent("engine_optim.safetensors"))
        let a = ModelFile.floatArrays(file)
        let configs = try JSONParser.parse(file.metadata["optimizers"]!).objectValue!
        let grads = a["grads"]!
        let steps = grads.shape[0]
        XCTAssertEqual(configs.count, 6)
        for (name, c) in configs {
            let p = Var(a["p0"]!.copy(), requiresGrad: true)
            let lr = Float(c["lr"]!.doubleValue!)
            let wd = Float(c["weight_decay"]?.doubleValue ?? 0)
            let betas = c["betas"]?.arrayValue.map { (Float($0[0].doubleValue!), Float($0[1].doubleValue!)) } ?? (0.9, 0.999)
            let opt: Optimizer
            switch c["class"]!.stringValue! {
            case "SGD":
                opt = SGD([p], lr: lr, momentum: Float(c["momentum"]?.doubleValue ?? 0), weightDecay: wd,
                          nesterov: c["nesterov"]?.boolValue ?? false)
            case "Adam": opt = Adam([p], lr: lr, betas: betas, weightDecay: wd)
            default: opt = Adam.adamW([p], lr: lr, betas: betas, weightDecay: wd)
            }
            let expected = a["\(name)/trajectory"]!
            for t in 0..<steps {
                p.grad = Var(grads.batch(t).copy())
                opt.step()
                let want = expected.batch(t).array
                for (x, y) in zip(p.array, want) {
                    XCTAssertEqual(x, y, accuracy: 1e-6 * Swift.max(1, Swift.abs(y)), "\(name) step \(t)")
                }
            }
        }
    }

    func testClipGradNormAndSchedules() {
        let p = Var([3, 4], shape: [2], requiresGrad: true)
        p.grad = Var([3, 4], shape: [2])
        XCTAssertEqual(clipGradNorm([p], maxNorm: 1), 5, accuracy: 1e-6)
        XCTAssertEqual(p.grad!.array[0], 0.6, accuracy: 1e-6)
        XCTAssertEqual(p.grad!.array[1], 0.8, accuracy: 1e-6)
        XCTAssertEqual(LRSchedule.step(lr: 1, stepSize: 10, gamma: 0.5).rate(at: 25), 0.25)
        XCTAssertEqual(LRSchedule.cosine(lr: 1, totalSteps: 10, minLR: 0).rate(at: 5), 0.5, accuracy: 1e-6)
        XCTAssertEqual(LRSchedule.warmup(steps: 4, then: .constant(2)).rate(at: 1), 1)
        XCTAssertEqual(LRSchedule.warmup(steps: 4, then: .constant(2)).rate(at: 9), 2)
    }

    func testMovingAverage() throws {
        var rng = RandomGenerator(seed: 1)
        let a = Linear(2, 2, rng: &rng), b = Linear(2, 2, rng: &rng)
        let before = b.weight.array, cur = a.weight.array
        updateMovingAverage(b, from: a, beta: 0.9)
        for i in 0..<4 { XCTAssertEqual(b.weight.array[i], 0.9 * before[i] + 0.1 * cur[i], accuracy: 1e-6) }
        try b.copyWeights(from: a)
        XCTAssertEqual(b.weight.array, a.weight.array)
        XCTAssertFalse(b.weight === a.weight, "a copy, not shared parameters")
    }

    /// SMAT's one-step meta-gradient: d/dphi of the validation loss after one simulated SGD step whose
    /// training loss depends on phi, against finite differences.
    func testOneStepMetaGradient() throws {
        var rng = RandomGenerator(seed: 8)
        let student = Sequential([Linear(3, 4, rng: &rng), Lambda("tanh") { $0.tanh() }, Linear(4, 2, rng: &rng)])
        let x = Var(NDArray.uniform([5, 3], low: -1, high: 1, rng: &rng)), y = Labels([0, 1, 1, 0, 1])
        let xv = Var(NDArray.uniform([4, 3], low: -1, high: 1, rng: &rng)), yv = Labels([1, 0, 0, 1])
        let params = student.namedParameters()
        GradCheck.check([NDArray([0.5, -0.3, 0.8])], rtol: 3e-2) { phi in
            let inner = Loss.crossEntropy(student(x * phi[0]), y) + (phi[0].square() * 0.1).sum()
            let grads = gradients(of: [inner], wrt: params.map(\.1), createGraph: true)
            var stepped: [String: Var] = [:]
            for ((name, p), g) in zip(params, grads) { stepped[name] = p - g! * 0.5 }
            return student.substituting(stepped) { Loss.crossEntropy(student(xv), yv) }
        }
        // The substitution is undone afterwards.
        XCTAssertTrue(student.namedParameters().elementsEqual(params) { $0.1 === $1.1 })
    }

    // MARK: A small CNN on generated data

    /// 4 classes of 8x8 single-channel images: a bright 3x3 blob in one quadrant, on noise.
    static func dataset(_ n: Int, seed: UInt64) -> (NDArray, [Int]) {
        var rng = RandomGenerator(seed: seed)
        let x = NDArray.normal([n, 1, 8, 8], std: 0.3, rng: &rng)
        var labels: [Int] = []
        for i in 0..<n {
            let y = rng.int(4)
            labels.append(y)
            let (r0, c0) = ((y / 2) * 4 + rng.int(2), (y % 2) * 4 + rng.int(2))
            for r in r0..<r0 + 3 { for c in c0..<c0 + 3 { x.pointer[i * 64 + r * 8 + c] += 1.5 } }
        }
        return (x, labels)
    }

    static let architecture: JSONValue = [
        "type": "sequential", "init": "kaiming_normal",
        "layers": [
            ["type": "conv2d", "in": 1, "out": 6, "kernel": 3, "padding": 1],
            ["type": "batch_norm", "channels": 6],
            ["type": "relu"],
            ["type": "max_pool2d", "kernel": 2],
            ["type": "conv2d", "in": 6, "out": 8, "kernel": 3, "padding": 1],
            ["type": "relu"],
            ["type": "adaptive_avg_pool2d", "size": [2, 2]],
            ["type": "flatten"],
            ["type": "dropout", "p": 0.1, "seed": 5],
            ["type": "linear", "in": 32, "out": 4],
        ],
    ]

    /// Trains from `seed` with Adam; returns the network and held-out accuracy.
    static func train(seed: UInt64, epochs: Int = 4) throws -> (Module, Float) {
        let (x, y) = dataset(256, seed: 11)
        let net = try ModelBuilder.build(architecture, seed: seed)
        let opt = Adam(net.parameters, lr: 0.01)
        var rng = RandomGenerator(seed: seed)
        let batch = 32
        for _ in 0..<epochs {
            var order = Array(0..<256)
            rng.shuffle(&order)
            for start in stride(from: 0, to: 256, by: batch) {
                let idx = Array(order[start..<start + batch])
                let xb = NDArray.uninitialized([batch, 1, 8, 8])
                for (j, i) in idx.enumerated() { (xb.pointer + j * 64).update(from: x.pointer + i * 64, count: 64) }
                let loss = Loss.crossEntropy(net(Var(xb)), Labels(idx.map { y[$0] }))
                opt.zeroGrad()
                loss.backward()
                opt.step()
            }
        }
        net.eval()
        let (tx, ty) = dataset(128, seed: 12)
        let logits = noGrad { net(Var(tx)) }.data
        let correct = zip(logits.argmax(), ty).filter { $0 == $1 }.count
        return (net, Float(correct) / 128)
    }

    func testSmallCNNLearnsAndIsDeterministic() throws {
        let (_, untrained) = try Self.train(seed: 42, epochs: 0)
        XCTAssertLessThan(untrained, 0.6, "the task is not solved before training")
        let (net1, acc1) = try Self.train(seed: 42)
        XCTAssertGreaterThanOrEqual(acc1, 0.95, "held-out accuracy")
        print("small CNN held-out accuracy: \(acc1)")
        let (net2, acc2) = try Self.train(seed: 42)
        XCTAssertEqual(acc1, acc2)
        for ((n, a), (_, b)) in zip(net1.stateDict(), net2.stateDict()) {
            XCTAssertEqual(a.array, b.array, "\(n) differs between two runs with the same seed")
        }
    }

    /// Saving mid-run and resuming gives bitwise the same weights as running straight through.
    func testCheckpointResumesExactly() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("engine-ckpt-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let (x, y) = Self.dataset(64, seed: 3)
        let arch: JSONValue = ["type": "sequential", "layers": [
            ["type": "conv2d", "in": 1, "out": 4, "kernel": 3], ["type": "batch_norm", "channels": 4],
            ["type": "relu"], ["type": "flatten"], ["type": "dropout", "p": 0.3, "seed": 4],
            ["type": "linear", "in": 144, "out": 4]]]
        func run(_ net: Module, _ opt: Optimizer, steps: Range<Int>) {
            for s in steps {
                let xb = Var(NDArray(Array(x.array[(s % 4) * 16 * 64..<((s % 4) + 1) * 16 * 64]), shape: [16, 1, 8, 8]))
                let loss = Loss.crossEntropy(net(xb), Labels(Array(y[(s % 4) * 16..<((s % 4) + 1) * 16])))
                opt.zeroGrad()
                loss.backward()
                opt.step()
            }
        }
        let straight = try ModelBuilder.build(arch, seed: 1)
        let o1 = Adam.adamW(straight.parameters, lr: 0.01)
        run(straight, o1, steps: 0..<6)

        let first = try ModelBuilder.build(arch, seed: 1)
        let o2 = Adam.adamW(first.parameters, lr: 0.01)
        run(first, o2, steps: 0..<3)
        let url = dir.appendingPathComponent("ckpt.safetensors")
        try Checkpoint.save(to: url, networks: ["net": first], optimizers: ["opt": o2], metadata: ["epoch": "1"])

        let resumed = try ModelBuilder.build(arch, seed: 99)
        let o3 = Adam.adamW(resumed.parameters, lr: 0.01)
        let meta = try Checkpoint.load(from: url, networks: ["net": resumed], optimizers: ["opt": o3])
        XCTAssertEqual(meta["epoch"], "1")
        XCTAssertEqual(o3.stepCount, 3)
        XCTAssertEqual(resumed.namedCounters().first?.1, 3, "the dropout layer's call count")
        run(resumed, o3, steps: 3..<6)
        for ((n, a), (_, b)) in zip(straight.stateDict(), resumed.stateDict()) {
            XCTAssertEqual(a.array, b.array, "\(n) after resuming")
        }
    }

    /// A model file carries its architecture: loading it rebuilds the same network and outputs.
    func testModelFileRoundTrip() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("engine-model-\(getpid()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        let net = try ModelBuilder.build(Self.architecture, seed: 7)
        net.eval()
        try ModelFile.save(net, architecture: Self.architecture, to: url)
        let (loaded, arch) = try ModelFile.load(url)
        XCTAssertEqual(arch, Self.architecture)
        let x = Var(Self.dataset(4, seed: 1).0)
        XCTAssertEqual(noGrad { net(x) }.array, noGrad { loaded(x) }.array)
        XCTAssertThrowsError(try ModelBuilder.build(["type": "sequential", "layers": [["type": "warp_drive"]]]))
    }

    /// Building without the architecture's "init" (for weights loaded right after) skips the draws:
    /// other starting weights, the same network once the file's weights are in.
    func testBuildWithoutInitThenLoad() throws {
        XCTAssertEqual(Self.architecture["init"]?.stringValue, "kaiming_normal", "the test needs an init to skip")
        let net = try ModelBuilder.build(Self.architecture, seed: 7)
        let bare = try ModelBuilder.build(Self.architecture, seed: 7, initialize: false)
        let first = net.namedParameters()[0].1
        XCTAssertNotEqual(first.array, bare.namedParameters()[0].1.array)
        // Nothing drawn: conv and linear weights start at zero (batch norm's scale at its constant 1), and
        // a file missing any parameter is refused.
        let weights = bare.parameters.filter { $0.rank >= 2 }
        XCTAssertFalse(weights.isEmpty)
        XCTAssertTrue(weights.allSatisfy { $0.data.array.allSatisfy { $0 == 0 } })
        var partial = Dictionary(uniqueKeysWithValues: net.stateDict())
        partial.removeValue(forKey: net.namedParameters()[0].0)
        XCTAssertThrowsError(try bare.loadStateDict(partial))
        try bare.loadStateDict(Dictionary(uniqueKeysWithValues: net.stateDict()))
        net.eval()
        bare.eval()
        let x = Var(Self.dataset(4, seed: 1).0)
        XCTAssertEqual(noGrad { net(x) }.array, noGrad { bare(x) }.array)
    }

    func testRegisteredLayerType() throws {
        ModelBuilder.register("scaled_linear") { spec, rng, _ in
            let inner = Linear(Int(spec["in"]!.intValue!), Int(spec["out"]!.intValue!), rng: &rng)
            return Sequential([inner, Lambda("half") { $0 * 0.5 }])
        }
        let net = try ModelBuilder.build(["type": "sequential", "layers": [["type": "scaled_linear", "in": 2, "out": 3]]])
        XCTAssertEqual(net.namedParameters().map(\.0), ["0.0.weight", "0.0.bias"])
        XCTAssertEqual(net(Var(NDArray.ones([1, 2]))).shape, [1, 3])
    }

    /// A graph with a skip connection and a concatenation computes what its wiring says.
    func testGraphArchitecture() throws {
        let arch: JSONValue = ["type": "graph", "output": "head", "nodes": [
            ["name": "stem", "layer": ["type": "conv2d", "in": 1, "out": 2, "kernel": 3, "padding": 1]],
            ["name": "body", "layer": ["type": "tanh"]],
            ["name": "sum", "op": "add", "inputs": ["stem", "body"]],
            ["name": "cat", "op": "concat", "inputs": ["sum", "input"], "axis": 1],
            ["name": "pool", "layer": ["type": "adaptive_avg_pool2d", "size": [1, 1]]],
            ["name": "flat", "layer": ["type": "flatten"]],
            ["name": "head", "layer": ["type": "linear", "in": 3, "out": 2]],
        ]]
        let net = try ModelBuilder.build(arch, seed: 3)
        XCTAssertEqual(net.namedParameters().map(\.0), ["stem.weight", "stem.bias", "head.weight", "head.bias"])
        let x = Var(Self.dataset(2, seed: 1).0)
        let p = Dictionary(uniqueKeysWithValues: net.namedParameters())
        let stem = x.conv2d(p["stem.weight"]!, bias: p["stem.bias"]!, ConvGeometry(padding: 1))
        let manual = Var.concat([stem + stem.tanh(), x], axis: 1).adaptiveAvgPool2d(1, 1).flatten()
            .linear(p["head.weight"]!, p["head.bias"]!)
        XCTAssertEqual(net(x).array, manual.array)
        XCTAssertThrowsError(try ModelBuilder.build(["type": "graph", "output": "a", "nodes": [
            ["name": "a", "op": "add", "inputs": ["nowhere"]]]]))
    }
}
