import Foundation
import XCTest
import QuacPluginAPI
@testable import QuacHost

/// The QuAC evaluator scorer (org.quac.quac-evaluator) against golden files from a Python
/// implementation of funkelab/quac's algorithm with OpenCV, SciPy and PyTorch
/// (scripts/golden/quac_evaluator_reference.py; the linear classifier's weights are in each file and
/// run here through org.quac.mlp-classifier with hidden = 0).
final class QuacEvaluatorTests: XCTestCase {
    static let golden = TestSupport.repoRoot.appendingPathComponent("Tests/QuacHostTests/Fixtures/quac_evaluator")
    static let tolerance = 1e-5

    /// Counts the rows the scorer sends to the classifier.
    final class CountingClassifier: Classifier {
        let inner: PluginInstance
        var rows = 0, calls = 0
        init(_ inner: PluginInstance) { self.inner = inner }
        var label: String { inner.label }
        func info() throws -> ClassifierInfo { try inner.info() }
        /// The evaluator calls the classifier from several threads; the counts must not lose any.
        let lock = NSLock()
        func rawForward(_ x: Tensor) throws -> Tensor {
            lock.withLock { rows += x.shape[0]; calls += 1 }
            return try inner.rawForward(x)
        }
        func rawVJP(_ x: Tensor, gradLogits: Tensor, wantLogits: Bool) throws -> (logits: Tensor?, gradX: Tensor) {
            try inner.rawVJP(x, gradLogits: gradLogits, wantLogits: wantLogits)
        }
        func rawVJPRule(_ rule: quac_backward_rule, x: Tensor, baseline: Tensor?, gradLogits: Tensor) throws -> Tensor {
            try inner.rawVJPRule(rule, x: x, baseline: baseline, gradLogits: gradLogits)
        }
    }

    struct Setup {
        let file: SafetensorsFile
        let scorer: PluginInstance
        let classifier: CountingClassifier
        let batch: BatchInputs
        /// Held here: plugin contexts refer to their run weakly.
        let run: RunContext
    }

    func setUpCase(_ name: String, params: [String: JSONValue] = [:]) throws -> Setup {
        let url = Self.golden.appendingPathComponent("\(name).safetensors")
        let file = try Safetensors.read(url)
        let x = file.tensors["x"]!
        let registry = PluginRegistry(searchPath: [TestSupport.builtinPlugins])
        let mlpManifest = try registry.manifest(id: "org.quac.mlp-classifier")
        if mlpManifest.resolvedLibraryURL() == nil { setenv("QUAC_PLUGIN_LIB_PATH", TestSupport.productsDir.path, 1) }
        let classes = Int(file.metadata["num_classes"] ?? "2")!
        let mlp = try PluginInstance(manifest: mlpManifest, params: [
            "num_classes": .int(Int64(classes)), "input_shape": .array(x.shape.dropFirst().map { .int(Int64($0)) }),
            "hidden": 0, "weights": .string(url.path)])
        let run = RunContext()
        let counting = CountingClassifier(mlp)
        run.classifier = counting
        var p = JSONObject([("channel_wise", .bool(file.metadata["channel_wise"] != "false"))])
        for (k, v) in params { p[k] = v }
        let scorer = try PluginInstance(manifest: try registry.manifest(id: "org.quac.quac-evaluator"), params: .object(p), run: run)
        let batch = BatchInputs(x: x, source: file.tensors["source"], target: file.tensors["target"],
                                xCF: file.tensors["x_cf"], attribution: file.tensors["attribution"])
        return Setup(file: file, scorer: scorer, classifier: counting, batch: batch, run: run)
    }

    func assertClose(_ a: [Double], _ b: [Double], _ what: String, tolerance: Double = tolerance,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, "\(what): length", file: file, line: line)
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, tolerance, "\(what): largest difference \(worst)", file: file, line: line)
    }

    func doubles(_ v: JSONValue?) -> [Double] {
        (v?.arrayValue ?? []).flatMap { e -> [Double] in e.arrayValue.map { $0.compactMap(\.doubleValue) } ?? [e.doubleValue ?? .nan] }
    }

    /// Every golden case: score, curve, optimal threshold (index and value), mask sizes (exact: they
    /// count pixels), score changes, predictions, and the mask and hybrid at the optimal threshold.
    func testMatchesTheReferenceOnEveryGoldenCase() throws {
        let index = try JSONParser.parse(String(contentsOf: Self.golden.appendingPathComponent("cases.json"), encoding: .utf8))
        let names = index["cases"]?.arrayValue?.compactMap(\.stringValue) ?? []
        XCTAssertGreaterThanOrEqual(names.count, 8)
        for name in names {
            let s = try setUpCase(name)
            let out = try s.scorer.score(s.batch)
            let g = s.file.tensors
            let json = try XCTUnwrap(out.json, name)
            let n = s.batch.count
            XCTAssertEqual(out.tensors["score"]?.shape, [n], name)
            XCTAssertEqual(out.tensors["curve"]?.shape, [n, 101], name)
            XCTAssertEqual(out.tensors["mask"]?.shape, s.batch.x.shape, name)
            assertClose(doubles(json["score"]), g["score"]!.doubleArray(), "\(name) score")
            assertClose(out.tensors["score"]!.doubleArray(), g["score"]!.doubleArray(), "\(name) score tensor")
            assertClose(out.tensors["curve"]!.doubleArray(), g["curve"]!.doubleArray(), "\(name) curve")
            XCTAssertEqual(json["optimal_index"]?.arrayValue?.compactMap(\.intValue), g["optimal_index"]!.int64Array(), "\(name) optimal index")
            XCTAssertEqual(doubles(json["optimal_threshold"]), g["optimal_threshold"]!.doubleArray(), "\(name) optimal threshold")
            XCTAssertEqual(doubles(json["normalized_mask_sizes"]), g["normalized_mask_sizes"]!.doubleArray(), "\(name) mask sizes")
            assertClose(doubles(json["score_changes"]), g["score_changes"]!.doubleArray(), "\(name) score changes")
            for k in ["query_prediction", "generated_prediction", "counterfactual_prediction"] {
                assertClose(doubles(json[k]), g[k]!.doubleArray(), "\(name) \(k)")
            }
            assertClose(out.tensors["mask"]!.doubleArray(), g["mask"]!.doubleArray(), "\(name) mask")
            assertClose(out.tensors["hybrid"]!.doubleArray(), g["hybrid"]!.doubleArray(), "\(name) hybrid")
            XCTAssertEqual(json["thresholds"]?.arrayValue?.count, 200)
        }
    }

    /// Identical masks are classified once: an all-equal map has two distinct closed masks (full below
    /// its value, empty above), so each query sends 2 hybrids plus its image and counterfactual.
    func testIdenticalMasksAreScoredOnce() throws {
        let s = try setUpCase("gray16_constant")
        _ = try s.scorer.score(s.batch)
        XCTAssertEqual(s.classifier.rows, 2 * 4)
        XCTAssertEqual(s.classifier.calls, 2, "one call per query")
        // With random maps there are fewer distinct masks than thresholds (all negative ones share
        // the full mask) but more than two.
        let r = try setUpCase("gray16_random")
        _ = try r.scorer.score(r.batch)
        XCTAssertLessThanOrEqual(r.classifier.rows, 3 * (2 + 101))
        XCTAssertGreaterThan(r.classifier.rows, 3 * 4)
    }

    /// max_batch splits a query's rows into several calls without changing a number.
    func testMaxBatchSplitsCallsWithTheSameResults() throws {
        let whole = try setUpCase("rgb32_smooth")
        let a = try whole.scorer.score(whole.batch)
        let split = try setUpCase("rgb32_smooth", params: ["max_batch": 7])
        let b = try split.scorer.score(split.batch)
        XCTAssertGreaterThan(split.classifier.calls, whole.classifier.calls)
        XCTAssertEqual(split.classifier.rows, whole.classifier.rows)
        for k in ["score", "curve", "mask", "hybrid"] { XCTAssertTrue(a.tensors[k]!.bitwiseEqual(b.tensors[k]!), k) }
    }

    /// Samples are spread over the host's threads (QUAC_ENGINE_THREADS): one thread and several give
    /// the same scores, curves, masks, hybrids and JSON, bit for bit, with the same classifier calls.
    func testThreadCountDoesNotChangeANumber() throws {
        let saved = ProcessInfo.processInfo.environment["QUAC_ENGINE_THREADS"]
        defer { if let saved { setenv("QUAC_ENGINE_THREADS", saved, 1) } else { unsetenv("QUAC_ENGINE_THREADS") } }
        for name in ["rgb32_smooth", "gray16_random"] {
            var outputs: [PluginOutputs] = [], rows: [Int] = []
            for threads in ["1", "3"] {
                setenv("QUAC_ENGINE_THREADS", threads, 1)
                let s = try setUpCase(name)
                XCTAssertGreaterThan(s.batch.count, 1, "\(name): several samples to spread")
                outputs.append(try s.scorer.score(s.batch))
                rows.append(s.classifier.rows)
            }
            XCTAssertEqual(rows[0], rows[1], name)
            for k in ["score", "curve", "mask", "hybrid"] { XCTAssertTrue(outputs[0].tensors[k]!.bitwiseEqual(outputs[1].tensors[k]!), "\(name) \(k)") }
            XCTAssertEqual(outputs[0].json.map { JSONValue.object($0).serialized() }, outputs[1].json.map { JSONValue.object($0).serialized() }, name)
        }
    }

    /// Bad inputs are refused with a message: targets outside the classes, a missing attribution.
    func testRefusesBadInputs() throws {
        let s = try setUpCase("gray16_random")
        var b = s.batch
        b.target = Tensor([Int64](repeating: 5, count: b.count), shape: [b.count])
        XCTAssertThrowsError(try s.scorer.score(b)) { XCTAssertTrue("\($0)".contains("outside"), "\($0)") }
        b = s.batch
        b.attribution = nil
        XCTAssertThrowsError(try s.scorer.score(b))
    }
}
