import Foundation
import XCTest
@testable import Engine

/// Parity with PyTorch: the files in Golden/ come from scripts/golden/engine_golden.py (PyTorch in
/// float64 on float32 inputs). Each value must match within `rtol` relative to the tensor's magnitude:
/// |a - b| <= rtol * (|b| + max(max|b|, 1e-3)).
final class GoldenTests: XCTestCase {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")

    static func load(_ name: String) throws -> SafetensorsFile {
        try Safetensors.read(dir.appendingPathComponent(name))
    }

    func assertClose(_ a: NDArray, _ b: NDArray, rtol: Float, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.shape, b.shape, "\(what): shape", file: file, line: line)
        guard a.shape == b.shape else { return }
        let x = a.array, y = b.array
        // The floor covers gradients that are zero in exact arithmetic (a conv bias before batch norm).
        let scale = Swift.max(y.map { Swift.abs($0) }.max() ?? 0, 1e-3)
        var worst = 0, worstExcess: Float = 0
        for i in 0..<x.count {
            let excess = Swift.abs(x[i] - y[i]) - rtol * (Swift.abs(y[i]) + scale)
            if excess > worstExcess || x[i].isNaN { worstExcess = x[i].isNaN ? .infinity : excess; worst = i }
        }
        if worstExcess > 0 {
            XCTFail("\(what): element \(worst) is \(x[worst]), PyTorch \(y[worst])", file: file, line: line)
        }
    }

    /// The engine's version of each golden op.
    func apply(_ spec: JSONValue, _ v: [String: Var]) -> Var {
        let op = spec["op"]!.stringValue!
        func int(_ k: String) -> Int { Int(spec[k]!.intValue!) }
        func ints(_ k: String) -> [Int] { spec[k]!.arrayValue!.map { Int($0.intValue!) } }
        func float(_ k: String) -> Float { Float(spec[k]!.doubleValue!) }
        let x = v["x"] ?? v["a"]
        switch op {
        case "relu": return x!.relu()
        case "tanh": return x!.tanh()
        case "sigmoid": return x!.sigmoid()
        case "exp": return x!.exp()
        case "abs": return x!.abs()
        case "neg": return -x!
        case "leaky_relu": return x!.leakyRelu(float("slope"))
        case "softplus": return x!.softplus(beta: float("beta"), threshold: float("threshold"))
        case "log": return x!.log()
        case "sqrt": return x!.sqrt()
        case "rsqrt": return x!.rsqrt()
        case "pow": return x!.pow(float("p"))
        case "add": return v["a"]! + v["b"]!
        case "sub": return v["a"]! - v["b"]!
        case "mul": return v["a"]! * v["b"]!
        case "div": return v["a"]! / v["b"]!
        case "sum": return x!.sum(axes: ints("axes"), keepDims: spec["keep"]!.boolValue!)
        case "mean": return x!.mean(axes: ints("axes"), keepDims: spec["keep"]!.boolValue!)
        case "max": return x!.max(axes: ints("axes"), keepDims: spec["keep"]!.boolValue!)
        case "logsumexp": return x!.logSumExp(axes: ints("axes"))
        case "softmax": return x!.softmax(axis: int("axis"))
        case "log_softmax": return x!.logSoftmax(axis: int("axis"))
        case "permute": return x!.permute(ints("order"))
        case "concat": return Var.concat([v["a"]!, v["b"]!], axis: int("axis"))
        case "slice": return x!.slice(axis: int("axis"), int("start")..<int("end"))
        case "pad": return x!.pad(spec["padding"]!.arrayValue!.map { (Int($0[0]!.intValue!), Int($0[1]!.intValue!)) })
        case "flip": return x!.flip(ints("axes"))
        case "matmul": return v["a"]!.matmul(v["b"]!)
        case "cross_entropy": return Loss.crossEntropy(x!, Labels(ints("labels")))
        case "bce_logits": return Loss.bceWithLogits(x!, v["t"]!)
        case "mse": return Loss.mse(v["a"]!, v["b"]!)
        case "l1": return Loss.l1(v["a"]!, v["b"]!)
        case "kl_div": return Loss.klDiv(x!, v["t"]!, reduction: .batchMean)
        case "linear": return x!.linear(v["w"]!, v["b"]!)
        case "conv2d":
            return x!.conv2d(v["w"]!, bias: v["b"], ConvGeometry(stride: int("stride"), padding: int("padding"), dilation: int("dilation")))
        case "conv_transpose2d":
            let op = int("output_padding")
            return x!.convTranspose2d(v["w"]!, bias: v["b"], ConvGeometry(stride: int("stride"), padding: int("padding")),
                                      outputPadding: (op, op))
        case "max_pool2d": return x!.maxPool2d(kernel: int("kernel"), stride: int("stride"), padding: int("padding"))
        case "avg_pool2d":
            return x!.avgPool2d(kernel: int("kernel"), stride: int("stride"), padding: int("padding"),
                                countIncludePad: spec["count_include_pad"]!.boolValue!)
        case "adaptive_avg_pool2d": let s = ints("size"); return x!.adaptiveAvgPool2d(s[0], s[1])
        case "upsample": return x!.upsampleNearest(int("scale"))
        case "batch_norm":
            // Fresh copies: training updates the running statistics in place.
            return x!.batchNorm(runningMean: v["rm"]!.data.copy(), runningVar: v["rv"]!.data.copy(), weight: v["w"], bias: v["b"],
                                training: spec["training"]!.boolValue!)
        case "instance_norm": return x!.instanceNorm(weight: v["w"], bias: v["b"])
        case "adain": return x!.adaIN(gamma: v["gamma"]!, beta: v["beta"]!)
        default: fatalError("golden op \(op) has no engine counterpart in this test")
        }
    }

    func checkCases(_ fileName: String, rtol: Float) throws {
        let file = try Self.load(fileName)
        let cases = try JSONParser.parse(file.metadata["cases"]!).objectValue!
        XCTAssertGreaterThan(cases.count, 10)
        let arrays = ModelFile.floatArrays(file)
        for (name, spec) in cases {
            let diff = Set(spec["differentiable"]!.arrayValue!.map { $0.stringValue! })
            var vars: [String: Var] = [:]
            for input in spec["inputs"]!.arrayValue!.map({ $0.stringValue! }) {
                vars[input] = Var(arrays["\(name)/\(input)"]!, requiresGrad: diff.contains(input))
            }
            let out = apply(spec, vars)
            assertClose(out.data, arrays["\(name)/out"]!, rtol: rtol, "\(name) output")
            let order = diff.sorted()
            let grads = gradients(of: [out], wrt: order.map { vars[$0]! }, seeds: [Var(arrays["\(name)/seed"]!)])
            for (input, g) in zip(order, grads) {
                let expected = arrays["\(name)/grad.\(input)"]!
                assertClose(g?.data ?? .zeros(expected.shape), expected, rtol: rtol, "\(name) gradient of \(input)")
            }
        }
    }

    func testOps() throws { try checkCases("engine_ops.safetensors", rtol: 1e-5) }

    func testLayers() throws { try checkCases("engine_layers.safetensors", rtol: 1e-5) }

    func testBatchNormRunningStatistics() throws {
        let a = ModelFile.floatArrays(try Self.load("engine_layers.safetensors"))
        let rm = a["batch_norm_train/rm"]!.copy(), rv = a["batch_norm_train/rv"]!.copy()
        _ = Var(a["batch_norm_train/x"]!).batchNorm(runningMean: rm, runningVar: rv, weight: nil, bias: nil, training: true)
        assertClose(rm, a["batch_norm_train/rm_after"]!, rtol: 1e-5, "running mean")
        assertClose(rv, a["batch_norm_train/rv_after"]!, rtol: 1e-5, "running variance")
    }

    /// A small CNN built from the architecture JSON in the file's metadata, with PyTorch's weights:
    /// training-mode logits, loss, parameter gradients and running statistics; evaluation-mode logits;
    /// and the R1 penalty's gradients (double backward through the whole network).
    func testSmallCNN() throws {
        let file = try Self.load("engine_cnn.safetensors")
        let a = ModelFile.floatArrays(file)
        let arch = try JSONParser.parse(file.metadata["architecture"]!)
        let labels = Labels(file.tensors["y"]!)
        func makeNet() throws -> Module {
            let net = try ModelBuilder.build(arch)
            var weights: [String: NDArray] = [:]
            for (k, v) in a where k.hasPrefix("weights/") { weights[String(k.dropFirst(8))] = v }
            try net.loadStateDict(weights)
            return net
        }
        let x = Var(a["x"]!)

        let net = try makeNet()
        let logits = net(x)
        let loss = Loss.crossEntropy(logits, labels)
        assertClose(logits.data, a["train/logits"]!, rtol: 1e-5, "train logits")
        assertClose(loss.data.reshaped([1]), a["train/loss"]!, rtol: 1e-5, "train loss")
        loss.backward()
        for (name, p) in net.namedParameters() {
            assertClose(p.grad!.data, a["train/grad/\(name)"]!, rtol: 1e-4, "train gradient of \(name)")
        }
        for (name, b) in net.namedBuffers() {
            assertClose(b, a["train/after/\(name)"]!, rtol: 1e-5, "\(name) after the step")
        }

        let evalNet = try makeNet()
        evalNet.eval()
        assertClose(evalNet(x).data, a["eval/logits"]!, rtol: 1e-5, "eval logits")

        let xr = Var(a["x"]!, requiresGrad: true)
        let onehot = NDArray.zeros([4, 4])
        for (i, y) in labels.values.enumerated() { onehot.pointer[i * 4 + y] = 1 }
        let fy = (evalNet(xr) * Var(onehot)).sum()
        let gx = gradient(of: fy, wrt: xr, createGraph: true)!
        let r1 = gx.square().sum() * (0.5 / 4)
        assertClose(r1.data.reshaped([1]), a["r1/value"]!, rtol: 1e-5, "R1")
        let params = evalNet.namedParameters()
        let g2 = gradients(of: [r1], wrt: params.map(\.1) + [xr])
        for ((name, p), g) in zip(params + [("x", xr)], g2) {
            assertClose(g?.data ?? .zeros(p.shape), a["r1/grad/\(name)"]!, rtol: 1e-4, "R1 gradient of \(name)")
        }
    }

    /// A generator-like graph: instance norm, transposed convolution, upsampling, concatenation, a skip
    /// connection; loss gradients and the R1 penalty's (double backward) against PyTorch.
    func testGeneratorLikeGraph() throws {
        let file = try Self.load("engine_gan.safetensors")
        let a = ModelFile.floatArrays(file)
        let net = try ModelBuilder.build(try JSONParser.parse(file.metadata["architecture"]!))
        var weights: [String: NDArray] = [:]
        for (k, v) in a where k.hasPrefix("weights/") { weights[String(k.dropFirst(8))] = v }
        try net.loadStateDict(weights)
        let labels = Labels(file.tensors["y"]!)
        let xr = Var(a["x"]!, requiresGrad: true)
        let logits = net(xr)
        assertClose(logits.data, a["logits"]!, rtol: 1e-5, "logits")
        let params = net.namedParameters()
        let grads = gradients(of: [Loss.crossEntropy(logits, labels)], wrt: params.map(\.1))
        for ((name, _), g) in zip(params, grads) { assertClose(g!.data, a["grad/\(name)"]!, rtol: 1e-4, "gradient of \(name)") }
        let onehot = NDArray.zeros([3, 3])
        for (i, y) in labels.values.enumerated() { onehot.pointer[i * 3 + y] = 1 }
        let gx = gradient(of: (logits * Var(onehot)).sum(), wrt: xr, createGraph: true)!
        let r1 = gx.square().sum() * (0.5 / 3)
        assertClose(r1.data.reshaped([1]), a["r1/value"]!, rtol: 1e-5, "R1")
        let g2 = gradients(of: [r1], wrt: params.map(\.1) + [xr])
        for ((name, p), g) in zip(params + [("x", xr)], g2) {
            assertClose(g?.data ?? .zeros(p.shape), a["r1/grad/\(name)"]!, rtol: 1e-4, "R1 gradient of \(name)")
        }
    }
}
