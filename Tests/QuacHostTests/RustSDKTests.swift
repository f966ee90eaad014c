import Foundation
import XCTest
@testable import QuacHost

/// The Rust SDK (SDK/rust/quac-plugin): its ABI types against the C header, the Rust Saliency example
/// against the C one, and a panic inside a plugin turned into an error while the run goes on.
final class RustSDKTests: XCTestCase {
    let crate = TestSupport.repoRoot.appendingPathComponent("SDK/rust/quac-plugin")
    let example = TestSupport.repoRoot.appendingPathComponent("SDK/examples/rust-saliency")

    func testTheCratesTypesHaveTheHeadersLayout() throws {
        let cargo = try TestSupport.cargo()
        let dir = try TestSupport.tempDir()
        let r = try TestSupport.run(cargo, ["test", "--test", "layout", "--manifest-path", crate.appendingPathComponent("Cargo.toml").path],
                                    env: ["CARGO_TARGET_DIR": dir.appendingPathComponent("target").path])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("every_size_alignment_offset_and_constant_equals_the_c_header ... ok"), r.stdout)
    }

    func pipeline(_ data: URL, attributors: [JSONValue], paths: [URL]) -> JSONValue {
        [
            "name": "rust", "output": "out", "seed": 3, "batch_size": 4,
            "plugin_paths": .array(paths.map { .string($0.path) }),
            "data": ["format": "safetensors", "path": .string(data.lastPathComponent), "x": "images", "label": "labels", "x_cf": "counterfactuals"],
            "classifier": ["plugin": "org.quac.mlp-classifier", "params": ["input_shape": [1, 8, 8], "hidden": 12, "seed": 5]],
            "attributors": .array(attributors),
        ]
    }

    func testRustSaliencyEqualsTheCExampleAndIsCheckedByItsCargoPath() throws {
        let dir = try TestSupport.tempDir()
        let rust = try TestSupport.buildRustPlugin(crate: example, manifest: "rust-saliency.json", release: true, into: dir.appendingPathComponent("rust"))
        let c = try TestSupport.buildCExample()
        // The library Cargo built, by its path: the manifest is found in the crate above target/.
        let check = try TestSupport.quacHost(["plugins", "check", rust.appendingPathComponent("target/release/librust_saliency.so").path])
        XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
        XCTAssertTrue(check.stdout.contains("org.quac.example.rust-saliency: ") && check.stdout.contains(" 0 failed"), check.stdout)

        let data = try TestSupport.writeDataset(dir)
        var attributors: [JSONValue] = []
        let variants: [(String, JSONValue)] = [("abs", [:]), ("signed-input", ["absolute": false, "multiply_by_input": true])]
        for (suffix, params) in variants {
            attributors.append(["plugin": "org.quac.example.rust-saliency", "name": .string("rust-\(suffix)"), "params": params])
            attributors.append(["plugin": "org.quac.example.c-saliency", "name": .string("c-\(suffix)"), "params": params])
        }
        let manifest = try TestSupport.writeManifest(dir, pipeline(data, attributors: attributors, paths: [rust, c]))
        let r = try TestSupport.quacHost(["run", manifest.path, "-q"])
        XCTAssertEqual(r.status, 0, r.stderr)
        for (suffix, _) in variants {
            let a = try Safetensors.read(dir.appendingPathComponent("out/attributions/rust-\(suffix).safetensors")).tensors["attribution"]!.floatArray()
            let b = try Safetensors.read(dir.appendingPathComponent("out/attributions/c-\(suffix).safetensors")).tensors["attribution"]!.floatArray()
            XCTAssertEqual(a.count, 6 * 64)
            XCTAssertGreaterThan(a.map(abs).max()!, 0)
            XCTAssertEqual(a, b, "the same gradient, the same arithmetic: bitwise equal (\(suffix))")
        }
        let signed = try Safetensors.read(dir.appendingPathComponent("out/attributions/rust-signed-input.safetensors")).tensors["attribution"]!.floatArray()
        XCTAssertTrue(signed.contains { $0 < 0 })
    }

    func testAPanicInsideAttributeBecomesAnErrorWithItsMessageAndTheRunGoesOn() throws {
        let dir = try TestSupport.tempDir()
        let fixture = TestSupport.repoRoot.appendingPathComponent("Tests/QuacHostTests/Fixtures/rust-panics")
        let plugin = try TestSupport.buildRustPlugin(crate: fixture, manifest: "rust-panics.json", release: false, into: dir.appendingPathComponent("panics"))
        let data = try TestSupport.writeDataset(dir)
        let manifest = try TestSupport.writeManifest(dir, pipeline(data, attributors: [
            ["plugin": "org.quac.test.rust-panics", "name": "panics", "params": ["message": "deliberate panic"]],
            ["plugin": "org.quac.test.rust-panics", "name": "fails", "params": ["panic": false, "message": "deliberate error"]],
            ["plugin": "org.quac.saliency", "name": "saliency"],
        ], paths: [plugin]))
        let r = try TestSupport.quacHost(["run", manifest.path, "-q"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("panic: deliberate panic (4 queries) (at src/lib.rs:21)"), r.stderr)
        XCTAssertFalse(r.stderr.contains("panicked at"), "a caught panic is reported once, through the error: \(r.stderr)")
        XCTAssertTrue(r.stderr.contains("deliberate error (4 queries)"), r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/attributions/saliency.safetensors").path), "the other method ran")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/attributions/panics.safetensors").path))
    }
}
