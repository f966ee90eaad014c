import QuacPluginKit

/// DeepLift (rescale rule) of the source logit f_y relative to `baseline`, Captum semantics: the
/// classifier's modified backward (QUAC_RULE_DEEPLIFT_RESCALE) gives the multipliers m, and the
/// attribution is m * (x - baseline). Puts JSON {"convergence_delta": [per sample]}: sum(attribution) -
/// (f_y(x) - f_y(baseline)), zero up to rounding when the classifier's rule is exact (summation-to-delta).
func deepLiftRescale(_ host: HostServices, _ batch: Batch, baseline: Tensor) throws -> Outputs {
    let labels = try batch.requireSource()
    let x = batch.x
    let n = batch.count
    guard n > 0 else { return Outputs([("attribution", Tensor(zeros: x.shape))], json: ["convergence_delta": .array([])]) }
    let (spec, _) = try host.classifierInfo()
    let oneHot = try HostServices.oneHot(labels, classes: spec.numClasses)
    let multipliers = try host.classifierVJPRule(QUAC_RULE_DEEPLIFT_RESCALE, x: x, baseline: baseline, gradLogits: oneHot)
    guard multipliers.shape == x.shape else {
        throw PluginError.invalid("the classifier's DeepLift rule returned shape \(multipliers.shape) for x of shape \(x.shape)")
    }
    let m = multipliers.floats, xs = x.floats, bs = baseline.floats
    for i in m.indices { m[i] *= xs[i] - bs[i] }
    let endpoints = try host.classifierForward(Tensor.concatenate([x, baseline]))
    let f = endpoints.floats
    let d = x.count / n, classes = spec.numClasses
    let deltas: [JSONValue] = (0..<n).map { s in
        var sum = 0.0
        for i in 0..<d { sum += Double(m[s * d + i]) }
        let y = Int(labels[s])
        return .double(sum - (Double(f[s * classes + y]) - Double(f[(n + s) * classes + y])))
    }
    withExtendedLifetime(endpoints) {}
    return Outputs([("attribution", multipliers)], json: ["convergence_delta": .array(deltas)])
}

/// Discriminative DeepLift (QuAC): DeepLift rescale of the source logit with the counterfactual x_cf as
/// the baseline, multipliers times (x - x_cf). Needs the classifier's modified-backward extension.
final class DDeepLift: AttributorPlugin {
    static let description = PluginDescription(
        id: "org.quac.d-deeplift", name: "DDeepLift",
        summary: "DeepLift (rescale rule) of the source class logit with the counterfactual as baseline", kind: .attributor)
    let host: HostServices

    init(host: HostServices, parameters: Parameters) throws { self.host = host }

    func attribute(_ batch: Batch) throws -> Outputs {
        try deepLiftRescale(host, batch, baseline: try batch.requireCounterfactual())
    }
}
