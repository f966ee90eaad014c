import QuacPluginKit

/// Feature ablation (Captum's FeatureAblation): each group of `FeatureGroups` in turn is replaced by
/// the baseline value, and every element of the group gets the drop of the source logit,
/// f(x) - f(x with the group ablated).
final class FeatureAblation: AttributorPlugin {
    static let description = PluginDescription(
        id: "org.quac.feature-ablation", name: "FeatureAblation",
        summary: "Drop of the source logit when a superpixel is replaced by a baseline value", kind: .attributor)
    let host: HostServices
    let groupSize: Int
    let perEval: Int
    let baseline: Float
    let mask: FeatureMask?

    init(host: HostServices, parameters: Parameters) throws {
        self.host = host
        mask = try FeatureMask.load(parameters)
        groupSize = try parameters.int("group_size")
        perEval = try parameters.int("perturbations_per_eval")
        baseline = try parameters.float("baseline")
        guard groupSize >= 1, perEval >= 1 else { throw PluginError.invalid("group_size and perturbations_per_eval must be at least 1") }
    }

    func attribute(_ batch: Batch) throws -> Outputs {
        let x = batch.x
        let labels = try batch.requireSource()
        let out = Tensor(zeros: x.shape)
        let n = batch.count
        guard n > 0 else { return Outputs([("attribution", out)]) }
        let d = x.count / n
        let groups = try FeatureGroups.of(mask, sampleShape: Array(x.shape.dropFirst()), size: groupSize)
        let xs = x.floats.baseAddress!
        let eval = PerturbedLogits(host: host, x: x, labels: labels, perEval: perEval)
        let full = try eval.evaluate(copies: 1) { _, s, buf in buf.update(from: xs + s * d, count: d) }[0]
        let ablated = try eval.evaluate(copies: groups.count, progress: { host.progress($0, of: groups.count, "groups") }) { g, s, buf in
            buf.update(from: xs + s * d, count: d)
            for e in groups.members[g] { buf[e] = baseline }
        }
        for s in 0..<n {
            groups.expand((0..<groups.count).map { full[s] - ablated[$0][s] }, into: out.floats.baseAddress! + s * d)
        }
        return Outputs([("attribution", out)])
    }
}
