import Foundation
import XCTest
@testable import QuacHost

/// QuAC on the synthetic cells end to end: a trained CNN, exact counterfactuals, D-IG and Random, the
/// QuAC evaluator. What is asserted is what the methods guarantee: D-IG's map lives where the query
/// and its counterfactual differ (the ground-truth region), so it localizes that region far better
/// than Random, whose ranking of pixels is independent of the region (AUC near 0.5).
final class LocalizationTests: XCTestCase {
    /// Area under the ROC curve of `scores` for separating mask pixels from the rest (ties count half).
    static func rocAUC(_ scores: [Float], _ mask: [Bool]) -> Double? {
        let pos = zip(scores, mask).filter { $1 }.map(\.0), neg = zip(scores, mask).filter { !$1 }.map(\.0)
        guard !pos.isEmpty, !neg.isEmpty else { return nil }
        let sorted = neg.sorted()
        var total = 0.0
        for p in pos {
            // Negatives below p, plus half of those equal to it.
            var lo = 0, hi = sorted.count
            while lo < hi { let m = (lo + hi) / 2; if sorted[m] < p { lo = m + 1 } else { hi = m } }
            var eq = lo
            while eq < sorted.count && sorted[eq] == p { eq += 1 }
            total += Double(lo) + Double(eq - lo) / 2
        }
        return total / Double(pos.count * neg.count)
    }

    func testROCAUCOfKnownRankings() {
        XCTAssertEqual(Self.rocAUC([3, 2, 1, 0], [true, true, false, false]), 1)
        XCTAssertEqual(Self.rocAUC([0, 1, 2, 3], [true, true, false, false]), 0)
        XCTAssertEqual(Self.rocAUC([1, 1, 1, 1], [true, false, true, false]), 0.5)
        XCTAssertEqual(Self.rocAUC([2, 0, 1, 3], [true, false, false, true]), 1)
    }

    func testDIntegratedGradientsLocalizesTheGroundTruthBetterThanRandom() throws {
        let dir = try TestSupport.tempDir()
        let synth = try TestSupport.quacHost(["data", "synth", "--output", dir.appendingPathComponent("data").path,
                                              "--size", "16", "--count", "384", "--format", "safetensors", "--splits", "train,test"])
        XCTAssertEqual(synth.status, 0, synth.stderr)
        let split: (String) -> JSONValue = { ["format": "safetensors", "path": .string("data/\($0).safetensors"), "x": "images", "label": "labels"] }
        var testData = split("test").objectValue!
        testData["x_cf"] = "counterfactuals"
        testData["limit"] = 24
        let manifest = try TestSupport.writeManifest(dir, [
            "name": "localization", "output": "out", "seed": 1, "batch_size": 12,
            "data": .object(testData),
            "classifier": ["plugin": "org.quac.cnn-classifier", "name": "cnn",
                           "params": ["input_shape": [1, 16, 16], "channels": [8, 16, 16, 16], "fc": [16, 16], "epochs": 6,
                                      "learning_rate": 0.002, "seed": 3],
                           "train": ["data": split("train")]],
            "attributors": [["plugin": "org.quac.d-integrated-gradients", "name": "dig", "params": ["n_steps": 16]],
                            ["plugin": "org.quac.random", "name": "random"]],
            "scorers": [["plugin": "org.quac.quac-evaluator", "name": "quac"]],
        ])
        let run = try TestSupport.quacHost(["run", manifest.path, "-q"])
        XCTAssertEqual(run.status, 0, run.stderr)

        let out = dir.appendingPathComponent("out")
        let data = try Safetensors.read(dir.appendingPathComponent("data/test.safetensors"))
        let inputs = try Safetensors.read(out.appendingPathComponent("inputs.safetensors"))
        let x = inputs.tensors["x"]!.floatArray(), cf = inputs.tensors["x_cf"]!.floatArray()
        let masks = data.tensors["masks"]!.floatArray()
        let per = 16 * 16, n = 24
        func maps(_ name: String) throws -> [Float] {
            try Safetensors.read(out.appendingPathComponent("attributions/\(name).safetensors")).tensors["attribution"]!.floatArray()
        }
        let dig = try maps("dig"), random = try maps("random")
        var digAUC: [Double] = [], randomAUC: [Double] = []
        for s in 0..<n {
            let r = (s * per)..<((s + 1) * per)
            // D-IG is (x - x_cf) times the mean gradient: exactly zero wherever the counterfactual did not change the query.
            for i in r where x[i] == cf[i] { XCTAssertEqual(dig[i], 0, "sample \(s) pixel \(i - s * per)") }
            let mask = r.map { masks[$0] > 0 }
            if let a = Self.rocAUC(r.map { abs(dig[$0]) }, mask) { digAUC.append(a) }
            if let a = Self.rocAUC(r.map { abs(random[$0]) }, mask) { randomAUC.append(a) }
        }
        XCTAssertEqual(digAUC.count, n)
        let meanDIG = digAUC.reduce(0, +) / Double(n), meanRandom = randomAUC.reduce(0, +) / Double(n)
        XCTAssertGreaterThan(meanDIG, 0.9, "D-IG's support is the ground-truth region")
        XCTAssertEqual(meanRandom, 0.5, accuracy: 0.15, "Random ignores the region")
        XCTAssertGreaterThan(meanDIG - meanRandom, 0.3)

        // The QuAC scores of both methods are reported side by side, and D-IG scores higher.
        let comparison = try JSONParser.parse(try TestSupport.quacHost(["compare", out.path, "--json"]).stdout)
        let medians = Dictionary(uniqueKeysWithValues: (comparison["table"]?.arrayValue ?? []).map {
            ($0["method"]!.stringValue!, $0["median"]!.doubleValue!) })
        XCTAssertEqual(Set(medians.keys), ["dig", "random"])
        XCTAssertGreaterThan(medians["dig"]!, medians["random"]!)
    }
}
