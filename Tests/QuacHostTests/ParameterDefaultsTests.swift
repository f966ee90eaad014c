import Foundation
import XCTest
@testable import QuacHost

/// A plugin's parameter defaults live only in its manifest's schema: the host fills them in once
/// (`ResolvedPlugin`), and the built-in plugins read them without defaults of their own.
final class ParameterDefaultsTests: XCTestCase {
    /// Small sizes for the networks, so that creating them many times stays quick in a debug build.
    static let sizes: [String: JSONValue] = [
        "org.quac.cnn-classifier": ["input_shape": [1, 16, 16], "channels": [4, 8, 8, 8], "fc": [16, 16]],
        "org.quac.smat-explainer": ["input_shape": [1, 8, 8], "heads": ["a-method"]],
        "org.quac.stargan-converter": ["image_size": 8, "max_channels": 8, "style_dim": 8, "latent_dim": 4, "mapping_dim": 16],
    ]

    /// For every built-in and every parameter its schema gives a default: created with the resolved
    /// parameters it works; created with that one parameter left out (bypassing the resolver) it
    /// refuses, naming the parameter. So no plugin code falls back on a default of its own.
    func testEveryBuiltinReadsEachDefaultFromItsSchema() throws {
        let registry = PluginRegistry(searchPath: [TestSupport.builtinPlugins])
        let dir = try TestSupport.tempDir()
        let file = dir.appendingPathComponent("precomputed.safetensors")
        try Safetensors.write([("images", Inputs.uniform([2, 1, 8, 8], seed: 1)), ("counterfactuals", Inputs.uniform([2, 1, 8, 8], seed: 2))], to: file)
        let torchscriptModel = TestSupport.builtinPlugins.appendingPathComponent("org.quac.torchscript-classifier.check.pt")
        let required: [String: JSONValue] = ["org.quac.precomputed-converter": ["path": .string(file.path)],
                                             "org.quac.torchscript-classifier": ["model": .string(torchscriptModel.path), "input_shape": [1, 8, 8]]]
        // Built only where libtorch is installed (TorchScriptClassifierTests says so when it is absent).
        let torchscriptBuilt = FileManager.default.fileExists(atPath: TestSupport.productsDir.appendingPathComponent("libQuacTorchScript.so").path)
        let context = RunContext()
        let helper = try PluginInstance(manifest: try registry.manifest(id: "org.quac.mlp-classifier"), run: context)
        context.classifier = helper
        var checked = 0
        for entry in registry.entries {
            let m = try XCTUnwrap(entry.manifest)
            if m.id == "org.quac.torchscript-classifier", !torchscriptBuilt { continue }
            var given = Self.sizes[m.id]?.objectValue ?? JSONObject()
            for (k, v) in required[m.id]?.objectValue ?? JSONObject() { given[k] = v }
            let resolved = try ResolvedPlugin.resolve(m, params: .object(given), base: dir)
            XCTAssertNoThrow(try PluginInstance(resolved, run: context), m.id)
            let defaults = (m.parameters["properties"]?.objectValue ?? JSONObject()).filter { $0.value["default"] != nil }.map(\.key)
            for key in defaults where given[key] == nil {
                var params = resolved.parameters.objectValue!
                params[key] = nil
                let stripped = ResolvedPlugin(manifest: m, name: m.id, parameters: .object(params), source: "test")
                XCTAssertThrowsError(try PluginInstance(stripped, run: context), "\(m.id) works without \"\(key)\": it has a default in code") { e in
                    XCTAssertTrue("\(e)".contains("\"\(key)\""), "\(m.id): \(e)")
                }
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 60)
    }

    /// Occlusion's schema says an absent stride is the window: also for a window of [h, w].
    func testOcclusionStrideDefaultsToTheWindow() throws {
        let registry = PluginRegistry(searchPath: [TestSupport.builtinPlugins])
        let context = RunContext()
        let classifier = try PluginInstance(manifest: try registry.manifest(id: "org.quac.mlp-classifier"),
                                            params: ["input_shape": [1, 12, 12], "hidden": 8, "seed": 3], run: context)
        context.classifier = classifier
        let occlusion = try registry.manifest(id: "org.quac.occlusion")
        let batch = BatchInputs(x: Inputs.uniform([3, 1, 12, 12], seed: 4), source: Tensor([0, 1, 0] as [Int64], shape: [3]))
        func attribution(_ params: JSONValue) throws -> Tensor {
            try PluginInstance(manifest: occlusion, params: params, run: context).attribute(batch).tensors["attribution"]!
        }
        let implicit = try attribution(["window": [2, 3]])
        XCTAssertTrue(implicit.bitwiseEqual(try attribution(["window": [2, 3], "stride": [2, 3]])))
        XCTAssertFalse(implicit.bitwiseEqual(try attribution(["window": [2, 3], "stride": 4])))
    }
}
