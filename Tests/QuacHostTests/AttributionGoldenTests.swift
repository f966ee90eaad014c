import Foundation
import XCTest
import QuacPluginAPI
@testable import QuacHost

/// The attribution plugins through the host (classifier and attributors loaded through the C ABI)
/// against Captum on the same weights and inputs (Fixtures/attribution-golden, written by
/// scripts/golden/attribution_golden.py), IG completeness, DeepLift summation-to-delta, SmoothGrad and
/// Random semantics, and the two converters.
final class AttributionGoldenTests: XCTestCase {
    static let fixtures = TestSupport.repoRoot.appendingPathComponent("Tests/QuacHostTests/Fixtures/attribution-golden")
    /// Golden attributions are compared element-wise within this absolute tolerance.
    static let tolerance: Float = 1e-4

    var registry: PluginRegistry { PluginRegistry(searchPath: [TestSupport.builtinPlugins]) }

    func instance(_ id: String, _ params: JSONValue = [:], run: RunContext? = nil) throws -> PluginInstance {
        try TestSupport.builtin(id, params, run: run)
    }

    struct Golden {
        let file: SafetensorsFile
        subscript(_ name: String) -> Tensor { file.tensors[name]! }
        var x: Tensor { self["x"] }
        var xCF: Tensor { self["x_cf"] }
        var labels: Tensor { self["labels"] }
        var n: Int { x.shape[0] }
        var classes: Int { self["logits_x"].shape[1] }
    }

    func golden() throws -> Golden {
        Golden(file: try Safetensors.read(Self.fixtures.appendingPathComponent("golden.safetensors")))
    }

    /// The golden MLP as org.quac.mlp-classifier, and a run whose classifier it is.
    func goldenRun(_ g: Golden) throws -> (PluginInstance, RunContext) {
        let clf = try instance("org.quac.mlp-classifier", [
            "input_shape": [1, 8, 8], "hidden": 16, "num_classes": .int(Int64(g.classes)),
            "weights": .string(Self.fixtures.appendingPathComponent("mlp.safetensors").path)])
        let run = RunContext()
        run.classifier = clf
        return (clf, run)
    }

    func attribute(_ id: String, _ params: JSONValue = [:], _ g: Golden, run: RunContext, seed: UInt64 = 0) throws -> PluginOutputs {
        let a = try instance(id, params, run: run)
        return try a.attribute(BatchInputs(x: g.x, source: g.labels, target: g["target"], xCF: g.xCF, seed: seed))
    }

    func maxAbsDifference(_ a: Tensor, _ b: Tensor) -> Float {
        XCTAssertEqual(a.shape, b.shape)
        return zip(a.floatArray(), b.floatArray()).map { abs($0 - $1) }.max() ?? 0
    }

    func deltas(_ out: PluginOutputs) throws -> [Double] {
        try XCTUnwrap(out.json?["convergence_delta"]?.arrayValue).map { try XCTUnwrap($0.doubleValue) }
    }

    /// f_y(x) - f_y(baseline) per sample, from the classifier.
    func logitChange(_ clf: PluginInstance, _ g: Golden, baseline: Tensor) throws -> [Double] {
        let fx = try clf.forward(g.x).floatArray(), fb = try clf.forward(baseline).floatArray()
        let y = g.labels.int64Array()
        return (0..<g.n).map { Double(fx[$0 * g.classes + Int(y[$0])]) - Double(fb[$0 * g.classes + Int(y[$0])]) }
    }

    func sums(_ t: Tensor) -> [Double] {
        let n = t.shape[0], d = t.count / n, v = t.floatArray()
        return (0..<n).map { s in v[(s * d)..<((s + 1) * d)].reduce(0.0) { $0 + Double($1) } }
    }

    // MARK: Captum goldens

    func testAttributionsMatchCaptum() throws {
        let g = try golden()
        let (_, run) = try goldenRun(g)
        let cases: [(String, JSONValue, String)] = [
            ("org.quac.saliency", [:], "saliency"),
            ("org.quac.input-x-gradient", [:], "input_x_gradient"),
            ("org.quac.d-integrated-gradients", [:], "ig_cf"),
            ("org.quac.vanilla-integrated-gradients", [:], "ig_zero"),
            ("org.quac.d-integrated-gradients", ["method": "riemann_left", "n_steps": 16], "ig_cf_riemann_left"),
            ("org.quac.d-integrated-gradients", ["method": "riemann_right", "n_steps": 16], "ig_cf_riemann_right"),
            ("org.quac.d-integrated-gradients", ["method": "riemann_middle", "n_steps": 16], "ig_cf_riemann_middle"),
            ("org.quac.d-integrated-gradients", ["method": "riemann_trapezoid", "n_steps": 16], "ig_cf_riemann_trapezoid"),
            ("org.quac.d-deeplift", [:], "deeplift_cf"),
            ("org.quac.vanilla-deeplift", [:], "deeplift_zero"),
            ("org.quac.d-ingrad", [:], "dingrad"),
            ("org.quac.occlusion", ["window": 4, "stride": 2], "occlusion"),
        ]
        var report: [String] = []
        for (id, params, key) in cases {
            let out = try attribute(id, params, g, run: run)
            let a = try XCTUnwrap(out.tensors["attribution"])
            let expected = g[key]
            // A golden that is all zeros would make the comparison empty.
            XCTAssertGreaterThan(expected.floatArray().map(abs).max() ?? 0, 0.1, key)
            let err = maxAbsDifference(a, expected)
            XCTAssertLessThanOrEqual(err, Self.tolerance, "\(id) \(params.serialized()) vs Captum's \(key)")
            var line = String(format: "%@ %@: max abs error %.2e", id, params.serialized(), err)
            // Captum's convergence deltas, where Captum reports them.
            if let captumDelta = g.file.tensors["\(key)_delta"] {
                let ours = try deltas(out)
                XCTAssertEqual(ours.count, g.n)
                let worst = zip(ours, captumDelta.floatArray()).map { abs($0 - Double($1)) }.max() ?? 0
                XCTAssertLessThanOrEqual(worst, Double(Self.tolerance), "\(id): convergence delta vs Captum's \(key)_delta")
                line += String(format: ", delta error %.2e", worst)
            }
            report.append(line)
        }
        print("AttributionGoldenTests vs Captum \(g.file.metadata["captum"] ?? "?"):\n  " + report.joined(separator: "\n  "))
    }

    // MARK: IG completeness

    func testIntegratedGradientsCompletenessPerSample() throws {
        let g = try golden()
        let (clf, run) = try goldenRun(g)
        for (id, baseline) in [("org.quac.d-integrated-gradients", g.xCF), ("org.quac.vanilla-integrated-gradients", Tensor(zeros: g.x.shape))] {
            let out = try attribute(id, ["n_steps": 50, "method": "gausslegendre"], g, run: run)
            let a = try XCTUnwrap(out.tensors["attribution"])
            let change = try logitChange(clf, g, baseline: baseline)
            let reported = try deltas(out)
            for (s, (total, df)) in zip(sums(a), change).enumerated() {
                XCTAssertGreaterThan(abs(df), 0.2, "the fixture keeps f_y(x) - f_y(baseline) clear of zero")
                // The reported delta is exactly sum(a) - (f_y(x) - f_y(baseline)).
                XCTAssertEqual(reported[s], total - df, accuracy: 1e-5, "\(id) sample \(s): reported convergence delta")
                // Completeness up to the quadrature error: the integrand of a ReLU network jumps where a unit
                // switches along the path, which bounds Gauss-Legendre's accuracy (Captum's own deltas on
                // this fixture reach 7.6% of the change).
                XCTAssertLessThan(abs(total - df), 0.1 * abs(df), "\(id) sample \(s): |sum(a) - delta f| vs |delta f| = \(df)")
            }
        }
        // The path is split into classifier calls of internal_batch_size rows without changing a bit.
        let whole = try attribute("org.quac.d-integrated-gradients", [:], g, run: run).tensors["attribution"]!
        let chunked = try attribute("org.quac.d-integrated-gradients", ["internal_batch_size": 7], g, run: run).tensors["attribution"]!
        XCTAssertTrue(whole.bitwiseEqual(chunked), "internal_batch_size changed the attribution")
        // More steps shrink the total quadrature error (the check above is not vacuous).
        let fine = try attribute("org.quac.d-integrated-gradients", ["n_steps": 400], g, run: run)
        let coarse = try attribute("org.quac.d-integrated-gradients", ["n_steps": 5], g, run: run)
        let fineError = try deltas(fine).map(abs).reduce(0, +), coarseError = try deltas(coarse).map(abs).reduce(0, +)
        XCTAssertLessThan(fineError, coarseError / 4, "400 steps vs 5 steps: total |delta| \(fineError) vs \(coarseError)")
        // Riemann rules need two points; Gauss-Legendre one.
        XCTAssertThrowsError(try instance("org.quac.d-integrated-gradients", ["method": "riemann_left", "n_steps": 1], run: run))
        XCTAssertNoThrow(try attribute("org.quac.d-integrated-gradients", ["n_steps": 1], g, run: run))
    }

    // MARK: DeepLift summation-to-delta

    func testDeepLiftSummationToDelta() throws {
        let g = try golden()
        let (clf, run) = try goldenRun(g)
        for (id, baseline) in [("org.quac.d-deeplift", g.xCF), ("org.quac.vanilla-deeplift", Tensor(zeros: g.x.shape))] {
            let out = try attribute(id, [:], g, run: run)
            let a = try XCTUnwrap(out.tensors["attribution"])
            let change = try logitChange(clf, g, baseline: baseline)
            let reported = try deltas(out)
            let scale = a.floatArray().map { Double(abs($0)) }.reduce(0, +)
            for (s, (total, df)) in zip(sums(a), change).enumerated() {
                XCTAssertEqual(total, df, accuracy: 1e-5 * max(scale, 1), "\(id) sample \(s): sum of attributions vs f_y(x) - f_y(baseline)")
                XCTAssertEqual(reported[s], 0, accuracy: 1e-5 * max(scale, 1), "\(id) sample \(s): reported delta")
            }
        }
        // DeepLift needs the modified-backward extension: a forward-only or plain classifier run says so.
        let linear = try instance("org.quac.d-deeplift", [:], run: RunContext())
        XCTAssertThrowsError(try linear.attribute(BatchInputs(x: g.x, source: g.labels, xCF: g.xCF)))
    }

    // MARK: SmoothGrad

    func testSmoothGradMatchesNoiseTunnelsExpectation() throws {
        let g = try golden()
        let (_, run) = try goldenRun(g)
        let meta = try JSONParser.parse(try XCTUnwrap(g.file.metadata["smoothgrad"]))
        let stdev = try XCTUnwrap(meta["stdevs"]?.doubleValue), captumSamples = Double(try XCTUnwrap(meta["nt_samples"]?.intValue))
        let samples = 1000
        let params: JSONValue = ["nt_samples": .int(Int64(samples)), "stdevs": .double(stdev), "nt_samples_batch_size": 500]
        let a = try XCTUnwrap(attribute("org.quac.smoothgrad", params, g, run: run, seed: 3).tensors["attribution"])
        let expected = g["smoothgrad_expected"].floatArray(), std = g["smoothgrad_std"].floatArray()
        // Five standard errors of both Monte Carlo means, per element.
        func within(_ t: Tensor) -> (ok: Bool, worst: Double) {
            var ok = true, worst = 0.0
            for (i, v) in t.floatArray().enumerated() {
                let bound = 5 * Double(std[i]) * (1 / Double(samples).squareRoot() + 1 / captumSamples.squareRoot()) + 1e-4
                let z = abs(Double(v) - Double(expected[i])) / bound
                worst = max(worst, z)
                if z > 1 { ok = false }
            }
            return (ok, worst)
        }
        let r = within(a)
        XCTAssertTrue(r.ok, "SmoothGrad differs from NoiseTunnel's expectation by \(r.worst) x the 5-sigma bound")
        // The check tells noise apart: plain saliency (no noise) is outside the bound.
        let plain = try XCTUnwrap(attribute("org.quac.saliency", [:], g, run: run).tensors["attribution"])
        XCTAssertFalse(within(plain).ok, "saliency without noise passed as SmoothGrad")

        // stdevs 0 is saliency; the seed is honoured; batching does not change the noise.
        let zero = try XCTUnwrap(attribute("org.quac.smoothgrad", ["nt_samples": 3, "stdevs": 0], g, run: run).tensors["attribution"])
        XCTAssertLessThanOrEqual(maxAbsDifference(zero, plain), 1e-6)
        let small: JSONValue = ["nt_samples": 4, "stdevs": 0.5]
        let s1 = try attribute("org.quac.smoothgrad", small, g, run: run, seed: 1).tensors["attribution"]!
        let s1again = try attribute("org.quac.smoothgrad", small, g, run: run, seed: 1).tensors["attribution"]!
        let s2 = try attribute("org.quac.smoothgrad", small, g, run: run, seed: 2).tensors["attribution"]!
        XCTAssertTrue(s1.bitwiseEqual(s1again))
        XCTAssertGreaterThan(maxAbsDifference(s1, s2), 1e-3, "another seed, other noise")
        let sg = try instance("org.quac.smoothgrad", small, run: run)
        let singles = Tensor.concatenate(try (0..<g.n).map { i in
            try sg.attribute(BatchInputs(x: g.x.rows(i..<i + 1), source: g.labels.rows(i..<i + 1), seed: 1)).tensors["attribution"]!
        })
        XCTAssertTrue(singles.bitwiseEqual(s1), "a batch of N equals N batches of one")
    }

    // MARK: Random

    func testRandomIsSeededBatchInvariantAndGaussianFiltered() throws {
        let random = try instance("org.quac.random")
        let n = 8, size = 96
        // Distinct images (the noise is keyed by the batch seed and each image's values).
        let x = Tensor((0..<(n * size * size)).map { Float($0 % 977) / 977 }, shape: [n, 1, size, size])
        let a = try random.attribute(BatchInputs(x: x, seed: 5)).tensors["attribution"]!
        XCTAssertTrue(a.bitwiseEqual(try random.attribute(BatchInputs(x: x, seed: 5)).tensors["attribution"]!))
        XCTAssertGreaterThan(maxAbsDifference(a, try random.attribute(BatchInputs(x: x, seed: 6)).tensors["attribution"]!), 1e-3)
        let singles = Tensor.concatenate(try (0..<n).map { try random.attribute(BatchInputs(x: x.rows($0..<$0 + 1), seed: 5)).tensors["attribution"]! })
        XCTAssertTrue(singles.bitwiseEqual(a), "a batch of N equals N batches of one")
        XCTAssertTrue(a.floatArray().allSatisfy { $0 >= 0 })

        // Filtered white noise has, away from the borders, variance sum_ij (w_i w_j)^2 = (sum_i w_i^2)^2 with
        // w the normalized Gaussian of sigma 4 truncated at radius 16 (scipy's gaussian_filter).
        func expectedVariance(_ sigma: Double) -> Double {
            let r = Int(4 * sigma + 0.5)
            let w = (-r...r).map { exp(-0.5 * Double($0 * $0) / (sigma * sigma)) }
            let total = w.reduce(0, +)
            let s2 = w.map { ($0 / total) * ($0 / total) }.reduce(0, +)
            return s2 * s2
        }
        func interiorVariance(_ t: Tensor, margin: Int) -> Double {
            let v = t.floatArray()
            var sum = 0.0, count = 0
            for s in 0..<n { for r in margin..<(size - margin) { for c in margin..<(size - margin) {
                let e = Double(v[(s * size + r) * size + c]); sum += e * e; count += 1
            } } }
            return sum / Double(count)
        }
        let variance = interiorVariance(a, margin: 16)
        XCTAssertEqual(variance / expectedVariance(4), 1, accuracy: 0.3, "variance \(variance) of sigma-4 filtered noise")
        XCTAssertLessThan(variance / expectedVariance(2), 0.5, "sigma 4 is smoother than sigma 2")
        // Neighbouring pixels are strongly correlated after filtering, and not before.
        let raw = try instance("org.quac.random", ["sigma": 0]).attribute(BatchInputs(x: x, seed: 5)).tensors["attribution"]!
        XCTAssertEqual(interiorVariance(raw, margin: 0), 1, accuracy: 0.05, "unfiltered |N(0, 1)| has E[a^2] = 1")
        func roughness(_ t: Tensor) -> Double {
            let v = t.floatArray()
            var diff = 0.0, mag = 0.0
            for i in 0..<(v.count - 1) where (i + 1) % size != 0 { diff += Double(abs(v[i + 1] - v[i])); mag += Double(v[i]) }
            return diff / mag
        }
        XCTAssertLessThan(roughness(a), 0.3)
        XCTAssertGreaterThan(roughness(raw), 0.6)
    }

    // MARK: Converters

    func toy(_ dir: URL, count: Int) throws -> (SafetensorsFile, URL) {
        var o = ToyDataset.Options()
        o.count = count; o.size = 8; o.patch = 3; o.seed = 4
        try ToyDataset.write(to: dir, options: o)
        return (try Safetensors.read(dir.appendingPathComponent("data.safetensors")), dir.appendingPathComponent("model.safetensors"))
    }

    func testOptimizationConverterReachesTheTargetDeterministically() throws {
        let dir = try TestSupport.tempDir()
        let (data, model) = try toy(dir, count: 16)
        let clf = try instance("org.quac.mlp-classifier", ["input_shape": [1, 8, 8], "hidden": 0, "weights": .string(model.path)])
        let run = RunContext()
        run.classifier = clf
        let x = data.tensors["images"]!, labels = data.tensors["labels"]!, mask = data.tensors["masks"]!.floatArray()
        let target = Tensor(labels.int64Array().map { 1 - $0 }, shape: [x.shape[0]])
        let converter = try instance("org.quac.optimization-converter", [:], run: run)
        let batch = BatchInputs(x: x, source: labels, target: target, seed: 0)
        let out = try converter.convert(batch)
        let cf = try XCTUnwrap(out.tensors["counterfactual"])
        let converted = try XCTUnwrap(out.json?["converted"]?.arrayValue).map { $0.boolValue ?? false }
        let steps = try XCTUnwrap(out.json?["steps"]?.arrayValue).compactMap(\.intValue)
        XCTAssertEqual(converted.count, 16); XCTAssertEqual(steps.count, 16)
        XCTAssertGreaterThanOrEqual(converted.filter { $0 }.count, 14, "most toy samples reach their target")
        // What the converter says is what the classifier sees: converted samples are the target with margin 1.
        let logits = try clf.forward(cf).floatArray(), t = target.int64Array()
        for s in 0..<16 where converted[s] {
            XCTAssertGreaterThanOrEqual(logits[2 * s + Int(t[s])] - logits[2 * s + 1 - Int(t[s])], 1 - 1e-4, "sample \(s)")
        }
        XCTAssertTrue(cf.floatArray().allSatisfy { $0 >= -1 && $0 <= 1 }, "clipped to [-1, 1]")
        // The change concentrates where the detector looks (the patch), thanks to the L1 penalty.
        var inside = 0.0, outside = 0.0
        for (i, (a, b)) in zip(cf.floatArray(), x.floatArray()).enumerated() {
            if mask[i] > 0 { inside += Double(abs(a - b)) } else { outside += Double(abs(a - b)) }
        }
        XCTAssertGreaterThan(inside, 0.5 * 16)
        XCTAssertLessThan(outside, 1e-6, "pixels the classifier ignores stay unchanged")
        // Deterministic, and batching does not change a sample's trajectory.
        XCTAssertTrue(try converter.convert(batch).tensors["counterfactual"]!.bitwiseEqual(cf))
        let singles = Tensor.concatenate(try (0..<4).map { i in
            try converter.convert(BatchInputs(x: x.rows(i..<i + 1), source: labels.rows(i..<i + 1), target: target.rows(i..<i + 1))).tensors["counterfactual"]!
        })
        XCTAssertTrue(singles.bitwiseEqual(cf.rows(0..<4)))
        // A sample already classified as its target is returned unchanged after 0 steps.
        let same = try converter.convert(BatchInputs(x: x.rows(0..<2), source: labels.rows(0..<2), target: labels.rows(0..<2)))
        XCTAssertTrue(same.tensors["counterfactual"]!.bitwiseEqual(x.rows(0..<2)))
        XCTAssertEqual(same.json?["steps"]?.arrayValue?.compactMap(\.intValue), [0, 0])

        // On the golden MLP (3 classes, ReLU), plain gradient steps also reach most targets.
        let g = try golden()
        let (_, mlpRun) = try goldenRun(g)
        let sgd = try instance("org.quac.optimization-converter", ["optimizer": "sgd", "learning_rate": 0.5, "steps": 200, "l1": 0.001], run: mlpRun)
        let mlpOut = try sgd.convert(BatchInputs(x: g.x, source: g.labels, target: g["target"]))
        let mlpConverted = try XCTUnwrap(mlpOut.json?["converted"]?.arrayValue).filter { $0.boolValue == true }.count
        XCTAssertGreaterThanOrEqual(mlpConverted, 5, "golden MLP: \(mlpOut.json.map { JSONValue.object($0).serialized() } ?? "")")
    }

    func testPrecomputedConverterReturnsTheFilesCounterfactuals() throws {
        let dir = try TestSupport.tempDir()
        let (data, _) = try toy(dir, count: 10)
        let x = data.tensors["images"]!, cfs = data.tensors["counterfactuals"]!, labels = data.tensors["labels"]!
        let targets = Tensor(labels.int64Array().map { 1 - $0 }, shape: [10])
        // The queries in another order than the file's, in two batches.
        let order = [7, 2, 9, 0, 4]
        let batch = Tensor.concatenate(order.map { x.rows($0..<$0 + 1) })
        let batchTargets = Tensor(order.map { targets.int64Array()[$0] }, shape: [order.count])
        func check(_ converter: PluginInstance) throws {
            let out = try converter.convert(BatchInputs(x: batch, target: batchTargets))
            let cf = try XCTUnwrap(out.tensors["counterfactual"])
            for (k, row) in order.enumerated() { XCTAssertTrue(cf.rows(k..<k + 1).bitwiseEqual(cfs.rows(row..<row + 1)), "query \(k) = file row \(row)") }
            XCTAssertEqual(out.json?["index"]?.arrayValue?.compactMap(\.intValue), order.map(Int64.init))
            // An image the file does not hold is an error that says so.
            let stranger = batch.copy()
            stranger.floats[3] += 0.25
            XCTAssertThrowsError(try converter.convert(BatchInputs(x: stranger, target: batchTargets))) {
                XCTAssertTrue("\($0)".contains("sample 0 of the batch is not among the file's 10 images"), "\($0)")
            }
        }
        // safetensors, with targets.
        let file = dir.appendingPathComponent("cf.safetensors")
        try Safetensors.write([("images", x), ("counterfactuals", cfs), ("target", targets)], to: file)
        try check(try instance("org.quac.precomputed-converter", ["path": .string(file.path), "targets": "target"]))
        // A query asked for another target than the file's is not matched.
        let byTarget = try instance("org.quac.precomputed-converter", ["path": .string(file.path), "targets": "target"])
        XCTAssertThrowsError(try byTarget.convert(BatchInputs(x: batch, target: Tensor(order.map { labels.int64Array()[$0] }, shape: [order.count]))))
        // NPY files.
        let cfNPY = dir.appendingPathComponent("cf.npy"), xNPY = dir.appendingPathComponent("x.npy")
        try NPY.write(cfs, to: cfNPY); try NPY.write(x, to: xNPY)
        try check(try instance("org.quac.precomputed-converter", ["path": .string(cfNPY.path), "images_path": .string(xNPY.path)]))
        // A file without the named tensor is refused when the instance is created.
        XCTAssertThrowsError(try instance("org.quac.precomputed-converter", ["path": .string(file.path), "images": "nope"])) {
            XCTAssertTrue("\($0)".contains("no tensor \"nope\""), "\($0)")
        }
    }

    // MARK: Conformance

    /// `plugins check`'s checks, in process, for every plugin this suite covers (the precomputed converter
    /// with a file holding the checker's own inputs).
    func testNewPluginsPassTheConformanceCheck() throws {
        let dir = try TestSupport.tempDir()
        let checkerFile = dir.appendingPathComponent("checker-cf.safetensors")
        try Safetensors.write([("images", Inputs.uniform([4, 1, 8, 8], seed: 10)), ("counterfactuals", Inputs.uniform([4, 1, 8, 8], seed: 11))], to: checkerFile)
        let plugins: [(String, JSONValue)] = [
            ("org.quac.d-integrated-gradients", [:]), ("org.quac.vanilla-integrated-gradients", ["method": "riemann_middle", "n_steps": 8]),
            ("org.quac.d-deeplift", [:]), ("org.quac.vanilla-deeplift", [:]), ("org.quac.d-ingrad", [:]),
            ("org.quac.random", [:]), ("org.quac.smoothgrad", [:]),
            ("org.quac.optimization-converter", ["steps": 20]), ("org.quac.precomputed-converter", ["path": .string(checkerFile.path)]),
        ]
        _ = try instance("org.quac.mlp-classifier")  // sets QUAC_PLUGIN_LIB_PATH where needed
        for (id, params) in plugins {
            let results = ConformanceChecker(manifest: try registry.manifest(id: id), parameters: params, registry: registry,
                                             classifierID: "org.quac.mlp-classifier").run()
            XCTAssertGreaterThanOrEqual(results.count, 15, id)
            for r in results where !r.passed { XCTFail("\(id): \(r.name): \(r.detail)") }
        }
    }
}
