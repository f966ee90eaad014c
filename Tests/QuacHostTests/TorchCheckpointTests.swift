import Foundation
import XCTest
@testable import QuacHost

/// The native reader of torch.save files against PyTorch 1.13's own files (Fixtures/torch-checkpoints,
/// written by scripts/golden/torch_checkpoint_golden.py), hostile files, and `quac-host import` into
/// the CNN classifier and the StarGAN converter, checked against PyTorch's outputs.
final class TorchCheckpointTests: XCTestCase {
    static let fixtures = TestSupport.repoRoot.appendingPathComponent("Tests/QuacHostTests/Fixtures/torch-checkpoints")
    func fixture(_ name: String) -> URL { Self.fixtures.appendingPathComponent(name) }

    func assertBitEqual(_ a: Tensor, _ b: Tensor, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.dtype, b.dtype, what, file: file, line: line)
        XCTAssertEqual(a.shape, b.shape, what, file: file, line: line)
        guard a.byteCount == b.byteCount else { return }
        XCTAssertEqual(memcmp(a.data, b.data, a.byteCount), 0, "\(what): bytes differ", file: file, line: line)
    }

    /// Every tensor of the file equals PyTorch's contiguous copy bit for bit, dtype and shape included.
    func checkDtypes(_ name: String) throws {
        let expected = try Safetensors.read(fixture("dtypes-expected.safetensors"))
        let (named, others) = try TorchCheckpoint.read(fixture(name)).tensors()
        XCTAssertEqual(Set(named.map(\.0)), Set(expected.names), name)
        for (path, t) in named {
            guard let e = expected.tensors[path] else { continue }
            assertBitEqual(t, e, "\(name): \(path)")
        }
        for key in ["count", "name", "ratio", "flag", "nothing", "pair/0", "pair/1"] {
            XCTAssertTrue(others.contains(key), "\(name): \(key) in \(others)")
        }
        guard case .dict(let root) = try TorchCheckpoint.read(fixture(name)).root else { return XCTFail("root is not a dict") }
        let values = Dictionary(root, uniquingKeysWith: { a, _ in a })
        if case .int(let c) = values["count"] { XCTAssertEqual(c, 7) } else { XCTFail("count") }
        if case .string(let s) = values["name"] { XCTAssertEqual(s, "abc") } else { XCTFail("name") }
        if case .float(let r) = values["ratio"] { XCTAssertEqual(r, 0.25) } else { XCTFail("ratio") }
        if case .bool(let f) = values["flag"] { XCTAssertTrue(f) } else { XCTFail("flag") }
    }

    func testEveryDtypeStrideOffsetAndSharedStorageEqualsPyTorch() throws { try checkDtypes("dtypes.pt") }

    func testTheLegacyFormatReadsTheSame() throws { try checkDtypes("dtypes-legacy.pt") }

    /// A pickle that would call os.system or eval is refused naming the global, and runs nothing.
    func testHostileGlobalsAreRefusedAndNothingRuns() throws {
        let dir = try TestSupport.tempDir()
        for (file, global) in [("hostile.pt", "posix.system"), ("hostile-eval.pt", "__builtin__.eval")] {
            XCTAssertThrowsError(try TorchCheckpoint.read(fixture(file)), file) { error in
                let m = "\(error)"
                XCTAssertTrue(m.contains("refused global") && m.contains(global), m)
            }
            let r = try TestSupport.quacHost(["import", fixture(file).path, "--as", "org.quac.cnn-classifier", "--output", dir.appendingPathComponent("m.safetensors").path], cwd: dir)
            XCTAssertEqual(r.status, 1, r.stdout)
            XCTAssertTrue(r.stderr.contains("refused global"), r.stderr)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("hostile-marker").path), "the file's code ran")
        XCTAssertEqual(TestSupport.files(under: dir), [], "nothing written")
    }

    /// Every prefix of a valid file, and copies with flipped bytes, fail with an error (never a crash).
    func testTruncatedAndCorruptedFilesFailCleanly() throws {
        for name in ["dtypes.pt", "dtypes-legacy.pt"] {
            let data = try Data(contentsOf: fixture(name))
            let bytes = [UInt8](data)
            var failures = 0
            for cut in stride(from: 0, to: bytes.count, by: max(bytes.count / 200, 1)) {
                let prefix = Array(bytes[..<cut])
                if (try? prefix.withUnsafeBytes { try TorchCheckpoint.read($0, path: "cut") }) == nil { failures += 1 }
            }
            XCTAssertGreaterThan(failures, 150, name)
            var rng = SeededRandom(seed: 3)
            for _ in 0..<300 {
                var copy = bytes
                for _ in 0..<4 { copy[Int(rng.next() % UInt64(copy.count))] = UInt8(truncatingIfNeeded: rng.next()) }
                _ = try? copy.withUnsafeBytes { try TorchCheckpoint.read($0, path: "flipped") }
            }
        }
    }

    /// Inputs from fuzz-torch (fuzz/README.md) and from reading the code while fixing it: each was a
    /// crash or a hang and is now a thrown error. The legacy-format files share a 25-byte header
    /// (magic number, protocol 1001, empty system info).
    func testFuzzedCheckpointsAreRefused() throws {
        func bytes(_ hex: String) -> [UInt8] {
            stride(from: 0, to: hex.count, by: 2).map { i -> UInt8 in
                let start = hex.index(hex.startIndex, offsetBy: i)
                return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16)!
            }
        }
        func assertRefused(_ input: [UInt8], _ expected: String, line: UInt = #line) {
            XCTAssertThrowsError(try input.withUnsafeBytes { try TorchCheckpoint.read($0, path: "fuzzed.pt") }, line: line) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error)", line: line)
            }
        }
        let legacyHeader = "80028a0a6cfc9c46f9206aa850192e80024de9032e80027d2e"
        // _rebuild_tensor_v2 with a stride of 10,000 nested 1-tuples (TUPLE1 repeated): the error
        // message printed the whole stride and overflowed the stack (fuzz-torch: 5,509 levels, 5,988 bytes).
        let deepStride = bytes(legacyHeader +
            "800263746f7263682e5f7574696c730a5f72656275696c645f74656e736f725f76320a2828580700000073746f7261" +
            "676563746f7263680a466c6f617453746f726167650a58010000003058030000006370754b014e74514b00284b01744e")
            + [UInt8](repeating: 0x85, count: 10_000) + bytes("74522e")
        assertRefused(deepStride, "_rebuild_tensor_v2: a stride entry that is not an integer")
        // A zip64 locator pointing at offset 2^63-1: reading there overflowed (trap) instead of failing.
        assertRefused(bytes("504b0304504b060700000000ffffffffffffff7f01000000504b050600000000ffffffffffffffffffffffff0000"),
                      "zip: truncated (offset 9223372036854775807)")
        // 40 lists, each holding the one before twice (memo): 2^40 values from 360 bytes of pickle.
        var dag = "80025d7100"
        for i in 1...40 { dag += String(format: "5d2868%02x68%02x6571%02x", i - 1, i - 1, i) }
        assertRefused(bytes(legacyHeader + dag + "2e80025d2e"), "more than 1000000 values")
    }

    func testAClassifierStateDictImportsIntoTheCNN() throws {
        let dir = try TestSupport.tempDir()
        let out = dir.appendingPathComponent("cnn.safetensors")
        let params: JSONValue = ["input_shape": [1, 16, 16], "num_classes": 3, "channels": [4, 8], "fc": [16], "dropout": 0]
        let r = try TestSupport.quacHost(["import", fixture("cnn.pt").path, "--as", "org.quac.cnn-classifier", "--params", params.serialized(), "--output", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("imported"), r.stdout)
        let expected = try Safetensors.read(fixture("cnn-expected.safetensors"))
        let m = try PluginRegistry(searchPath: [TestSupport.builtinPlugins]).manifest(id: "org.quac.cnn-classifier")
        var p = params.objectValue!
        p["weights"] = .string(out.path)
        let cnn = try PluginInstance(manifest: m, params: .object(p))
        let logits = try cnn.forward(expected.tensors["x"]!).floatArray()
        let want = expected.tensors["logits"]!.floatArray()
        XCTAssertEqual(logits.count, want.count)
        let worst = zip(logits, want).map { abs($0 - $1) }.max() ?? 1
        XCTAssertLessThan(worst, 1e-5)

        // A network of another shape: stops with the tensor's name, writes nothing.
        let wrong: JSONValue = ["input_shape": [1, 16, 16], "num_classes": 3, "channels": [4, 6], "fc": [16], "dropout": 0]
        let bad = dir.appendingPathComponent("bad.safetensors")
        let w = try TestSupport.quacHost(["import", fixture("cnn.pt").path, "--as", "org.quac.cnn-classifier", "--params", wrong.serialized(), "--output", bad.path])
        XCTAssertEqual(w.status, 1)
        XCTAssertTrue(w.stderr.contains("features.7.weight") || w.stderr.contains("features.3.weight"), w.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: bad.path))
        XCTAssertEqual(TestSupport.files(under: dir).filter { $0.contains("import") }, [], "no staged file left")
    }

    func testAQuacStarGANCheckpointImportsAndGeneratesAsPyTorch() throws {
        let dir = try TestSupport.tempDir()
        let expected = try Safetensors.read(fixture("stargan-expected.safetensors"))
        var params = JSONObject()
        for key in ["image_size", "input_channels", "num_classes", "channels", "max_channels", "style_dim", "latent_dim", "mapping_dim"] {
            params[key] = .int(Int64(try XCTUnwrap(expected.metadata[key].flatMap(Int.init), key)))
        }
        let out = dir.appendingPathComponent("stargan.safetensors")
        let r = try TestSupport.quacHost(["import", fixture("stargan-ema.pt").path, "--as", "org.quac.stargan-converter",
                                          "--params", JSONValue.object(params).serialized(), "--output", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        // Without architecture parameters the checkpoint's shapes give them (the same model file);
        // given ones that disagree stop the import with the ones to give.
        let bare = dir.appendingPathComponent("bare.safetensors")
        let inferred = try TestSupport.quacHost(["import", fixture("stargan-ema.pt").path, "--as", "org.quac.stargan-converter", "--output", bare.path])
        XCTAssertEqual(inferred.status, 0, inferred.stderr)
        XCTAssertEqual(try Safetensors.read(bare).metadata["architecture"], try Safetensors.read(out).metadata["architecture"])
        let wrong = try TestSupport.quacHost(["import", fixture("stargan-ema.pt").path, "--as", "org.quac.stargan-converter",
                                              "--params", #"{"image_size": 64}"#, "--output", dir.appendingPathComponent("wrong.safetensors").path])
        XCTAssertEqual(wrong.status, 1)
        let told = try XCTUnwrap(wrong.stderr.range(of: "give them: ").map { String(wrong.stderr[$0.upperBound...]).trimmingCharacters(in: .whitespacesAndNewlines) })
        XCTAssertEqual(try JSONParser.parse(told), .object(params), wrong.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("wrong.safetensors").path))
        // The imported networks on PyTorch's inputs (the converter's forward_check diagnostics).
        var p = params
        p["weights"] = .string(out.path)
        p["forward_check"] = .string(fixture("stargan-expected.safetensors").path)
        let m = try PluginRegistry(searchPath: [TestSupport.builtinPlugins]).manifest(id: "org.quac.stargan-converter")
        let converter = try PluginInstance(manifest: m, params: .object(p))
        let got = try converter.train(StarGANTests.synth("train", count: 2), val: nil, numClasses: 2,
                                      checkpoints: dir.appendingPathComponent("ck"), seed: 0)
        for name in ["mapping", "style", "generated"] {
            let a = try XCTUnwrap(got.tensors[name], name).floatArray(), b = expected.tensors[name]!.floatArray()
            XCTAssertEqual(a.count, b.count, name)
            let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 1
            XCTAssertLessThan(worst, 1e-5, name)
        }
    }
}
