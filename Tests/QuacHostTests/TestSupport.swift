import Foundation
import XCTest
@testable import QuacHost

/// Shared helpers: paths of the repository and the built products, running the CLI, building C
/// fixtures, making small datasets.
enum TestSupport {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Where SwiftPM put the test bundle, and with it quac-host and the plugin bundles.
    static var productsDir: URL {
        if let env = ProcessInfo.processInfo.environment["QUAC_PRODUCTS_DIR"] { return URL(fileURLWithPath: env) }
        for b in Bundle.allBundles where b.bundlePath.hasSuffix(".xctest") { return b.bundleURL.deletingLastPathComponent() }
        return Bundle.main.bundleURL
    }

    static var hostBinary: URL { productsDir.appendingPathComponent("quac-host") }
    static var builtinPlugins: URL { repoRoot.appendingPathComponent("plugins") }

    /// A built-in plugin created in process (its bundle found next to the test runner).
    static func builtin(_ id: String, _ params: JSONValue = [:], run: RunContext? = nil) throws -> PluginInstance {
        let manifest = try PluginRegistry(searchPath: [builtinPlugins]).manifest(id: id)
        if manifest.resolvedLibraryURL() == nil {
            // The bundles sit next to the test runner; say so if the executable's folder is elsewhere.
            setenv("QUAC_PLUGIN_LIB_PATH", productsDir.path, 1)
        }
        return try PluginInstance(manifest: manifest, params: params, run: run)
    }

    static func tempDir(_ name: String = #function) throws -> URL {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quac-tests-\(safe)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    struct CommandResult {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// Runs a program and waits, collecting both streams.
    @discardableResult
    static func run(_ executable: URL, _ args: [String], cwd: URL? = nil, env: [String: String] = [:]) throws -> CommandResult {
        let p = Process()
        p.executableURL = executable
        p.arguments = args
        if let cwd { p.currentDirectoryURL = cwd }
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in env { environment[k] = v }
        p.environment = environment
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Read before waiting so a full pipe cannot block the child.
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return CommandResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    /// Runs quac-host with the built-in plugins on the search path.
    @discardableResult
    static func quacHost(_ args: [String], cwd: URL? = nil, env: [String: String] = [:]) throws -> CommandResult {
        var e = env
        e["QUAC_PLUGIN_PATH"] = ([env["QUAC_PLUGIN_PATH"]].compactMap { $0 } + [builtinPlugins.path]).joined(separator: ":")
        return try run(hostBinary, args, cwd: cwd ?? FileManager.default.temporaryDirectory, env: e)
    }

    nonisolated(unsafe) private static var sharedFixtures: URL?

    /// The C fixture plugins, built once per test process (tests only read them).
    static func fixtures() throws -> URL {
        if let f = sharedFixtures { return f }
        let f = try buildFixtures()
        sharedFixtures = f
        return f
    }

    /// Copies the C fixture plugins into a fresh folder and builds each one next to its manifest.
    static func buildFixtures() throws -> URL {
        let dir = try tempDir("fixtures")
        let src = repoRoot.appendingPathComponent("Tests/QuacHostTests/Fixtures/plugins")
        for f in try FileManager.default.contentsOfDirectory(atPath: src.path) where f.hasSuffix(".json") || f.hasSuffix(".c") || f.hasSuffix(".h") {
            try FileManager.default.copyItem(at: src.appendingPathComponent(f), to: dir.appendingPathComponent(f))
        }
        for f in try FileManager.default.contentsOfDirectory(atPath: dir.path) where f.hasSuffix(".c") {
            let name = String(f.dropLast(2))
            let r = try run(URL(fileURLWithPath: "/usr/bin/env"),
                            ["cc", "-shared", "-fPIC", "-O1", "-I", repoRoot.appendingPathComponent("Sources/PluginAPI/include").path,
                             "-o", dir.appendingPathComponent("lib\(name).so").path, dir.appendingPathComponent(f).path])
            guard r.status == 0 else { throw QuacError("cc \(f) failed: \(r.stderr)") }
        }
        return dir
    }

    /// Builds the SDK's C example with make into `dir`; returns the folder holding its manifest.
    static func buildCExample() throws -> URL {
        let dir = try tempDir("csaliency")
        let example = repoRoot.appendingPathComponent("SDK/examples/c-saliency")
        let build = dir.appendingPathComponent("build")
        let r = try run(URL(fileURLWithPath: "/usr/bin/env"), ["make", "-s", "-C", example.path, "BUILD_DIR=\(build.path)"])
        guard r.status == 0 else { throw QuacError("make c-saliency failed: \(r.stdout) \(r.stderr)") }
        // The manifest names build/libc_saliency.so relative to itself.
        try FileManager.default.copyItem(at: example.appendingPathComponent("c-saliency.json"), to: dir.appendingPathComponent("c-saliency.json"))
        return dir
    }

    nonisolated(unsafe) private static var sharedPythonBridge: URL?

    /// Builds org.quac.python (SDK/python/bridge) once per test process into a temporary folder and
    /// writes its four manifests there, their paths made absolute. Skips the test, saying why, on a
    /// machine without Python's or NumPy's headers (scripts/setup.sh installs them).
    static func pythonBridge() throws -> URL {
        if let b = sharedPythonBridge { return b }
        let source = repoRoot.appendingPathComponent("SDK/python/bridge")
        let available = try run(URL(fileURLWithPath: "/usr/bin/env"), ["make", "-s", "-C", source.path, "available"])
        if available.status != 0 {
            throw XCTSkip("the Python bridge cannot be built here: \(available.stdout)\(available.stderr)")
        }
        let dir = try tempDir("pythonbridge")
        let build = dir.appendingPathComponent("build")
        let r = try run(URL(fileURLWithPath: "/usr/bin/env"), ["make", "-s", "-C", source.path, "BUILD_DIR=\(build.path)"])
        guard r.status == 0 else { throw QuacError("make python bridge failed: \(r.stdout) \(r.stderr)") }
        for f in try FileManager.default.contentsOfDirectory(atPath: source.path) where f.hasSuffix(".json") {
            var text = try String(contentsOf: source.appendingPathComponent(f), encoding: .utf8)
            text = text.replacingOccurrences(of: "\"build/libquac_python.so\"", with: "\"\(build.path)/libquac_python.so\"")
                       .replacingOccurrences(of: "\"../../../", with: "\"\(repoRoot.path)/")
            try text.write(to: dir.appendingPathComponent(f), atomically: true, encoding: .utf8)
        }
        sharedPythonBridge = dir
        return dir
    }

    /// cargo ($CARGO, else the first on PATH); skips the test, saying so, where there is none
    /// (scripts/setup.sh --test installs Debian's).
    static func cargo() throws -> URL {
        var candidates: [String] = []
        if let c = ProcessInfo.processInfo.environment["CARGO"] { candidates.append(c) }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") { candidates.append("\(dir)/cargo") }
        candidates.append("/usr/bin/cargo")
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("cargo is not installed: the Rust SDK's tests are skipped")
        }
        return URL(fileURLWithPath: found)
    }

    /// Builds a cdylib crate with cargo into `dir`/target and copies its plugin manifest into `dir`
    /// (the manifest names target/<profile>/lib<name>.so relative to itself). Returns `dir`.
    static func buildRustPlugin(crate: URL, manifest: String, release: Bool, into dir: URL) throws -> URL {
        let cargo = try cargo()
        let r = try run(cargo, ["build", "-q"] + (release ? ["--release"] : []) + ["--manifest-path", crate.appendingPathComponent("Cargo.toml").path],
                        env: ["CARGO_TARGET_DIR": dir.appendingPathComponent("target").path])
        guard r.status == 0 else { throw QuacError("cargo build \(crate.lastPathComponent) failed: \(r.stdout) \(r.stderr)") }
        try FileManager.default.copyItem(at: crate.appendingPathComponent(manifest), to: dir.appendingPathComponent(manifest))
        return dir
    }

    /// A small image dataset [n, 1, 8, 8] in [-1, 1] with labels, written as safetensors.
    static func writeDataset(_ dir: URL, n: Int = 6, withCounterfactuals: Bool = true, file: String = "data.safetensors") throws -> URL {
        var rng = SeededRandom(seed: 42)
        let x = Tensor((0..<(n * 64)).map { _ in rng.uniform() * 2 - 1 }, shape: [n, 1, 8, 8])
        let cf = Tensor((0..<(n * 64)).map { _ in rng.uniform() * 2 - 1 }, shape: [n, 1, 8, 8])
        let y = Tensor((0..<n).map { Int64($0 % 2) }, shape: [n])
        var tensors: [(String, Tensor)] = [("images", x), ("labels", y)]
        if withCounterfactuals { tensors.append(("counterfactuals", cf)) }
        let url = dir.appendingPathComponent(file)
        try Safetensors.write(tensors, to: url)
        return url
    }

    /// Writes a pipeline manifest into `dir` and returns its URL.
    static func writeManifest(_ dir: URL, _ value: JSONValue, name: String = "pipeline.json") throws -> URL {
        let url = dir.appendingPathComponent(name)
        try value.serialized(pretty: true).write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// Every file under `dir`, relative paths, sorted.
    static func files(under dir: URL) -> [String] {
        guard let e = FileManager.default.enumerator(atPath: dir.path) else { return [] }
        return e.compactMap { $0 as? String }.filter {
            var isDir: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: dir.appendingPathComponent($0).path, isDirectory: &isDir)
            return !isDir.boolValue
        }.sorted()
    }
}
