import QuacPluginKit

/// Occlusion (Captum semantics, forward only): slide a window over the image (all channels at once),
/// replace it with a baseline value and record how much the source logit drops; each pixel gets the
/// mean drop of the windows that covered it.
final class Occlusion: AttributorPlugin {
    static let description = PluginDescription(
        id: "org.quac.occlusion", name: "Occlusion", summary: "Logit drop when a sliding window is replaced by a baseline",
        kind: .attributor)
    let host: HostServices
    let window: (Int, Int)
    let stride: (Int, Int)
    let baseline: Float

    init(host: HostServices, parameters: Parameters) throws {
        self.host = host
        func pair(_ key: String, _ v: JSONValue) throws -> (Int, Int) {
            if let a = v.arrayValue, a.count == 2 {
                guard let h = a[0].intValue, let w = a[1].intValue, h >= 1, w >= 1 else { throw PluginError.invalid("\(key) must be positive") }
                return (Int(h), Int(w))
            }
            guard let k = v.intValue, k >= 1 else { throw PluginError.invalid("\(key) must be a positive integer or [h, w]") }
            return (Int(k), Int(k))
        }
        window = try pair("window", try parameters.value("window"))
        // The schema's rule for an absent stride: the window, in both dimensions.
        stride = try parameters.optional("stride").map { try pair("stride", $0) } ?? window
        baseline = try parameters.float("baseline")
    }

    func attribute(_ batch: Batch) throws -> Outputs {
        let labels = try batch.requireSource()
        let x = batch.x
        guard x.rank == 4 else { throw PluginError.invalid("x: occlusion needs images [N, C, H, W], got \(x.shape)") }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (spec, _) = try host.classifierInfo()
        // Keep the tensors alive while their float buffers are read.
        let baseLogits = try host.classifierForward(x)
        let base = baseLogits.floats
        let out = Tensor(zeros: x.shape)
        let counts = Tensor(zeros: x.shape)
        let positions = windowStarts(h, window.0, stride.0).flatMap { r in windowStarts(w, window.1, stride.1).map { (r, $0) } }
        let plane = h * w
        for (done, (r0, c0)) in positions.enumerated() {
            try host.checkCancelled()
            // All samples of the batch occluded at this position, in one forward pass.
            let occluded = x.copy()
            let o = occluded.floats
            for s in 0..<n { for ch in 0..<c { for r in r0..<min(r0 + window.0, h) { for q in c0..<min(c0 + window.1, w) {
                o[((s * c + ch) * h + r) * w + q] = baseline
            } } } }
            let occludedLogits = try host.classifierForward(occluded)
            let logits = occludedLogits.floats
            let a = out.floats, k = counts.floats
            for s in 0..<n {
                let y = Int(labels[s])
                guard y >= 0 && y < spec.numClasses else { throw PluginError.invalid("source label \(y) of sample \(s) is outside [0, \(spec.numClasses))") }
                let drop = base[s * spec.numClasses + y] - logits[s * spec.numClasses + y]
                for ch in 0..<c { for r in r0..<min(r0 + window.0, h) { for q in c0..<min(c0 + window.1, w) {
                    let i = (s * c + ch) * plane + r * w + q
                    a[i] += drop; k[i] += 1
                } } }
            }
            host.progress(done + 1, of: positions.count, "windows")
            withExtendedLifetime(occludedLogits) {}
        }
        let a = out.floats, k = counts.floats
        for i in a.indices where k[i] > 0 { a[i] /= k[i] }
        withExtendedLifetime(baseLogits) {}
        return Outputs([("attribution", out)])
    }

    /// Window starts along one axis: every stride, plus one flush with the end so no pixel is missed.
    private func windowStarts(_ size: Int, _ win: Int, _ step: Int) -> [Int] {
        guard size > win else { return [0] }
        var starts = Array(Swift.stride(from: 0, through: size - win, by: step))
        if starts.last! != size - win { starts.append(size - win) }
        return starts
    }
}
