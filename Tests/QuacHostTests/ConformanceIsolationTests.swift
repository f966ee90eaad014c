import Foundation
import XCTest
@testable import QuacHost

/// `plugins check` survives plugins that crash, abort, exit, hang or flood stderr, leaves no child
/// behind when killed, and checks every plugin of a library given by path.
final class ConformanceIsolationTests: XCTestCase {
    /// `plugins check` of the misbehaving fixture in the given mode.
    func checkMisbehaving(_ mode: String, _ extra: [String] = []) throws -> TestSupport.CommandResult {
        let fixtures = try TestSupport.fixtures()
        return try TestSupport.quacHost(["plugins", "check", fixtures.appendingPathComponent("misbehaving.json").path] + extra,
                                        env: ["QUAC_TEST_MISBEHAVE": mode])
    }

    func testAHangingPluginTimesOutAndIsKilled() throws {
        let started = Date()
        let r = try checkMisbehaving("hang", ["--timeout", "2"])
        XCTAssertEqual(r.status, 1, r.stdout + r.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(started), 60)
        XCTAssertTrue(r.stdout.contains("FAIL  org.quac.test.misbehaving  no hang: no result for 2 s after check"), r.stdout)
        XCTAssertTrue(r.stdout.contains("org.quac.test.misbehaving: "), "the summary line is printed")
    }

    func testAPluginThatExitsZeroMidwayIsAFailure() throws {
        let r = try checkMisbehaving("exit0")
        XCTAssertEqual(r.status, 1, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("PASS  org.quac.test.misbehaving  create"), r.stdout)
        XCTAssertTrue(r.stdout.contains("FAIL  org.quac.test.misbehaving  no early exit: the process ended with exit status 0 after check"), r.stdout)
    }

    func testAnAbortIsAFailedCheck() throws {
        let r = try checkMisbehaving("abort")
        XCTAssertEqual(r.status, 1, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("crashed the process (signal \(SIGABRT))"), r.stdout)
    }

    /// 700 KB on stderr while stdout is being read: both pipes are drained, so the check finishes.
    func testAPluginFloodingStderrDoesNotDeadlockTheChecker() throws {
        let r = try checkMisbehaving("stderr", ["--timeout", "60"])
        XCTAssertEqual(r.status, 0, r.stdout + String(r.stderr.prefix(300)))
        XCTAssertTrue(r.stdout.contains(" 0 failed"), r.stdout)
    }

    /// A checker killed with SIGKILL takes its child with it (the child watches a pipe only the checker holds).
    func testTheChildDiesWithTheChecker() throws {
        let fixtures = try TestSupport.fixtures()
        let p = Process()
        p.executableURL = TestSupport.hostBinary
        p.arguments = ["plugins", "check", fixtures.appendingPathComponent("misbehaving.json").path, "--timeout", "600"]
        var env = ProcessInfo.processInfo.environment
        env["QUAC_TEST_MISBEHAVE"] = "hang"
        env["QUAC_PLUGIN_PATH"] = TestSupport.builtinPlugins.path
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        func children(of pid: Int32) -> [Int32] {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
            return entries.compactMap(Int32.init).filter { child in
                guard let stat = try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8),
                      let close = stat.lastIndex(of: ")") else { return false }
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                return fields.count > 2 && Int32(fields[1]) == pid
            }
        }
        var child: Int32?
        for _ in 0..<200 where child == nil {
            child = children(of: p.processIdentifier).first
            if child == nil { usleep(50_000) }
        }
        let pid = try XCTUnwrap(child, "the checker started a child")
        usleep(500_000)   // let the child reach the hanging call
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        var gone = false
        for _ in 0..<100 where !gone {
            // A zombie (state Z) has exited; its parent, the test process, is not ours to reap.
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            gone = stat.isEmpty || stat.contains(") Z ")
            if !gone { usleep(50_000) }
        }
        XCTAssertTrue(gone, "child \(pid) still running after its checker was killed")
    }

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
