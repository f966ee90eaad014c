import Foundation
import XCTest
@testable import QuacCore

final class SafetensorsTests: XCTestCase {
    // MARK: Round trips

    func testRoundTripEveryDTypeScalarsEmptyAndMetadata() throws {
        let dir = try makeTemporaryDirectory()
        let url = dir.appendingPathComponent("all.safetensors")
        var tensors: [(String, Tensor)] = DType.allCases.enumerated().map { i, dtype in
            ("t_\(dtype.rawValue)", patternTensor(dtype, shape: [2, i + 1, 3], seed: i))
        }
        tensors += [
            ("scalar", Tensor([4.5], shape: [])),
            ("empty", Tensor(zeros: [0, 3], dtype: .float16)),
            ("image", patternTensor(.float32, shape: [2, 3, 4, 5])),
        ]
        let metadata = ["arch": #"{"layers":[1,2]}"#, "note": "unicode é ✓", "empty": ""]
        try Safetensors.write(tensors, metadata: metadata, to: url)

        let file = try Safetensors.read(url)
        XCTAssertEqual(file.names, tensors.map(\.0))
        XCTAssertEqual(file.metadata, metadata)
        XCTAssertEqual(file.tensors.count, tensors.count)
        for (name, written) in tensors {
            let read = try XCTUnwrap(file.tensors[name], name)
            XCTAssertEqual(read.dtype, written.dtype, name)
            XCTAssertEqual(read.shape, written.shape, name)
            XCTAssertEqual(tensorBytes(read), tensorBytes(written), name)
        }
        XCTAssertEqual(file.tensors["scalar"]?.floatArray(), [4.5])
        XCTAssertEqual(file.tensors["empty"]?.count, 0)
    }

    func testWrittenLayoutMatchesThePythonLibrary() throws {
        let dir = try makeTemporaryDirectory()
        let url = dir.appendingPathComponent("layout.safetensors")
        let a = Tensor([Float](arrayLiteral: 1, 2, 3), shape: [3])
        let b = Tensor([Int64(-1)], shape: [1, 1])
        try Safetensors.write([("b", b), ("a", a)], metadata: ["k": "v"], to: url)

        let raw = [UInt8](try Data(contentsOf: url))
        let headerLength = Int(raw[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        XCTAssertEqual(headerLength % 8, 0, "header padded to a multiple of 8")
        let headerText = String(decoding: raw[8..<8 + headerLength], as: UTF8.self)
        let json = #"{"__metadata__":{"k":"v"},"b":{"dtype":"I64","shape":[1,1],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[3],"data_offsets":[8,20]}}"#
        XCTAssertTrue(headerText.hasPrefix(json), headerText)
        XCTAssertEqual(headerText.dropFirst(json.count).filter { $0 != " " }, "", "padding is spaces only")
        XCTAssertLessThan(headerLength - json.utf8.count, 8, "at most 7 spaces of padding")
        XCTAssertEqual(raw.count, 8 + headerLength + 20)
        XCTAssertEqual(Array(raw[(8 + headerLength)...]), tensorBytes(b) + tensorBytes(a))
    }

    func testNoTensorsAndNoMetadata() throws {
        let dir = try makeTemporaryDirectory()
        let url = dir.appendingPathComponent("none.safetensors")
        try Safetensors.write([], to: url)
        let raw = [UInt8](try Data(contentsOf: url))
        XCTAssertEqual(raw, littleEndianBytes(UInt64(8)) + Array("{}      ".utf8))
        let file = try Safetensors.read(url)
        XCTAssertEqual(file.names, [])
        XCTAssertEqual(file.metadata, [:])
    }

    func testReadTensorsViewTheMappingAndOutliveTheFile() throws {
        let dir = try makeTemporaryDirectory()
        let url = dir.appendingPathComponent("view.safetensors")
        try Safetensors.write([("x", Tensor([Float](arrayLiteral: 1, 2, 3, 4), shape: [2, 2])), ("y", Tensor([Float(5)], shape: [1]))], to: url)
        let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int)

        var x: Tensor?
        do {
            let file = try Safetensors.read(url)
            x = file.tensors["x"]
            let y = try XCTUnwrap(file.tensors["y"])
            XCTAssertTrue(x!.storage === y.storage, "both tensors view one mapping")
            XCTAssertEqual(x!.storage.byteCount, size, "the storage is the whole mapped file")
            XCTAssertEqual(y.offset - x!.offset, 16)
        }
        try FileManager.default.removeItem(at: url)
        // The mapping stays valid after the file struct is gone and the file is unlinked.
        XCTAssertEqual(x?.floatArray(), [1, 2, 3, 4])
    }

    func testDataOrderIsReportedWhateverTheHeaderOrder() throws {
        let dir = try makeTemporaryDirectory()
        let url = dir.appendingPathComponent("order.safetensors")
        // Header lists "late" first; its data comes second. Empty tensors sit between without breaking tiling.
        let header = #"{"late":{"dtype":"U8","shape":[2],"data_offsets":[3,5]},"gap":{"dtype":"F32","shape":[0],"data_offsets":[3,3]},"early":{"shape":[3],"data_offsets":[0,3],"dtype":"I8","extra":1}}"#
        try Data(Self.file(header: header, data: [1, 2, 3, 4, 5])).write(to: url)
        let file = try Safetensors.read(url)
        XCTAssertEqual(file.names, ["early", "gap", "late"])
        XCTAssertEqual(file.tensors["early"]?.doubleArray(), [1, 2, 3])
        XCTAssertEqual(file.tensors["late"]?.doubleArray(), [4, 5])
        XCTAssertEqual(file.tensors["gap"]?.shape, [0])
    }

    func testMisalignedTensorIsCopiedToAlignedMemory() throws {
        let dir = try makeTemporaryDirectory()
        let url = dir.appendingPathComponent("misaligned.safetensors")
        let w = Tensor([1.5, -2.5], shape: [2])
        try Safetensors.write([("bytes", Tensor(zeros: [3], dtype: .uint8)), ("w", w)], to: url)
        let t = try XCTUnwrap(Safetensors.read(url).tensors["w"])
        XCTAssertEqual(Int(bitPattern: t.data) % 4, 0)
        XCTAssertEqual(t.floatArray(), [1.5, -2.5])
    }

    func testTheBfloat16AndFloat16ValuesDecode() throws {
        let dir = try makeTemporaryDirectory()
        let url = dir.appendingPathComponent("half.safetensors")
        let header = #"{"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[6,10]}}"#
        // F16 1.0, -2.0, 0.5; BF16 1.0, -3.0
        try Data(Self.file(header: header, data: [0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38, 0x80, 0x3F, 0x40, 0xC0])).write(to: url)
        let file = try Safetensors.read(url)
        XCTAssertEqual(file.tensors["h"]?.doubleArray(), [1, -2, 0.5])
        XCTAssertEqual(file.tensors["b"]?.doubleArray(), [1, -3])
    }

    // MARK: Malformed files

    /// 8-byte little-endian length, header, data.
    static func file(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
        let h = Array(header.utf8)
        return littleEndianBytes(declaredLength ?? UInt64(h.count)) + h + data
    }

    func testEveryMalformedHeaderIsRejectedWithItsField() throws {
        let dir = try makeTemporaryDirectory()
        func entry(_ dtype: String = #""F32""#, _ shape: String = "[2]", _ offsets: String = "[0,8]") -> String {
            #"{"dtype":\#(dtype),"shape":\#(shape),"data_offsets":\#(offsets)}"#
        }
        let cases: [(String, [UInt8], [String])] = [
            ("short", [1, 2, 3, 4, 5], ["header length: file is 5 bytes, shorter than the 8-byte header length"]),
            ("huge-header", littleEndianBytes(UInt64(200_000_000)) + Array("{}".utf8), ["header length: 200000000 bytes exceeds the 100000000-byte limit"]),
            ("beyond-file", Self.file(header: "{}", declaredLength: 100), ["header length: 100 bytes but the file has only 2 bytes after it"]),
            ("not-utf8", littleEndianBytes(UInt64(3)) + [0x7B, 0xFF, 0x7D], ["header: not valid UTF-8"]),
            ("bad-json", Self.file(header: #"{"a": }"#), ["header: not valid JSON: line 1, column 7: expected a value"]),
            ("not-object", Self.file(header: "[1,2]"), ["header: must begin with '{', found byte 0x5b"]),
            ("leading-space", Self.file(header: " {}"), ["header: must begin with '{', found byte 0x20"]),
            ("empty-header", Self.file(header: ""), ["header: must begin with '{', found nothing"]),
            ("entry-not-object", Self.file(header: #"{"a":3}"#), [#"header: tensor "a": expected an object, found integer"#]),
            ("no-dtype", Self.file(header: #"{"a":{"shape":[2],"data_offsets":[0,8]}}"#, data: .init(repeating: 0, count: 8)), [#"tensor "a": missing dtype"#]),
            ("no-shape", Self.file(header: #"{"a":{"dtype":"F32","data_offsets":[0,8]}}"#, data: .init(repeating: 0, count: 8)), [#"tensor "a": missing shape"#]),
            ("no-offsets", Self.file(header: #"{"a":{"dtype":"F32","shape":[2]}}"#, data: .init(repeating: 0, count: 8)), [#"tensor "a": missing data_offsets"#]),
            ("dtype-type", Self.file(header: #"{"a":\#(entry("5"))}"#), [#"tensor "a": dtype must be a string, found integer"#]),
            ("unknown-dtype", Self.file(header: #"{"a":\#(entry(#""F8_E4M3""#))}"#), [#"tensor "a": unknown dtype "F8_E4M3""#]),
            ("shape-type", Self.file(header: #"{"a":\#(entry(#""F32""#, "2"))}"#), [#"tensor "a": shape must be an array, found integer"#]),
            ("shape-element", Self.file(header: #"{"a":\#(entry(#""F32""#, "[2, 1.5]"))}"#), [#"tensor "a": shape[1] must be an integer, found number"#]),
            ("negative-dim", Self.file(header: #"{"a":\#(entry(#""F32""#, "[-2]"))}"#), [#"tensor "a": shape[0] is negative (-2)"#]),
            ("offsets-count", Self.file(header: #"{"a":\#(entry(#""F32""#, "[2]", "[8]"))}"#), [#"tensor "a": data_offsets must be [begin, end]"#, "found [8]"]),
            ("offsets-type", Self.file(header: #"{"a":\#(entry(#""F32""#, "[2]", #"[0,"8"]"#))}"#), [#"tensor "a": data_offsets must be [begin, end]"#]),
            ("offsets-negative", Self.file(header: #"{"a":\#(entry(#""F32""#, "[0]", "[-1,-1]"))}"#), [#"tensor "a": data_offsets must be [begin, end] with non-negative integers"#]),
            ("begin-after-end", Self.file(header: #"{"a":\#(entry(#""F32""#, "[2]", "[8,0]"))}"#, data: .init(repeating: 0, count: 8)), [#"tensor "a": data_offsets [8, 0] begin is after end"#]),
            ("size-mismatch", Self.file(header: #"{"a":\#(entry(#""F32""#, "[2]", "[0,12]"))}"#, data: .init(repeating: 0, count: 12)), [#"tensor "a": data_offsets [0, 12] span 12 bytes but shape [2] of float32 needs 8"#]),
            ("hole", Self.file(header: #"{"a":\#(entry(#""F32""#, "[1]", "[0,4]")),"b":\#(entry(#""F32""#, "[1]", "[8,12]"))}"#, data: .init(repeating: 0, count: 12)), [#"header: bytes [4, 8) of the data section belong to no tensor (hole before tensor "b")"#]),
            ("leading-hole", Self.file(header: #"{"a":\#(entry(#""U8""#, "[1]", "[1,2]"))}"#, data: [0, 0]), [#"bytes [0, 1) of the data section belong to no tensor"#]),
            ("overlap", Self.file(header: #"{"a":\#(entry(#""F32""#, "[2]", "[0,8]")),"b":\#(entry(#""F32""#, "[1]", "[4,8]"))}"#, data: .init(repeating: 0, count: 8)), [#"tensor "b": data_offsets [4, 8] overlap tensor "a" [0, 8]"#]),
            ("trailing", Self.file(header: #"{"a":\#(entry(#""F32""#, "[1]", "[0,4]"))}"#, data: .init(repeating: 0, count: 8)), ["header: 4 trailing bytes in the data section (8 bytes) after the last tensor"]),
            ("trailing-no-tensors", Self.file(header: "{}", data: [0]), ["header: 1 trailing bytes in the data section"]),
            ("duplicate", Self.file(header: #"{"a":\#(entry()),"a":\#(entry())}"#, data: .init(repeating: 0, count: 8)), [#"header: duplicate name: "a" appears twice (line 1, column"#]),
            ("metadata-type", Self.file(header: #"{"__metadata__":[1]}"#), ["header: __metadata__ must be an object of strings, found array"]),
            ("metadata-value", Self.file(header: #"{"__metadata__":{"ok":"yes","k":1}}"#), [#"header: __metadata__ "k" must be a string, found integer"#]),
        ]
        for (name, bytes, fragments) in cases {
            let url = dir.appendingPathComponent("\(name).safetensors")
            try Data(bytes).write(to: url)
            assertFileError(try Safetensors.read(url), about: url, fragments, name)
        }
    }

    func testOutOfBoundsMessageReadsExactly() throws {
        let dir = try makeTemporaryDirectory()
        let url = dir.appendingPathComponent("w.safetensors")
        let header = #"{"weight":{"dtype":"F32","shape":[25],"data_offsets":[0,100]}}"#
        try Data(Self.file(header: header, data: .init(repeating: 0, count: 64))).write(to: url)
        XCTAssertThrowsError(try Safetensors.read(url)) { error in
            XCTAssertEqual("\(error)", #"\#(url.path): header: tensor "weight": data_offsets [0, 100] end beyond the data section (64 bytes)"#)
        }
    }

    func testMissingFileNamesIt() throws {
        let url = try makeTemporaryDirectory().appendingPathComponent("absent.safetensors")
        assertFileError(try Safetensors.read(url), about: url, ["cannot open: No such file or directory"])
    }

    // MARK: Failed writes

    func testInvalidNamesAreRejectedAndLeaveTheOldFile() throws {
        let dir = try makeTemporaryDirectory()
        let url = dir.appendingPathComponent("model.safetensors")
        try Safetensors.write([("keep", Tensor([Float(7)], shape: [1]))], to: url)
        let before = try Data(contentsOf: url)
        let t = Tensor([Float(1)], shape: [1])
        for (tensors, fragment) in [
            ([("", t)], "tensor name: empty names are not allowed"),
            ([("a", t), ("a", t)], #"tensor name: duplicate name "a""#),
            ([("__metadata__", t)], "tensor name: __metadata__ is reserved"),
        ] {
            assertFileError(try Safetensors.write(tensors, to: url), about: url, [fragment], fragment)
        }
        XCTAssertEqual(try Data(contentsOf: url), before, "the old file is untouched")
        XCTAssertEqual(try directoryListing(dir), ["model.safetensors"], "no temporary file left")
    }

    func testWriteIntoAFileInsteadOfADirectoryLeavesNothing() throws {
        let dir = try makeTemporaryDirectory()
        let blocker = dir.appendingPathComponent("not-a-dir")
        try Data("x".utf8).write(to: blocker)
        let url = blocker.appendingPathComponent("out.safetensors")
        XCTAssertThrowsError(try Safetensors.write([("a", Tensor([Float(1)], shape: [1]))], to: url))
        XCTAssertEqual(try directoryListing(dir), ["not-a-dir"])
        XCTAssertEqual(try Data(contentsOf: blocker), Data("x".utf8))
    }
}
