import QuacPluginKit

/// InputXGradient (Captum semantics): x * d f_y / d x.
final class InputXGradient: AttributorPlugin {
    static let description = PluginDescription(
        id: "org.quac.input-x-gradient", name: "InputXGradient", summary: "Input times the gradient of the explained class logit",
        kind: .attributor)
    let host: HostServices

    init(host: HostServices, parameters: Parameters) throws { self.host = host }

    func attribute(_ batch: Batch) throws -> Outputs {
        let g = try sourceGradient(host, batch)
        let x = batch.x.floats, gs = g.floats
        for i in gs.indices { gs[i] *= x[i] }
        return Outputs([("attribution", g)])
    }
}
