import QuacPluginKit

/// Random (QuAC's baseline method): |G_sigma * n| with n standard normal noise of the sample's shape
/// and G_sigma scipy's gaussian_filter (sigma 4 by default, over every axis of the sample). Uses no
/// classifier. Each sample's noise comes from the batch seed and a hash of the sample's bytes (see
/// SampleNoise), so results are reproducible and independent of how samples are batched.
final class RandomAttribution: AttributorPlugin {
    static let description = PluginDescription(
        id: "org.quac.random", name: "Random",
        summary: "Absolute value of Gaussian-filtered standard normal noise (seeded)", kind: .attributor, reentrant: true)
    let sigma: Double

    init(host: HostServices, parameters: Parameters) throws {
        sigma = try parameters.double("sigma")
        guard sigma >= 0, sigma.isFinite else { throw PluginError.invalid("sigma must be a finite number >= 0") }
    }

    func attribute(_ batch: Batch) throws -> Outputs {
        let x = batch.x
        let out = Tensor(zeros: x.shape)
        let n = batch.count
        guard n > 0 else { return Outputs([("attribution", out)]) }
        let d = x.count / n
        let sampleShape = Array(x.shape.dropFirst())
        let xs = x.floats, o = out.floats
        for s in 0..<n {
            var rng = SampleNoise.generator(seed: batch.seed, sample: xs[(s * d)..<((s + 1) * d)])
            var noise = (0..<d).map { _ in Double(rng.normal()) }
            GaussianFilter.apply(&noise, shape: sampleShape, sigma: sigma)
            for i in 0..<d { o[s * d + i] = Float(abs(noise[i])) }
        }
        return Outputs([("attribution", out)])
    }
}
