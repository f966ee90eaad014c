import QuacPluginKit

/// The features that perturbation methods (Shapley value sampling, feature ablation) switch on and off
/// together: the groups of a user's mask (FeatureMask.swift), or by default, for images [C, H, W],
/// square superpixels of `size` x `size` pixels on a grid from the top left corner (smaller at the
/// right and bottom edges), each covering every channel, and for samples of any other rank (concept
/// vectors...) every element on its own.
struct FeatureGroups {
    /// For each group, the indices of its elements within one sample.
    let members: [[Int]]
    var count: Int { members.count }

    init(members: [[Int]]) { self.members = members }

    init(sampleShape: [Int], size: Int) {
        let d = sampleShape.reduce(1, *)
        guard sampleShape.count == 3 else {
            members = (0..<d).map { [$0] }
            return
        }
        let (c, h, w) = (sampleShape[0], sampleShape[1], sampleShape[2])
        let size = min(size, max(h, w, 1))   // a larger superpixel is the whole image
        let columns = (w + size - 1) / size
        var groups = [[Int]](repeating: [], count: ((h + size - 1) / size) * columns)
        for ch in 0..<c { for r in 0..<h { for q in 0..<w {
            groups[(r / size) * columns + q / size].append((ch * h + r) * w + q)
        } } }
        members = groups
    }

    /// Per-element values from per-group ones: every element of a group carries the group's value.
    func expand(_ values: [Double], into out: UnsafeMutablePointer<Float>) {
        for (g, elements) in members.enumerated() { for e in elements { out[e] = Float(values[g]) } }
    }
}

/// Evaluates the source-class logit of many perturbed copies of a batch, `perEval` copies of every
/// sample per classifier call.
struct PerturbedLogits {
    let host: HostServices
    let x: Tensor
    let labels: [Int64]
    let perEval: Int

    /// `fill(k, sample, buffer)` writes perturbed copy k of `sample` into `buffer` (one sample's
    /// elements); returns logit[k][sample] of the source class, for k in 0..<copies.
    func evaluate(copies: Int, progress: (Int) -> Void = { _ in },
                  _ fill: (Int, Int, UnsafeMutablePointer<Float>) -> Void) throws -> [[Double]] {
        var out: [[Double]] = []
        out.reserveCapacity(copies)
        try stream(copies: copies, progress: progress, fill) { _, logits in out.append(logits) }
        return out
    }

    /// Like `evaluate`, but hands each copy's source logits (one per sample) to `consume` in order of
    /// k, as soon as its classifier call is done, so callers can fold them into running sums instead
    /// of keeping every copy (perturbation methods with thousands of groups).
    func stream(copies: Int, progress: (Int) -> Void = { _ in },
                _ fill: (Int, Int, UnsafeMutablePointer<Float>) -> Void,
                consume: (Int, [Double]) throws -> Void) throws {
        let n = x.shape[0], d = x.count / max(n, 1)
        let (spec, _) = try host.classifierInfo()
        for s in 0..<n {
            let y = Int(labels[s])
            guard y >= 0 && y < spec.numClasses else { throw PluginError.invalid("source label \(y) of sample \(s) is outside [0, \(spec.numClasses))") }
        }
        if let problem = MemoryBudget.problem([("perturbations_per_eval", min(perEval, copies)), ("samples", n), ("values", d)]) {
            throw PluginError.invalid("one classifier call's perturbed copies: \(problem); lower perturbations_per_eval")
        }
        var start = 0
        while start < copies {
            try host.checkCancelled()
            let chunk = min(perEval, copies - start)
            let inputs = Tensor(zeros: [chunk * n] + Array(x.shape.dropFirst()))
            let p = inputs.floats.baseAddress!
            for k in 0..<chunk { for s in 0..<n { fill(start + k, s, p + (k * n + s) * d) } }
            let logits = try host.classifierForward(inputs)
            let l = logits.floats
            for k in 0..<chunk {
                try consume(start + k, (0..<n).map { s in Double(l[(k * n + s) * spec.numClasses + Int(labels[s])]) })
            }
            withExtendedLifetime(logits) {}
            start += chunk
            progress(start)
        }
    }
}
