import QuacPluginKit

/// Saliency (Captum semantics): the absolute gradient of the source logit, or the raw gradient with
/// absolute = false.
final class Saliency: AttributorPlugin {
    static let description = PluginDescription(
        id: "org.quac.saliency", name: "Saliency", summary: "Absolute gradient of the explained class logit",
        kind: .attributor)
    let host: HostServices
    let absolute: Bool

    init(host: HostServices, parameters: Parameters) throws {
        self.host = host
        absolute = try parameters.bool("absolute")
    }

    func attribute(_ batch: Batch) throws -> Outputs {
        let g = try sourceGradient(host, batch)
        if absolute { for i in g.floats.indices { g.floats[i] = abs(g.floats[i]) } }
        return Outputs([("attribution", g)])
    }
}
