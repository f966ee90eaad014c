import Foundation
import XCTest
@testable import QuacCore

final class NPYTests: XCTestCase {
    /// magic, version, header length, then the header padded with spaces and a newline as numpy pads it.
    static func file(_ header: String, version: UInt8 = 1, data: [UInt8] = [], padTo alignment: Int = 64) -> [UInt8] {
        let lengthBytes = version == 1 ? 2 : 4
        var h = Array(header.utf8)
        let unpadded = 8 + lengthBytes + h.count + 1
        h += Array(repeating: UInt8(ascii: " "), count: (alignment - unpadded % alignment) % alignment) + [0x0A]
        let length = version == 1 ? littleEndianBytes(UInt16(h.count)) : littleEndianBytes(UInt32(h.count))
        return [0x93] + Array("NUMPY".utf8) + [version, 0] + length + h + data
    }

    static func dict(_ descr: String, _ shape: String, fortran: Bool = false) -> String {
        "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shape), }"
    }

    func read(_ bytes: [UInt8], in dir: URL, name: String = "x.npy") throws -> Tensor {
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return try NPY.read(url)
    }

    // MARK: Round trips and layout

    func testRoundTripEveryDTypeWithNumpyLayout() throws {
        let dir = try makeTemporaryDirectory()
        let descrs: [DType: String] = [.float64: "<f8", .float32: "<f4", .float16: "<f2", .int64: "<i8", .int32: "<i4",
                                       .int16: "<i2", .int8: "|i1", .uint64: "<u8", .uint32: "<u4", .uint16: "<u2",
                                       .uint8: "|u1", .bool: "|b1"]
        for dtype in DType.allCases where dtype != .bfloat16 {
            let url = dir.appendingPathComponent("\(dtype.displayName).npy")
            let t = patternTensor(dtype, shape: [3, 2, 5], seed: dtype.byteSize)
            try NPY.write(t, to: url)
            let raw = [UInt8](try Data(contentsOf: url))
            XCTAssertEqual(Array(raw[0..<8]), [0x93] + Array("NUMPY".utf8) + [1, 0], "version 1.0")
            let headerLength = Int(raw[8]) | Int(raw[9]) << 8
            XCTAssertEqual((10 + headerLength) % 64, 0, "data aligned to 64 bytes")
            let header = String(decoding: raw[10..<10 + headerLength], as: UTF8.self)
            XCTAssertTrue(header.hasPrefix("{'descr': '\(descrs[dtype]!)', 'fortran_order': False, 'shape': (3, 2, 5), }"), header)
            XCTAssertTrue(header.hasSuffix(" \n"), header)
            XCTAssertEqual(Array(raw[(10 + headerLength)...]), tensorBytes(t))

            let back = try NPY.read(url)
            XCTAssertTrue(back.bitwiseEqual(t), dtype.displayName)
        }
    }

    func testScalarsAndEmptyArrays() throws {
        let dir = try makeTemporaryDirectory()
        for (shape, text) in [([Int](), "()"), ([0], "(0,)"), ([4], "(4,)"), ([2, 0, 3], "(2, 0, 3)")] {
            let url = dir.appendingPathComponent("s.npy")
            let t = patternTensor(.int32, shape: shape)
            try NPY.write(t, to: url)
            let raw = [UInt8](try Data(contentsOf: url))
            XCTAssertTrue(String(decoding: raw, as: UTF8.self).contains("'shape': \(text), }"), text)
            let back = try NPY.read(url)
            XCTAssertEqual(back.shape, shape)
            XCTAssertEqual(tensorBytes(back), tensorBytes(t))
        }
        let scalar = try read(Self.file(Self.dict("<f8", "()"), data: littleEndianBytes((2.5).bitPattern)), in: dir)
        XCTAssertEqual(scalar.shape, [])
        XCTAssertEqual(scalar.doubleArray(), [2.5])
    }

    func testLargeHeaderUsesVersion2() throws {
        let dir = try makeTemporaryDirectory()
        let url = dir.appendingPathComponent("deep.npy")
        // 25,000 dimensions of 1 make a header over 65,535 bytes.
        let shape = [Int](repeating: 1, count: 25_000)
        let t = Tensor([3.5], shape: shape)
        try NPY.write(t, to: url)
        let raw = [UInt8](try Data(contentsOf: url))
        XCTAssertEqual(raw[6], 2)
        let headerLength = raw[8..<12].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertGreaterThan(headerLength, 65_535)
        XCTAssertEqual((12 + headerLength) % 64, 0)
        let back = try NPY.read(url)
        XCTAssertEqual(back.shape, shape)
        XCTAssertEqual(back.floatArray(), [3.5])
    }

    // MARK: What numpy (and other writers) produce

    func testVersions2And3AndUTF8Header() throws {
        let dir = try makeTemporaryDirectory()
        let data = [Int16](arrayLiteral: 1, -2, 3).flatMap { littleEndianBytes($0) }
        let v2 = try read(Self.file(Self.dict("<i2", "(3,)"), version: 2, data: data), in: dir)
        XCTAssertEqual(v2.dtype, .int16)
        XCTAssertEqual(v2.doubleArray(), [1, -2, 3])
        // Version 3 headers are UTF-8: the key 'é' decodes as one character (shown in the error), while
        // the same bytes in a version 1 header are latin-1, two characters.
        let v3 = try read(Self.file(Self.dict("<i2", "(3,)"), version: 3, data: data), in: dir)
        XCTAssertEqual(v3.doubleArray(), [1, -2, 3])
        let url = dir.appendingPathComponent("u.npy")
        try Data(Self.file("{'descr': '<i2', 'fortran_order': False, 'shape': (3,), 'é': 1}", version: 3, data: data)).write(to: url)
        assertFileError(try NPY.read(url), about: url, ["header: unexpected key 'é'"])
        try Data(Self.file("{'descr': '<i2', 'fortran_order': False, 'shape': (3,), 'é': 1}", version: 1, data: data)).write(to: url)
        assertFileError(try NPY.read(url), about: url, ["header: unexpected key 'Ã©'"])
    }

    func testFortranOrderIsConvertedToCOrder() throws {
        let dir = try makeTemporaryDirectory()
        // C-order [[0,1,2],[3,4,5]] stored column by column.
        let f2 = try read(Self.file(Self.dict("<i4", "(2, 3)", fortran: true),
                                    data: [Int32](arrayLiteral: 0, 3, 1, 4, 2, 5).flatMap { littleEndianBytes($0) }), in: dir)
        XCTAssertEqual(f2.shape, [2, 3])
        XCTAssertEqual(f2.doubleArray(), [0, 1, 2, 3, 4, 5])
        // 2x3x4: element [i,j,k] = 100i + 10j + k, stored with i fastest, then j, then k.
        var fortranData: [UInt8] = []
        for k in 0..<4 { for j in 0..<3 { for i in 0..<2 { fortranData += littleEndianBytes(Int16(100 * i + 10 * j + k)) } } }
        let f3 = try read(Self.file(Self.dict("<i2", "(2, 3, 4)", fortran: true), data: fortranData), in: dir)
        var expected: [Double] = []
        for i in 0..<2 { for j in 0..<3 { for k in 0..<4 { expected.append(Double(100 * i + 10 * j + k)) } } }
        XCTAssertEqual(f3.doubleArray(), expected)
        // One dimension (and empty arrays) read the same in either order.
        let f1 = try read(Self.file(Self.dict("|u1", "(3,)", fortran: true), data: [7, 8, 9]), in: dir)
        XCTAssertEqual(f1.doubleArray(), [7, 8, 9])
        let f0 = try read(Self.file(Self.dict("<f4", "(0, 3)", fortran: true)), in: dir)
        XCTAssertEqual(f0.shape, [0, 3])
    }

    func testBigEndianIsConvertedAndNativeOrderCharsAccepted() throws {
        let dir = try makeTemporaryDirectory()
        let be32 = try read(Self.file(Self.dict(">i4", "(2,)"), data: [0, 0, 1, 2, 0xFF, 0xFF, 0xFF, 0xFE]), in: dir)
        XCTAssertEqual(be32.dtype, .int32)
        XCTAssertEqual(be32.doubleArray(), [258, -2])
        let be64 = try read(Self.file(Self.dict(">f8", "(1,)"), data: withUnsafeBytes(of: (-1.25).bitPattern.bigEndian) { Array($0) }), in: dir)
        XCTAssertEqual(be64.doubleArray(), [-1.25])
        let beHalf = try read(Self.file(Self.dict(">f2", "(2,)"), data: [0x3C, 0x00, 0xC0, 0x00]), in: dir)
        XCTAssertEqual(beHalf.doubleArray(), [1, -2])
        let beFortran = try read(Self.file(Self.dict(">u2", "(2, 2)", fortran: true), data: [0, 1, 0, 3, 0, 2, 0, 4]), in: dir)
        XCTAssertEqual(beFortran.doubleArray(), [1, 2, 3, 4])
        for descr in ["=f4", "|f4", "f4", "<f4"] {
            let t = try read(Self.file(Self.dict(descr, "(1,)"), data: littleEndianBytes(Float(0.75).bitPattern)), in: dir)
            XCTAssertEqual(t.floatArray(), [0.75], descr)
        }
        for descr in [">i1", "<u1", "|b1", "<b1", "|?"] {
            let t = try read(Self.file(Self.dict(descr, "(2,)"), data: [1, 0]), in: dir)
            XCTAssertEqual(t.doubleArray(), [1, 0], descr)
        }
    }

    func testHeaderLiteralIsParsedLikePython() throws {
        let dir = try makeTemporaryDirectory()
        let data = [UInt8](repeating: 1, count: 6)
        for header in [
            #"{"shape": (2, 3), "descr": "|u1", "fortran_order": False}"#,           // other quotes and order
            "{ 'descr' : '|u1' ,\n 'fortran_order' : False , 'shape' : ( 2 , 3 , ) }", // spacing, trailing comma
            "{'descr': '|u1', 'fortran_order': False, 'shape': (2L, 3L), }",            // Python 2 longs
        ] {
            let t = try read(Self.file(header, data: data), in: dir)
            XCTAssertEqual(t.shape, [2, 3], header)
            XCTAssertEqual(t.dtype, .uint8, header)
        }
    }

    // MARK: Malformed and unsupported files

    func testUnsupportedDTypesAreNamed() throws {
        let dir = try makeTemporaryDirectory()
        for (descr, name) in [("<c8", "complex64"), ("<c16", "complex128"), ("|O", "Python objects"), ("<U5", "unicode string"),
                              ("|S3", "byte string"), ("|V8", "void/structured"), ("<M8[ns]", "datetime64"),
                              ("<m8", "timedelta64"), ("<f16", "float128"), ("<i3", "integer of 3 bytes"), ("<x4", "unrecognised")] {
            let url = dir.appendingPathComponent("x.npy")
            try Data(Self.file(Self.dict(descr, "(1,)"), data: [UInt8](repeating: 0, count: 16))).write(to: url)
            assertFileError(try NPY.read(url), about: url, ["header: unsupported dtype '\(descr)' (\(name))"], descr)
        }
        let url = dir.appendingPathComponent("x.npy")
        try Data(Self.file("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", data: .init(repeating: 0, count: 8))).write(to: url)
        XCTAssertThrowsError(try NPY.read(url)) { XCTAssertEqual("\($0)", "\(url.path): header: unsupported dtype '<c8' (complex64)") }
        try Data(Self.file("{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (1,), }", data: .init(repeating: 0, count: 8))).write(to: url)
        assertFileError(try NPY.read(url), about: url, ["header: unsupported dtype [('a', '<f4'), ('b', '<i4')] (structured)"])
    }

    func testMalformedFilesAreRejectedWithTheirField() throws {
        let dir = try makeTemporaryDirectory()
        let four = [UInt8](repeating: 0, count: 4)
        let cases: [(String, [UInt8], String)] = [
            ("empty", [], "magic: not an NPY file"),
            ("not-magic", Array("PK\u{3}\u{4}not numpy at all".utf8), "magic: not an NPY file"),
            ("version", [0x93] + Array("NUMPY".utf8) + [4, 0, 0, 0], "version: unsupported NPY version 4.0"),
            ("minor", [0x93] + Array("NUMPY".utf8) + [1, 1, 0, 0], "version: unsupported NPY version 1.1"),
            ("length-field", [0x93] + Array("NUMPY".utf8) + [2, 0, 0, 0], "header length: file ends inside the header length field"),
            ("header-beyond", [0x93] + Array("NUMPY".utf8) + [1, 0, 0xFF, 0x00] + Array("{}".utf8), "header length: 255 bytes but the file has only 2 bytes after it"),
            ("v3-utf8", Array(Self.file("{'descr': '<f4'}", version: 3).prefix(13)) + [0xFF] + Array(Self.file("{'descr': '<f4'}", version: 3).dropFirst(14)), "header: not valid UTF-8"),
            ("syntax", Self.file("{'descr': '<f4, 'fortran_order': False}", data: four), "header: not a valid dict literal: expected ',' or '}', found 'f' at character 18"),
            ("unterminated", Self.file("{'descr': '<f4", data: four), "header: not a valid dict literal: unterminated string at character 11"),
            ("not-dict", Self.file("('<f4', False, (1,))", data: four), "header: expected a dict, found ('<f4', False, (1,))"),
            ("missing-key", Self.file("{'descr': '<f4', 'shape': (1,)}", data: four), "header: missing key 'fortran_order'"),
            ("extra-key", Self.file("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", data: four), "header: unexpected key 'x'"),
            ("duplicate-key", Self.file("{'descr': '<f4', 'descr': '<f4'}", data: four), "header: not a valid dict literal: duplicate key 'descr' at character 18"),
            ("fortran-type", Self.file("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}", data: four), "header: 'fortran_order' must be True or False, found 0"),
            ("shape-list", Self.file("{'descr': '<f4', 'fortran_order': False, 'shape': [1]}", data: four), "header: 'shape' must be a tuple of integers, found [1]"),
            ("shape-int", Self.file("{'descr': '<f4', 'fortran_order': False, 'shape': (1)}", data: four), "header: 'shape' must be a tuple of integers, found 1"),
            ("shape-element", Self.file("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 'a')}", data: four), "header: 'shape'[1] must be an integer, found 'a'"),
            ("negative", Self.file("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", data: four), "header: 'shape'[0] is negative (-1)"),
            ("overflow", Self.file("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999)}"), "header: shape (99999999999, 99999999999) has too many elements"),
            ("truncated", Self.file(Self.dict("<f4", "(2, 3)"), data: [UInt8](repeating: 0, count: 20)), "data: truncated: 20 bytes, expected 24 for shape (2, 3) of float32"),
            ("trailing", Self.file(Self.dict("<f4", "(1,)"), data: [UInt8](repeating: 0, count: 6)), "data: 2 trailing bytes after the 4 bytes of shape (1,) of float32"),
        ]
        for (name, bytes, fragment) in cases {
            let url = dir.appendingPathComponent("\(name).npy")
            try Data(bytes).write(to: url)
            assertFileError(try NPY.read(url), about: url, [fragment], name)
        }
    }

    // MARK: Failed writes

    func testBfloat16CannotBeWrittenAndNothingIsLeft() throws {
        let dir = try makeTemporaryDirectory()
        let url = dir.appendingPathComponent("b.npy")
        assertFileError(try NPY.write(Tensor(zeros: [2], dtype: .bfloat16), to: url), about: url, ["dtype: bfloat16 has no NPY equivalent"])
        XCTAssertEqual(try directoryListing(dir), [])
    }

    func testWriteIntoAFileInsteadOfADirectoryLeavesNothing() throws {
        let dir = try makeTemporaryDirectory()
        let blocker = dir.appendingPathComponent("blocker")
        try Data("x".utf8).write(to: blocker)
        XCTAssertThrowsError(try NPY.write(Tensor([Float(1)], shape: [1]), to: blocker.appendingPathComponent("a.npy")))
        XCTAssertEqual(try directoryListing(dir), ["blocker"])
        XCTAssertEqual(try Data(contentsOf: blocker), Data("x".utf8))
    }
}
