import Foundation
import QuacPluginKit

/// A counterfactual by optimization (no trained network): gradient steps on the image towards the
/// target class, minimizing per sample cross_entropy(f(x'), t) + l1 * |x' - x|_1, with x' clipped to the
/// data range after every step. A sample stops as soon as it is classified as its target with the
/// given logit margin (f_t(x') - max_{k != t} f_k(x') >= margin); the others run `steps` steps.
/// Deterministic (no randomness), and each sample's trajectory depends on that sample alone, so
/// batching does not change results. Puts JSON {"converted": [bool], "steps": [steps taken]}.
final class OptimizationConverter: ConverterPlugin {
    static let description = PluginDescription(
        id: "org.quac.optimization-converter", name: "Optimization converter",
        summary: "Gradient descent on the image towards the target class with an L1 penalty on the change", kind: .converter)
    enum Optimizer: String, CaseIterable { case adam, sgd }

    let host: HostServices
    let steps: Int
    let learningRate: Float
    let l1: Float
    let margin: Float
    let optimizer: Optimizer
    let low: Float, high: Float
    let beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8

    init(host: HostServices, parameters: Parameters) throws {
        self.host = host
        steps = try parameters.int("steps")
        learningRate = try parameters.float("learning_rate")
        l1 = try parameters.float("l1")
        margin = try parameters.float("margin")
        let name = try parameters.string("optimizer")
        guard let o = Optimizer(rawValue: name) else {
            throw PluginError.invalid("optimizer must be one of \(Optimizer.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(name)\"")
        }
        optimizer = o
        let range = try parameters.doubles("range")
        guard range.count == 2, range[0] < range[1] else { throw PluginError.invalid("range must be [low, high] with low < high") }
        (low, high) = (Float(range[0]), Float(range[1]))
        guard steps >= 0, learningRate > 0, l1 >= 0, learningRate.isFinite, l1.isFinite, margin.isFinite else {
            throw PluginError.invalid("steps must be >= 0, learning_rate > 0, l1 >= 0 and margin finite")
        }
    }

    /// Whether row `r` of `logits` classifies as `t` with the margin.
    private func reached(_ logits: UnsafeMutableBufferPointer<Float>, row r: Int, classes: Int, target t: Int) -> Bool {
        var best = -Float.infinity
        for k in 0..<classes where k != t { best = max(best, logits[r * classes + k]) }
        return classes == 1 || logits[r * classes + t] - best >= margin
    }

    func convert(_ batch: Batch) throws -> Outputs {
        let targets = try batch.requireTarget()
        let x = batch.x
        let n = batch.count
        let (spec, _) = try host.classifierInfo()
        let classes = spec.numClasses
        for (s, t) in targets.enumerated() where t < 0 || t >= Int64(classes) {
            throw PluginError.invalid("target \(t) of sample \(s) is outside [0, \(classes))")
        }
        let out = x.copy()
        guard n > 0 else { return Outputs([("counterfactual", out)], json: ["converted": .array([]), "steps": .array([])]) }
        let d = x.count / n
        let sampleShape = Array(x.shape.dropFirst())
        let xs = x.floats, cf = out.floats
        // Start inside the data range (a query outside it is clipped like every later iterate).
        for i in cf.indices { cf[i] = min(max(cf[i], low), high) }
        var m1 = [Float](repeating: 0, count: n * d), m2 = [Float](repeating: 0, count: n * d)
        var done = [Bool](repeating: false, count: n)
        var taken = [Int](repeating: steps, count: n)
        for step in 0...steps {
            try host.checkCancelled()
            let active = (0..<n).filter { !done[$0] }
            if active.isEmpty { break }
            // The active samples' current images, in one classifier call.
            let current = Tensor(zeros: [active.count] + sampleShape)
            let c = current.floats
            for (j, s) in active.enumerated() { for i in 0..<d { c[j * d + i] = cf[s * d + i] } }
            let logitsT = try host.classifierForward(current)
            let logits = logitsT.floats
            var still: [Int] = []
            for (j, s) in active.enumerated() {
                if reached(logits, row: j, classes: classes, target: Int(targets[s])) { done[s] = true; taken[s] = step }
                else { still.append(j) }
            }
            if step == steps || still.isEmpty { withExtendedLifetime(logitsT) {}; break }
            // d CE / d logits = softmax - one_hot(target), per sample (no mean over the batch).
            let rows = Tensor(zeros: [still.count] + sampleShape)
            let gradLogits = Tensor(zeros: [still.count, classes])
            let r = rows.floats, gl = gradLogits.floats
            for (q, j) in still.enumerated() {
                let s = active[j]
                for i in 0..<d { r[q * d + i] = c[j * d + i] }
                var mx = -Float.infinity
                for k in 0..<classes { mx = max(mx, logits[j * classes + k]) }
                var z: Float = 0
                for k in 0..<classes { z += exp(logits[j * classes + k] - mx) }
                for k in 0..<classes { gl[q * classes + k] = exp(logits[j * classes + k] - mx) / z }
                gl[q * classes + Int(targets[s])] -= 1
            }
            withExtendedLifetime(logitsT) {}
            let result = try host.classifierVJP(rows, gradLogits: gradLogits)
            let gradT = result.gradX
            let g = gradT.floats
            let t = Float(step + 1)
            for (q, j) in still.enumerated() {
                let s = active[j]
                for i in 0..<d {
                    let k = s * d + i
                    let diff = cf[k] - xs[k]
                    var grad = g[q * d + i] + (diff > 0 ? l1 : diff < 0 ? -l1 : 0)
                    switch optimizer {
                    case .sgd:
                        cf[k] -= learningRate * grad
                    case .adam:
                        m1[k] = beta1 * m1[k] + (1 - beta1) * grad
                        m2[k] = beta2 * m2[k] + (1 - beta2) * grad * grad
                        let mHat = m1[k] / (1 - pow(beta1, t)), vHat = m2[k] / (1 - pow(beta2, t))
                        grad = mHat / (vHat.squareRoot() + epsilon)
                        cf[k] -= learningRate * grad
                    }
                    cf[k] = min(max(cf[k], low), high)
                }
            }
            withExtendedLifetime(result) {}
            host.progress(step + 1, of: steps, "optimization steps")
        }
        return Outputs([("counterfactual", out)],
                       json: ["converted": .array(done.map { .bool($0) }), "steps": .array(taken.map { .int(Int64($0)) })])
    }
}
