import Foundation
import XCTest
import QuacPluginAPI
@testable import QuacHost

/// The classifier layers extension (quac.classifier.layers/1) of org.quac.cnn-classifier and the layer
/// attributors org.quac.grad-cam and org.quac.layer-integrated-gradients, through the host, against
/// PyTorch hooks and Captum on the same weights and inputs (Fixtures/layer-golden, written by
/// scripts/golden/layer_golden.py): a graph CNN (features / flatten / classifier, batch norm in
/// evaluation mode) for [2, 9, 9] inputs, whose 4x4 maps of features.5 are resized by 9/4.
///
/// Tolerances. The goldens are PyTorch's float64 results on float32 weights and inputs, so the only
/// error left is the host's float32 arithmetic; rerunning the same computations in PyTorch's float32
/// differs from them by at most 2.4e-7 (3.4e-7 of a map's peak), and the generator checks that no
/// ReLU input or max-pooling choice sits close enough to a tie for float32 to flip it.
/// - layer tensors (activations, gradients, logits): 1e-5 absolute, relative to the largest value
///   where that exceeds 1 (`tolerance(scale)`), 40x the float32 error seen;
/// - maps (Grad-CAM, layer IG): 1e-5 absolute and at most 1e-3 of the map's peak (Grad-CAM maps of
///   the first ReLU peak at 0.009, where 1e-5 alone would be a loose check), still 40x the float32
///   error seen. Layer IG needs nothing looser: its 20 path points are the same Gauss-Legendre nodes
///   and weights as Captum's, accumulated in double, so it adds no approximation of its own;
/// - convergence deltas: 1e-5 absolute (float32 reruns differ by 1e-7; the deltas are about 1e-2).
final class LayerAttributionTests: XCTestCase {
    static let fixtures = TestSupport.repoRoot.appendingPathComponent("Tests/QuacHostTests/Fixtures/layer-golden")
    static let layerNames = ["features.2", "features.5"]
    static let ligSteps = 20

    /// 1e-5, relative when the values exceed 1.
    static func tolerance(_ scale: Float) -> Float { 1e-5 * max(1, scale) }
    /// 1e-5, and no more than 1e-3 of the map's peak.
    static func mapTolerance(_ scale: Float) -> Float { min(1e-5, 1e-3 * scale) }

    var registry: PluginRegistry { PluginRegistry(searchPath: [TestSupport.builtinPlugins]) }

    func instance(_ id: String, _ params: JSONValue = [:], run: RunContext? = nil) throws -> PluginInstance {
        try TestSupport.builtin(id, params, run: run)
    }

    struct Golden {
        let file: SafetensorsFile
        subscript(_ name: String) -> Tensor { file.tensors[name]! }
        var x: Tensor { self["x"] }
        var labels: Tensor { self["labels"] }
        var n: Int { x.shape[0] }
        var classes: Int { self["logits"].shape[1] }
    }

    func golden() throws -> Golden {
        Golden(file: try Safetensors.read(Self.fixtures.appendingPathComponent("golden.safetensors")))
    }

    /// The golden CNN as org.quac.cnn-classifier (its "architecture" parameter and its weights file),
    /// and a run whose classifier it is.
    func goldenRun(_ g: Golden) throws -> (PluginInstance, RunContext) {
        let arch = try JSONParser.parse(try XCTUnwrap(g.file.metadata["architecture"]))
        let shape = g.x.shape.dropFirst().map { JSONValue.int(Int64($0)) }
        let clf = try instance("org.quac.cnn-classifier", [
            "architecture": arch, "input_shape": .array(shape), "num_classes": .int(Int64(g.classes)),
            "weights": .string(Self.fixtures.appendingPathComponent("cnn.safetensors").path)])
        let run = RunContext()
        run.classifier = clf
        return (clf, run)
    }

    func attribute(_ id: String, _ params: JSONValue, _ g: Golden, run: RunContext) throws -> PluginOutputs {
        try instance(id, params, run: run).attribute(BatchInputs(x: g.x, source: g.labels))
    }

    func maxAbs(_ t: Tensor) -> Float { t.floatArray().map(abs).max() ?? 0 }

    func maxAbsDifference(_ a: Tensor, _ b: Tensor) -> Float {
        XCTAssertEqual(a.shape, b.shape)
        guard a.shape == b.shape else { return .infinity }
        return zip(a.floatArray(), b.floatArray()).map { abs($0 - $1) }.max() ?? 0
    }

    /// Compares a layer tensor with its golden within `tolerance`.
    func assertMatches(_ actual: Tensor, _ g: Golden, _ key: String, file: StaticString = #filePath, line: UInt = #line) {
        let expected = g[key]
        XCTAssertGreaterThan(maxAbs(expected), 1e-3, "\(key): a golden of zeros would make the check empty", file: file, line: line)
        let err = maxAbsDifference(actual, expected)
        XCTAssertLessThanOrEqual(err, Self.tolerance(maxAbs(expected)), "\(key): max abs error", file: file, line: line)
    }

    /// The largest difference between every input channel of an attribution [N, C, H, W] and Captum's
    /// one-channel map [N, 1, H, W] (the layer map is repeated over the input's channels).
    func mapError(_ a: Tensor, _ map: Tensor) -> Float {
        XCTAssertEqual(a.rank, 4)
        guard a.rank == 4 else { return .infinity }
        let (n, c, hw) = (a.shape[0], a.shape[1], a.shape[2] * a.shape[3])
        XCTAssertEqual(map.shape, [n, 1, a.shape[2], a.shape[3]])
        guard map.shape == [n, 1, a.shape[2], a.shape[3]] else { return .infinity }
        let av = a.floatArray(), mv = map.floatArray()
        var worst: Float = 0
        for s in 0..<n {
            for ch in 0..<c {
                for i in 0..<hw { worst = max(worst, abs(av[(s * c + ch) * hw + i] - mv[s * hw + i])) }
            }
        }
        return worst
    }

    /// An attributor's map against Captum's within `mapTolerance`; returns the error for the report.
    @discardableResult
    func assertMapMatches(_ out: PluginOutputs, _ g: Golden, _ key: String, file: StaticString = #filePath, line: UInt = #line) throws -> Float {
        let a = try XCTUnwrap(out.tensors["attribution"], file: file, line: line)
        XCTAssertEqual(a.shape, g.x.shape, "\(key): the attribution is shaped like x", file: file, line: line)
        let expected = g[key]
        let scale = maxAbs(expected)
        XCTAssertGreaterThan(scale, 1e-3, "\(key): a golden of zeros would make the check empty", file: file, line: line)
        let err = mapError(a, expected)
        XCTAssertLessThanOrEqual(err, Self.mapTolerance(scale), "\(key): max abs error (peak \(scale))", file: file, line: line)
        return err
    }

    // MARK: The layer list

    func testTheCNNListsItsModulesWithTheirShapes() throws {
        let g = try golden()
        let (clf, run) = try goldenRun(g)
        XCTAssertTrue(try clf.info().hasLayers)
        let layers = try XCTUnwrap(run.classifier).layers()
        // PyTorch's module paths, children before their parent, with per-sample output shapes.
        let listed = try XCTUnwrap(JSONParser.parse(try XCTUnwrap(g.file.metadata["layers"])).arrayValue)
        let expected: [ClassifierLayer] = try listed.map { item in
            let name = try XCTUnwrap(item["name"]?.stringValue)
            let dims = try XCTUnwrap(item["shape"]?.arrayValue).compactMap(\.intValue).map { Int($0) }
            return ClassifierLayer(name: name, shape: dims)
        }
        XCTAssertEqual(expected.count, 12)
        XCTAssertEqual(layers.layers, expected)
        let byName = Dictionary(uniqueKeysWithValues: layers.layers.map { ($0.name, $0.shape) })
        XCTAssertEqual(byName["features.2"], [4, 9, 9])
        XCTAssertEqual(byName["features.5"], [6, 4, 4])
        XCTAssertEqual(byName["features"], [6, 4, 4])
        XCTAssertEqual(byName["flatten"], [96])
        XCTAssertEqual(byName["classifier.2"], [3])
        XCTAssertEqual(Array(layers.layers.map(\.name).prefix(3)), ["features.0", "features.1", "features.2"])
        XCTAssertEqual(layers.layers.last?.name, "classifier")
    }

    // MARK: forward / vjp_input / vjp_logits against PyTorch hooks

    func testLayerCallsMatchPyTorchHooks() throws {
        let g = try golden()
        let (clf, run) = try goldenRun(g)
        let layers = try XCTUnwrap(run.classifier).layers()
        let plainLogits = try clf.forward(g.x)
        assertMatches(plainLogits, g, "logits")
        for name in Self.layerNames {
            let (activations, logits) = try layers.forward(name, x: g.x)
            assertMatches(activations, g, "act.\(name)")
            assertMatches(logits, g, "logits")
            // A hook changes no value: the logits of the hooked pass are the plain forward's, up to the
            // rounding of layers fused only when nothing hooks them.
            XCTAssertLessThanOrEqual(maxAbsDifference(logits, plainLogits), 1e-5, "\(name): hooked vs plain forward")

            let gradX = try layers.vjpInput(name, x: g.x, gradActivations: g["g_act.\(name)"])
            assertMatches(gradX, g, "vjp_input.\(name)")

            // The layer's own activations (nil), and the same values passed in.
            let own = try layers.vjpLogits(name, x: g.x, activations: nil, gradLogits: g["g_logits"])
            assertMatches(own.gradActivations, g, "vjp_logits_own.\(name)")
            assertMatches(own.logits, g, "logits")
            XCTAssertLessThanOrEqual(maxAbsDifference(own.logits, logits), 1e-6,
                                     "\(name): vjp_logits with the layer's own activations gives forward's logits")
            let passed = try layers.vjpLogits(name, x: g.x, activations: activations, gradLogits: g["g_logits"])
            XCTAssertLessThanOrEqual(maxAbsDifference(passed.gradActivations, own.gradActivations), 1e-6, name)
            XCTAssertLessThanOrEqual(maxAbsDifference(passed.logits, own.logits), 1e-6, name)

            // Replaced activations: the pass continues from A'.
            let replaced = try layers.vjpLogits(name, x: g.x, activations: g["repl_act.\(name)"], gradLogits: g["g_logits"])
            assertMatches(replaced.gradActivations, g, "vjp_logits_repl.\(name)")
            assertMatches(replaced.logits, g, "repl_logits.\(name)")
            XCTAssertGreaterThan(maxAbsDifference(replaced.logits, logits), 1e-2, "\(name): A' changes the logits")
        }
    }

    // MARK: Grad-CAM and layer Integrated Gradients against Captum

    func testGradCAMMatchesCaptum() throws {
        let g = try golden()
        let (_, run) = try goldenRun(g)
        let cases: [(JSONValue, String)] = [
            (["layer": "features.2"], "gradcam.features.2.nearest"),
            (["layer": "features.5"], "gradcam.features.5.nearest"),
            (["layer": "features.5", "interpolate_mode": "bilinear"], "gradcam.features.5.bilinear"),
            (["layer": "features.5", "relu_attributions": true], "gradcam.features.5.relu"),
            // "auto": the last layer with a [C, H, W] output, the container "features" (features.5's values).
            ([:], "gradcam.features.5.nearest"),
        ]
        var report: [String] = []
        for (params, key) in cases {
            let out = try attribute("org.quac.grad-cam", params, g, run: run)
            let err = try assertMapMatches(out, g, key)
            let layer = out.json?["layer"]?.stringValue
            XCTAssertEqual(layer, params["layer"]?.stringValue ?? "features", "\(params.serialized()): the JSON names the layer")
            report.append(String(format: "grad-cam %@ vs %@: max abs error %.2e", params.serialized(), key, err))
        }
        // The ReLU variant differs (the fixture's map has negative values), and is the plain map's positive part.
        let plain = try XCTUnwrap(attribute("org.quac.grad-cam", ["layer": "features.5"], g, run: run).tensors["attribution"])
        let relu = try XCTUnwrap(attribute("org.quac.grad-cam", ["layer": "features.5", "relu_attributions": true], g, run: run).tensors["attribution"])
        XCTAssertLessThan(plain.floatArray().min() ?? 0, 0)
        XCTAssertEqual(relu.floatArray(), plain.floatArray().map { max($0, 0) })
        print("LayerAttributionTests vs Captum \(g.file.metadata["captum"] ?? "?"):\n  " + report.joined(separator: "\n  "))
    }

    func testLayerIntegratedGradientsMatchesCaptum() throws {
        let g = try golden()
        let (_, run) = try goldenRun(g)
        let steps = JSONValue.int(Int64(Self.ligSteps))
        let cases: [(JSONValue, String, String)] = [
            (["layer": "features.2", "n_steps": steps], "lig.features.2.nearest", "lig.features.2.delta"),
            (["layer": "features.5", "n_steps": steps], "lig.features.5.nearest", "lig.features.5.delta"),
            (["layer": "features.5", "n_steps": steps, "interpolate_mode": "bilinear"], "lig.features.5.bilinear", "lig.features.5.delta"),
            (["n_steps": steps, "method": "gausslegendre"], "lig.features.5.nearest", "lig.features.5.delta"),   // auto: "features"
        ]
        var report: [String] = []
        for (params, key, deltaKey) in cases {
            let out = try attribute("org.quac.layer-integrated-gradients", params, g, run: run)
            let err = try assertMapMatches(out, g, key)
            XCTAssertEqual(out.json?["layer"]?.stringValue, params["layer"]?.stringValue ?? "features")
            let deltas = try XCTUnwrap(out.json?["convergence_delta"]?.arrayValue).map { try XCTUnwrap($0.doubleValue) }
            let captum = g[deltaKey].floatArray()
            XCTAssertEqual(deltas.count, g.n)
            let deltaErr = zip(deltas, captum).map { abs($0 - Double($1)) }.max() ?? .infinity
            XCTAssertLessThanOrEqual(deltaErr, 1e-5, "\(params.serialized()): convergence delta vs Captum's \(deltaKey) \(captum)")
            report.append(String(format: "layer IG %@ vs %@: max abs error %.2e, delta error %.2e", params.serialized(), key, err, deltaErr))
        }
        print("LayerAttributionTests vs Captum \(g.file.metadata["captum"] ?? "?"):\n  " + report.joined(separator: "\n  "))
    }

    // MARK: Bad input

    func testUnknownLayersAndLayersWithoutAMapAreRefusedByName() throws {
        let g = try golden()
        let (clf, run) = try goldenRun(g)
        let layers = try clf.layers()
        // The host's checks name the layer and list the real ones.
        let calls: [() throws -> Void] = [
            { _ = try layers.forward("features.9", x: g.x) },
            { _ = try layers.vjpInput("features.9", x: g.x, gradActivations: g["g_act.features.5"]) },
            { _ = try layers.vjpLogits("features.9", x: g.x, activations: nil, gradLogits: g["g_logits"]) },
        ]
        for call in calls {
            XCTAssertThrowsError(try call()) { error in
                XCTAssertTrue("\(error)".contains("\"features.9\""), "\(error)")
                XCTAssertTrue("\(error)".contains("features.5"), "the message lists the layers: \(error)")
            }
        }
        // The plugin checks too (a caller that skips the host's checks).
        let raw = try XCTUnwrap(clf.rawLayers())
        XCTAssertThrowsError(try raw.forward("features.9", x: g.x)) { XCTAssertTrue("\($0)".contains("\"features.9\""), "\($0)") }
        XCTAssertThrowsError(try raw.forward("", x: g.x)) { XCTAssertTrue("\($0)".contains("no layer"), "\($0)") }

        // Shapes: activations or gradients of another layer's shape are refused before the plugin sees them.
        XCTAssertThrowsError(try layers.vjpLogits("features.2", x: g.x, activations: g["act.features.5"], gradLogits: g["g_logits"])) {
            XCTAssertTrue("\($0)".contains("activations"), "\($0)")
        }
        XCTAssertThrowsError(try layers.vjpInput("features.2", x: g.x, gradActivations: g["g_act.features.5"])) {
            XCTAssertTrue("\($0)".contains("grad_activations"), "\($0)")
        }
        XCTAssertThrowsError(try layers.vjpLogits("features.2", x: g.x, activations: nil, gradLogits: g["g_act.features.2"])) {
            XCTAssertTrue("\($0)".contains("grad_logits"), "\($0)")
        }

        for id in ["org.quac.grad-cam", "org.quac.layer-integrated-gradients"] {
            // An unknown layer: the attributor names it.
            XCTAssertThrowsError(try attribute(id, ["layer": "features.9"], g, run: run)) { error in
                XCTAssertTrue("\(error)".contains("\"features.9\""), "\(id): \(error)")
            }
            // A layer without a [C, H, W] output (the last linear layer, [3]; flatten, [96]).
            for layer in ["classifier.2", "flatten"] {
                XCTAssertThrowsError(try attribute(id, ["layer": .string(layer)], g, run: run)) { error in
                    XCTAssertTrue("\(error)".contains("\"\(layer)\""), "\(id): \(error)")
                    XCTAssertTrue("\(error)".contains("[C, H, W]"), "\(id): \(error)")
                }
            }
            // A layer map needs images [N, C, H, W] and the source labels.
            XCTAssertThrowsError(try instance(id, [:], run: run).attribute(BatchInputs(x: g.x)))
        }
        XCTAssertThrowsError(try instance("org.quac.grad-cam", ["interpolate_mode": "bicubic"], run: run))
    }

    func testAClassifierWithoutLayersIsNamed() throws {
        // The attribution goldens' MLP (org.quac.mlp-classifier) does not offer the extension.
        let mlpFixtures = TestSupport.repoRoot.appendingPathComponent("Tests/QuacHostTests/Fixtures/attribution-golden")
        let mlp = try instance("org.quac.mlp-classifier", [
            "input_shape": [1, 8, 8], "hidden": 16, "num_classes": 3,
            "weights": .string(mlpFixtures.appendingPathComponent("mlp.safetensors").path)])
        let run = RunContext()
        run.classifier = mlp
        XCTAssertFalse(try mlp.info().hasLayers)
        XCTAssertNil(mlp.rawLayers())
        XCTAssertThrowsError(try XCTUnwrap(run.classifier).layers()) { error in
            XCTAssertTrue("\(error)".contains(QUAC_EXT_CLASSIFIER_LAYERS), "\(error)")
            XCTAssertTrue("\(error)".contains("quac.classifier.layers/1"), "\(error)")
        }
        let x = Tensor((0..<(2 * 64)).map { Float($0 % 7) / 7 - 0.5 }, shape: [2, 1, 8, 8])
        let labels = Tensor([Int64(0), 1], shape: [2])
        for id in ["org.quac.grad-cam", "org.quac.layer-integrated-gradients"] {
            XCTAssertThrowsError(try instance(id, [:], run: run).attribute(BatchInputs(x: x, source: labels))) { error in
                XCTAssertTrue("\(error)".contains("quac.classifier.layers/1"), "\(id): \(error)")
            }
        }
        // A run without a classifier says so too.
        XCTAssertThrowsError(try instance("org.quac.grad-cam", [:], run: RunContext()).attribute(BatchInputs(x: x, source: labels)))
    }
}
