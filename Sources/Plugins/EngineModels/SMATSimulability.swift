import Engine
import Foundation
import MetaLearning
import QuacPluginKit

/// The simulability study: fresh students trained on the teacher's predictions for a budget of training
/// examples, with (a) no explanations, (b) a static explainer (the uniform mix, and each attributor head
/// alone), (c) the learned explainer; each scored by its accuracy against the teacher on the held-out
/// half of the validation split, which has no explanations. For one seed every condition gets the same
/// examples and the same initial student, so conditions differ only in the explanations.
struct SMATSimulability {
    let explainer: SMATExplainer
    let settings: SMATExplainer.Settings
    let pool: SMATExplainer.Split
    let heldOut: SMATExplainer.Split
    let classes: Int

    struct Condition { var name: String, kind: String, weights: [Float]? }

    var conditions: [Condition] {
        let h = explainer.headNames.count
        var out = [Condition(name: "none", kind: "none", weights: nil),
                   Condition(name: "uniform", kind: "static", weights: Array(repeating: 1 / Float(h), count: h))]
        // Each attributor head alone (a layer's single channels are not methods of their own).
        for (i, name) in explainer.mapHeads.enumerated() {
            var w = [Float](repeating: 0, count: h)
            w[i] = 1
            out.append(Condition(name: name, kind: "static", weights: w))
        }
        out.append(Condition(name: "learned", kind: "learned", weights: explainer.headWeights.map(\.1)))
        return out
    }

    /// The accuracy against the teacher on the held-out split of one student.
    func simulability(_ condition: Condition, budget: Int, seed: Int) throws -> Double {
        var rng = SeededRandom(seed: 0x5EED_0000 &+ UInt64(seed))
        var order = Array(0..<pool.count)
        rng.shuffle(&order)
        let subset = Array(order.prefix(budget))
        let (x, y, heads) = pool.rows(subset)
        let logE: NDArray? = condition.weights.map { w in
            noGrad { SMATMath.logExplanation(SMATMath.mix(Var(heads!), Var(NDArray(w, shape: [w.count])))) }.data.contiguous()
        }
        let student = try SMATStudent(inputShape: explainer.sampleShape, channels: settings.studentChannels, classes: classes,
                                      seed: UInt64(seed) &+ 1, learningRate: settings.studentLR, momentum: settings.momentum)
        let data = SMATExplainer.Split(x: x, teacher: y.values, heads: logE)
        for epoch in 0..<settings.studyEpochs {
            try explainer.host.checkCancelled()
            var r = SeededRandom(seed: (UInt64(seed) &+ 1) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(epoch))
            var idx = Array(0..<budget)
            r.shuffle(&idx)
            for start in stride(from: 0, to: budget, by: settings.batchSize) {
                let (xb, yb, eb) = data.rows(Array(idx[start..<min(start + settings.batchSize, budget)]))
                student.step(xb, yb, teacher: eb, beta: eb == nil ? 0 : settings.beta)
            }
        }
        return student.accuracy(heldOut.x, heldOut.teacher)
    }

    func run() throws -> JSONValue {
        let budgets = settings.budgets.filter { $0 <= pool.count }
        let skipped = settings.budgets.filter { $0 > pool.count }
        if !skipped.isEmpty { explainer.host.log("simulability: budgets \(skipped) exceed the \(pool.count) training samples and are skipped", level: QUAC_LOG_WARNING) }
        guard settings.studySeeds > 0, !budgets.isEmpty, heldOut.count > 0 else { return .null }
        let conds = conditions
        let total = conds.count * budgets.count * settings.studySeeds
        var done = 0
        var results: [[JSONValue]] = Array(repeating: [], count: conds.count)
        for budget in budgets {
            var values = Array(repeating: [Double](), count: conds.count)
            for seed in 0..<settings.studySeeds {
                for (c, condition) in conds.enumerated() {
                    values[c].append(try simulability(condition, budget: budget, seed: seed))
                    done += 1
                    explainer.host.progress(done, of: total, "simulability: \(condition.name), \(budget) examples")
                }
            }
            for c in conds.indices {
                let q = Self.quartiles(values[c])
                results[c].append(["budget": .int(Int64(budget)), "median": .double(q.median), "q1": .double(q.q1), "q3": .double(q.q3),
                                   "values": .array(values[c].map { .double($0) })])
            }
        }
        return [
            "budgets": .array(budgets.map { .int(Int64($0)) }), "seeds": .int(Int64(settings.studySeeds)),
            "epochs": .int(Int64(settings.studyEpochs)), "held_out": .int(Int64(heldOut.count)),
            "conditions": .array(conds.enumerated().map { c, cond in
                ["name": .string(cond.name), "kind": .string(cond.kind),
                 "weights": cond.weights.map { .array($0.map { .double(Double($0)) }) } ?? .null, "results": .array(results[c])]
            }),
        ]
    }

    /// Median and quartiles by linear interpolation between order statistics (NumPy's default).
    static func quartiles(_ v: [Double]) -> (q1: Double, median: Double, q3: Double) {
        let s = v.sorted()
        func q(_ p: Double) -> Double {
            guard !s.isEmpty else { return .nan }
            let h = p * Double(s.count - 1), lo = Int(h.rounded(.down)), hi = min(lo + 1, s.count - 1)
            return s[lo] + (h - Double(lo)) * (s[hi] - s[lo])
        }
        return (q(0.25), q(0.5), q(0.75))
    }
}
