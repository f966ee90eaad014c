import Foundation
import XCTest
@testable import QuacHost

/// Where plugin code may come from: not the working directory unless named, never two different
/// manifests for one id, never files anyone may write to (unless allowed).
final class PluginTrustTests: XCTestCase {
    /// A folder holding a copy of the misbehaving fixture (a well-behaved attributor when
    /// QUAC_TEST_MISBEHAVE is unset), its manifest saying `id`.
    func pluginFolder(_ dir: URL, id: String = "org.quac.test.misbehaving", library: String = "libmisbehaving.so") throws -> URL {
        let fixtures = try TestSupport.fixtures()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var manifest = try XCTUnwrap(JSONParser.parse([UInt8](try Data(contentsOf: fixtures.appendingPathComponent("misbehaving.json")))).objectValue)
        manifest["id"] = .string(id)
        manifest["library"] = .string(library)
        _ = try TestSupport.writeManifest(dir, .object(manifest), name: "plugin.json")
        try FileManager.default.copyItem(at: fixtures.appendingPathComponent("libmisbehaving.so"), to: dir.appendingPathComponent(library))
        return dir
    }

    func testTheWorkingDirectorysPluginsFolderIsNotSearchedUnlessNamed() throws {
        let dir = try TestSupport.tempDir()
        _ = try pluginFolder(dir.appendingPathComponent("plugins"), id: "org.quac.test.here")
        let list = try TestSupport.quacHost(["plugins", "list", "--json"], cwd: dir)
        XCTAssertEqual(list.status, 0, list.stderr)
        XCTAssertFalse(list.stdout.contains("org.quac.test.here"), "./plugins was searched")
        let named = try TestSupport.quacHost(["plugins", "list", "--json", "--plugin-path", "plugins"], cwd: dir)
        XCTAssertTrue(named.stdout.contains("org.quac.test.here"), named.stdout)
    }

    /// A manifest claiming a built-in's id is an error where the id is used, naming both manifests.
    func testAnIdDefinedTwiceIsAnErrorNamingBoth() throws {
        let dir = try TestSupport.tempDir()
        let folder = try pluginFolder(dir.appendingPathComponent("mine"), id: "org.quac.saliency")
        let r = try TestSupport.quacHost(["plugins", "check", "org.quac.saliency", "--plugin-path", folder.path])
        XCTAssertEqual(r.status, 1, r.stdout)
        XCTAssertTrue(r.stderr.contains("plugin id org.quac.saliency is defined twice"), r.stderr)
        XCTAssertTrue(r.stderr.contains(folder.appendingPathComponent("plugin.json").path), r.stderr)
        XCTAssertTrue(r.stderr.contains("org.quac.saliency.json"), r.stderr)
        let list = try TestSupport.quacHost(["plugins", "list", "--plugin-path", folder.path])
        XCTAssertTrue(list.stdout.contains("duplicate id"), list.stdout)
    }

    func testWorldWritablePluginFilesAreRefusedUnlessAllowed() throws {
        let dir = try TestSupport.tempDir()
        for (what, path) in [("folder", ""), ("library", "libmisbehaving.so"), ("manifest", "plugin.json")] {
            let folder = try pluginFolder(dir.appendingPathComponent(what))
            let target = path.isEmpty ? folder : folder.appendingPathComponent(path)
            XCTAssertEqual(chmod(target.path, path.isEmpty ? 0o777 : 0o666), 0)
            let refused = try TestSupport.quacHost(["plugins", "check", "org.quac.test.misbehaving", "--plugin-path", folder.path])
            XCTAssertEqual(refused.status, 1, "\(what): \(refused.stdout)")
            XCTAssertTrue(refused.stderr.contains("\(target.path) is world-writable"), "\(what): \(refused.stderr)")
            XCTAssertFalse(refused.stdout.contains("PASS"), "\(what): no check may run")
            let byPath = try TestSupport.quacHost(["plugins", "check", folder.appendingPathComponent("plugin.json").path])
            XCTAssertEqual(byPath.status, 1)
            XCTAssertTrue(byPath.stderr.contains("is world-writable"), "\(what) by path: \(byPath.stderr)")
            let allowed = try TestSupport.quacHost(["plugins", "check", "org.quac.test.misbehaving", "--plugin-path", folder.path, "--allow-writable-plugins"])
            XCTAssertEqual(allowed.status, 0, "\(what): \(allowed.stdout) \(allowed.stderr)")
        }
    }
}
