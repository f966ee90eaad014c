import Foundation
import XCTest
import QuacPluginAPI
@testable import QuacHost

/// ABI 1.1: error messages belong to their call, plugins built against 1.0 still load and pass the
/// conformance check, and host services are reachable by id.
final class ABIVersionTests: XCTestCase {
    /// Eight concurrent calls of a reentrant plugin fail at once; each reports its own message.
    func testConcurrentFailuresKeepTheirOwnMessages() throws {
        let fx = try TestSupport.fixtures()
        let registry = PluginRegistry(searchPath: [fx])
        let plugin = try PluginInstance(manifest: try registry.manifest(id: "org.quac.test.concurrent-failing"))
        XCTAssertTrue(plugin.descriptor.reentrant)
        let messages = UnsafeMutableBufferPointer<String>.allocate(capacity: 8)
        messages.initialize(repeating: "")
        defer { messages.deallocate() }
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            let batch = BatchInputs(x: Tensor(zeros: [1, 1, 2, 2]), seed: UInt64(100 + i))
            do { _ = try plugin.attribute(batch); messages[i] = "no error" } catch { messages[i] = "\(error)" }
        }
        for i in 0..<8 {
            XCTAssertTrue(messages[i].hasSuffix("failure of the call with seed \(100 + i)"), "call \(i): \(messages[i])")
        }
    }

    func testAPluginBuiltAgainstABI10PassesTheCheckAndRuns() throws {
        let fx = try TestSupport.fixtures()
        let check = try TestSupport.quacHost(["plugins", "check", "org.quac.test.legacy-1-0", "--plugin-path", fx.path])
        XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
        XCTAssertTrue(check.stdout.contains("library ABI 1.0, host 1.2"), check.stdout)
        let dir = try TestSupport.tempDir()
        _ = try TestSupport.writeDataset(dir)
        let manifest = try TestSupport.writeManifest(dir, [
            "name": "legacy", "output": "out", "plugin_paths": [.string(fx.path)],
            "data": ["format": "safetensors", "path": "data.safetensors", "x": "images", "label": "labels"],
            "classifier": ["plugin": "org.quac.mlp-classifier"],
            "attributors": [["plugin": "org.quac.test.legacy-1-0", "name": "legacy"]],
        ])
        let run = try TestSupport.quacHost(["run", "-q", manifest.path])
        XCTAssertEqual(run.status, 0, run.stderr)
        let maps = try Safetensors.read(dir.appendingPathComponent("out/attributions/legacy.safetensors")).tensors["attribution"]
        XCTAssertEqual(maps?.shape, [6, 1, 8, 8])
    }

    /// The host's table reaches get_extension (its struct_size covers it), which answers NULL for an
    /// id it does not offer.
    func testHostExtensionsAreLookedUpById() throws {
        let context = PluginContext(label: "test", run: nil)
        let host = context.host
        XCTAssertEqual(host.pointee.abi_minor, 2)
        XCTAssertGreaterThanOrEqual(Int(host.pointee.struct_size), MemoryLayout<quac_host>.offset(of: \quac_host.get_extension)! + MemoryLayout<UnsafeRawPointer>.size)
        let getExtension = try XCTUnwrap(host.pointee.get_extension)
        XCTAssertNil("quac.host.no-such-service/1".withCString { getExtension(host, $0) })
    }
}
