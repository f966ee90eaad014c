import Foundation
import XCTest
@testable import QuacHost

/// `plugins check` survives plugins that crash, and checks every plugin of a library given by path.
final class ConformanceIsolationTests: XCTestCase {
    func testACrashingPluginIsAFailedCheckNotACrashedChecker() throws {
        let fixtures = try TestSupport.fixtures()
        let r = try TestSupport.quacHost(["plugins", "check", fixtures.appendingPathComponent("crashy.json").path])
        XCTAssertEqual(r.status, 1, "a failed check, reported by a checker that exited normally")
        XCTAssertTrue(r.stdout.contains("PASS  org.quac.test.crashy  create"), r.stdout)
        let failLine = r.stdout.split(separator: "\n").first { $0.hasPrefix("FAIL") }
        XCTAssertNotNil(failLine, r.stdout)
        XCTAssertTrue(failLine?.contains("crashed the process (signal 11)") == true, String(failLine ?? ""))
        XCTAssertTrue(r.stdout.contains("org.quac.test.crashy: "), "the summary line is printed after the crash")
    }

    func testCheckingALibraryChecksEachOfItsPlugins() throws {
        let list = try JSONParser.parse(try TestSupport.quacHost(["plugins", "list", "--json"]).stdout)
        let plugins = list["plugins"]?.arrayValue ?? []
        let attributions = plugins.first { $0["id"]?.stringValue == "org.quac.saliency" }?["library"]?.stringValue
        let library = try XCTUnwrap(attributions)
        // Every plugin whose manifest names that library, and no other.
        let expected = Set(plugins.filter { $0["library"]?.stringValue == library }.compactMap { $0["id"]?.stringValue })
        XCTAssertGreaterThanOrEqual(expected.count, 4)
        let r = try TestSupport.quacHost(["plugins", "check", library, "--json"])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        let checked = try JSONParser.parse(r.stdout)["plugins"]?.arrayValue?.compactMap { $0["plugin"]?.stringValue } ?? []
        XCTAssertEqual(Set(checked), expected)
    }

    func testCheckingTheCExampleByItsLibraryPath() throws {
        let example = try TestSupport.buildCExample()
        let r = try TestSupport.quacHost(["plugins", "check", example.appendingPathComponent("build/libc_saliency.so").path])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("org.quac.example.c-saliency: ") && r.stdout.contains(" 0 failed"), r.stdout)
        XCTAssertFalse(r.stdout.contains("FAIL"), r.stdout)
    }
}
