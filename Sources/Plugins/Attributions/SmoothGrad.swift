import QuacPluginKit

/// SmoothGrad (Captum's NoiseTunnel over Saliency or InputXGradient): the base attribution of the source
/// logit at nt_samples noisy copies x + N(0, stdevs^2), combined per nt_type: "smoothgrad" (mean),
/// "smoothgrad_sq" (mean of squares) or "vargrad" (variance). Noise is drawn per sample from the batch
/// seed and a hash of the sample's bytes (see SampleNoise), so batching does not change results.
final class SmoothGrad: AttributorPlugin {
    static let description = PluginDescription(
        id: "org.quac.smoothgrad", name: "SmoothGrad",
        summary: "Saliency averaged over noisy copies of the input (Captum's NoiseTunnel)", kind: .attributor)
    enum NoiseType: String, CaseIterable { case smoothgrad, smoothgrad_sq, vargrad }
    enum Base: String, CaseIterable { case saliency, input_x_gradient }

    let host: HostServices
    let samples: Int
    let stdev: Float
    let type: NoiseType
    let base: Base
    let absolute: Bool
    let rowsPerCall: Int

    init(host: HostServices, parameters: Parameters) throws {
        self.host = host
        samples = try parameters.int("nt_samples")
        stdev = try parameters.float("stdevs")
        let t = try parameters.string("nt_type")
        guard let nt = NoiseType(rawValue: t) else {
            throw PluginError.invalid("nt_type must be one of \(NoiseType.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(t)\"")
        }
        type = nt
        let b = try parameters.string("base")
        guard let bm = Base(rawValue: b) else {
            throw PluginError.invalid("base must be one of \(Base.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(b)\"")
        }
        base = bm
        absolute = try parameters.bool("absolute")
        rowsPerCall = try parameters.int("nt_samples_batch_size")
        guard samples >= 1, stdev >= 0, stdev.isFinite, rowsPerCall >= 1 else {
            throw PluginError.invalid("nt_samples and nt_samples_batch_size must be >= 1 and stdevs a finite number >= 0")
        }
    }

    func attribute(_ batch: Batch) throws -> Outputs {
        let labels = try batch.requireSource()
        let x = batch.x
        let n = batch.count
        let out = Tensor(zeros: x.shape)
        guard n > 0 else { return Outputs([("attribution", out)]) }
        let (spec, _) = try host.classifierInfo()
        let classes = spec.numClasses
        for (s, y) in labels.enumerated() where y < 0 || y >= Int64(classes) {
            throw PluginError.invalid("source label \(y) of sample \(s) is outside [0, \(classes))")
        }
        let d = x.count / n
        let sampleShape = Array(x.shape.dropFirst())
        let xs = x.floats
        // Noisy copies, sample-major: row s * samples + k. Each sample's noise from its own generator.
        if let problem = MemoryBudget.problem([("samples", n), ("nt_samples", samples), ("values", d)]) {
            throw PluginError.invalid("the noisy copies: \(problem); lower nt_samples or the batch size")
        }
        let rows = n * samples
        let noisy = [Float](unsafeUninitializedCapacity: rows * d) { buf, count in
            for s in 0..<n {
                var rng = SampleNoise.generator(seed: batch.seed, sample: xs[(s * d)..<((s + 1) * d)], salt: 1)
                for k in 0..<samples {
                    for i in 0..<d { buf[(s * samples + k) * d + i] = xs[s * d + i] + stdev * rng.normal() }
                }
            }
            count = rows * d
        }
        var sum = [Double](repeating: 0, count: n * d), sumSq = [Double](repeating: 0, count: n * d)
        let chunks = (rows + rowsPerCall - 1) / rowsPerCall
        var start = 0
        for chunk in 0..<chunks {
            try host.checkCancelled()
            let end = min(start + rowsPerCall, rows), m = end - start
            let input = Tensor(Array(noisy[(start * d)..<(end * d)]), shape: [m] + sampleShape)
            let gradLogits = Tensor(zeros: [m, classes])
            let gl = gradLogits.floats
            for j in 0..<m { gl[j * classes + Int(labels[(start + j) / samples])] = 1 }
            let result = try host.classifierVJP(input, gradLogits: gradLogits)
            let grad = result.gradX
            let g = grad.floats
            for j in 0..<m {
                let s = (start + j) / samples
                for i in 0..<d {
                    var a = g[j * d + i]
                    switch base {
                    case .saliency: if absolute { a = abs(a) }
                    case .input_x_gradient: a *= noisy[(start + j) * d + i]
                    }
                    sum[s * d + i] += Double(a)
                    sumSq[s * d + i] += Double(a) * Double(a)
                }
            }
            withExtendedLifetime(result) {}
            start = end
            host.progress(chunk + 1, of: chunks, "noisy samples")
        }
        let o = out.floats
        let k = Double(samples)
        for i in 0..<(n * d) {
            let mean = sum[i] / k, meanSq = sumSq[i] / k
            switch type {
            case .smoothgrad: o[i] = Float(mean)
            case .smoothgrad_sq: o[i] = Float(meanSq)
            case .vargrad: o[i] = Float(max(meanSq - mean * mean, 0))
            }
        }
        return Outputs([("attribution", out)])
    }
}
