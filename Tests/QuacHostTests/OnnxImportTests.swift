import Foundation
import XCTest
@testable import QuacHost

/// `quac-host import MODEL.onnx`: QuAC's VGG, a small ResNet and a U-Net-like net exported by
/// torch.onnx.export at opsets 11 and 17 (Fixtures/interop, scripts/golden/interop_golden.py) become
/// model files org.quac.cnn-classifier runs ({"preset": "file"}); its logits and D-IG are compared with
/// PyTorch's and Captum's on the PyTorch model.
final class OnnxImportTests: XCTestCase {
    static let fixtures = TestSupport.repoRoot.appendingPathComponent("Tests/QuacHostTests/Fixtures/interop")

    func golden() throws -> SafetensorsFile { try Safetensors.read(Self.fixtures.appendingPathComponent("golden.safetensors")) }

    func maxAbsDifference(_ a: Tensor, _ b: Tensor) -> Float {
        XCTAssertEqual(a.shape, b.shape)
        return zip(a.floatArray(), b.floatArray()).map { abs($0 - $1) }.max() ?? .infinity
    }

    func testImportedNetworksMatchPyTorchAndCaptum() throws {
        let g = try golden()
        let dir = try TestSupport.tempDir()
        var report: [String] = []
        for net in ["vgg", "resnet", "unet"] {
            for opset in [11, 17] {
                let file = Self.fixtures.appendingPathComponent("\(net)_opset\(opset).onnx")
                let out = dir.appendingPathComponent("\(net)-\(opset).safetensors")
                let r = try TestSupport.quacHost(["import", file.path, "--output", out.path])
                XCTAssertEqual(r.status, 0, "\(net) opset \(opset): \(r.stderr)")
                XCTAssertTrue(r.stdout.contains("input_shape [1, 32, 32], 3 classes"), r.stdout)
                let clf = try TestSupport.builtin("org.quac.cnn-classifier", ["preset": "file", "weights": .string(out.path)])
                let logitErr = maxAbsDifference(try clf.forward(g.tensors["x"]!), g.tensors["\(net)_logits"]!)
                XCTAssertLessThanOrEqual(logitErr, 1e-5, "\(net) opset \(opset): logits vs PyTorch")
                let run = RunContext()
                run.classifier = clf
                let dig = try TestSupport.builtin("org.quac.d-integrated-gradients", [:], run: run)
                let maps = try dig.attribute(BatchInputs(x: g.tensors["x"]!, source: g.tensors["labels"]!, target: g.tensors["target"]!,
                                                         xCF: g.tensors["x_cf"]!, seed: 0))
                let expected = g.tensors["\(net)_dig"]!
                XCTAssertGreaterThan(expected.floatArray().map(abs).max() ?? 0, 1e-3)
                let digErr = maxAbsDifference(try XCTUnwrap(maps.tensors["attribution"]), expected)
                XCTAssertLessThanOrEqual(digErr, 1e-4, "\(net) opset \(opset): D-IG vs Captum")
                report.append(String(format: "%@ opset %d: logits %.2e, D-IG %.2e", net, opset, logitErr, digErr))
            }
        }
        print("OnnxImportTests max abs errors vs PyTorch/Captum:\n  " + report.joined(separator: "\n  "))
    }

    /// The ONNX door keeps the engine's DeepLift rules: D-DeepLift on the imported VGG equals the
    /// rescale rule (with Captum's max-pooling rule) applied to the PyTorch VGG in float64.
    func testDeepLiftOnTheImportedVGGEqualsTheRescaleRule() throws {
        let g = try golden()
        let dir = try TestSupport.tempDir()
        let out = dir.appendingPathComponent("vgg.safetensors")
        let r = try TestSupport.quacHost(["import", Self.fixtures.appendingPathComponent("vgg_opset17.onnx").path, "--output", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let run = RunContext()
        run.classifier = try TestSupport.builtin("org.quac.cnn-classifier", ["preset": "file", "weights": .string(out.path)])
        let dl = try TestSupport.builtin("org.quac.d-deeplift", [:], run: run)
        let maps = try dl.attribute(BatchInputs(x: g.tensors["x"]!, source: g.tensors["labels"]!, target: g.tensors["target"]!,
                                                xCF: g.tensors["x_cf"]!, seed: 0))
        let expected = g.tensors["vgg_deeplift"]!
        XCTAssertGreaterThan(expected.floatArray().map(abs).max() ?? 0, 0.1)
        let err = maxAbsDifference(try XCTUnwrap(maps.tensors["attribution"]), expected)
        XCTAssertLessThanOrEqual(err, 1e-4, "D-DeepLift vs the rescale rule on the PyTorch model")
        print(String(format: "OnnxImportTests: D-DeepLift on the imported VGG, max abs error vs the PyTorch reference %.2e", err))
    }

    /// The VGG's chains of layers are grouped into sequentials (so convolution, batch norm and ReLU
    /// fuse as in the engine's own VGG), and the model file records what it was made for.
    func testModelFileRecordsItsNetwork() throws {
        let dir = try TestSupport.tempDir()
        let out = dir.appendingPathComponent("vgg.safetensors")
        let r = try TestSupport.quacHost(["import", Self.fixtures.appendingPathComponent("vgg_opset17.onnx").path, "--output", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let file = try Safetensors.read(out)
        let arch = try JSONParser.parse(try XCTUnwrap(file.metadata["architecture"]))
        XCTAssertEqual(arch["type"], "graph")
        XCTAssertEqual(arch["input_shape"], [1, 32, 32])
        XCTAssertEqual(arch["num_classes"], 3)
        let nodes = try XCTUnwrap(arch["nodes"]?.arrayValue)
        // conv-relu-conv-relu-pool-conv-relu-conv-relu-pool, flatten, gemm-relu-gemm-relu-gemm: one chain.
        XCTAssertEqual(nodes.count, 1, arch.serialized())
        XCTAssertEqual(nodes[0]["layer"]?["layers"]?.arrayValue?.count, 16, arch.serialized())
    }

    func testUnsupportedOperatorExitsOneNamingTheNodeAndWritesNothing() throws {
        let dir = try TestSupport.tempDir()
        let out = dir.appendingPathComponent("model.safetensors")
        let r = try TestSupport.quacHost(["import", Self.fixtures.appendingPathComponent("unsupported.onnx").path, "--output", out.path])
        XCTAssertEqual(r.status, 1, r.stderr)
        let lines = r.stderr.split(separator: "\n").filter { !$0.isEmpty }
        XCTAssertEqual(lines.count, 1, r.stderr)
        for part in ["unsupported.onnx", "node \"/Erf\" (Erf)", "supported operators:", "ConvTranspose"] {
            XCTAssertTrue(r.stderr.contains(part), "\(part) in \(r.stderr)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
    }

    func testAFileThatIsNotONNXExitsOneNamingIt() throws {
        let dir = try TestSupport.tempDir()
        let bad = dir.appendingPathComponent("model.onnx")
        try Data("definitely not protobuf \u{1}\u{2}\u{3}".utf8).write(to: bad)
        let out = dir.appendingPathComponent("out.safetensors")
        let r = try TestSupport.quacHost(["import", bad.path, "--output", out.path])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains(bad.path), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
    }
}
