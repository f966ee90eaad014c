import Foundation
import XCTest
import QuacPluginAPI
@testable import QuacHost

/// The error contract of the CLI on bad input (the issue's "Done when" list): exit status 1, exactly one
/// line on stderr starting with "error: ", naming the file and (where there is one) the field, saying
/// what was expected, and no partial output for the stage that failed.
final class BadInputTests: XCTestCase {
    func fixtures() throws -> URL { try TestSupport.fixtures() }

    // MARK: Helpers

    /// A pipeline that works as given: 6 samples 1x8x8 with counterfactuals, an MLP, the listed
    /// attributors, the insertion scorer.
    func pipeline(data: String = "data.safetensors", dataSpec: JSONValue? = nil, attributors: [JSONValue],
                  scorerParams: JSONValue = ["steps": 4], pluginPaths: [String] = []) -> JSONValue {
        [
            "name": "bad", "output": "out", "seed": 1, "batch_size": 4,
            "plugin_paths": .array(pluginPaths.map { .string($0) }),
            "data": dataSpec ?? ["format": "safetensors", "path": .string(data), "x": "images", "label": "labels",
                                 "x_cf": "counterfactuals"],
            "classifier": ["plugin": "org.quac.mlp-classifier", "params": ["input_shape": [1, 8, 8], "hidden": 6, "seed": 2]],
            "attributors": .array(attributors),
            "scorers": [["plugin": "org.quac.insertion", "name": "ins", "params": scorerParams]],
        ]
    }

    /// Checks the one-line error contract and returns the message (without "error: ").
    @discardableResult
    func assertOneLineError(_ r: TestSupport.CommandResult, contains fragments: [String],
                            file: StaticString = #filePath, line: UInt = #line) -> String {
        XCTAssertEqual(r.status, 1, "exit status; stderr: \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.hasPrefix("error: "), "stderr must start with \"error: \": \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.hasSuffix("\n"), "stderr must be one terminated line: \(r.stderr.debugDescription)", file: file, line: line)
        let lines = r.stderr.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        XCTAssertEqual(lines.count, 1, "stderr must be exactly one line: \(r.stderr.debugDescription)", file: file, line: line)
        let message = String(lines.first ?? "").replacingOccurrences(of: "error: ", with: "", options: .anchored)
        for f in fragments {
            XCTAssertTrue(message.contains(f), "message lacks \(f.debugDescription): \(message)", file: file, line: line)
        }
        return message
    }

    /// No temporary files anywhere, and nothing for the named stages (attributors or scorers).
    func assertNoPartialOutput(_ out: URL, failed names: [String], file: StaticString = #filePath, line: UInt = #line) {
        let files = TestSupport.files(under: out)
        XCTAssertFalse(files.contains { $0.contains(".tmp-") }, "temporary files left: \(files)", file: file, line: line)
        for name in names {
            let leftovers = files.filter {
                $0.hasPrefix("attributions/\(name).") || $0.hasPrefix("scores/\(name).") || $0.contains(".\(name).")
            }
            XCTAssertEqual(leftovers, [], "files of the failed stage \(name)", file: file, line: line)
        }
    }

    /// Nothing at all was attributed or scored.
    func assertNoResults(_ out: URL, file: StaticString = #filePath, line: UInt = #line) {
        let files = TestSupport.files(under: out)
        XCTAssertFalse(files.contains { $0.contains(".tmp-") }, "temporary files left: \(files)", file: file, line: line)
        XCTAssertEqual(files.filter { $0.hasPrefix("attributions/") || $0.hasPrefix("scores/") }, [], file: file, line: line)
    }

    func run(_ manifest: URL, _ extra: [String] = []) throws -> TestSupport.CommandResult {
        // -q: progress lines would go to stderr too; the contract is about the error line.
        try TestSupport.quacHost(["run", "-q", manifest.path] + extra)
    }

    // MARK: Manifest errors

    func testMalformedManifestJSONNamesFileLineAndColumn() throws {
        let dir = try TestSupport.tempDir()
        _ = try TestSupport.writeDataset(dir)
        let good = try TestSupport.writeManifest(dir, pipeline(attributors: [["plugin": "org.quac.saliency"]]))
        var text = try String(contentsOf: good, encoding: .utf8)
        // Drop the comma after the "name" member, which is on its own line of the pretty-printed file.
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let n = try XCTUnwrap(lines.firstIndex { $0.contains("\"name\": \"bad\",") })
        var broken = lines
        broken[n] = broken[n].replacingOccurrences(of: "\"bad\",", with: "\"bad\"")
        text = broken.joined(separator: "\n")
        let manifest = dir.appendingPathComponent("broken.json")
        try text.write(to: manifest, atomically: true, encoding: .utf8)

        for command in ["run", "validate"] {
            let r = try TestSupport.quacHost(command == "run" ? ["run", "-q", manifest.path] : ["validate", manifest.path])
            let message = assertOneLineError(r, contains: [manifest.path, "malformed JSON"])
            // The parser stops at the next member, which starts on the following line.
            XCTAssertTrue(message.contains("line \(n + 2), column "), "\(command): \(message)")
            let column = message.range(of: #"column (\d+)"#, options: .regularExpression).map { String(message[$0].dropFirst(7)) }
            XCTAssertEqual(column.flatMap(Int.init), (broken[n + 1].firstIndex(of: "\"")?.utf16Offset(in: broken[n + 1])).map { $0 + 1 },
                           "\(command): the column of the next member's key: \(message)")
        }
        assertNoResults(dir.appendingPathComponent("out"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out").path))
    }

    func testUnknownPluginIdNamesPointerAndId() throws {
        let dir = try TestSupport.tempDir()
        _ = try TestSupport.writeDataset(dir)
        let manifest = try TestSupport.writeManifest(dir, pipeline(attributors: [["plugin": "org.quac.no-such-method", "name": "nope"]]))
        for r in [try run(manifest), try TestSupport.quacHost(["validate", manifest.path])] {
            assertOneLineError(r, contains: [manifest.path, "/attributors/0/plugin", "unknown plugin id", "\"org.quac.no-such-method\""])
        }
        assertNoResults(dir.appendingPathComponent("out"))
    }

    func testParameterOutOfItsSchemaRange() throws {
        let dir = try TestSupport.tempDir()
        _ = try TestSupport.writeDataset(dir)
        let manifest = try TestSupport.writeManifest(dir, pipeline(attributors: [["plugin": "org.quac.saliency", "name": "sal"]],
                                                                   scorerParams: ["steps": 0]))
        for r in [try run(manifest), try TestSupport.quacHost(["validate", manifest.path])] {
            assertOneLineError(r, contains: [manifest.path, "/scorers/0/params/steps", "must be >= 1", "found 0"])
        }
        // Validation fails before anything runs: no attribution, no score.
        assertNoResults(dir.appendingPathComponent("out"))
    }

    func testUnknownParameterName() throws {
        let dir = try TestSupport.tempDir()
        _ = try TestSupport.writeDataset(dir)
        let manifest = try TestSupport.writeManifest(dir, pipeline(attributors: [["plugin": "org.quac.saliency", "name": "sal"]],
                                                                   scorerParams: ["stepz": 4]))
        for r in [try run(manifest), try TestSupport.quacHost(["validate", manifest.path])] {
            assertOneLineError(r, contains: [manifest.path, "/scorers/0/params", "unexpected property", "\"stepz\"", "steps"])
        }
        assertNoResults(dir.appendingPathComponent("out"))
    }

    // MARK: Plugin libraries that cannot be loaded

    func testABIMajorMismatchIsRefusedNamingBothVersions() throws {
        let hostABI = "\(QUAC_ABI_VERSION_MAJOR).\(QUAC_ABI_VERSION_MINOR)"
        let fx = try fixtures()
        let dir = try TestSupport.tempDir()
        _ = try TestSupport.writeDataset(dir)
        let manifest = try TestSupport.writeManifest(dir, pipeline(attributors: [["plugin": "org.quac.test.future", "name": "future"]],
                                                                   pluginPaths: [fx.path]))
        let message = assertOneLineError(try run(manifest), contains: [manifest.path, "/attributors/0", "libabi_major_mismatch.so", "2.0", hostABI])
        XCTAssertTrue(message.contains("ABI"), message)
        assertNoResults(dir.appendingPathComponent("out"))

        let check = try TestSupport.quacHost(["plugins", "check", "org.quac.test.future", "--plugin-path", fx.path])
        XCTAssertEqual(check.status, 1, check.stdout + check.stderr)
        let fail = check.stdout.split(separator: "\n").filter { $0.hasPrefix("FAIL") }
        XCTAssertEqual(fail.count, 1, check.stdout)
        XCTAssertTrue(fail.first?.contains("2.0") == true && fail.first?.contains(hostABI) == true, check.stdout)
        XCTAssertTrue(check.stdout.contains("org.quac.test.future: 1 passed, 1 failed"), check.stdout)
    }

    func testLibraryWithoutEntrySymbol() throws {
        let fx = try fixtures()
        let dir = try TestSupport.tempDir()
        _ = try TestSupport.writeDataset(dir)
        let manifest = try TestSupport.writeManifest(dir, pipeline(attributors: [["plugin": "org.quac.test.no-entry", "name": "noentry"]],
                                                                   pluginPaths: [fx.path]))
        assertOneLineError(try run(manifest), contains: [manifest.path, "/attributors/0", fx.appendingPathComponent("libno_entry.so").path,
                                                         "missing entry symbol quac_plugin_entry"])
        assertNoResults(dir.appendingPathComponent("out"))
    }

    func testLibraryWhoseDescriptorIdDiffersFromTheManifest() throws {
        let fx = try fixtures()
        let dir = try TestSupport.tempDir()
        _ = try TestSupport.writeDataset(dir)
        let manifest = try TestSupport.writeManifest(dir, pipeline(attributors: [["plugin": "org.quac.test.mismatch", "name": "mismatch"]],
                                                                   pluginPaths: [fx.path]))
        let message = assertOneLineError(try run(manifest), contains: [manifest.path, "/attributors/0",
                                                                       "has no plugin \"org.quac.test.mismatch\"", "org.quac.test.other"])
        XCTAssertTrue(message.contains("libmismatch_id.so"), message)
        assertNoResults(dir.appendingPathComponent("out"))
    }

    // MARK: Data files

    func testTruncatedSafetensorsNamesTheDataFile() throws {
        let dir = try TestSupport.tempDir()
        let data = try TestSupport.writeDataset(dir)
        let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: data.path)[.size] as? Int)
        let h = try FileHandle(forWritingTo: data)
        try h.truncate(atOffset: UInt64(size - 100))
        try h.close()
        let manifest = try TestSupport.writeManifest(dir, pipeline(attributors: [["plugin": "org.quac.saliency", "name": "sal"]]))
        let message = assertOneLineError(try run(manifest), contains: [data.path, "data_offsets", "beyond the data section"])
        XCTAssertTrue(message.hasPrefix(data.path), message)
        assertNoResults(dir.appendingPathComponent("out"))
    }

    func testSafetensorsWithALyingHeaderLength() throws {
        let dir = try TestSupport.tempDir()
        let data = try TestSupport.writeDataset(dir)
        var bytes = [UInt8](try Data(contentsOf: data))
        let lie = UInt64(bytes.count + 40)
        for i in 0..<8 { bytes[i] = UInt8(truncatingIfNeeded: lie >> (8 * UInt64(i))) }
        try Data(bytes).write(to: data)
        let manifest = try TestSupport.writeManifest(dir, pipeline(attributors: [["plugin": "org.quac.saliency", "name": "sal"]]))
        assertOneLineError(try run(manifest), contains: [data.path, "header length", "\(lie) bytes", "only \(bytes.count - 8) bytes"])
        assertNoResults(dir.appendingPathComponent("out"))
    }

    func testSafetensorsWhoseDataOffsetsPointBeyondTheData() throws {
        let dir = try TestSupport.tempDir()
        let data = try TestSupport.writeDataset(dir, withCounterfactuals: false)
        // Rewrite the header so "labels" claims 8 more bytes (and one more element) than the file holds.
        let bytes = [UInt8](try Data(contentsOf: data))
        var length = 0
        for i in 0..<8 { length |= Int(bytes[i]) << (8 * i) }
        let header = try JSONParser.parse(Array(bytes[8..<(8 + length)]))
        var o = try XCTUnwrap(header.objectValue)
        let labels = try XCTUnwrap(o["labels"]?.objectValue)
        let offsets = try XCTUnwrap(labels["data_offsets"]?.arrayValue?.compactMap(\.intValue))
        var changed = labels
        changed["shape"] = [7]
        changed["data_offsets"] = .array([.int(offsets[0]), .int(offsets[1] + 8)])
        o["labels"] = .object(changed)
        var newHeader = Array(JSONValue.object(o).serialized().utf8)
        newHeader += Array(repeating: UInt8(ascii: " "), count: (8 - newHeader.count % 8) % 8)
        let prefix = (0..<8).map { UInt8(truncatingIfNeeded: UInt64(newHeader.count) >> (8 * UInt64($0))) }
        try Data(prefix + newHeader + bytes[(8 + length)...]).write(to: data)

        let spec: JSONValue = ["format": "safetensors", "path": "data.safetensors", "x": "images", "label": "labels"]
        let manifest = try TestSupport.writeManifest(dir, pipeline(dataSpec: spec, attributors: [["plugin": "org.quac.saliency", "name": "sal"]],
                                                                   scorerParams: ["steps": 4]).replacing("scorers", with: []))
        assertOneLineError(try run(manifest), contains: [data.path, "\"labels\"", "data_offsets [\(offsets[0]), \(offsets[1] + 8)]",
                                                         "beyond the data section"])
        assertNoResults(dir.appendingPathComponent("out"))
    }

    /// An NPY file of complex64 samples, written by hand: numpy's v1.0 layout.
    static func writeComplexNPY(_ url: URL, shape: [Int]) throws {
        let dict = "{'descr': '<c8', 'fortran_order': False, 'shape': (\(shape.map(String.init).joined(separator: ", "))), }"
        var header = Array(dict.utf8)
        let unpadded = 10 + header.count + 1
        header += Array(repeating: UInt8(ascii: " "), count: (64 - unpadded % 64) % 64) + [UInt8(ascii: "\n")]
        XCTAssertEqual((10 + header.count) % 64, 0)
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        bytes += [UInt8(header.count & 0xFF), UInt8(header.count >> 8)]
        bytes += header
        var rng = SeededRandom(seed: 9)
        for _ in 0..<(shape.reduce(1, *) * 2) { withUnsafeBytes(of: rng.uniform().bitPattern.littleEndian) { bytes += $0 } }
        try Data(bytes).write(to: url)
    }

    func testNPYWithAnUnsupportedDtype() throws {
        let dir = try TestSupport.tempDir()
        let x = dir.appendingPathComponent("x.npy"), y = dir.appendingPathComponent("y.npy")
        try Self.writeComplexNPY(x, shape: [6, 1, 8, 8])
        try NPY.write(Tensor((0..<6).map { Int64($0 % 2) }, shape: [6]), to: y)
        // The file itself is a well-formed NPY file: only its element type is refused.
        XCTAssertThrowsError(try NPY.read(x)) { XCTAssertTrue("\($0)".contains("complex64"), "\($0)") }
        let manifest = try TestSupport.writeManifest(dir, pipeline(dataSpec: ["format": "npy", "x": "x.npy", "label": "y.npy"],
                                                                   attributors: [["plugin": "org.quac.saliency", "name": "sal"]])
                                                          .replacing("scorers", with: []))
        assertOneLineError(try run(manifest), contains: [x.path, "unsupported dtype", "'<c8'", "complex64"])
        assertNoResults(dir.appendingPathComponent("out"))
    }

    func testNaNInTheDataNamesTheFileAndTheSample() throws {
        let dir = try TestSupport.tempDir()
        var rng = SeededRandom(seed: 4)
        var xs = (0..<(6 * 64)).map { _ in rng.uniform() * 2 - 1 }
        xs[3 * 64 + 5] = .nan
        let data = dir.appendingPathComponent("data.safetensors")
        try Safetensors.write([("images", Tensor(xs, shape: [6, 1, 8, 8])), ("labels", Tensor((0..<6).map { Int64($0 % 2) }, shape: [6])),
                               ("counterfactuals", Tensor(zeros: [6, 1, 8, 8]))], to: data)
        let manifest = try TestSupport.writeManifest(dir, pipeline(attributors: [["plugin": "org.quac.saliency", "name": "sal"]]))
        assertOneLineError(try run(manifest), contains: [data.path, "\"images\"", "sample 3", "NaN"])
        assertNoResults(dir.appendingPathComponent("out"))
    }

    // MARK: Plugins that misbehave while running

    func testAFailingPluginAloneReportsItsMessageAndWritesNothing() throws {
        let fx = try fixtures()
        let dir = try TestSupport.tempDir()
        _ = try TestSupport.writeDataset(dir)
        let manifest = try TestSupport.writeManifest(dir, pipeline(attributors: [["plugin": "org.quac.test.failing", "name": "failing"]],
                                                                   pluginPaths: [fx.path]))
        assertOneLineError(try run(manifest), contains: [manifest.path, "/attributors/0", "org.quac.test.failing",
                                                         "deliberate failure: the model file is corrupt"])
        let out = dir.appendingPathComponent("out")
        assertNoPartialOutput(out, failed: ["failing"])
        assertNoResults(out)
    }

    func testAFailingPluginKeepsTheFinishedWorkOfEarlierStages() throws {
        let fx = try fixtures()
        let dir = try TestSupport.tempDir()
        _ = try TestSupport.writeDataset(dir)
        let manifest = try TestSupport.writeManifest(dir, pipeline(attributors: [
            ["plugin": "org.quac.saliency", "name": "sal"],
            ["plugin": "org.quac.test.failing", "name": "failing"],
        ], pluginPaths: [fx.path]))
        assertOneLineError(try run(manifest), contains: [manifest.path, "/attributors/1", "(org.quac.test.failing)", "attribute failed",
                                                         "deliberate failure: the model file is corrupt"])
        let out = dir.appendingPathComponent("out")
        assertNoPartialOutput(out, failed: ["failing"])
        let files = TestSupport.files(under: out)
        // The earlier attributor finished: its map and its scores are kept, complete and readable.
        XCTAssertTrue(files.contains("attributions/sal.safetensors"), "\(files)")
        XCTAssertTrue(files.contains("scores/sal.json"), "\(files)")
        let sal = try Safetensors.read(out.appendingPathComponent("attributions/sal.safetensors"))
        XCTAssertEqual(sal.tensors["attribution"]?.shape, [6, 1, 8, 8])

        // A rerun reuses the finished stage and fails again on the same plugin, still writing nothing for it.
        let again = try TestSupport.quacHost(["run", "--json", manifest.path])
        assertOneLineError(again, contains: ["/attributors/1", "deliberate failure: the model file is corrupt"])
        assertNoPartialOutput(out, failed: ["failing"])
    }

    func testAPluginOutputOfTheWrongShapeIsRefused() throws {
        let fx = try fixtures()
        let dir = try TestSupport.tempDir()
        _ = try TestSupport.writeDataset(dir)
        let manifest = try TestSupport.writeManifest(dir, pipeline(attributors: [["plugin": "org.quac.test.wrong-shape", "name": "wrong"]],
                                                                   pluginPaths: [fx.path]))
        // Batches of 4: the first call already gets [4, 1] back instead of [4, 1, 8, 8].
        assertOneLineError(try run(manifest), contains: [manifest.path, "/attributors/0", "org.quac.test.wrong-shape", "\"attribution\"",
                                                         "[4, 1]", "[4, 1, 8, 8]"])
        let out = dir.appendingPathComponent("out")
        assertNoPartialOutput(out, failed: ["wrong"])
        assertNoResults(out)
    }

    /// The header says a plugin may return put_tensor's failure as is: the host reports the violation.
    func testAnOutputPutTwiceIsReportedByTheHost() throws {
        let fx = try fixtures()
        let dir = try TestSupport.tempDir()
        _ = try TestSupport.writeDataset(dir)
        let manifest = try TestSupport.writeManifest(dir, pipeline(attributors: [["plugin": "org.quac.test.duplicate-output", "name": "dup"]],
                                                                   pluginPaths: [fx.path]))
        let message = assertOneLineError(try run(manifest), contains: [manifest.path, "/attributors/0", "org.quac.test.duplicate-output",
                                                                       "output \"attribution\" put twice"])
        XCTAssertFalse(message.contains("did not call set_error"), message)
        assertNoPartialOutput(dir.appendingPathComponent("out"), failed: ["dup"])
    }

    // MARK: plugins list / plugins check

    func testPluginsListReportsAMissingLibraryWithoutLoadingCode() throws {
        let dir = try TestSupport.tempDir()
        let pluginDir = dir.appendingPathComponent("plugins-extra")
        try FileManager.default.createDirectory(at: pluginDir, withIntermediateDirectories: true)
        func manifest(_ id: String, _ library: String) -> JSONValue {
            ["id": .string(id), "name": "test", "version": "1.0.0", "kind": "attributor", "abi_version": "1.0",
             "library": .string(library), "requires": [], "parameters": ["type": "object"]]
        }
        _ = try TestSupport.writeManifest(pluginDir, manifest("org.quac.test.not-here", "libnothere.so"), name: "nothere.json")
        // A library that would leave a marker file if anything loaded it.
        let marker = dir.appendingPathComponent("loaded.marker")
        let source = dir.appendingPathComponent("tripwire.c")
        try """
        #include <stdio.h>
        __attribute__((constructor)) static void tripwire(void) { FILE *f = fopen("\(marker.path)", "w"); if (f) fclose(f); }
        """.write(to: source, atomically: true, encoding: .utf8)
        let cc = try TestSupport.run(URL(fileURLWithPath: "/usr/bin/env"),
                                     ["cc", "-shared", "-fPIC", "-o", pluginDir.appendingPathComponent("libtripwire.so").path, source.path])
        XCTAssertEqual(cc.status, 0, cc.stderr)
        _ = try TestSupport.writeManifest(pluginDir, manifest("org.quac.test.tripwire", "libtripwire.so"), name: "tripwire.json")

        let r = try TestSupport.quacHost(["plugins", "list", "--json", "--plugin-path", pluginDir.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let plugins = try XCTUnwrap(JSONParser.parse(r.stdout)["plugins"]?.arrayValue)
        let missing = try XCTUnwrap(plugins.first { $0["id"]?.stringValue == "org.quac.test.not-here" })
        XCTAssertEqual(missing["status"]?.stringValue, "broken")
        XCTAssertTrue(missing["problem"]?.stringValue?.contains("libnothere.so") == true, missing.serialized())
        XCTAssertTrue(missing["problem"]?.stringValue?.contains("not found") == true, missing.serialized())
        let tripwire = try XCTUnwrap(plugins.first { $0["id"]?.stringValue == "org.quac.test.tripwire" })
        XCTAssertEqual(tripwire["status"]?.stringValue, "ok")
        XCTAssertEqual(plugins.first { $0["id"]?.stringValue == "org.quac.saliency" }?["status"]?.stringValue, "ok")

        let text = try TestSupport.quacHost(["plugins", "list", "--plugin-path", pluginDir.path])
        XCTAssertEqual(text.status, 0, text.stderr)
        let row = text.stdout.split(separator: "\n").first { $0.hasPrefix("org.quac.test.not-here") }
        XCTAssertTrue(row?.contains("broken: library \"libnothere.so\" not found") == true, text.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker.path), "plugins list loaded a plugin library")

        // The tripwire is real: checking the plugin does load it.
        _ = try TestSupport.quacHost(["plugins", "check", "org.quac.test.tripwire", "--plugin-path", pluginDir.path])
        XCTAssertTrue(FileManager.default.fileExists(atPath: marker.path), "the tripwire library did not run its constructor when loaded")
    }

    func testPluginsCheckOfTheWrongShapeFixtureFails() throws {
        let fx = try fixtures()
        let r = try TestSupport.quacHost(["plugins", "check", "org.quac.test.wrong-shape", "--plugin-path", fx.path])
        XCTAssertEqual(r.status, 1, r.stdout + r.stderr)
        let fails = r.stdout.split(separator: "\n").filter { $0.hasPrefix("FAIL  org.quac.test.wrong-shape") }
        XCTAssertFalse(fails.isEmpty, r.stdout)
        XCTAssertTrue(fails.contains { $0.contains("\"attribution\" has shape [4, 1], expected [4, 1, 8, 8]") }, r.stdout)
        XCTAssertTrue(r.stdout.split(separator: "\n").contains { $0.hasPrefix("PASS  org.quac.test.wrong-shape  load and negotiate ABI") }, r.stdout)
        let summary = r.stdout.split(separator: "\n").last { $0.hasPrefix("org.quac.test.wrong-shape: ") }
        XCTAssertTrue(summary.map { !$0.hasSuffix(" 0 failed") } ?? false, r.stdout)
    }
}

private extension JSONValue {
    /// A copy of an object with one member replaced.
    func replacing(_ key: String, with value: JSONValue) -> JSONValue {
        guard var o = objectValue else { return self }
        o[key] = value
        return .object(o)
    }
}
