import Foundation
import XCTest
@testable import QuacCore

/// PNG and TIFF reading against files written by OpenCV, PIL and a hand-rolled TIFF writer
/// (scripts/golden/image_golden.py), round trips through our writers, malformed files, and the resize
/// against PyTorch's antialiased bilinear interpolation.
final class ImageIOTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/images")

    func expected() throws -> SafetensorsFile {
        try Safetensors.read(Self.fixtures.appendingPathComponent("expected.safetensors"))
    }

    /// Samples of a decoded image as Doubles, with its geometry, for comparison with a [H, W, C] array.
    func check(_ image: RasterImage, against t: Tensor, _ name: String) {
        XCTAssertEqual([image.height, image.width, image.channels], t.shape, name)
        let want = t.doubleArray()
        let got: [Double]
        switch image.samples {
        case .uint8(let a): got = a.map(Double.init); XCTAssertEqual(t.dtype, .uint8, name)
        case .uint16(let a): got = a.map(Double.init); XCTAssertEqual(t.dtype, .uint16, name)
        case .float32(let a): got = a.map(Double.init); XCTAssertEqual(t.dtype, .float32, name)
        }
        XCTAssertEqual(got.count, want.count, name)
        if got != want {
            let i = zip(got, want).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? 0
            XCTFail("\(name): sample \(i) is \(got[i]), expected \(want[i])")
        }
    }

    func testFixturesFromOtherEncodersDecodeToTheirPixels() throws {
        let golden = try expected()
        let names = golden.names.filter { !$0.hasPrefix("resize_") }
        XCTAssertGreaterThanOrEqual(names.count, 20)
        for name in names {
            let url = Self.fixtures.appendingPathComponent(name)
            let image: RasterImage
            do { image = try ImageFile.read(url) } catch { XCTFail("\(name): \(error)"); continue }
            check(image, against: golden.tensors[name]!, name)
            switch name {
            case "rgb8.png", "rgba8.png", "rgb16.png", "palette.png", "rgb8.tif", "rgb16.tif", "palette.tif", "planar16.tif":
                XCTAssertEqual(image.colorChannels, 3, name)
            default: XCTAssertEqual(image.colorChannels, 1, name)
            }
        }
        XCTAssertTrue(try ImageFile.read(Self.fixtures.appendingPathComponent("multipage.tif")).notes.contains { $0.contains("page 1 of 2") })
        XCTAssertTrue(try ImageFile.read(Self.fixtures.appendingPathComponent("palette.tif")).notes.contains { $0.contains("TIFFReadRGBAImage") })
    }

    func testScalingToSignedUnitRange() throws {
        let g8 = RasterImage(width: 3, height: 1, channels: 1, samples: .uint8([0, 255, 51]))
        let v: Float = 51 / 127.5 - 1
        XCTAssertEqual(g8.planes(channels: 1), [-1, 1, v])
        let g16 = RasterImage(width: 2, height: 1, channels: 1, samples: .uint16([0, 65535]))
        XCTAssertEqual(g16.planes(channels: 1), [-1, 1])
        let f = RasterImage(width: 2, height: 1, channels: 1, samples: .float32([0, 0.25]))
        XCTAssertEqual(f.planes(channels: 1), [-1, -0.5])
        // Gray -> RGB repeats; RGB -> gray is 601 luma; alpha is dropped.
        XCTAssertEqual(g8.planes(channels: 3), [-1, 1, v, -1, 1, v, -1, 1, v])
        let rgba = RasterImage(width: 1, height: 1, channels: 4, samples: .uint8([255, 0, 0, 7]))
        XCTAssertEqual(rgba.planes(channels: 3), [1, -1, -1])
        let luma: Float = 0.299 - 0.587 - 0.114
        XCTAssertEqual(rgba.planes(channels: 1)[0], luma, accuracy: 1e-6)
        let ga = RasterImage(width: 2, height: 1, channels: 2, colorChannels: 1, samples: .uint8([255, 0, 0, 255]))
        XCTAssertEqual(ga.planes(channels: 1), [1, -1])
    }

    func testPNGRoundTrips() throws {
        let dir = try makeTemporaryDirectory()
        var rng = SeededRandom(seed: 1)
        let cases: [(String, RasterImage)] = [
            ("gray8", RasterImage(width: 7, height: 5, channels: 1, samples: .uint8((0..<35).map { _ in UInt8(rng.next() & 0xFF) }))),
            ("graya8", RasterImage(width: 3, height: 4, channels: 2, colorChannels: 1, samples: .uint8((0..<24).map { _ in UInt8(rng.next() & 0xFF) }))),
            ("rgb8", RasterImage(width: 4, height: 3, channels: 3, samples: .uint8((0..<36).map { _ in UInt8(rng.next() & 0xFF) }))),
            ("rgba8", RasterImage(width: 2, height: 5, channels: 4, samples: .uint8((0..<40).map { _ in UInt8(rng.next() & 0xFF) }))),
            ("gray16", RasterImage(width: 6, height: 2, channels: 1, samples: .uint16((0..<12).map { _ in UInt16(rng.next() & 0xFFFF) }))),
            ("rgb16", RasterImage(width: 3, height: 3, channels: 3, samples: .uint16((0..<27).map { _ in UInt16(rng.next() & 0xFFFF) }))),
        ]
        for (name, image) in cases {
            let url = dir.appendingPathComponent("\(name).png")
            try PNGFile.write(image, to: url)
            let back = try ImageFile.read(url)
            XCTAssertEqual(back.samples, image.samples, name)
            XCTAssertEqual([back.width, back.height, back.channels, back.colorChannels],
                           [image.width, image.height, image.channels, image.colorChannels], name)
        }
        XCTAssertEqual(try directoryListing(dir), cases.map { "\($0.0).png" }.sorted(), "no temporary files left")
        assertFileError(try PNGFile.write(RasterImage(width: 1, height: 1, channels: 2, colorChannels: 1, samples: .uint16([1, 2])),
                                          to: dir.appendingPathComponent("x.png")),
                        about: dir.appendingPathComponent("x.png"), ["16-bit PNG with alpha"])
    }

    func testTensorsWriteWithTheStatedMapping() throws {
        let dir = try makeTemporaryDirectory()
        let url = dir.appendingPathComponent("t.png")
        try PNGFile.write(Tensor([-1, -0.5, 0, 0.5, 1, 2] as [Float], shape: [1, 2, 3]), mapping: .signedUnit, to: url)
        XCTAssertEqual(try ImageFile.read(url).samples, .uint8([0, 64, 128, 191, 255, 255]))   // round((x + 1) * 127.5), clamped
        try PNGFile.write(Tensor([0, 0.5, 1, -3] as [Float], shape: [2, 2]), mapping: .unit, to: url)
        XCTAssertEqual(try ImageFile.read(url).samples, .uint8([0, 128, 255, 0]))              // round(x * 255), clamped
        try PNGFile.write(Tensor([1, -1, 0, 1, -1, 0] as [Float], shape: [3, 1, 2]), mapping: .signedUnit, to: url)
        let rgb = try ImageFile.read(url)
        XCTAssertEqual(rgb.colorChannels, 3)
        XCTAssertEqual(rgb.samples, .uint8([255, 128, 0, 0, 255, 128]))                       // planes interleaved
        // Written then loaded, a [-1, 1] image comes back within half a quantization step.
        let x = Tensor((0..<64).map { Float($0) / 31.5 - 1 }, shape: [1, 8, 8])
        try PNGFile.write(x, mapping: .signedUnit, to: url)
        let back = try ImageFile.loadInput(url, size: 8, channels: 1).values
        for i in 0..<64 { XCTAssertEqual(back[i], x.floats[i], accuracy: 0.5 / 127.5 + 1e-6) }
        assertFileError(try PNGFile.write(Tensor([Float.nan], shape: [1, 1]), mapping: .unit, to: url), about: url, ["NaN"])
        assertFileError(try PNGFile.write(Tensor([0, 0] as [Float], shape: [2, 1, 1]), mapping: .unit, to: url), about: url, ["[2, 1, 1]"])
    }

    func testTIFFRoundTrips() throws {
        let dir = try makeTemporaryDirectory()
        var rng = SeededRandom(seed: 2)
        let cases: [(String, RasterImage)] = [
            ("gray8", RasterImage(width: 7, height: 5, channels: 1, samples: .uint8((0..<35).map { _ in UInt8(rng.next() & 0xFF) }))),
            ("rgb8", RasterImage(width: 4, height: 3, channels: 3, samples: .uint8((0..<36).map { _ in UInt8(rng.next() & 0xFF) }))),
            ("rgba8", RasterImage(width: 2, height: 5, channels: 4, samples: .uint8((0..<40).map { _ in UInt8(rng.next() & 0xFF) }))),
            ("gray16", RasterImage(width: 6, height: 2, channels: 1, samples: .uint16((0..<12).map { _ in UInt16(rng.next() & 0xFFFF) }))),
            ("rgb16", RasterImage(width: 3, height: 3, channels: 3, samples: .uint16((0..<27).map { _ in UInt16(rng.next() & 0xFFFF) }))),
            ("float", RasterImage(width: 5, height: 4, channels: 1, samples: .float32((0..<20).map { _ in rng.uniform() }))),
            ("rgbfloat", RasterImage(width: 2, height: 2, channels: 3, samples: .float32((0..<12).map { _ in rng.normal() }))),
        ]
        for (name, image) in cases {
            let url = dir.appendingPathComponent("\(name).tif")
            try TIFFFile.write(image, to: url)
            let back = try ImageFile.read(url)
            XCTAssertEqual(back.samples, image.samples, name)
            XCTAssertEqual([back.width, back.height, back.channels, back.colorChannels],
                           [image.width, image.height, image.channels, image.colorChannels], name)
        }
        XCTAssertEqual(try directoryListing(dir), cases.map { "\($0.0).tif" }.sorted(), "no temporary files left")
    }

    func testMalformedFilesGiveFileErrorsNamingThePath() throws {
        let dir = try makeTemporaryDirectory()
        let png = try Data(contentsOf: Self.fixtures.appendingPathComponent("gray8.png"))
        let tif = try Data(contentsOf: Self.fixtures.appendingPathComponent("gray8.tif"))
        func file(_ name: String, _ data: Data) throws -> URL {
            let url = dir.appendingPathComponent(name)
            try data.write(to: url)
            return url
        }
        let text = try file("notes.png", Data("these are not pixels\n".utf8))
        assertFileError(try ImageFile.read(text), about: text, ["not a PNG or TIFF image", "text \"these are not pi\""])
        assertFileError(try PNGFile.read(text), about: text, ["not a PNG file"])
        assertFileError(try TIFFFile.read(text), about: text, ["not a TIFF file"])
        let empty = try file("empty.png", Data())
        assertFileError(try ImageFile.read(empty), about: empty, ["empty file"])
        let missing = dir.appendingPathComponent("missing.png")
        assertFileError(try ImageFile.read(missing), about: missing, ["cannot open", "No such file"])
        for cut in [9, 20, 40, png.count / 2, png.count - 12, png.count - 1] {
            let truncated = try file("cut\(cut).png", png.prefix(cut))
            assertFileError(try ImageFile.read(truncated), about: truncated, ["truncated PNG"], "cut at \(cut)")
        }
        // A flipped byte in the compressed data: libpng's CRC check names the chunk.
        var corrupt = [UInt8](png)
        corrupt[png.count - 20] ^= 0x55
        let bad = try file("corrupt.png", Data(corrupt))
        assertFileError(try ImageFile.read(bad), about: bad, ["PNG decode failed"])
        // Not starting with IHDR.
        var noIHDR = [UInt8](png)
        noIHDR[12...15] = [0x61, 0x62, 0x63, 0x64]
        let weird = try file("noihdr.png", Data(noIHDR))
        assertFileError(try ImageFile.read(weird), about: weird, ["first chunk is abcd"])
        for cut in [6, 40, tif.count / 2, tif.count - 8] {
            let truncated = try file("cut\(cut).tif", tif.prefix(cut))
            assertFileError(try ImageFile.read(truncated), about: truncated, [], "cut at \(cut)")
        }
        let tiffHeaderOnly = try file("header.tif", Data([0x49, 0x49, 42, 0, 0xFF, 0xFF, 0, 0]))
        assertFileError(try ImageFile.read(tiffHeaderOnly), about: tiffHeaderOnly, ["TIFF"])
    }

    /// Two TIFFs from fuzzing (fuzz/, docs/reliability.md, Fuzzing), as bytes. A 1x1 image whose one tile
    /// is 16 x 4,194,304,016 pixels: libtiff accepts the tile size and the reader allocated the whole
    /// 67 GB tile. A 4294967295 x 4294967295 image: width times length overflowed Int, passed the size
    /// check negative, and trapped on the next multiplication. Both are refused with an error now.
    func testFuzzedTIFFWithHugeTileOrDimensionsIsRefused() throws {
        let dir = try makeTemporaryDirectory()
        func file(_ name: String, hex: String) throws -> URL {
            let bytes = stride(from: 0, to: hex.count, by: 2).map { i -> UInt8 in
                let start = hex.index(hex.startIndex, offsetBy: i)
                return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16)!
            }
            let url = dir.appendingPathComponent(name)
            try Data(bytes).write(to: url)
            return url
        }
        let hugeTile = try file("huge-tile.tif", hex:
            "49492a000a00000000000a00000104000100000001000000010104000100000001000000020103000100000008000000" +
            "030103000100000001000000060103000100000001000000150103000100000001000000420104000100000010000000" +
            "4301040001000000100000fa44010400010000000800000045010400010000000100000000000000")
        assertFileError(try TIFFFile.read(hugeTile), about: hugeTile, ["tile of 16x4194304016 pixels is too large to decode"])
        let hugeImage = try file("huge-image.tif", hex:
            "49492a000a000000000009000001040001000000ffffffff0101040001000000ffffffff020103000100000001000000" +
            "030103000100000001000000060103000100000001000000110104000100000008000000150103000100000001000000" +
            "1601040001000000ffffffff17010400010000000100000000000000")
        assertFileError(try TIFFFile.read(hugeImage), about: hugeImage, ["TIFF image of 4294967295x4294967295 pixels is too large to decode"])
        // One row of 150994946 pixels with 7 float16 samples: 1.06e9 samples (over 4 GB as float)
        // from 202 bytes (fuzz/findings/tiff-oom-float16-7spp-150994946x1.tif).
        let wide = try file("wide.tif", hex:
            "49492a001c000000003c0038480000480000010000000000010000000e00000104000100000002000009010104000100" +
            "000001000000020103000100000010000000030103000100000001000000060103000100000001000000110104000100" +
            "0000080000001501030001000000070000001601040001000000010000001701040001000000040000001a0105000100" +
            "00000c0000001b01050001000000140000001c0103000100000001000000280103000100000002000000530103000100" +
            "00000300000000000000")
        assertFileError(try TIFFFile.read(wide), about: wide, ["TIFF image of 150994946x1 pixels is too large to decode"])
    }

    func testResizeOfAConstantStaysConstant() {
        for (h, w, th, tw) in [(13, 17, 5, 5), (5, 7, 12, 12), (13, 5, 8, 8), (64, 64, 7, 7), (3, 3, 3, 3)] {
            let out = ImageResize.resize([Float](repeating: 0.375, count: 2 * h * w), channels: 2, height: h, width: w, toHeight: th, toWidth: tw)
            XCTAssertEqual(out.count, 2 * th * tw)
            for v in out { XCTAssertEqual(v, 0.375, accuracy: 1e-6, "\(h)x\(w) -> \(th)x\(tw)") }
        }
    }

    func testResizeOfAGradientGivesKnownValues() {
        // Enlarging [0, 1] to 4: bilinear with half-pixel centers, clamped at the border.
        XCTAssertEqual(ImageResize.resize([0, 1], channels: 1, height: 1, width: 2, toHeight: 1, toWidth: 4), [0, 0.25, 0.75, 1])
        // Halving [0, 1, 2, 3]: the triangle filter is twice as wide, taps (0.75, 0.75, 0.25) / 1.75.
        let down = ImageResize.resize([0, 1, 2, 3], channels: 1, height: 1, width: 4, toHeight: 1, toWidth: 2)
        XCTAssertEqual(down[0], 1.25 / 1.75, accuracy: 1e-6)
        XCTAssertEqual(down[1], 4 / 1.75, accuracy: 1e-6)
        // Separable: a vertical gradient is resized along columns only.
        let col = ImageResize.resize([0, 0, 0, 1, 1, 1], channels: 1, height: 2, width: 3, toHeight: 4, toWidth: 3)
        XCTAssertEqual(col, [0, 0, 0, 0.25, 0.25, 0.25, 0.75, 0.75, 0.75, 1, 1, 1])
    }

    func testResizeMatchesPyTorchAntialiasedBilinear() throws {
        let golden = try expected()
        for name in ["a", "b", "c"] {
            let x = golden.tensors["resize_in_\(name)"]!, y = golden.tensors["resize_out_\(name)"]!
            let out = ImageResize.resize(x.floatArray(), channels: x.shape[0], height: x.shape[1], width: x.shape[2],
                                         toHeight: y.shape[1], toWidth: y.shape[2])
            let want = y.floatArray()
            XCTAssertEqual(out.count, want.count)
            for i in want.indices { XCTAssertEqual(out[i], want[i], accuracy: 2e-6, "case \(name), element \(i)") }
        }
    }

    func testLoadInputResizesConvertsAndScales() throws {
        let url = Self.fixtures.appendingPathComponent("rgb16.png")
        let (values, _) = try ImageFile.loadInput(url, size: 4, channels: 1)
        XCTAssertEqual(values.count, 16)
        XCTAssertTrue(values.allSatisfy { $0 >= -1 && $0 <= 1 })
        let (same, _) = try ImageFile.loadInput(Self.fixtures.appendingPathComponent("gray8.png"), size: 6, channels: 3)
        XCTAssertEqual(same.count, 3 * 36)
        XCTAssertEqual(Array(same[0..<36]), Array(same[36..<72]))
    }
}
