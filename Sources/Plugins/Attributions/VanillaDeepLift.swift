import QuacPluginKit

/// DeepLift (rescale rule, Captum semantics) of the source logit with an all-zero baseline: the
/// classifier's DeepLift multipliers times x. Needs the classifier's modified-backward extension.
final class VanillaDeepLift: AttributorPlugin {
    static let description = PluginDescription(
        id: "org.quac.vanilla-deeplift", name: "VanillaDeepLift",
        summary: "DeepLift (rescale rule) of the source class logit with an all-zero baseline", kind: .attributor)
    let host: HostServices

    init(host: HostServices, parameters: Parameters) throws { self.host = host }

    func attribute(_ batch: Batch) throws -> Outputs {
        try deepLiftRescale(host, batch, baseline: Tensor(zeros: batch.x.shape))
    }
}
