import QuacPluginKit

/// Residual (QuAC): |x - x_cf|, the change the counterfactual made.
final class Residual: AttributorPlugin {
    static let description = PluginDescription(
        id: "org.quac.residual", name: "Residual", summary: "Absolute difference between query and counterfactual",
        kind: .attributor, reentrant: true)

    init(host: HostServices, parameters: Parameters) throws {}

    func attribute(_ batch: Batch) throws -> Outputs {
        let cf = try batch.requireCounterfactual()
        let out = Tensor(zeros: batch.x.shape)
        let x = batch.x.floats, c = cf.floats, o = out.floats
        for i in o.indices { o[i] = abs(x[i] - c[i]) }
        return Outputs([("attribution", out)])
    }
}
