import Foundation
import XCTest
@testable import QuacHost

/// org.quac.torchscript-classifier (C++ on libtorch, through the C ABI) against PyTorch and Captum on
/// QuAC's VGG, scripted and traced (Fixtures/interop, written by scripts/golden/interop_golden.py).
/// Skipped, saying so, where libtorch is not installed and the plugin was not built.
final class TorchScriptClassifierTests: XCTestCase {
    static let fixtures = TestSupport.repoRoot.appendingPathComponent("Tests/QuacHostTests/Fixtures/interop")
    static let id = "org.quac.torchscript-classifier"

    func requirePlugin() throws {
        let lib = TestSupport.productsDir.appendingPathComponent("libQuacTorchScript.so")
        guard FileManager.default.fileExists(atPath: lib.path) else {
            throw XCTSkip("org.quac.torchscript-classifier is absent: libtorch is not installed (scripts/setup.sh installs libtorch-dev; make build builds the plugin)")
        }
    }

    func golden() throws -> SafetensorsFile { try Safetensors.read(Self.fixtures.appendingPathComponent("golden.safetensors")) }

    func model(_ name: String) -> String { Self.fixtures.appendingPathComponent(name).path }

    func classifier(_ file: String, shape: [Int] = [1, 32, 32]) throws -> PluginInstance {
        try TestSupport.builtin(Self.id, ["model": .string(model(file)), "input_shape": .array(shape.map { .int(Int64($0)) })])
    }

    func maxAbsDifference(_ a: Tensor, _ b: Tensor) -> Float {
        XCTAssertEqual(a.shape, b.shape)
        return zip(a.floatArray(), b.floatArray()).map { abs($0 - $1) }.max() ?? .infinity
    }

    func testLogitsAndVJPEqualPyTorchsForScriptedAndTracedVGG() throws {
        try requirePlugin()
        let g = try golden()
        let x = g.tensors["x"]!, gl = g.tensors["ts_grad_logits"]!
        for file in ["vgg_scripted.pt", "vgg_traced.pt"] {
            let clf = try classifier(file)
            let info = try clf.info()
            XCTAssertEqual(info.numClasses, 3, file)
            XCTAssertEqual(info.sampleShape, [1, 32, 32], file)
            XCTAssertTrue(info.hasVJP, file)
            XCTAssertFalse(info.hasModifiedBackward, file)
            let logits = try clf.forward(x)
            let logitErr = maxAbsDifference(logits, g.tensors["ts_logits"]!)
            XCTAssertLessThanOrEqual(logitErr, 1e-6, "\(file): logits vs PyTorch")
            let (vjpLogits, gradX) = try clf.vjp(x, gradLogits: gl, wantLogits: true)
            let vjpErr = maxAbsDifference(gradX, g.tensors["ts_vjp"]!)
            XCTAssertLessThanOrEqual(vjpErr, 1e-6, "\(file): VJP vs torch.autograd.grad")
            XCTAssertLessThanOrEqual(maxAbsDifference(try XCTUnwrap(vjpLogits), g.tensors["ts_logits"]!), 1e-6, file)
            // The golden gradient is not trivially small.
            XCTAssertGreaterThan(g.tensors["ts_vjp"]!.floatArray().map(abs).max() ?? 0, 1e-3)
            print(String(format: "TorchScript %@: logits max abs error %.2e, VJP %.2e", file, logitErr, vjpErr))
        }
    }

    func testDIGThroughThePluginEqualsCaptums() throws {
        try requirePlugin()
        let g = try golden()
        for file in ["vgg_scripted.pt", "vgg_traced.pt"] {
            let run = RunContext()
            run.classifier = try classifier(file)
            let dig = try TestSupport.builtin("org.quac.d-integrated-gradients", [:], run: run)
            let out = try dig.attribute(BatchInputs(x: g.tensors["x"]!, source: g.tensors["labels"]!, target: g.tensors["target"]!,
                                                    xCF: g.tensors["x_cf"]!, seed: 0))
            let expected = g.tensors["ts_dig"]!
            XCTAssertGreaterThan(expected.floatArray().map(abs).max() ?? 0, 0.05)
            let err = maxAbsDifference(try XCTUnwrap(out.tensors["attribution"]), expected)
            XCTAssertLessThanOrEqual(err, 1e-5, "\(file): D-IG vs Captum")
            print(String(format: "TorchScript %@: D-IG max abs error vs Captum %.2e", file, err))
        }
    }

    func testPassesTheConformanceCheck() throws {
        try requirePlugin()
        let params = "{\"model\": \"\(model("vgg_traced.pt"))\", \"input_shape\": [1, 32, 32]}"
        let r = try TestSupport.quacHost(["plugins", "check", Self.id, "--params", params])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
    }

    /// DeepLift needs modified backward rules the plugin does not have: refused, naming the extension.
    func testDeepLiftIsRefusedNamingTheMissingExtension() throws {
        try requirePlugin()
        let g = try golden()
        let run = RunContext()
        run.classifier = try classifier("vgg_scripted.pt")
        XCTAssertThrowsError(try {
            let dl = try TestSupport.builtin("org.quac.d-deeplift", [:], run: run)
            _ = try dl.attribute(BatchInputs(x: g.tensors["x"]!, source: g.tensors["labels"]!, target: g.tensors["target"]!,
                                             xCF: g.tensors["x_cf"]!, seed: 0))
        }()) { error in
            XCTAssertTrue("\(error)".contains("modified-backward"), "\(error)")
        }
    }

    /// A corrupt file and an input shape the network cannot take stop a run with exit 1 and one line
    /// naming the model file, before any batch runs.
    func testCorruptFileAndWrongShapeExitOneNamingTheFile() throws {
        try requirePlugin()
        let dir = try TestSupport.tempDir()
        let g = try golden()
        try Safetensors.write([("images", g.tensors["x"]!), ("labels", g.tensors["labels"]!)], to: dir.appendingPathComponent("data.safetensors"))
        let corrupt = dir.appendingPathComponent("corrupt.pt")
        var bytes = try Data(contentsOf: URL(fileURLWithPath: model("vgg_scripted.pt")))
        bytes.replaceSubrange(100..<4000, with: Data(repeating: 0x5A, count: 3900))
        try bytes.write(to: corrupt)
        for (file, shape, expected) in [(corrupt.path, [1, 32, 32], "not a TorchScript file"),
                                        (model("vgg_scripted.pt"), [1, 28, 28], "input_shape [1, 28, 28]")] {
            let out = dir.appendingPathComponent("out-\(shape[1])")
            let manifest = try TestSupport.writeManifest(dir, [
                "name": "ts", "output": .string(out.path),
                "data": ["format": "safetensors", "path": "data.safetensors", "x": "images", "label": "labels"],
                "classifier": ["plugin": .string(Self.id), "params": ["model": .string(file), "input_shape": .array(shape.map { .int(Int64($0)) })]],
                "attributors": [["plugin": "org.quac.saliency", "name": "saliency"]],
            ], name: "pipeline-\(shape[1]).json")
            let r = try TestSupport.quacHost(["run", "-q", manifest.path])
            XCTAssertEqual(r.status, 1, r.stderr)
            let lines = r.stderr.split(separator: "\n").filter { !$0.isEmpty }
            XCTAssertTrue(lines.contains { $0.contains(file) && $0.contains(expected) }, r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("attributions/saliency.safetensors").path))
        }
    }
}
