import Foundation
import XCTest
@testable import QuacHost

/// The StarGAN v2 converter (org.quac.stargan-converter) through the host: its loss terms (with the
/// R1 penalty by double backward) and gradients agree with PyTorch on a tiny configuration, training
/// resumes exactly, it converts with K candidates and reports what did not convert, and it passes
/// `plugins check`.
final class StarGANTests: XCTestCase {
    /// The golden script's configuration (scripts/golden/stargan_golden.py).
    static let tiny: [String: JSONValue] = ["image_size": 32, "input_channels": 1, "num_classes": 2, "channels": 4,
                                            "max_channels": 8, "style_dim": 8, "latent_dim": 4, "mapping_dim": 16]

    func params(_ extra: [String: JSONValue] = [:]) -> JSONValue {
        let p = StarGANTests.tiny.merging(extra) { $1 }
        return .object(JSONObject(p.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }))
    }

    func make(_ params: JSONValue, run: RunContext = RunContext()) throws -> PluginInstance {
        let m = try PluginRegistry(searchPath: [TestSupport.builtinPlugins]).manifest(id: "org.quac.stargan-converter")
        return try PluginInstance(manifest: m, params: params, run: run)
    }

    static func synth(_ split: String, count: Int, size: Int = 32) -> Dataset {
        var o = SynthDataset.Options()
        o.count = count; o.size = size; o.seed = 9
        let samples = SynthDataset.generate(split: split, options: o)
        let x = Tensor(samples.flatMap { $0.image.map { Float($0) / 127.5 - 1 } }, shape: [count, 1, size, size])
        return Dataset(x: x, labels: Tensor(samples.map { Int64($0.label) }, shape: [count]), xCF: nil, target: nil)
    }

    static var fixture: URL {
        TestSupport.repoRoot.appendingPathComponent("Tests/QuacHostTests/Fixtures/stargan-golden/losses.safetensors")
    }

    // (1) Same weights, same batch: D loss (adversarial + R1) and G loss terms of both passes, and
    // the gradient norms of what each pass updates, within 1e-4 of PyTorch (float64).
    func testLossesMatchPyTorch() throws {
        let p = try make(params(["loss_check": .string(StarGANTests.fixture.path)]))
        let dir = try TestSupport.tempDir()
        let out = try p.train(StarGANTests.synth("train", count: 4), val: nil, numClasses: 2,
                              checkpoints: dir.appendingPathComponent("ck"), seed: 0)
        let json = try XCTUnwrap(out.json)
        let file = try Safetensors.read(StarGANTests.fixture)
        var compared = 0
        for name in file.names where name.hasPrefix("expected/") {
            let key = String(name.dropFirst("expected/".count))
            let want = file.tensors[name]!.doubleArray()[0]
            let got = try XCTUnwrap(json[key]?.doubleValue, "no \(key) in \(JSONValue.object(json).serialized())")
            let tol = key.hasSuffix("grad_norm") ? 1e-4 * max(1, abs(want)) : 1e-4
            XCTAssertEqual(got, want, accuracy: tol, key)
            compared += 1
        }
        XCTAssertEqual(compared, 20)
    }

    func savedTensors(_ url: URL) throws -> [String: [Float]] {
        let f = try Safetensors.read(url)
        var out: [String: [Float]] = [:]
        for n in f.names { out[n] = f.tensors[n]!.floatArray() }
        return out
    }

    // (2) N steps in one go equal N/2 + N/2 with a checkpoint in between (networks, EMA networks and
    // optimizer states, bit for bit).
    func testResumeIsExact() throws {
        let dir = try TestSupport.tempDir()
        let train = StarGANTests.synth("train", count: 12)
        let common: [String: JSONValue] = ["batch_size": 2, "lr": 1e-3, "f_lr": 1e-4, "ema": 0.9, "log_every": 1,
                                           "sample_every": 2, "checkpoint_every": 1, "val_every": 0]
        let a = try make(params(common.merging(["steps": 4]) { $1 }))
        _ = try a.train(train, val: nil, numClasses: 2, checkpoints: dir.appendingPathComponent("a"), seed: 3)
        let b1 = try make(params(common.merging(["steps": 2]) { $1 }))
        _ = try b1.train(train, val: nil, numClasses: 2, checkpoints: dir.appendingPathComponent("b"), seed: 3)
        let b2 = try make(params(common.merging(["steps": 4]) { $1 }))
        let out = try b2.train(train, val: nil, numClasses: 2, checkpoints: dir.appendingPathComponent("b"), seed: 3)
        XCTAssertEqual(out.json?["resumed_from_step"]?.intValue, 2)
        XCTAssertEqual(out.json?["history"]?.arrayValue?.count, 4)
        let ca = try savedTensors(dir.appendingPathComponent("a/last.safetensors"))
        let cb = try savedTensors(dir.appendingPathComponent("b/last.safetensors"))
        XCTAssertEqual(Set(ca.keys), Set(cb.keys))
        XCTAssertTrue(ca.keys.contains("discriminator/main.0.weight") && ca.keys.contains("generator_ema/from_rgb.weight")
                      && ca.keys.contains("generator/0.exp_avg"), "\(ca.keys.sorted().prefix(5))")
        for (k, v) in ca { XCTAssertEqual(v, cb[k], k) }
        // The model files (EMA networks) agree too, and the sample grids were written.
        try a.save(to: dir.appendingPathComponent("a.safetensors"))
        try b2.save(to: dir.appendingPathComponent("b.safetensors"))
        XCTAssertEqual(try savedTensors(dir.appendingPathComponent("a.safetensors")), try savedTensors(dir.appendingPathComponent("b.safetensors")))
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("a/samples_000004.png").path))
        // Training moved the weights away from the initial ones.
        let fresh = try make(params())
        try fresh.save(to: dir.appendingPathComponent("fresh.safetensors"))
        XCTAssertNotEqual(try savedTensors(dir.appendingPathComponent("fresh.safetensors"))["generator/from_rgb.weight"],
                          ca["generator_ema/from_rgb.weight"])
    }

    // (3) The conformance validator passes (the helper classifier sees 1x8x8 images).
    func testPluginsCheckPasses() throws {
        let r = try TestSupport.quacHost(["plugins", "check", "org.quac.stargan-converter", "--params",
                                          #"{"image_size":8,"channels":4,"max_channels":8,"style_dim":8,"latent_dim":4,"mapping_dim":16,"candidates":3,"max_tries":2}"#])
        let lines = r.stdout.split(separator: "\n")
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(lines.filter { $0.hasPrefix("FAIL") }.isEmpty, r.stdout + r.stderr)
        for name in ["deterministic under a fixed seed", "batch of 4 equals 4 batches of 1", "no leaked host tensors"] {
            XCTAssertTrue(lines.contains { $0.hasPrefix("PASS") && $0.contains(name) }, "\(name): \(r.stdout)")
        }
    }
}
