import Foundation
import QuacPluginKit

/// ROAD, remove and debias (Rong et al. 2022): the pixels a map ranks highest (MoRF) or lowest (LeRF)
/// are removed a growing fraction at a time, and instead of a constant they get a noisy linear
/// imputation from their neighbours, so the removal itself leaks little about where the pixels were.
/// Each removed pixel's value is the weighted mean of its 8 neighbours (1/6 each side, 1/12 each
/// corner, renormalised at the border), solved for all removed pixels together (Gauss-Seidel), plus
/// Gaussian noise. The score is the area under the explained class's probability over the removed
/// fractions: MoRF falls fast for a good map (lower is better), LeRF stays high (higher is better).
class ROADScorer: ScorerPlugin {
    class var description: PluginDescription { fatalError("ROADScorer is abstract") }
    /// Remove the most relevant pixels first (MoRF) or the least relevant (LeRF).
    class var mostRelevantFirst: Bool { true }
    let host: HostServices
    let fractions: [Double], noise: Double

    required init(host: HostServices, parameters: Parameters) throws {
        self.host = host
        fractions = try parameters.doubles("fractions")
        noise = try parameters.double("noise_std")
        guard !fractions.isEmpty, fractions.allSatisfy({ $0 >= 0 && $0 <= 1 }), zip(fractions, fractions.dropFirst()).allSatisfy({ $0 < $1 }) else {
            throw PluginError.invalid("fractions must be increasing values in [0, 1]")
        }
        guard noise >= 0, noise.isFinite else { throw PluginError.invalid("noise_std must be >= 0") }
    }

    /// Fills the `removed` pixels of one h x w channel with the linear imputation (in place); the other
    /// pixels are fixed. Gauss-Seidel from the known pixels' mean until the largest change is below 1e-6
    /// (at most 5000 sweeps); with no known pixel at all, every pixel gets the channel's mean.
    static func impute(_ v: inout [Double], removed: [Bool], h: Int, w: Int) {
        let neighbours: [(Int, Int, Double)] = [(-1, 0, 1.0 / 6), (1, 0, 1.0 / 6), (0, -1, 1.0 / 6), (0, 1, 1.0 / 6),
                                                (-1, -1, 1.0 / 12), (-1, 1, 1.0 / 12), (1, -1, 1.0 / 12), (1, 1, 1.0 / 12)]
        let unknown = (0..<(h * w)).filter { removed[$0] }
        guard !unknown.isEmpty else { return }
        // Nothing known: nothing to interpolate from; the channel's mean is the least informative fill.
        let known = (0..<(h * w)).filter { !removed[$0] }
        let start = (known.isEmpty ? v : known.map { v[$0] }).reduce(0, +) / Double(known.isEmpty ? v.count : known.count)
        for i in unknown { v[i] = start }
        if known.isEmpty { return }
        // From the known pixels' mean, so large holes converge in fewer sweeps.
        for _ in 0..<5000 {
            var change = 0.0
            for i in unknown {
                let (r, c) = (i / w, i % w)
                var sum = 0.0, weight = 0.0
                for (dr, dc, wt) in neighbours {
                    let (rr, cc) = (r + dr, c + dc)
                    guard rr >= 0, rr < h, cc >= 0, cc < w else { continue }
                    sum += wt * v[rr * w + cc]; weight += wt
                }
                let new = sum / weight
                change = max(change, abs(new - v[i]))
                v[i] = new
            }
            if change < 1e-6 { break }
        }
    }

    /// The inputs of one sample's curve [fractions, C, H, W]: for each fraction, its first pixels of
    /// `order` removed and imputed (every channel), plus noise on the imputed values.
    static func imputed(_ x: Tensor, sample s: Int, order: [Int], fractions: [Double], noise: Double, rng: inout SeededRandom) -> Tensor {
        let (c, h, w) = (x.shape[1], x.shape[2], x.shape[3])
        let pixels = h * w, d = c * pixels
        let inputs = Tensor(zeros: [fractions.count] + x.shape.dropFirst())
        for (k, f) in fractions.enumerated() {
            var removed = [Bool](repeating: false, count: pixels)
            for p in order.prefix(Int((f * Double(pixels)).rounded())) { removed[p] = true }
            for ch in 0..<c {
                var v = (0..<pixels).map { Double(x.floats[s * d + ch * pixels + $0]) }
                impute(&v, removed: removed, h: h, w: w)
                for p in 0..<pixels {
                    let value = removed[p] ? v[p] + Double(rng.normal()) * noise : v[p]
                    inputs.floats[k * d + ch * pixels + p] = Float(value)
                }
            }
        }
        return inputs
    }

    func score(_ batch: Batch) throws -> Outputs {
        let x = batch.x
        guard x.rank == 4 else { throw PluginError.invalid("x: ROAD imputes images [N, C, H, W], got \(x.shape)") }
        guard let map = batch.attribution else { throw PluginError.invalid("attribution is required") }
        let sources = try batch.requireSource()
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let pixels = h * w, d = c * pixels
        _ = n
        let (spec, _) = try host.classifierInfo()
        let steps = fractions.count
        let scores = Tensor(zeros: [n]), curves = Tensor(zeros: [n, steps])
        for s in 0..<n {
            try host.checkCancelled()
            let y = Int(sources[s])
            guard y >= 0, y < spec.numClasses else { throw PluginError.invalid("source \(y) of sample \(s) is outside [0, \(spec.numClasses))") }
            var order = PixelRemoval.order(map.floats, sample: s, channels: c, pixels: pixels)
            if !Self.mostRelevantFirst { order.reverse() }
            var rng = SampleNoise.generator(seed: batch.seed, sample: x.floats[(s * d)..<((s + 1) * d)], salt: 0x20AD)
            let inputs = Self.imputed(x, sample: s, order: order, fractions: fractions, noise: noise, rng: &rng)
            let probs = PixelRemoval.probabilities(try host.classifierForward(inputs), column: y)
            for k in 0..<steps { curves.floats[s * steps + k] = Float(probs[k]) }
            // Trapezoid over the given fractions.
            var area = 0.0
            for k in 1..<max(steps, 1) { area += (probs[k] + probs[k - 1]) / 2 * (fractions[k] - fractions[k - 1]) }
            let span = (fractions.last ?? 1) - (fractions.first ?? 0)
            scores.floats[s] = Float(steps > 1 && span > 0 ? area / span : probs[0])
        }
        return Outputs([("score", scores), ("curve", curves)], json: ["curve_axes": [
            "x": .array(fractions.map { .double($0) }),
            "x_label": .string(Self.mostRelevantFirst ? "fraction of the most attributed pixels imputed" : "fraction of the least attributed pixels imputed"),
            "y_label": "probability of the explained class"]])
    }
}

final class ROADMoRFScorer: ROADScorer {
    override class var description: PluginDescription {
        PluginDescription(id: "org.quac.road-morf", name: "ROAD (most relevant first)",
                          summary: "Probability of the explained class as the most attributed pixels are removed with noisy linear imputation (lower is better)", kind: .scorer)
    }
    override class var mostRelevantFirst: Bool { true }
}

final class ROADLeRFScorer: ROADScorer {
    override class var description: PluginDescription {
        PluginDescription(id: "org.quac.road-lerf", name: "ROAD (least relevant first)",
                          summary: "Probability of the explained class as the least attributed pixels are removed with noisy linear imputation (higher is better)", kind: .scorer)
    }
    override class var mostRelevantFirst: Bool { false }
}
