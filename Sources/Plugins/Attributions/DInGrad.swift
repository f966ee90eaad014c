import QuacPluginKit

/// Discriminative InputXGradient (QuAC's DInGrad): |d f_y / d x| at the query times (x_cf - x).
final class DInGrad: AttributorPlugin {
    static let description = PluginDescription(
        id: "org.quac.d-ingrad", name: "DInGrad",
        summary: "Absolute gradient of the source class logit times the counterfactual's change (x_cf - x)", kind: .attributor)
    let host: HostServices

    init(host: HostServices, parameters: Parameters) throws { self.host = host }

    func attribute(_ batch: Batch) throws -> Outputs {
        let cf = try batch.requireCounterfactual()
        guard batch.count > 0 else { return Outputs([("attribution", Tensor(zeros: batch.x.shape))]) }
        let g = try sourceGradient(host, batch)
        let gs = g.floats, x = batch.x.floats, c = cf.floats
        for i in gs.indices { gs[i] = abs(gs[i]) * (c[i] - x[i]) }
        return Outputs([("attribution", g)])
    }
}
