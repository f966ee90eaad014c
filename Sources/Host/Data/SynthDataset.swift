import Foundation

/// A synthetic dataset with ground truth, for the demo, the tests and localization checks: cell-like
/// grayscale images (background texture and noise, several soft elliptical "cells" with darker nuclei,
/// a few dim dots outside the cells) whose class is decided by one small localized feature: in class 1
/// one randomly chosen cell carries a small bright dot at a random place inside it; class 0 does not.
/// The mask marks the feature's region (in class 0, where the dot would go), and the counterfactual is
/// the same image with the dot toggled, so an explanation can be judged against the truth.
///
/// The feature moves with its cell over the whole image and adds far less intensity than the variation
/// in cell count and brightness, so a linear model on pixels stays near chance; a small CNN with max
/// pooling finds it. Each image is drawn from its own generator seeded by (seed, split, index):
/// deterministic, and independent of how many images are written.
public enum SynthDataset {
    public enum Format: String, CaseIterable, Sendable { case png, safetensors }

    public struct Options: Sendable {
        /// Images per split (classes alternate: index i has label i % 2).
        public var count = 64
        public var size = 64
        public var seed: UInt64 = 0
        public var splits = ["train", "val", "test"]
        public var format = Format.png
        public init() {}
    }

    public static let classNames = ["0_negative", "1_positive"]
    public static let generatorVersion = 1

    /// Generator parameters, in units of the image size where they are lengths (recorded in synth.json).
    static let cellCount = 3...6
    static let cellRadius: ClosedRange<Double> = 0.09...0.15
    static let cellIntensity: ClosedRange<Double> = 0.30...0.50
    static let background: ClosedRange<Double> = 0.10...0.18
    static let textureAmplitude = 0.025
    static let noiseSigma = 0.03
    static let nucleusDarkening = 0.12
    static let featureRadius = 0.045
    static let featureIntensity = 0.45
    /// Edge width (pixels) of the soft discs that draw the feature, the nuclei and the distractors.
    static let edge = 0.35
    static let distractors = 0...2
    static let distractorIntensity = 0.30

    public struct Sample: Sendable {
        public let label: Int
        /// size x size 8-bit pixels, row-major.
        public let image: [UInt8]
        /// The same image with the feature toggled (added in class 0, removed in class 1).
        public let counterfactual: [UInt8]
        /// 255 inside the discriminative region, 0 elsewhere.
        public let mask: [UInt8]
        /// The concepts (conceptNames): 1 for the image quadrant of the cell part that holds the dot,
        /// in class 1; all 0 in class 0.
        public let concepts: [Float]
    }

    /// "A cell holds the bright dot in this quadrant of the image" (by the dot's centre).
    public static let conceptNames = ["dot_top_left", "dot_top_right", "dot_bottom_left", "dot_bottom_right"]

    /// FNV-1a, so split seeds do not depend on Swift's per-process hashing.
    static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h
    }

    /// Sample `index` of `split`.
    public static func sample(split: String, index: Int, size: Int, seed: UInt64) -> Sample {
        var rng = SeededRandom(seed: seed &* 0x9E37_79B9_7F4A_7C15 ^ fnv1a(split) ^ (UInt64(index) &* 0xD1B5_4A32_D192_ED03))
        func uniform(_ r: ClosedRange<Double>) -> Double { r.lowerBound + Double(rng.uniform()) * (r.upperBound - r.lowerBound) }
        func integer(_ r: ClosedRange<Int>) -> Int { r.lowerBound + min(Int(rng.uniform() * Float(r.count)), r.count - 1) }
        let label = index % 2
        let s = Double(size)

        // Background: a level and a smooth texture (three low-frequency waves).
        let level = uniform(background)
        var waves: [(fx: Double, fy: Double, phase: Double, amp: Double)] = []
        for _ in 0..<3 {
            waves.append((uniform(0.5...3) * 2 * .pi / s, uniform(0.5...3) * 2 * .pi / s, uniform(0...(2 * .pi)),
                          textureAmplitude * uniform(0.5...1)))
        }
        // Cells: soft ellipses with a finer texture and a darker nucleus.
        struct Cell { var cx, cy, rx, ry, cos, sin, intensity, nx, ny, nr: Double; var tex: (Double, Double, Double) }
        var cells: [Cell] = []
        for _ in 0..<integer(cellCount) {
            let rx = uniform(cellRadius) * s, ry = uniform(cellRadius) * s
            let angle = uniform(0...(.pi))
            let cx = uniform(0.15...0.85) * s, cy = uniform(0.15...0.85) * s
            let nAngle = uniform(0...(2 * .pi)), nDist = uniform(0...0.3) * min(rx, ry)
            cells.append(Cell(cx: cx, cy: cy, rx: rx, ry: ry, cos: Foundation.cos(angle), sin: Foundation.sin(angle),
                              intensity: uniform(cellIntensity), nx: cx + nDist * Foundation.cos(nAngle),
                              ny: cy + nDist * Foundation.sin(nAngle), nr: 0.35 * min(rx, ry),
                              tex: (uniform(4...8) * 2 * .pi / s, uniform(4...8) * 2 * .pi / s, uniform(0...(2 * .pi)))))
        }
        // The site of the feature: a random point in the inner part of a random cell.
        let site = cells[integer(0...(cells.count - 1))]
        let fa = uniform(0...(2 * .pi)), fr = uniform(0.25...0.55)
        let lx = fr * site.rx * Foundation.cos(fa), ly = fr * site.ry * Foundation.sin(fa)
        let fx = site.cx + lx * site.cos - ly * site.sin, fy = site.cy + lx * site.sin + ly * site.cos
        let frad = max(1.5, featureRadius * s)
        // Distractors: dim dots in the background.
        var dots: [(x: Double, y: Double)] = []
        for _ in 0..<integer(distractors) { dots.append((uniform(0.05...0.95) * s, uniform(0.05...0.95) * s)) }
        let noise = (0..<(size * size)).map { _ in Double(rng.normal()) * noiseSigma }

        func disc(_ d: Double, _ r: Double) -> Double { 1 / (1 + Foundation.exp((d - r) / edge)) }
        // Everything but the feature, once; then the image with and without it.
        var base = [Double](repeating: 0, count: size * size)
        for y in 0..<size {
            for x in 0..<size {
                let px = Double(x) + 0.5, py = Double(y) + 0.5
                var v = level
                for w in waves { v += w.amp * Foundation.sin(w.fx * px + w.fy * py + w.phase) }
                var cell = 0.0
                for c in cells {
                    let dx = px - c.cx, dy = py - c.cy
                    let u = (dx * c.cos + dy * c.sin) / c.rx, t = (-dx * c.sin + dy * c.cos) / c.ry
                    let d = (u * u + t * t).squareRoot()
                    guard d < 1.75 else { continue }                 // the soft edge is below 1e-4 beyond
                    let inside = 1 / (1 + Foundation.exp((d - 1) / 0.08))
                    guard inside > 1e-4 else { continue }
                    let texture = 1 + 0.12 * Foundation.sin(c.tex.0 * px + c.tex.1 * py + c.tex.2)
                    let nd = ((px - c.nx) * (px - c.nx) + (py - c.ny) * (py - c.ny)).squareRoot()
                    let value = inside * (c.intensity * texture - nucleusDarkening * disc(nd, c.nr))
                    cell = max(cell, value)
                }
                v += cell
                for dot in dots {
                    v += distractorIntensity * disc(((px - dot.x) * (px - dot.x) + (py - dot.y) * (py - dot.y)).squareRoot(), frad)
                }
                base[y * size + x] = v
            }
        }
        func quantize(_ v: Double) -> UInt8 { UInt8((min(max(v, 0), 1) * 255).rounded()) }
        var with = [UInt8](repeating: 0, count: size * size), without = with
        for y in 0..<size {
            for x in 0..<size {
                let i = y * size + x
                let px = Double(x) + 0.5, py = Double(y) + 0.5
                let feature = featureIntensity * disc(((px - fx) * (px - fx) + (py - fy) * (py - fy)).squareRoot(), frad)
                with[i] = quantize(base[i] + feature + noise[i])
                without[i] = quantize(base[i] + noise[i])
            }
        }
        // The mask: every pixel where the feature adds at least one 8-bit step (1/255) before quantization,
        // i.e. featureIntensity * disc(d) >= 1/255; outside it image and counterfactual differ by at most 1.
        let maskRadius = frad + edge * Foundation.log(featureIntensity * 255 - 1)
        var mask = [UInt8](repeating: 0, count: size * size)
        for y in 0..<size {
            for x in 0..<size {
                let d = ((Double(x) + 0.5 - fx) * (Double(x) + 0.5 - fx) + (Double(y) + 0.5 - fy) * (Double(y) + 0.5 - fy)).squareRoot()
                if d <= maskRadius { mask[y * size + x] = 255 }
            }
        }
        var concepts = [Float](repeating: 0, count: conceptNames.count)
        if label == 1 { concepts[(fy < s / 2 ? 0 : 2) + (fx < s / 2 ? 0 : 1)] = 1 }
        return Sample(label: label, image: label == 1 ? with : without, counterfactual: label == 1 ? without : with, mask: mask,
                      concepts: concepts)
    }

    /// File name of sample `index` in a split of `count` images: zero-padded to at least 4 digits.
    public static func fileName(_ index: Int, count: Int) -> String {
        let digits = max(4, String(max(count - 1, 0)).count)
        let n = String(index)
        return String(repeating: "0", count: max(0, digits - n.count)) + n + ".png"
    }

    /// The generator's description, written as synth.json.
    public static func description(_ o: Options) -> JSONValue {
        [
            "generator": "quac-host data synth", "version": .int(Int64(generatorVersion)),
            "seed": .int(Int64(bitPattern: o.seed)), "size": .int(Int64(o.size)), "count_per_split": .int(Int64(o.count)),
            "splits": .array(o.splits.map { .string($0) }), "format": .string(o.format.rawValue),
            "classes": .array(classNames.map { .string($0) }),
            "label_rule": "label = index % 2; class 1 images carry a small bright dot inside one cell, class 0 images do not",
            "layout": .string(o.format == .png
                ? "{split}/{class}/NNNN.png (8-bit gray); masks/{split}/{class}/NNNN.png (255 inside the discriminative region)"
                : "{split}.safetensors: images [N,1,S,S] float32 in [-1,1] (= pixel/127.5 - 1), labels [N] int64, masks [N,1,S,S] float32 0/1, counterfactuals [N,1,S,S] float32 (the image with the feature toggled), concepts [N,4] float32 0/1 (names in the metadata's concept_names)"),
            "concepts": .string("safetensors only: concept j is 1 when the image's bright dot (class 1) lies in quadrant j of the image, by its centre: \(conceptNames.joined(separator: ", ")); all 0 in class 0"),
            "mask": "pixels where the feature adds at least 1/255 before quantization (within feature_radius * size + edge * ln(255 * feature_intensity - 1) pixels of its center); in class 0 the place the feature would be. Outside the mask, image and counterfactual differ by at most one 8-bit step",
            "parameters": [
                "cell_count": [.int(Int64(cellCount.lowerBound)), .int(Int64(cellCount.upperBound))],
                "cell_radius": [.double(cellRadius.lowerBound), .double(cellRadius.upperBound)],
                "cell_intensity": [.double(cellIntensity.lowerBound), .double(cellIntensity.upperBound)],
                "background": [.double(background.lowerBound), .double(background.upperBound)],
                "texture_amplitude": .double(textureAmplitude), "noise_sigma": .double(noiseSigma),
                "nucleus_darkening": .double(nucleusDarkening),
                "feature_radius": .double(featureRadius), "feature_intensity": .double(featureIntensity),
                "edge_pixels": .double(edge),
                "distractor_count": [.int(Int64(distractors.lowerBound)), .int(Int64(distractors.upperBound))],
                "distractor_intensity": .double(distractorIntensity),
                "units": "lengths are fractions of the image size (edge in pixels); intensities in [0, 1] before 8-bit quantization",
            ],
        ]
    }

    /// Writes the dataset into `dir`; returns the files written (synth.json last).
    @discardableResult
    public static func write(to dir: URL, options o: Options) throws -> [URL] {
        guard o.count >= 2 else { throw QuacError("data synth: --count must be at least 2 (one image per class), got \(o.count)") }
        guard o.size >= 16 && o.size <= 4096 else { throw QuacError("data synth: --size must be in 16...4096, got \(o.size)") }
        guard !o.splits.isEmpty, Set(o.splits).count == o.splits.count,
              o.splits.allSatisfy({ !$0.isEmpty && $0 != "masks" && $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" } }) else {
            throw QuacError("data synth: --splits must be distinct names of letters, digits, '_' or '-' (not \"masks\"), got \(o.splits.joined(separator: ","))")
        }
        var written: [URL] = []
        for split in o.splits {
            let samples = generate(split: split, options: o)
            switch o.format {
            case .png:
                var jobs: [(URL, RasterImage)] = []
                for (i, s) in samples.enumerated() {
                    let cls = classNames[s.label], name = fileName(i, count: o.count)
                    jobs.append((dir.appendingPathComponent(split).appendingPathComponent(cls).appendingPathComponent(name),
                                 RasterImage(width: o.size, height: o.size, channels: 1, samples: .uint8(s.image))))
                    jobs.append((dir.appendingPathComponent("masks").appendingPathComponent(split).appendingPathComponent(cls).appendingPathComponent(name),
                                 RasterImage(width: o.size, height: o.size, channels: 1, samples: .uint8(s.mask))))
                }
                for folder in Set(jobs.map { $0.0.deletingLastPathComponent() }) {
                    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                }
                let errors = UnsafeMutableBufferPointer<Error?>.allocate(capacity: jobs.count)
                errors.initialize(repeating: nil)
                defer { errors.deinitialize(); errors.deallocate() }
                DispatchQueue.concurrentPerform(iterations: jobs.count) { k in
                    do { try PNGFile.write(jobs[k].1, to: jobs[k].0) } catch { errors[k] = error }
                }
                if let e = errors.compactMap({ $0 }).first { throw e }
                written += jobs.map(\.0)
            case .safetensors:
                let n = samples.count
                let shape = [n, 1, o.size, o.size]
                func floats(_ pick: (Sample) -> [UInt8], _ f: (UInt8) -> Float) -> Tensor {
                    Tensor(samples.flatMap { pick($0).map(f) }, shape: shape)
                }
                let scaled: (UInt8) -> Float = { Float($0) / 127.5 - 1 }
                let url = dir.appendingPathComponent("\(split).safetensors")
                try Safetensors.write([("images", floats(\.image, scaled)),
                                       ("labels", Tensor(samples.map { Int64($0.label) }, shape: [n])),
                                       ("masks", floats(\.mask) { $0 > 0 ? 1 : 0 }),
                                       ("counterfactuals", floats(\.counterfactual, scaled)),
                                       ("concepts", Tensor(samples.flatMap(\.concepts), shape: [n, conceptNames.count]))],
                                      metadata: ["generator": "quac-host data synth", "seed": String(o.seed), "split": split,
                                                 "concept_names": JSONValue.array(conceptNames.map { .string($0) }).serialized(pretty: false),
                                                 "class_names": JSONValue.array(classNames.map { .string($0) }).serialized(pretty: false)],
                                      to: url)
                written.append(url)
            }
        }
        let json = dir.appendingPathComponent("synth.json")
        try AtomicFile.write(description(o).serialized(pretty: true) + "\n", to: json)
        written.append(json)
        return written
    }

    /// Every sample of a split, generated in parallel.
    public static func generate(split: String, options o: Options) -> [Sample] {
        let out = UnsafeMutableBufferPointer<Sample?>.allocate(capacity: o.count)
        out.initialize(repeating: nil)
        defer { out.deinitialize(); out.deallocate() }
        DispatchQueue.concurrentPerform(iterations: o.count) { i in
            out[i] = sample(split: split, index: i, size: o.size, seed: o.seed)
        }
        return out.map { $0! }
    }
}
