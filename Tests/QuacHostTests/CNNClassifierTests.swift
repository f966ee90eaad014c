import Foundation
import QuacPluginAPI
import XCTest
@testable import QuacHost

/// The engine-based CNN classifier (org.quac.cnn-classifier) through the host: it learns a synthetic
/// image task, resumes training exactly, its vjp agrees with finite differences of its forward, its
/// DeepLift rule sums to the logit difference, and it passes `plugins check`.
final class CNNClassifierTests: XCTestCase {
    /// A small VGG (4 levels of 4-8 feature maps, fc 16-16) for 16x16 images: seconds in a debug build.
    static let small: [String: JSONValue] = ["input_shape": [1, 16, 16], "channels": [4, 8, 8, 8], "fc": [16, 16]]

    func params(_ extra: [String: JSONValue] = [:]) -> JSONValue {
        let p = CNNClassifierTests.small.merging(extra) { $1 }
        return .object(JSONObject(p.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }))
    }

    func make(_ params: JSONValue) throws -> PluginInstance {
        let m = try PluginRegistry(searchPath: [TestSupport.builtinPlugins]).manifest(id: "org.quac.cnn-classifier")
        return try PluginInstance(manifest: m, params: params, run: RunContext())
    }

    /// The synthetic cell images at 16x16: the class is a small bright dot inside one cell.
    static func synth(_ split: String, count: Int) -> Dataset {
        var o = SynthDataset.Options()
        o.count = count; o.size = 16; o.seed = 5
        let samples = SynthDataset.generate(split: split, options: o)
        let shape = [count, 1, 16, 16]
        func floats(_ pick: (SynthDataset.Sample) -> [UInt8]) -> Tensor {
            Tensor(samples.flatMap { pick($0).map { Float($0) / 127.5 - 1 } }, shape: shape)
        }
        return Dataset(x: floats(\.image), labels: Tensor(samples.map { Int64($0.label) }, shape: [count]),
                       xCF: floats(\.counterfactual), target: nil)
    }

    func savedTensors(_ p: PluginInstance, _ dir: URL, _ name: String) throws -> [String: [Float]] {
        let url = dir.appendingPathComponent(name)
        try p.save(to: url)
        let f = try Safetensors.read(url)
        var out: [String: [Float]] = [:]
        for n in f.names { out[n] = f.tensors[n]!.floatArray() }
        return out
    }

    func accuracy(_ c: PluginInstance, _ d: Dataset) throws -> Double {
        let logits = try c.forward(d.x).floatArray(), y = d.labels.int64Array()
        let correct = (0..<d.count).filter { (logits[2 * $0 + 1] > logits[2 * $0] ? 1 : 0) == y[$0] }.count
        return Double(correct) / Double(d.count)
    }

    /// One trained model shared by the tests that need realistic weights and batch-norm statistics.
    nonisolated(unsafe) static var trained: (instance: PluginInstance, history: JSONValue, test: Dataset)?

    func trainedModel() throws -> (instance: PluginInstance, history: JSONValue, test: Dataset) {
        if let t = CNNClassifierTests.trained { return t }
        let dir = try TestSupport.tempDir()
        let train = CNNClassifierTests.synth("train", count: 768), val = CNNClassifierTests.synth("val", count: 128)
        let c = try make(params(["channels": [8, 16, 16, 16], "epochs": 6, "seed": 1, "learning_rate": 2e-3]))
        let out = try c.train(train, val: val, numClasses: 2, checkpoints: dir.appendingPathComponent("ck"), seed: 7)
        let t = (c, out.json.map(JSONValue.object) ?? .null, CNNClassifierTests.synth("test", count: 200))
        CNNClassifierTests.trained = t
        return t
    }

    // (a) Learning: the dot is invisible to a linear model but a small CNN with max pooling finds it.
    func testTrainingReachesTheStatedAccuracyOnHeldOutData() throws {
        let (c, history, test) = try trainedModel()
        let losses = history["train_loss"]?.arrayValue?.compactMap(\.doubleValue) ?? []
        let val = history["val_accuracy"]?.arrayValue?.compactMap(\.doubleValue) ?? []
        XCTAssertEqual(losses.count, 6)
        XCTAssertEqual(val.count, 6, "validation accuracy after every epoch")
        XCTAssertLessThan(losses.last!, losses.first!, "the loss falls")
        let acc = try accuracy(c, test)
        print("CNN held-out accuracy \(acc), validation \(history["val_accuracy"]?.serialized() ?? "")")
        XCTAssertGreaterThanOrEqual(acc, 0.9, "held-out accuracy \(acc); history \(history.serialized())")
    }

    // (b) Exact resume: 2 epochs in one go == 1 epoch, then a new instance resuming for the second.
    func testResumeFromACheckpointIsExact() throws {
        let dir = try TestSupport.tempDir()
        let train = CNNClassifierTests.synth("train", count: 40)
        let p: [String: JSONValue] = ["epochs": 2, "batch_size": 16, "seed": 4]
        let whole = try make(params(p))
        _ = try whole.train(train, val: nil, numClasses: 2, checkpoints: dir.appendingPathComponent("a"), seed: 3)

        var half = p
        half["epochs"] = 1
        _ = try make(params(half)).train(train, val: nil, numClasses: 2, checkpoints: dir.appendingPathComponent("b"), seed: 3)
        let resumed = try make(params(p))
        let out = try resumed.train(train, val: nil, numClasses: 2, checkpoints: dir.appendingPathComponent("b"), seed: 3)
        XCTAssertEqual(out.json?["resumed_from_epoch"]?.intValue, 1)
        XCTAssertEqual(out.json?["train_loss"]?.arrayValue?.count, 2, "the history continues across the restart")

        let a = try savedTensors(whole, dir, "whole.safetensors"), b = try savedTensors(resumed, dir, "resumed.safetensors")
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        XCTAssertTrue(a.keys.contains("features.1.running_mean"), "batch-norm statistics are part of the model")
        for (name, values) in a { XCTAssertEqual(values, b[name]!, "\(name) differs after resuming") }

        // The same seed gives the same weights; another seed other ones.
        let again = try make(params(p))
        _ = try again.train(train, val: nil, numClasses: 2, checkpoints: dir.appendingPathComponent("c"), seed: 3)
        XCTAssertEqual(try savedTensors(again, dir, "again.safetensors"), a)

        // A saved model loads into a new instance (and through the "weights" parameter) unchanged.
        let loaded = try make(params(["weights": .string(dir.appendingPathComponent("whole.safetensors").path)]))
        XCTAssertTrue(try loaded.forward(train.x).bitwiseEqual(try whole.forward(train.x)))
        // Weights of another architecture are refused with a reason.
        XCTAssertThrowsError(try make(params(["channels": [4, 8, 8, 16],
                                               "weights": .string(dir.appendingPathComponent("whole.safetensors").path)]))) {
            XCTAssertTrue("\($0)".contains("architecture"), "\($0)")
        }
    }

    // (c) vjp against central finite differences of forward, coordinate by coordinate. The network is
    // piecewise linear in x (conv, batch norm in eval mode, ReLU, max pooling, linear), so inside one
    // linear piece a difference quotient is exact up to float32 rounding of the forward pass. A step
    // that crosses a kink (a ReLU turns, a max-pool argmax changes) at distance a < h makes the forward
    // and backward quotients differ by |D| (h - a) / h for a slope change D, and the central one err by
    // half that; such coordinates are skipped (the quotients over the four half-steps of [-h, h] more
    // than the tolerance apart: a kink on each side can bend the forward and backward quotients alike),
    // while a wrong gradient is not hidden by the filter. h = 3e-3: the trained network on 8-bit images has kinks
    // within 1e-2 of many pixels. Tolerance 1e-2 of the largest gradient component: the logits'
    // float32 rounding (sums of 144-term convolutions and 64-wide layers whose partial sums are larger
    // than the logits) reaches ~1e-5, i.e. ~2e-3 in a quotient over 2h = 6e-3, and the GEMM blocking
    // of the engine changes which rounding a coordinate gets; measured errors have reached 5e-3 of the
    // scale, while a wrong gradient is off by a large fraction of it.
    func testVJPAgreesWithFiniteDifferences() throws {
        let (c, _, test) = try trainedModel()
        let x = test.x.rows(0..<2).copy()
        let d = 256, h: Float = 3e-3
        var rng = SeededRandom(seed: 11)
        let g = Tensor((0..<4).map { _ in rng.uniform() * 2 - 1 }, shape: [2, 2])
        let gx = try c.vjp(x, gradLogits: g).gradX.floatArray()
        let scale = Double(gx.map { abs($0) }.max()!)
        XCTAssertGreaterThan(scale, 0)

        // Probes: x + t h e_i for t in 1, 1/2, 0, -1/2, -1, for 32 coordinates of each sample, in one batch.
        let coords = (0..<32).map { _ in Int(rng.next() % UInt64(d)) }
        let xs = x.floatArray()
        var probes: [Float] = []
        for s in 0..<2 {
            for i in coords {
                for sign: Float in [1, 0.5, 0, -0.5, -1] {
                    var v = Array(xs[(s * d)..<((s + 1) * d)])
                    v[i] += sign * h
                    probes += v
                }
            }
        }
        let f = try c.forward(Tensor(probes, shape: [probes.count / d, 1, 16, 16])).floatArray()
        func dot(_ row: Int, _ s: Int) -> Double {
            let a = Double(g.floats[2 * s]) * Double(f[2 * row])
            return a + Double(g.floats[2 * s + 1]) * Double(f[2 * row + 1])
        }
        let tolerance = 1e-2 * scale
        var checked = 0, worst = 0.0
        for s in 0..<2 {
            for (k, i) in coords.enumerated() {
                let row = (s * coords.count + k) * 5
                let values = (0..<5).map { dot(row + $0, s) }  // at +h, +h/2, 0, -h/2, -h
                let plus = values[0], minus = values[4]
                // One linear piece over [-h, h]: the quotients over its four halves agree (comparing only
                // the two sides of 0 misses a kink on each side that bends both the same way).
                let quotients = (0..<4).map { (values[$0] - values[$0 + 1]) / Double(h / 2) }
                if quotients.max()! - quotients.min()! > tolerance { continue }  // a kink within +-h
                let err = abs((plus - minus) / Double(2 * h) - Double(gx[s * d + i]))
                XCTAssertLessThanOrEqual(err, tolerance, "sample \(s), pixel \(i): central difference \((plus - minus) / Double(2 * h)), vjp \(gx[s * d + i])")
                worst = max(worst, err)
                checked += 1
            }
        }
        XCTAssertGreaterThanOrEqual(checked, 24, "enough coordinates lie inside one linear piece")
        print("CNN vjp vs FD: \(checked) of \(2 * coords.count) coordinates, max error \(worst) (relative to the scale \(worst / scale)), tolerance \(tolerance), gradient scale \(scale)")
    }

    // (d) DeepLift rescale with the counterfactual as baseline. The engine applies Captum's max-pool
    // rule (the pooled difference is routed through both argmaxes and divided by x - x0), so summation
    // to delta is exact in exact arithmetic for this conv + BN(eval) + ReLU + max-pool network; what is
    // left is float32 rounding of the multipliers (quotients of activation differences), bounded here by
    // 1e-3 of max(1, |delta|).
    func testDeepLiftSumsToTheLogitDifference() throws {
        let (c, _, test) = try trainedModel()
        let n = 8
        let x = test.x.rows(0..<n).copy(), x0 = test.xCF!.rows(0..<n).copy()
        let labels = test.labels.int64Array()
        let onehot = Tensor(zeros: [n, 2])
        for s in 0..<n { onehot.floats[s * 2 + Int(labels[s])] = 1 }
        let m = try c.vjpRule(QUAC_RULE_DEEPLIFT_RESCALE, x: x, baseline: x0, gradLogits: onehot).floatArray()
        let fx = try c.forward(x).floatArray(), f0 = try c.forward(x0).floatArray()
        let d = 256
        var worst = 0.0
        for s in 0..<n {
            var total = 0.0
            for i in 0..<d {
                let dx = Double(x.floats[s * d + i]) - Double(x0.floats[s * d + i])
                total += Double(m[s * d + i]) * dx
            }
            let y = Int(labels[s])
            let delta = Double(fx[s * 2 + y]) - Double(f0[s * 2 + y])
            let err = abs(total - delta)
            worst = max(worst, err / max(1, abs(delta)))
            XCTAssertLessThanOrEqual(err, 1e-3 * max(1, abs(delta)), "sample \(s): attributions sum to \(total), f_y(x) - f_y(x0) = \(delta)")
        }
        print("CNN DeepLift summation-to-delta: worst error \(worst) relative to max(1, |delta|)")
        // A baseline is required; guided backprop differs from the plain gradient and needs none.
        XCTAssertThrowsError(try c.rawVJPRule(QUAC_RULE_DEEPLIFT_RESCALE, x: x, baseline: nil, gradLogits: onehot))
        let guided = try c.vjpRule(QUAC_RULE_GUIDED_BACKPROP, x: x, baseline: nil, gradLogits: onehot)
        let plain = try c.vjp(x, gradLogits: onehot).gradX
        XCTAssertTrue(guided.isFinite)
        XCTAssertNotEqual(guided.floatArray(), plain.floatArray())
    }

    func testBadInputsAreRefusedWithReasons() throws {
        let c = try make(params())
        XCTAssertThrowsError(try c.rawForward(Tensor(zeros: [2, 1, 16, 16], dtype: .float64))) { XCTAssertTrue("\($0)".contains("float32"), "\($0)") }
        XCTAssertThrowsError(try c.rawForward(Tensor(zeros: [2, 1, 8, 8]))) { XCTAssertTrue("\($0)".contains("[N, 1, 16, 16]"), "\($0)") }
        let nan = Tensor(zeros: [1, 1, 16, 16])
        nan.floats[3] = .nan
        XCTAssertThrowsError(try c.rawForward(nan)) { XCTAssertTrue("\($0)".contains("NaN"), "\($0)") }
        XCTAssertEqual(try c.rawForward(Tensor(zeros: [0, 1, 16, 16])).shape, [0, 2])
        XCTAssertThrowsError(try make(params(["input_shape": [1, 8, 8]]))) { XCTAssertTrue("\($0)".contains("too small"), "\($0)") }
        // A custom architecture must fit input_shape and num_classes.
        let arch: JSONValue = ["type": "sequential", "layers": [["type": "flatten"], ["type": "linear", "in": 256, "out": 3]]]
        XCTAssertThrowsError(try make(["input_shape": [1, 16, 16], "architecture": arch])) { XCTAssertTrue("\($0)".contains("[1, 2]"), "\($0)") }
        XCTAssertEqual(try make(["input_shape": [1, 16, 16], "num_classes": 3, "architecture": arch]).forward(Tensor(zeros: [2, 1, 16, 16])).shape, [2, 3])
    }

    // (e) The conformance validator passes, including its finite-difference check (which tries
    // several step sizes, since a ReLU/max-pool network has kinks within a large step).
    func testPluginsCheckPasses() throws {
        let r = try TestSupport.quacHost(["plugins", "check", "org.quac.cnn-classifier", "--params",
                                          #"{"input_shape":[1,16,16],"channels":[4,8,8,8],"fc":[16,16]}"#])
        let lines = r.stdout.split(separator: "\n")
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(lines.filter { $0.hasPrefix("FAIL") }.isEmpty, r.stdout + r.stderr)
        XCTAssertGreaterThanOrEqual(lines.filter { $0.hasPrefix("PASS") }.count, 25, r.stdout)
        for name in ["forward: batch of 4 equals 4 batches of 1", "vjp: batch of 4 equals 4 batches of 1",
                     "vjp: shape and agreement with finite differences",
                     "vjp_rule DeepLift rescale", "vjp_rule guided backprop", "no leaked host tensors"] {
            XCTAssertTrue(lines.contains { $0.hasPrefix("PASS") && $0.contains(name) }, "\(name): \(r.stdout)")
        }
    }
}
