import Foundation
import XCTest
@testable import Engine

/// DeepLift's rescale rule and guided backpropagation (Golden/engine_attributions): guided backprop and
/// DeepLift on a pooling-free network against Captum; DeepLift through max pooling against Captum's
/// documented rule applied explicitly (Captum's hooks deviate from it there; see the golden script).
final class AttributionRuleTests: XCTestCase {
    func loadNet(_ prefix: String = "") throws -> (Module, [String: NDArray], Tensor) {
        let file = try Safetensors.read(GoldenTests.dir.appendingPathComponent("engine_attributions.safetensors"))
        let a = ModelFile.floatArrays(file)
        let net = try ModelBuilder.build(try JSONParser.parse(file.metadata[prefix.isEmpty ? "architecture" : "small_architecture"]!))
        var w: [String: NDArray] = [:]
        let wp = prefix + "weights/"
        for (k, v) in a where k.hasPrefix(wp) { w[String(k.dropFirst(wp.count))] = v }
        try net.loadStateDict(w)
        net.eval()
        return (net, a, file.tensors["target"]!)
    }

    func oneHot(_ target: Tensor, classes: Int) -> NDArray {
        let t = Labels(target).values
        let g = NDArray.zeros([t.count, classes])
        for (i, y) in t.enumerated() { g.pointer[i * classes + y] = 1 }
        return g
    }

    /// DeepLift divides differences of activations, which float32 rounds coarser than a plain
    /// gradient: 1e-4 relative to the map's scale.
    func close(_ a: NDArray, _ b: NDArray, _ what: String, rtol: Float = 1e-4) {
        let x = a.array, y = b.array
        let scale = Swift.max(y.map { Swift.abs($0) }.max()!, 1e-3)
        XCTAssertEqual(x.count, y.count)
        for i in 0..<x.count where Swift.abs(x[i] - y[i]) > rtol * (Swift.abs(y[i]) + scale) {
            XCTFail("\(what): element \(i) is \(x[i]), Captum \(y[i])")
            return
        }
    }

    func testDeepLiftMatchesCaptumWithoutPooling() throws {
        let (net, a, target) = try loadNet("small/")
        let x = a["x"]!, x0 = a["baseline"]!
        let m = ModifiedBackward.vjp(rule: .deepLiftRescale, { net($0) }, x: x, baseline: x0,
                                     gradOutput: oneHot(target, classes: 3))
        close(Kernels.binary(Kernels.binary(x, x0, -), m, *), a["small/deeplift"]!, "DeepLift attributions")
    }

    func testDeepLiftMatchesTheRuleThroughPooling() throws {
        let (net, a, target) = try loadNet()
        let x = a["x"]!, x0 = a["baseline"]!
        let m = ModifiedBackward.vjp(rule: .deepLiftRescale, { net($0) }, x: x, baseline: x0,
                                     gradOutput: oneHot(target, classes: 3))
        let attr = Kernels.binary(Kernels.binary(x, x0, -), m, *)
        close(attr, a["deeplift"]!, "DeepLift attributions")
        // Summation to delta: the attributions of each sample add up to f_y(x) - f_y(x0).
        let fx = noGrad { net(Var(x)) }.array, f0 = noGrad { net(Var(x0)) }.array
        let labels = Labels(target).values
        for i in 0..<3 {
            let total = attr.array[i * 128..<(i + 1) * 128].reduce(0, +)
            XCTAssertEqual(total, fx[i * 3 + labels[i]] - f0[i * 3 + labels[i]], accuracy: 1e-4)
        }
    }

    func testGuidedBackpropMatchesCaptum() throws {
        let (net, a, target) = try loadNet()
        let g = ModifiedBackward.vjp(rule: .guided, { net($0) }, x: a["x"]!, gradOutput: oneHot(target, classes: 3))
        close(g, a["guided"]!, "guided backpropagation", rtol: 1e-5)
        // The rule is scoped: afterwards ordinary gradients come back.
        let plain = ModifiedBackward.vjp(rule: .standard, { net($0) }, x: a["x"]!, gradOutput: oneHot(target, classes: 3))
        XCTAssertNotEqual(plain.array, g.array)
    }

    func testRulesFromTheABI() {
        XCTAssertEqual(BackwardRule(abi: QUAC_RULE_DEEPLIFT_RESCALE), .deepLiftRescale)
        XCTAssertEqual(BackwardRule(abi: QUAC_RULE_GUIDED_BACKPROP), .guided)
        XCTAssertNil(BackwardRule(abi: quac_backward_rule(rawValue: 99)))
    }
}
