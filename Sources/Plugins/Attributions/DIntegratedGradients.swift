import QuacPluginKit

/// Discriminative Integrated Gradients (QuAC): IG of the source logit f_y from the counterfactual x_cf
/// to the query x. Puts JSON {"convergence_delta": [per sample]}.
final class DIntegratedGradients: AttributorPlugin {
    static let description = PluginDescription(
        id: "org.quac.d-integrated-gradients", name: "DIntegratedGradients",
        summary: "Integrated Gradients of the source class logit from the counterfactual to the query", kind: .attributor)
    let host: HostServices
    let core: IntegratedGradientsCore

    init(host: HostServices, parameters: Parameters) throws {
        self.host = host
        core = try IntegratedGradientsCore(parameters: parameters)
    }

    func attribute(_ batch: Batch) throws -> Outputs {
        try core.attribute(host, batch, baseline: try batch.requireCounterfactual())
    }
}
