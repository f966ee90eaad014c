import Foundation
import XCTest
@testable import QuacHost

/// The image-folder loader (class order, filtering, conversion, unreadable files through `quac-host run`)
/// and the synthetic dataset (`quac-host data synth`: determinism, masks and labels that agree).
final class ImageFolderTests: XCTestCase {
    func gray(_ w: Int, _ h: Int, _ value: UInt8) -> RasterImage {
        RasterImage(width: w, height: h, channels: 1, samples: .uint8([UInt8](repeating: value, count: w * h)))
    }

    /// dir/{C, a_cls, b_cls}/... with images of different sizes and kinds, and files that must be ignored.
    func makeFolder(_ dir: URL) throws -> URL {
        let root = dir.appendingPathComponent("data/test")
        try PNGFile.write(gray(10, 6, 255), to: root.appendingPathComponent("b_cls/x2.png"))
        try PNGFile.write(gray(8, 8, 0), to: root.appendingPathComponent("b_cls/x10.PNG"))
        try TIFFFile.write(RasterImage(width: 4, height: 4, channels: 1, samples: .uint16([UInt16](repeating: 65535, count: 16))),
                           to: root.appendingPathComponent("a_cls/sub/deep.tif"))
        try PNGFile.write(RasterImage(width: 3, height: 5, channels: 3, samples: .uint8([UInt8](repeating: 0, count: 45))),
                          to: root.appendingPathComponent("a_cls/z.png"))
        try PNGFile.write(gray(16, 16, 51), to: root.appendingPathComponent("C/only.png"))
        try Data("not an image".utf8).write(to: root.appendingPathComponent("C/readme.txt"))
        try Data("hidden".utf8).write(to: root.appendingPathComponent("C/._only.png"))
        try FileManager.default.createDirectory(at: root.appendingPathComponent(".cache"), withIntermediateDirectories: true)
        try Data("loose file".utf8).write(to: root.appendingPathComponent("loose.png"))
        return root
    }

    func spec(_ json: JSONValue, base: URL) throws -> DataSpec {
        try DataSpec(json, file: "m.json", pointer: "/data", resolve: { base.appendingPathComponent($0) })
    }

    func testClassesAreSortedFolderNamesAndFilesAreFilteredAndSorted() throws {
        let dir = try TestSupport.tempDir()
        _ = try makeFolder(dir)
        let s = try spec(["format": "image-folder", "path": "data/test", "size": 8, "channels": 1], base: dir)
        let d = try Dataset.load(s)
        XCTAssertEqual(d.classNames, ["C", "a_cls", "b_cls"])               // code-point order, as Python's sorted()
        XCTAssertEqual(d.sampleIDs, ["C/only.png", "a_cls/z.png", "a_cls/sub/deep.tif", "b_cls/x10.PNG", "b_cls/x2.png"])
        XCTAssertEqual(d.labels.int64Array(), [0, 1, 1, 2, 2])
        XCTAssertEqual(d.x.shape, [5, 1, 8, 8])
        let x = d.x.floatArray()
        for (i, value) in [Float(51) / 127.5 - 1, -1, 1, -1, 1].enumerated() {
            for v in x[(i * 64)..<(i * 64 + 64)] { XCTAssertEqual(v, value, accuracy: 1e-6, "sample \(i)") }
        }
        // The fingerprint covers the image files, in loading order.
        XCTAssertEqual(s.files.map(\.lastPathComponent), ["only.png", "z.png", "deep.tif", "x10.PNG", "x2.png"])

        // RGB, a limit, and a restricted extension list.
        let rgb = try Dataset.load(try spec(["format": "image-folder", "path": "data/test", "size": 4, "channels": 3,
                                             "extensions": [".png"], "limit": 2], base: dir))
        XCTAssertEqual(rgb.x.shape, [2, 3, 4, 4])
        XCTAssertEqual(rgb.sampleIDs, ["C/only.png", "a_cls/z.png"])
        XCTAssertEqual(rgb.labels.int64Array(), [0, 1])
    }

    func testLayoutErrorsNameTheFolder() throws {
        let dir = try TestSupport.tempDir()
        func load(_ path: String) throws -> Dataset {
            try Dataset.load(try spec(["format": "image-folder", "path": .string(path), "size": 8], base: dir))
        }
        XCTAssertThrowsError(try load("nowhere")) { XCTAssertTrue("\($0)".contains("nowhere: no such folder"), "\($0)") }
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("flat"), withIntermediateDirectories: true)
        try PNGFile.write(gray(2, 2, 0), to: dir.appendingPathComponent("flat/a.png"))
        XCTAssertThrowsError(try load("flat")) { XCTAssertTrue("\($0)".contains("no class subfolders"), "\($0)") }
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("flat/empty"), withIntermediateDirectories: true)
        XCTAssertThrowsError(try load("flat")) {
            XCTAssertTrue("\($0)".contains("m.json: /data/path: "), "\($0)")
            XCTAssertTrue("\($0)".contains("class folder \"empty\" has no files"), "\($0)")
        }
    }

    /// Unreadable images through `quac-host run`: exit 1 naming the file; with skip_unreadable a warning
    /// naming it and a run over the rest.
    func testUnreadableImagesFailTheRunOrAreSkippedWithAWarning() throws {
        let dir = try TestSupport.tempDir()
        let root = try makeFolder(dir)
        let bad = root.appendingPathComponent("a_cls/broken.png")
        try Data("this is text, not a PNG".utf8).write(to: bad)
        let png = try Data(contentsOf: root.appendingPathComponent("b_cls/x2.png"))
        let cut = root.appendingPathComponent("b_cls/cut.png")
        try png.prefix(png.count / 2).write(to: cut)

        func manifest(skip: Bool?) throws -> URL {
            var data = JSONObject([("format", "image-folder"), ("path", "data/test"), ("size", 8), ("channels", 1)])
            if let skip { data["skip_unreadable"] = .bool(skip) }
            return try TestSupport.writeManifest(dir, [
                "name": "images", "output": "out", "data": .object(data),
                "classifier": ["plugin": "org.quac.mlp-classifier", "params": ["input_shape": [1, 8, 8], "hidden": 4, "num_classes": 3, "seed": 1]],
            ], name: "pipeline-\(skip.map(String.init) ?? "default").json")
        }
        for skip in [nil, false] as [Bool?] {
            let r = try TestSupport.quacHost(["run", try manifest(skip: skip).path, "--quiet"])
            XCTAssertEqual(r.status, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains(bad.path), r.stderr)            // the first unreadable file in loading order
            XCTAssertTrue(r.stderr.contains("not a PNG"), r.stderr)
            XCTAssertTrue(r.stderr.contains("skip_unreadable"), r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        }
        let r = try TestSupport.quacHost(["run", try manifest(skip: true).path, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("warning"), r.stderr)
        XCTAssertTrue(r.stderr.contains("skipped 2 unreadable images"), r.stderr)
        XCTAssertTrue(r.stderr.contains(bad.path) && r.stderr.contains(cut.path), r.stderr)
        XCTAssertTrue(r.stderr.contains("truncated PNG"), r.stderr)
        XCTAssertEqual(try JSONParser.parse(r.stdout)["samples"]?.intValue, 5)
        let predictions = try Safetensors.read(dir.appendingPathComponent("out/predictions.safetensors"))
        XCTAssertEqual(predictions.tensors["label"]?.doubleArray(), [0, 1, 1, 2, 2])
    }

    // MARK: The synthetic dataset

    func testSynthIsDeterministicAndMasksAgreeWithLabels() throws {
        var o = SynthDataset.Options()
        o.size = 32; o.seed = 5
        let a = SynthDataset.generate(split: "train", options: o)
        o.count = 80
        let b = SynthDataset.generate(split: "train", options: o)
        for i in a.indices {                                           // same seed: same images, whatever the count
            XCTAssertEqual(a[i].image, b[i].image); XCTAssertEqual(a[i].mask, b[i].mask)
        }
        o.seed = 6
        let c = SynthDataset.generate(split: "train", options: o)
        XCTAssertNotEqual(a[0].image, c[0].image)
        XCTAssertNotEqual(a[0].image, SynthDataset.sample(split: "val", index: 0, size: 32, seed: 5).image)

        var masked: [Int] = []
        for (i, s) in b.enumerated() {
            XCTAssertEqual(s.label, i % 2)
            let inside = s.mask.indices.filter { s.mask[$0] == 255 }
            XCTAssertTrue(s.mask.allSatisfy { $0 == 0 || $0 == 255 })
            XCTAssertGreaterThan(inside.count, 10, "sample \(i)")
            XCTAssertLessThan(inside.count, 32 * 32 / 10, "sample \(i): the feature is small")
            masked.append(inside.count)
            // The feature (image with it minus image without it) lies in the mask.
            let with = s.label == 1 ? s.image : s.counterfactual, without = s.label == 1 ? s.counterfactual : s.image
            var gain = 0
            for p in s.mask.indices {
                let d = Int(with[p]) - Int(without[p])
                if s.mask[p] == 0 { XCTAssertLessThanOrEqual(abs(d), 1, "sample \(i), pixel \(p) outside the mask") }
                else { XCTAssertGreaterThanOrEqual(d, 0, "sample \(i), pixel \(p)"); gain += d }
            }
            XCTAssertGreaterThan(gain, 500, "sample \(i): the feature is visible")
        }
        // A linear feature (the image mean) does not tell the classes apart.
        let means = b.map { Double($0.image.reduce(0) { $0 + Int($1) }) / Double(32 * 32) }
        let m0 = stride(from: 0, to: 80, by: 2).map { means[$0] }, m1 = stride(from: 1, to: 80, by: 2).map { means[$0] }
        let mean0 = m0.reduce(0, +) / 40, mean1 = m1.reduce(0, +) / 40
        let sd = (means.map { ($0 - (mean0 + mean1) / 2) * ($0 - (mean0 + mean1) / 2) }.reduce(0, +) / 80).squareRoot()
        XCTAssertLessThan(abs(mean1 - mean0), sd, "class means differ by less than one standard deviation")
    }

    func testSynthCommandWritesTheImageFolderLayoutThatLoadsLikeItsSafetensors() throws {
        let dir = try TestSupport.tempDir()
        let pngDir = dir.appendingPathComponent("png"), stDir = dir.appendingPathComponent("st")
        var r = try TestSupport.quacHost(["data", "synth", "--output", pngDir.path, "--count", "6", "--size", "32", "--seed", "3",
                                          "--splits", "train,test"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(TestSupport.files(under: pngDir), [
            "masks/test/0_negative/0000.png", "masks/test/0_negative/0002.png", "masks/test/0_negative/0004.png",
            "masks/test/1_positive/0001.png", "masks/test/1_positive/0003.png", "masks/test/1_positive/0005.png",
            "masks/train/0_negative/0000.png", "masks/train/0_negative/0002.png", "masks/train/0_negative/0004.png",
            "masks/train/1_positive/0001.png", "masks/train/1_positive/0003.png", "masks/train/1_positive/0005.png",
            "synth.json",
            "test/0_negative/0000.png", "test/0_negative/0002.png", "test/0_negative/0004.png",
            "test/1_positive/0001.png", "test/1_positive/0003.png", "test/1_positive/0005.png",
            "train/0_negative/0000.png", "train/0_negative/0002.png", "train/0_negative/0004.png",
            "train/1_positive/0001.png", "train/1_positive/0003.png", "train/1_positive/0005.png",
        ])
        let info = try JSONParser.parse(String(contentsOf: pngDir.appendingPathComponent("synth.json"), encoding: .utf8))
        XCTAssertEqual(info["seed"]?.intValue, 3)
        XCTAssertEqual(info["classes"], ["0_negative", "1_positive"])
        let mask = try ImageFile.read(pngDir.appendingPathComponent("masks/test/1_positive/0003.png"))
        XCTAssertEqual(mask.bitDepth, 8)
        XCTAssertEqual(mask.colorChannels, 1)

        r = try TestSupport.quacHost(["data", "synth", "--output", stDir.path, "--count", "6", "--size", "32", "--seed", "3",
                                      "--splits", "test", "--format", "safetensors"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let st = try Safetensors.read(stDir.appendingPathComponent("test.safetensors"))
        XCTAssertEqual(st.tensors["images"]?.shape, [6, 1, 32, 32])
        XCTAssertEqual(st.tensors["labels"]?.int64Array(), [0, 1, 0, 1, 0, 1])

        // The folder, loaded as image-folder data, holds the same pixels as the safetensors export.
        let loaded = try Dataset.load(try spec(["format": "image-folder", "path": "png/test", "size": 32], base: dir))
        XCTAssertEqual(loaded.classNames, SynthDataset.classNames)
        XCTAssertEqual(loaded.sampleIDs, ["0_negative/0000.png", "0_negative/0002.png", "0_negative/0004.png",
                                          "1_positive/0001.png", "1_positive/0003.png", "1_positive/0005.png"])
        let order = [0, 2, 4, 1, 3, 5]
        let images = st.tensors["images"]!.floatArray(), masks = st.tensors["masks"]!.floatArray()
        let x = loaded.x.floatArray()
        for (k, i) in order.enumerated() {
            XCTAssertEqual(Array(x[(k * 1024)..<(k * 1024 + 1024)]), Array(images[(i * 1024)..<(i * 1024 + 1024)]), "sample \(i)")
        }
        let maskPNG = try ImageFile.read(pngDir.appendingPathComponent("masks/test/1_positive/0003.png"))
        guard case .uint8(let m) = maskPNG.samples else { return XCTFail("8-bit mask expected") }
        XCTAssertEqual(m.map { $0 == 255 ? Float(1) : 0 }, Array(masks[(3 * 1024)..<(4 * 1024)]))

        let bad = try TestSupport.quacHost(["data", "synth", "--output", stDir.path, "--format", "jpeg"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.contains("--format must be png or safetensors"), bad.stderr)
    }
}
