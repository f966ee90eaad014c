import Foundation
import XCTest
@testable import QuacHost

/// Shapley value sampling and feature ablation against Captum (Fixtures/shapley-golden, written by
/// scripts/golden/shapley_golden.py), and the efficiency axiom of sampled Shapley values.
final class ShapleyAblationTests: XCTestCase {
    static let golden = TestSupport.repoRoot.appendingPathComponent("Tests/QuacHostTests/Fixtures/shapley-golden/golden.safetensors")
    /// 7x7 inputs with 4x4 superpixels: the right and bottom ones are cut by the edge.
    static let edgeGolden = TestSupport.repoRoot.appendingPathComponent("Tests/QuacHostTests/Fixtures/shapley-golden/golden-edge.safetensors")
    /// 6x6 inputs grouped by an irregular mask given as a file ("sample_mask": diagonal stripes on
    /// channel 0, two halves on channel 1).
    static let maskGolden = TestSupport.repoRoot.appendingPathComponent("Tests/QuacHostTests/Fixtures/shapley-golden/golden-mask.safetensors")

    /// The golden MLP as the run's classifier, and a way to run an attributor on the golden inputs.
    func setUpRun(_ file: URL = golden) throws -> (RunContext, SafetensorsFile, PluginRegistry) {
        let g = try Safetensors.read(file)
        let side = g.tensors["x"]!.shape[3]
        let registry = PluginRegistry(searchPath: [TestSupport.builtinPlugins])
        let run = RunContext()
        run.classifier = try PluginInstance(manifest: try registry.manifest(id: "org.quac.mlp-classifier"),
                                            params: ["input_shape": [2, .int(Int64(side)), .int(Int64(side))], "hidden": 7, "num_classes": 3, "weights": .string(file.path)], run: run)
        return (run, g, registry)
    }

    func attribution(_ id: String, _ params: JSONValue, _ run: RunContext, _ g: SafetensorsFile, registry: PluginRegistry, seed: UInt64 = 1) throws -> Tensor {
        let p = try PluginInstance(manifest: try registry.manifest(id: id), params: params, run: run)
        let batch = BatchInputs(x: g.tensors["x"]!, source: g.tensors["labels"]!, xCF: g.tensors["x_cf"]!, seed: seed)
        return try p.attribute(batch).tensors["attribution"]!
    }

    func assertClose(_ a: Tensor, _ b: Tensor, _ what: String, tolerance: Float = 1e-5, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.shape, b.shape, what, file: file, line: line)
        let scale = max(b.floatArray().map(abs).max() ?? 0, 1)
        let worst = zip(a.floatArray(), b.floatArray()).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, tolerance * scale, "\(what): max difference \(worst)", file: file, line: line)
    }

    func testExhaustiveShapleyEqualsCaptumsExactValues() throws {
        let (run, g, registry) = try setUpRun()
        let common: JSONValue = ["group_size": 3, "exhaustive": true, "perturbations_per_eval": 5]
        assertClose(try attribution("org.quac.d-shapley-sampling", common, run, g, registry: registry), g.tensors["shapley_cf"]!, "d-shapley vs ShapleyValues(baseline x_cf)")
        assertClose(try attribution("org.quac.shapley-sampling", common, run, g, registry: registry), g.tensors["shapley_zero"]!, "shapley vs ShapleyValues(baseline 0)")
    }

    /// Superpixels cut by the right and bottom edges group the same pixels as Captum's feature mask.
    func testEdgeSuperpixelsMatchCaptum() throws {
        let (run, g, registry) = try setUpRun(Self.edgeGolden)
        XCTAssertEqual(g.metadata["group_size"], "4")
        let exact: JSONValue = ["group_size": 4, "exhaustive": true, "perturbations_per_eval": 3]
        assertClose(try attribution("org.quac.d-shapley-sampling", exact, run, g, registry: registry), g.tensors["shapley_cf"]!, "d-shapley vs ShapleyValues(baseline x_cf), edge superpixels")
        assertClose(try attribution("org.quac.shapley-sampling", exact, run, g, registry: registry), g.tensors["shapley_zero"]!, "shapley vs ShapleyValues(baseline 0), edge superpixels")
        assertClose(try attribution("org.quac.feature-ablation", ["group_size": 4], run, g, registry: registry), g.tensors["ablation_zero"]!, "ablation, baseline 0, edge superpixels")
        assertClose(try attribution("org.quac.feature-ablation", ["group_size": 4, "baseline": 0.5], run, g, registry: registry),
                    g.tensors["ablation_half"]!, "ablation, baseline 0.5, edge superpixels")
    }

    func testFeatureAblationEqualsCaptum() throws {
        let (run, g, registry) = try setUpRun()
        assertClose(try attribution("org.quac.feature-ablation", ["group_size": 3], run, g, registry: registry), g.tensors["ablation_zero"]!, "ablation, baseline 0")
        assertClose(try attribution("org.quac.feature-ablation", ["group_size": 3, "baseline": 0.5, "perturbations_per_eval": 1], run, g, registry: registry),
                    g.tensors["ablation_half"]!, "ablation, baseline 0.5")
    }

    /// Every sampled order telescopes: a sample's group values sum to f_y(x) - f_y(x_cf), whatever the
    /// number of orders; more orders bring the values closer to the exact ones.
    func testSampledValuesAreEfficientAndConverge() throws {
        let (run, g, registry) = try setUpRun()
        let x = g.tensors["x"]!, cf = g.tensors["x_cf"]!
        let labels = g.tensors["labels"]!.int64Array()
        let fx = try run.classifier!.forward(x).floatArray(), fcf = try run.classifier!.forward(cf).floatArray()
        let exact = g.tensors["shapley_cf"]!
        var errors: [Float] = []
        for samples in [1, 3, 200] {
            let a = try attribution("org.quac.d-shapley-sampling", ["group_size": 3, "n_samples": .int(Int64(samples))], run, g, registry: registry)
            for s in 0..<5 {
                // One element per group: the top-left pixel of channel 0 of each 3x3 superpixel.
                let total = [0, 3, 18, 21].map { Double(a.floatArray()[s * 72 + $0]) }.reduce(0, +)
                let expected = Double(fx[s * 3 + Int(labels[s])] - fcf[s * 3 + Int(labels[s])])
                XCTAssertEqual(total, expected, accuracy: 1e-4 * max(1, abs(expected)), "\(samples) orders, sample \(s)")
            }
            errors.append(zip(a.floatArray(), exact.floatArray()).map { abs($0 - $1) }.max()!)
        }
        XCTAssertLessThan(errors[2], errors[0], "\(errors)")
        // Same seed, same values; another seed, other orders.
        let a1 = try attribution("org.quac.d-shapley-sampling", ["group_size": 3, "n_samples": 3], run, g, registry: registry, seed: 9)
        XCTAssertTrue(a1.bitwiseEqual(try attribution("org.quac.d-shapley-sampling", ["group_size": 3, "n_samples": 3], run, g, registry: registry, seed: 9)))
        XCTAssertFalse(a1.bitwiseEqual(try attribution("org.quac.d-shapley-sampling", ["group_size": 3, "n_samples": 3], run, g, registry: registry, seed: 10)))
    }

    /// A feature mask from a file groups the elements as Captum's feature_mask does, for Shapley values
    /// (exhaustive: exact) and feature ablation.
    func testFeatureMaskFromAFileMatchesCaptum() throws {
        let (run, g, registry) = try setUpRun(Self.maskGolden)
        let mask: JSONValue = ["feature_mask": .string(Self.maskGolden.path), "feature_mask_tensor": "sample_mask"]
        func with(_ extra: JSONValue) -> JSONValue {
            var o = mask.objectValue!
            for (k, v) in extra.objectValue! { o[k] = v }
            return .object(o)
        }
        let exact = with(["exhaustive": true, "perturbations_per_eval": 7])
        assertClose(try attribution("org.quac.d-shapley-sampling", exact, run, g, registry: registry), g.tensors["shapley_cf"]!, "d-shapley vs ShapleyValues(baseline x_cf), file mask")
        assertClose(try attribution("org.quac.shapley-sampling", exact, run, g, registry: registry), g.tensors["shapley_zero"]!, "shapley vs ShapleyValues(baseline 0), file mask")
        assertClose(try attribution("org.quac.feature-ablation", mask, run, g, registry: registry), g.tensors["ablation_zero"]!, "ablation, baseline 0, file mask")
        assertClose(try attribution("org.quac.feature-ablation", with(["baseline": 0.5]), run, g, registry: registry), g.tensors["ablation_half"]!, "ablation, baseline 0.5, file mask")
        // The mask, not group_size, decides: the 3x3 grid gives other values.
        let grid = try attribution("org.quac.feature-ablation", ["group_size": 3], run, g, registry: registry)
        XCTAssertFalse(grid.bitwiseEqual(try attribution("org.quac.feature-ablation", with(["group_size": 3]), run, g, registry: registry)))
    }

    /// A mask without channels ([H, W] or [1, H, W], here in an NPY file) groups every channel alike:
    /// the same values as the [C, H, W] mask that repeats it; and a mask that draws the 3x3 grid gives
    /// the grid's values whatever its ids are (groups follow the ids' order, not their values).
    func testChannelFreeMaskRepeatsOnEveryChannel() throws {
        let (run, g, registry) = try setUpRun()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quac-mask-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // The 3x3 grid's four squares, numbered 1000, 983, 966, 949 (decreasing, not contiguous).
        let plane: [Int64] = (0..<36).map { (e: Int) -> Int64 in
            let square = (e / 6) / 3 * 2 + (e % 6) / 3
            return Int64(1000 - 17 * square)
        }
        try NPY.write(Tensor(plane, shape: [6, 6]), to: dir.appendingPathComponent("hw.npy"))
        try Safetensors.write([("m", Tensor(plane, shape: [1, 6, 6]))], to: dir.appendingPathComponent("1hw.safetensors"))
        let twice: [Int64] = plane + plane
        try Safetensors.write([("m", Tensor(twice, shape: [2, 6, 6]))], to: dir.appendingPathComponent("chw.safetensors"))
        let grid = try attribution("org.quac.d-shapley-sampling", ["group_size": 3, "exhaustive": true], run, g, registry: registry)
        assertClose(grid, g.tensors["shapley_cf"]!, "grid")
        var first: Tensor?
        for (file, name) in [("hw.npy", "feature_mask"), ("1hw.safetensors", "m"), ("chw.safetensors", "m")] {
            let a = try attribution("org.quac.d-shapley-sampling", ["feature_mask": .string(dir.appendingPathComponent(file).path), "feature_mask_tensor": .string(name), "exhaustive": true],
                                    run, g, registry: registry)
            assertClose(a, grid, file)
            if let f = first { XCTAssertTrue(a.bitwiseEqual(f), file) } else { first = a }
        }
    }

    /// Bad masks are refused when the plugin is made or called, naming feature_mask and what is wrong.
    func testBadFeatureMasksAreRefused() throws {
        let (run, g, registry) = try setUpRun()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quac-mask-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let fractional = Tensor(zeros: [6, 6])
        fractional.floats[7] = 0.5
        try Safetensors.write([("feature_mask", fractional), ("wide", Tensor(zeros: [2, 6, 7]))], to: dir.appendingPathComponent("m.safetensors"))
        let path = JSONValue.string(dir.appendingPathComponent("m.safetensors").path)
        for (params, expected) in [(["feature_mask": path] as JSONValue, "group ids must be integers, found 0.5"),
                                   (["feature_mask": path, "feature_mask_tensor": "nope"], "no tensor \"nope\""),
                                   (["feature_mask": path, "feature_mask_tensor": "wide"], "shape [2, 6, 7] does not fit the samples [2, 6, 6]"),
                                   (["feature_mask": .string(dir.appendingPathComponent("missing.npy").path)], "missing.npy")] {
            XCTAssertThrowsError(try attribution("org.quac.feature-ablation", params, run, g, registry: registry)) { e in
                XCTAssertTrue("\(e)".contains("feature_mask") && "\(e)".contains(expected), "\(e)")
            }
        }
    }

    func testExhaustiveRefusesTooManyGroups() throws {
        let (run, g, registry) = try setUpRun()
        XCTAssertThrowsError(try attribution("org.quac.shapley-sampling", ["group_size": 1, "exhaustive": true], run, g, registry: registry)) { e in
            XCTAssertTrue("\(e)".contains("36 feature groups") && "\(e)".contains("group_size"), "\(e)")
        }
    }
}
