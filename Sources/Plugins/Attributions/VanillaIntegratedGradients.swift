import QuacPluginKit

/// Integrated Gradients (Captum semantics) of the source logit from an all-zero baseline. Puts JSON
/// {"convergence_delta": [per sample]}.
final class VanillaIntegratedGradients: AttributorPlugin {
    static let description = PluginDescription(
        id: "org.quac.vanilla-integrated-gradients", name: "VanillaIntegratedGradients",
        summary: "Integrated Gradients of the source class logit from an all-zero baseline", kind: .attributor)
    let host: HostServices
    let core: IntegratedGradientsCore

    init(host: HostServices, parameters: Parameters) throws {
        self.host = host
        core = try IntegratedGradientsCore(parameters: parameters)
    }

    func attribute(_ batch: Batch) throws -> Outputs {
        try core.attribute(host, batch, baseline: Tensor(zeros: batch.x.shape))
    }
}
