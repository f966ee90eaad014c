import QuacPluginKit

/// Shapley value sampling (Captum's ShapleyValueSampling): the features are the groups of
/// `FeatureGroups`; for each of `n_samples` random orders of the groups, the groups are switched from
/// the baseline to the input one by one, and each group is credited with the change of the source
/// logit its switch caused. A group's value is the mean of its credits; every element of the group
/// carries it. The credits of one order add up to f(x) - f(baseline), so the values of a sample's
/// groups always sum to that (efficiency). With `exhaustive`, every order of the groups is used once
/// and the values are the exact Shapley values. Each sample's orders come from the call's seed and a
/// hash of the sample, so for a given seed a sample's values do not depend on the other samples of
/// its batch.
struct ShapleySamplingCore {
    let samples: Int
    let perEval: Int
    let groupSize: Int
    let exhaustive: Bool
    let mask: FeatureMask?

    init(parameters: Parameters) throws {
        samples = try parameters.int("n_samples")
        perEval = try parameters.int("perturbations_per_eval")
        groupSize = try parameters.int("group_size")
        exhaustive = try parameters.bool("exhaustive")
        mask = try FeatureMask.load(parameters)
        guard samples >= 1, perEval >= 1, groupSize >= 1 else {
            throw PluginError.invalid("n_samples, perturbations_per_eval and group_size must be at least 1")
        }
    }

    func attribute(_ host: HostServices, _ batch: Batch, baseline: Tensor) throws -> Outputs {
        let x = batch.x
        let labels = try batch.requireSource()
        let out = Tensor(zeros: x.shape)
        let n = batch.count
        guard n > 0 else { return Outputs([("attribution", out)]) }
        let d = x.count / n
        let groups = try FeatureGroups.of(mask, sampleShape: Array(x.shape.dropFirst()), size: groupSize)
        let g = groups.count
        // Orders are made a round at a time and dropped once credited: memory grows with the groups
        // and the samples, not with n_samples x groups (thousands of groups on large images).
        let all: [[Int]]? = exhaustive ? try {
            guard g <= 8 else { throw PluginError.invalid("exhaustive: \(g) feature groups have \(g)! orders; at most 8 groups (\(mask == nil ? "raise group_size" : "a mask with fewer ids"))") }
            return Self.permutations(g)
        }() : nil
        var generators = exhaustive ? [] : (0..<n).map { s in
            SampleNoise.generator(seed: batch.seed, sample: x.floats[(s * d)..<((s + 1) * d)], salt: 0x5348_4150)
        }
        let rounds = all?.count ?? samples
        guard case (let copies, false) = rounds.multipliedReportingOverflow(by: g), copies <= 1 << 32 else {
            throw PluginError.invalid("\(rounds) orders of \(g) feature groups are too many classifier evaluations; lower n_samples or raise group_size")
        }
        /// Sample s's order in round r (rounds are asked for in increasing order).
        var orders: [Int: [[Int]]] = [:]
        func order(_ r: Int, _ s: Int) -> [Int] {
            if let o = orders[r] { return o[s] }
            let o = all.map { a in Array(repeating: a[r], count: n) } ?? (0..<n).map { Self.shuffled(g, &generators[$0]) }
            orders[r] = o
            return o[s]
        }
        let xs = x.floats.baseAddress!, bs = baseline.floats.baseAddress!
        let eval = PerturbedLogits(host: host, x: x, labels: labels, perEval: perEval)
        let start = try eval.evaluate(copies: 1) { _, s, buf in buf.update(from: bs + s * d, count: d) }[0]
        // Copy (r, k) of a sample: the baseline with the first k + 1 groups of its order r from x.
        var state = [Float](repeating: 0, count: n * d)
        var credit = [[Double]](repeating: [Double](repeating: 0, count: g), count: n)
        var previous = start
        try eval.stream(copies: rounds * g, progress: { host.progress($0, of: rounds * g, "coalitions") }, { copy, s, buf in
            let (r, k) = (copy / g, copy % g)
            let groupOrder = order(r, s)
            state.withUnsafeMutableBufferPointer { st in
                let mine = st.baseAddress! + s * d
                if k == 0 { mine.update(from: bs + s * d, count: d) }
                for e in groups.members[groupOrder[k]] { mine[e] = xs[s * d + e] }
                buf.update(from: mine, count: d)
            }
        }, consume: { copy, logits in
            let (r, k) = (copy / g, copy % g)
            for s in 0..<n {
                credit[s][orders[r]![s][k]] += logits[s] - previous[s]
                previous[s] = k == g - 1 ? start[s] : logits[s]
            }
            if k == g - 1 { orders[r] = nil }
        })
        for s in 0..<n {
            groups.expand(credit[s].map { $0 / Double(rounds) }, into: out.floats.baseAddress! + s * d)
        }
        return Outputs([("attribution", out)], json: ["feature_groups": .int(Int64(g)), "orders": .int(Int64(rounds))])
    }

    /// A random order of 0..<count (Fisher-Yates).
    static func shuffled(_ count: Int, _ rng: inout SeededRandom) -> [Int] {
        var a = Array(0..<count)
        for i in stride(from: count - 1, to: 0, by: -1) { a.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        return a
    }

    /// Every order of 0..<count, in lexicographic order.
    static func permutations(_ count: Int) -> [[Int]] {
        guard count > 0 else { return [[]] }
        return permutations(count - 1).flatMap { p in (0...p.count).map { i in var q = p; q.insert(count - 1, at: i); return q } }
    }
}

/// Shapley value sampling with a fixed baseline value (0 by default).
final class ShapleySampling: AttributorPlugin {
    static let description = PluginDescription(
        id: "org.quac.shapley-sampling", name: "ShapleyValueSampling",
        summary: "Shapley values of superpixels, sampled over random orders, against a constant baseline", kind: .attributor)
    let host: HostServices
    let core: ShapleySamplingCore
    let baseline: Float

    init(host: HostServices, parameters: Parameters) throws {
        self.host = host
        core = try ShapleySamplingCore(parameters: parameters)
        baseline = try parameters.float("baseline")
    }

    func attribute(_ batch: Batch) throws -> Outputs {
        let b = Tensor(zeros: batch.x.shape)
        for i in 0..<b.count { b.floats[i] = baseline }
        return try core.attribute(host, batch, baseline: b)
    }
}

/// Discriminative Shapley value sampling: the baseline is the counterfactual, so the values explain the
/// change of the source logit from x_cf to x.
final class DShapleySampling: AttributorPlugin {
    static let description = PluginDescription(
        id: "org.quac.d-shapley-sampling", name: "DShapleyValueSampling",
        summary: "Shapley values of superpixels, sampled over random orders, from the counterfactual to the query", kind: .attributor)
    let host: HostServices
    let core: ShapleySamplingCore

    init(host: HostServices, parameters: Parameters) throws {
        self.host = host
        core = try ShapleySamplingCore(parameters: parameters)
    }

    func attribute(_ batch: Batch) throws -> Outputs {
        try core.attribute(host, batch, baseline: try batch.requireCounterfactual())
    }
}
