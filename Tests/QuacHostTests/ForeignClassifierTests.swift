import Foundation
import XCTest
@testable import QuacHost

/// Plain C model functions called through libffi as forward-only classifiers, with the fixture
/// foreign_model.c: 2 classes, samples 1x4x4, logits = [s/16, -s/16 + 0.5] with s the sample's sum.
final class ForeignClassifierTests: XCTestCase {
    func fixtures() throws -> URL { try TestSupport.fixtures() }

    static let predictSignature = "void predict(const float *x, int64_t n, float *logits)"
    static let statusSignature = "int predict_status(const float *x, int32_t n, float *logits)"

    /// The model, computed here in double precision.
    static func analyticLogits(_ x: [Float], n: Int) -> [Double] {
        (0..<n).flatMap { i -> [Double] in
            let s = x[(i * 16)..<(i * 16 + 16)].reduce(0.0) { $0 + Double($1) }
            return [s / 16, -s / 16 + 0.5]
        }
    }

    static func randomSamples(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SeededRandom(seed: seed)
        return (0..<(n * 16)).map { _ in rng.uniform() * 4 - 2 }
    }

    func spec(_ library: URL, symbol: String = "predict", signature: String = ForeignClassifierTests.predictSignature,
              numClasses: Int = 2, inputShape: [Int] = [1, 4, 4]) -> PipelineManifest.ForeignClassifierSpec {
        PipelineManifest.ForeignClassifierSpec(pointer: "/classifier/foreign", library: library.path, symbol: symbol,
                                               signature: signature, numClasses: numClasses, inputShape: inputShape)
    }

    // MARK: Signatures

    func testSignatureParserAcceptsTheDocumentedForms() throws {
        let p = try CSignature.parse(Self.predictSignature)
        XCTAssertEqual(p.name, "predict")
        XCTAssertFalse(p.returnsStatus)
        XCTAssertNil(p.returnType)
        XCTAssertEqual(p.arguments, [.input, .count(.int64), .output])

        let s = try CSignature.parse(Self.statusSignature)
        XCTAssertEqual(s.name, "predict_status")
        XCTAssertTrue(s.returnsStatus)
        XCTAssertEqual(s.returnType, .int)
        XCTAssertEqual(s.arguments, [.input, .count(.int32), .output])

        // No count (one sample per call), output first, unnamed arguments, a trailing semicolon, extra spaces.
        let single = try CSignature.parse("  void model_1(float *out, const float *in);  ")
        XCTAssertEqual(single.name, "model_1")
        XCTAssertEqual(single.arguments, [.output, .input])
        XCTAssertFalse(single.hasCount)
        XCTAssertEqual(try CSignature.parse("int32_t f(const float*, size_t, float*)").arguments, [.input, .count(.size), .output])
        XCTAssertEqual(try CSignature.parse("int32_t f(const float*, size_t, float*)").returnType, .int32)
        XCTAssertEqual(try CSignature.parse("long _run(const float *x,long n,float *y)").arguments, [.input, .count(.long), .output])
        XCTAssertEqual(CSignature.IntegerType.int32.bits, 32)
        XCTAssertEqual(CSignature.IntegerType.size.signed, false)
    }

    func testSignatureParserRejectsBadFormsWithClearMessages() {
        func rejects(_ text: String, _ fragments: [String], line: UInt = #line) {
            XCTAssertThrowsError(try CSignature.parse(text), line: line) { error in
                let message = QuacError.wrap(error).message
                XCTAssertTrue(message.hasPrefix("signature \"\(text)\": "), message, line: line)
                for f in fragments { XCTAssertTrue(message.contains(f), "\(message) lacks \(f)", line: line) }
            }
        }
        rejects("void predict(const float *x, float *a, float *b)", ["exactly one `float *` output"])
        rejects("void predict(const float *x, double scale, float *logits)", ["argument 2", "unsupported type \"double scale\""])
        rejects("void predict(int64_t n, float *logits)", ["exactly one `const float *` input"])
        rejects("void 2predict(const float *x, int64_t n, float *logits)", ["\"2predict\" is not a C identifier"])
        rejects("void pre-dict(const float *x, float *logits)", ["\"pre-dict\" is not a C identifier"])
        rejects("float predict(const float *x, float *logits)", ["return type must be void or an integer status", "\"float\""])
        rejects("void predict(const float *x, float y, float *logits)", ["argument 2", "a float is passed by pointer"])
        rejects("void predict(const float *x, int n, int m, float *logits)", ["more than one integer argument"])
        rejects("void predict", ["expected `return_type name(arguments)`"])
        rejects("predict(const float *x, float *logits)", ["expected a return type and a function name"])
    }

    // MARK: Calling the C functions

    func testForeignClassifierGivesTheAnalyticLogitsWithBothCallingConventions() throws {
        let library = try fixtures().appendingPathComponent("libforeign_model.so")
        for (symbol, signature) in [("predict", Self.predictSignature), ("predict_status", Self.statusSignature)] {
            let c = try ForeignClassifier(spec: spec(library, symbol: symbol, signature: signature), manifestFile: "/m.json")
            XCTAssertEqual(try c.info(), ClassifierInfo(numClasses: 2, sampleShape: [1, 4, 4], hasVJP: false, hasModifiedBackward: false))
            XCTAssertTrue(c.label.contains(symbol) && c.label.contains("libforeign_model.so"), c.label)
            for (n, seed) in [(1, UInt64(1)), (7, 2), (33, 3)] {
                let xs = Self.randomSamples(n, seed: seed)
                let logits = try c.forward(Tensor(xs, shape: [n, 1, 4, 4]))
                XCTAssertEqual(logits.shape, [n, 2])
                let expected = Self.analyticLogits(xs, n: n)
                for (i, v) in logits.floatArray().enumerated() {
                    XCTAssertEqual(Double(v), expected[i], accuracy: 1e-5, "\(symbol) n=\(n) element \(i)")
                }
            }
            // The documented corner cases of the fixture.
            let corners = try c.forward(Tensor([Float](repeating: 0, count: 16) + [Float](repeating: 1, count: 16), shape: [2, 1, 4, 4]))
            XCTAssertEqual(corners.floatArray(), [0, 0.5, 1, -0.5], symbol)
            // An empty batch calls nothing and gives no logits.
            XCTAssertEqual(try c.forward(Tensor(zeros: [0, 1, 4, 4])).shape, [0, 2])
            // Inputs are checked before the C function sees them.
            XCTAssertThrowsError(try c.forward(Tensor(zeros: [2, 1, 4, 5]))) { XCTAssertTrue("\($0)".contains("[N, 1, 4, 4]"), "\($0)") }
            // No gradients.
            XCTAssertThrowsError(try c.vjp(Tensor(zeros: [1, 1, 4, 4]), gradLogits: Tensor(zeros: [1, 2]))) {
                XCTAssertTrue("\($0)".contains("forward-only"), "\($0)")
            }
        }
    }

    func testForeignClassifierRefusesAMismatchedSpec() throws {
        let library = try fixtures().appendingPathComponent("libforeign_model.so")
        XCTAssertThrowsError(try ForeignClassifier(spec: spec(library, symbol: "predict_status"), manifestFile: "/m.json")) {
            let m = QuacError.wrap($0).message
            XCTAssertTrue(m.hasPrefix("/m.json: /classifier/foreign/signature: "), m)
            XCTAssertTrue(m.contains("declares predict") && m.contains("predict_status"), m)
        }
        XCTAssertThrowsError(try ForeignClassifier(spec: spec(library, symbol: "forecast", signature: "void forecast(const float *x, int64_t n, float *y)"),
                                                   manifestFile: "/m.json")) {
            let m = QuacError.wrap($0).message
            XCTAssertTrue(m.hasPrefix("/m.json: /classifier/foreign/symbol: "), m)
            XCTAssertTrue(m.contains("no symbol \"forecast\""), m)
        }
        XCTAssertThrowsError(try ForeignClassifier(spec: spec(library.deletingLastPathComponent().appendingPathComponent("libmissing.so")),
                                                   manifestFile: "/m.json")) {
            XCTAssertTrue(QuacError.wrap($0).message.hasPrefix("/m.json: /classifier/foreign/library: cannot load"), "\($0)")
        }
        XCTAssertThrowsError(try ForeignClassifier(spec: spec(library, signature: "void predict(const float *x, double n, float *logits)"),
                                                   manifestFile: "/m.json")) {
            let m = QuacError.wrap($0).message
            XCTAssertTrue(m.hasPrefix("/m.json: /classifier/foreign/signature: signature "), m)
            XCTAssertTrue(m.contains("unsupported type"), m)
        }
    }

    // MARK: Pipelines

    /// 5 samples 1x4x4 in [-1, 1], labels alternating 0/1.
    func writeSmallDataset(_ dir: URL) throws -> (x: [Float], labels: [Int64]) {
        var rng = SeededRandom(seed: 17)
        let x = (0..<(5 * 16)).map { _ in rng.uniform() * 2 - 1 }
        let labels = (0..<5).map { Int64($0 % 2) }
        try Safetensors.write([("x", Tensor(x, shape: [5, 1, 4, 4])), ("y", Tensor(labels, shape: [5]))],
                              to: dir.appendingPathComponent("small.safetensors"))
        return (x, labels)
    }

    func foreignPipeline(library: URL, symbol: String, signature: String, attributors: [JSONValue]) -> JSONValue {
        [
            "name": "foreign", "output": "out", "seed": 0, "batch_size": 2,
            "data": ["format": "safetensors", "path": "small.safetensors", "x": "x", "label": "y"],
            "classifier": ["foreign": ["library": .string(library.path), "symbol": .string(symbol), "signature": .string(signature),
                                       "num_classes": 2, "input_shape": [1, 4, 4]]],
            "attributors": .array(attributors),
        ]
    }

    func testOcclusionOfTheForeignModelMatchesTheAnalyticDrops() throws {
        let library = try fixtures().appendingPathComponent("libforeign_model.so")
        for (symbol, signature) in [("predict", Self.predictSignature), ("predict_status", Self.statusSignature)] {
            let dir = try TestSupport.tempDir()
            let (x, labels) = try writeSmallDataset(dir)
            let manifest = try TestSupport.writeManifest(dir, foreignPipeline(
                library: library, symbol: symbol, signature: signature,
                attributors: [["plugin": "org.quac.occlusion", "name": "occlusion", "params": ["window": 2]]]))
            let r = try TestSupport.quacHost(["run", "--json", manifest.path])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertEqual(try JSONParser.parse(r.stdout)["samples"]?.intValue, 5)
            let out = dir.appendingPathComponent("out")

            // Predictions are the model's logits.
            let predictions = try Safetensors.read(out.appendingPathComponent("predictions.safetensors"))
            let logits = try XCTUnwrap(predictions.tensors["logits"]).floatArray()
            for (i, e) in Self.analyticLogits(x, n: 5).enumerated() { XCTAssertEqual(Double(logits[i]), e, accuracy: 1e-5) }

            // Occluding a 2x2 window with baseline 0 lowers s by the window's sum w: the class-0 logit drops by
            // w/16, the class-1 logit by -w/16. Windows of 2 with stride 2 tile the 4x4 image, so each pixel's
            // attribution is the drop of its one window.
            let a = try XCTUnwrap(Safetensors.read(out.appendingPathComponent("attributions/occlusion.safetensors")).tensors["attribution"])
            XCTAssertEqual(a.shape, [5, 1, 4, 4])
            let values = a.floatArray()
            var expected = [Double](repeating: 0, count: 5 * 16)
            for s in 0..<5 {
                for r0 in [0, 2] { for c0 in [0, 2] {
                    var w = 0.0
                    for r in r0..<r0 + 2 { for c in c0..<c0 + 2 { w += Double(x[s * 16 + r * 4 + c]) } }
                    let drop = labels[s] == 0 ? w / 16 : -w / 16
                    for r in r0..<r0 + 2 { for c in c0..<c0 + 2 { expected[s * 16 + r * 4 + c] = drop } }
                } }
            }
            for i in values.indices { XCTAssertEqual(Double(values[i]), expected[i], accuracy: 1e-5, "\(symbol) element \(i)") }
            // Not trivially zero: the windows of a random sample have different sums.
            XCTAssertGreaterThan(Set(values.prefix(16)).count, 1)

            // run.json records the foreign function.
            let record = try JSONParser.parse(String(contentsOf: out.appendingPathComponent("run.json"), encoding: .utf8))
            let classifier = try XCTUnwrap(record["plugins"]?[0])
            XCTAssertEqual(classifier["foreign"]?.stringValue, symbol)
            XCTAssertEqual(classifier["signature"]?.stringValue, signature)
            XCTAssertEqual(classifier["library_sha256"]?.stringValue?.count, 64)
        }
    }

    func testGradientMethodsAreRefusedForAForeignClassifierAtValidation() throws {
        let library = try fixtures().appendingPathComponent("libforeign_model.so")
        let dir = try TestSupport.tempDir()
        _ = try writeSmallDataset(dir)
        let manifest = try TestSupport.writeManifest(dir, foreignPipeline(
            library: library, symbol: "predict", signature: Self.predictSignature,
            attributors: [["plugin": "org.quac.saliency", "name": "saliency"]]))
        for args in [["validate", manifest.path], ["run", "-q", manifest.path]] {
            let r = try TestSupport.quacHost(args)
            XCTAssertEqual(r.status, 1, "\(args[0]): \(r.stdout) \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("error: \(manifest.path): /attributors/0: "), r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains("forward-only"), r.stderr)
            XCTAssertTrue(r.stderr.contains("org.quac.saliency"), r.stderr)
        }
        // Refused before anything ran.
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/predictions.safetensors").path))
        XCTAssertEqual(TestSupport.files(under: dir.appendingPathComponent("out")).filter { $0.hasPrefix("attributions/") }, [])
    }
}
