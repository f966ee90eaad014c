import Foundation
import QuacPluginKit

/// The QuAC evaluator (funkelab/quac's Evaluator + Processor + Report) as a scorer: for each of
/// `num_thresholds` thresholds the attribution is cut, closed with an elliptical element, blurred into
/// a soft mask, and the hybrid x_cf * mask + x * (1 - mask) is classified; the curve of mask size
/// against the change in target probability, interpolated at 101 sizes, has the QuAC score as its
/// area. See docs/algorithms.md, "QuAC evaluator". Identical closed masks (e.g. every negative
/// threshold's full mask) are built, blurred and classified once; every number is the same as scoring
/// each threshold.
///
/// Precision follows the reference: masks, hybrids and probabilities in float32 (OpenCV and PyTorch
/// work in float32 there), sizes, the trade-off, the curve and its area in float64 (NumPy/SciPy).
final class QuacEvaluatorScorer: ScorerPlugin {
    static let description = PluginDescription(
        id: "org.quac.quac-evaluator", name: "QuAC evaluator",
        summary: "QuAC score: area under the mask size vs. score change curve of closed, blurred threshold masks",
        kind: .scorer)

    let host: HostServices
    let thresholds: QuacThresholds
    let element: EllipticalStructuringElement
    let blurSize: Int
    let channelWise: Bool
    let maxBatch: Int
    /// One worker's scratch objects for the last image size seen.
    private var scratch: [WorkerScratch] = []

    /// What one worker reuses from sample to sample: the closing and blur buffers, and the classifier's
    /// input rows. Fresh multi-megabyte inputs per sample cost more in page faults and zero-filling
    /// than the blur and the classifier together.
    final class WorkerScratch {
        let closing: BinaryClosing
        let blur: MaskBlur
        private var input: TensorStorage?

        init(closing: BinaryClosing, blur: MaskBlur) {
            self.closing = closing
            self.blur = blur
        }

        /// An uninitialised float32 tensor of `shape` in memory kept for the next call (every row the
        /// evaluator passes is written before the classifier reads it).
        func inputTensor(_ shape: [Int]) -> Tensor {
            let bytes = shape.reduce(1, *) * MemoryLayout<Float>.size
            if input.map({ $0.byteCount < bytes }) ?? true {
                let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: 64)
                input = TensorStorage(base: p, byteCount: bytes) { p.deallocate() }
            }
            return Tensor(dtype: .float32, shape: shape, storage: input!)
        }
    }

    init(host: HostServices, parameters: Parameters) throws {
        self.host = host
        let count = try parameters.int("num_thresholds")
        let vmin = try parameters.double("vmin")
        let vmax = try parameters.double("vmax")
        let structSize = try parameters.int("structuring_element_size")
        blurSize = try parameters.int("gaussian_kernel_size")
        channelWise = try parameters.bool("channel_wise")
        maxBatch = try parameters.int("max_batch")
        guard count >= 1, count <= 100_000 else { throw PluginError.invalid("num_thresholds must be in [1, 100000]") }
        guard vmin.isFinite, vmax.isFinite, vmax > vmin else { throw PluginError.invalid("vmin must be below vmax") }
        guard structSize >= 1, structSize <= 1024 else { throw PluginError.invalid("structuring_element_size must be in [1, 1024]") }
        guard blurSize >= 1, blurSize % 2 == 1, blurSize <= 1023 else { throw PluginError.invalid("gaussian_kernel_size must be odd and in [1, 1023]") }
        guard maxBatch >= 1 else { throw PluginError.invalid("max_batch must be >= 1") }
        thresholds = QuacThresholds(vmin: vmin, vmax: vmax, count: count)
        guard !thresholds.values.isEmpty else { throw PluginError.invalid("no thresholds in [vmin, vmax)") }
        element = EllipticalStructuringElement(width: structSize, height: structSize)
    }

    func score(_ batch: Batch) throws -> Outputs {
        let cf = try batch.requireCounterfactual()
        let targets = try batch.requireTarget()
        guard let map = batch.attribution else { throw PluginError.invalid("attribution is required") }
        let x = batch.x
        guard x.rank == 4 || x.rank == 3 else {
            throw PluginError.invalid("x: expected images [N, C, H, W] or [N, H, W], got \(x.shape)")
        }
        let n = batch.count
        let c = x.rank == 4 ? x.shape[1] : 1, h = x.shape[x.rank - 2], w = x.shape[x.rank - 1]
        let (spec, _) = try host.classifierInfo()
        let classes = spec.numClasses
        for (s, t) in targets.enumerated() where t < 0 || t >= classes {
            throw PluginError.invalid("target \(t) of sample \(s) is outside [0, \(classes))")
        }
        // Samples are spread over the host's threads, each worker with its own scratch objects; every
        // sample's numbers are computed exactly as alone, so scores are the same bit for bit for any
        // thread count. Classifier calls may overlap: the host serialises them for a classifier that
        // is not reentrant.
        let workers = max(1, min(PluginThreads.count, n))
        if scratch.first.map({ $0.closing.width != w || $0.closing.height != h }) ?? false { scratch = [] }
        while scratch.count < workers {
            scratch.append(WorkerScratch(closing: BinaryClosing(width: w, height: h, element: element),
                                         blur: MaskBlur(width: w, height: h, kernelSize: blurSize)))
        }
        let grid = QuacCurve.grid
        let sampleSize = c * h * w
        let scores = Tensor(zeros: [n])
        let curves = Tensor(zeros: [n, grid.count])
        let masks = Tensor(zeros: x.shape), hybrids = Tensor(zeros: x.shape)
        let sampleShape = Array(x.shape.dropFirst())
        let results = UnsafeMutableBufferPointer<Result<SampleResult, Error>?>.allocate(capacity: n)
        results.initialize(repeating: nil)
        defer { results.deinitialize(); results.deallocate() }
        let lock = NSLock()
        var next = 0, done = 0
        let scratch = self.scratch
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            while true {
                let s: Int = lock.withLock { defer { next += 1 }; return next }
                guard s < n else { return }
                results[s] = Result {
                    try host.checkCancelled()
                    return try evaluate(x: x.floats.baseAddress! + s * sampleSize, cf: cf.floats.baseAddress! + s * sampleSize,
                                        map: map.floats.baseAddress! + s * sampleSize, target: Int(targets[s]),
                                        shape: (c, h, w), sampleShape: sampleShape, classes: classes,
                                        scratch: scratch[worker],
                                        mask: masks.floats.baseAddress! + s * sampleSize,
                                        hybrid: hybrids.floats.baseAddress! + s * sampleSize)
                }
                let finished: Int = lock.withLock { done += 1; return done }
                host.progress(finished, of: n, "QuAC evaluation")
            }
        }
        var json = SampleJSON()
        for s in 0..<n {
            let r = try results[s]!.get()
            scores.floats[s] = Float(r.score)
            for (k, v) in r.curve.enumerated() { curves.floats[s * grid.count + k] = Float(v) }
            json.add(r, thresholds: thresholds.values, target: Int(targets[s]), source: batch.source.map { Int($0.int64s[s]) })
        }
        var doc = json.object
        doc["thresholds"] = .array(thresholds.values.map { .double($0) })
        doc["interpolated_mask_sizes"] = .array(grid.map { .double($0) })
        return Outputs([("score", scores), ("curve", curves), ("mask", masks), ("hybrid", hybrids)], json: .object(doc))
    }

    struct SampleResult {
        var sizes: [Double]
        var changes: [Float]
        var optimalIndex: Int
        var curve: [Double]
        var score: Double
        var query: [Float]
        var generated: [Float]
        var counterfactual: [Float]
    }

    /// One query: its distinct masks, their hybrids through the classifier (with the query and the
    /// generated image, in as few calls as max_batch allows), and the curve. Writes the soft mask and
    /// the hybrid at the optimal threshold to `mask` and `hybrid`.
    private func evaluate(x: UnsafePointer<Float>, cf: UnsafePointer<Float>, map: UnsafePointer<Float>, target: Int,
                          shape: (c: Int, h: Int, w: Int), sampleShape: [Int], classes: Int,
                          scratch: WorkerScratch,
                          mask: UnsafeMutablePointer<Float>, hybrid: UnsafeMutablePointer<Float>) throws -> SampleResult {
        let (c, h, w) = shape
        let sampleSize = c * h * w
        let masks = QuacMaskSet(map: map, channels: c, height: h, width: w, channelWise: channelWise,
                                thresholds: thresholds, closing: scratch.closing)
        // Rows: the query, the generated image, then one hybrid per distinct mask.
        let rows = 2 + masks.count
        var probabilities = [Float](repeating: 0, count: rows * classes)
        var first = 0
        while first < rows {
            let count = min(maxBatch, rows - first)
            let input = scratch.inputTensor([count] + sampleShape)
            let inp = input.floats.baseAddress!
            for row in first..<(first + count) {
                let dst = inp + (row - first) * sampleSize
                switch row {
                case 0: dst.update(from: x, count: sampleSize)
                case 1: dst.update(from: cf, count: sampleSize)
                default:
                    hybridOf(masks, row - 2, shape: shape, blur: scratch.blur, x: x, cf: cf, into: dst)
                }
            }
            let logits = try host.classifierForward(input)
            guard logits.dtype == .float32, logits.shape == [count, classes] else {
                throw PluginError.invalid("classifier returned logits of shape \(logits.shape), expected [\(count), \(classes)]")
            }
            probabilities.withUnsafeMutableBufferPointer { p in
                for r in 0..<count {
                    Self.softmax(logits.floats.baseAddress! + r * classes, classes: classes, into: p.baseAddress! + (first + r) * classes)
                }
            }
            first += count
        }
        let query = Array(probabilities[0..<classes])
        let generated = Array(probabilities[classes..<(2 * classes)])
        // Score change (float32, as PyTorch's probabilities are) and normalised size (float64).
        let total = Double(sampleSize)
        var sizes = [Double](), changes = [Float]()
        sizes.reserveCapacity(thresholds.count); changes.reserveCapacity(thresholds.count)
        for i in 0..<thresholds.count {
            let u = masks.maskIndex[i]
            sizes.append(Double(masks.sizes[u]) / total)
            changes.append(probabilities[(2 + u) * classes + target] - query[target])
        }
        let wideChanges = changes.map { Double($0) }
        let optimal = QuacCurve.optimalIndex(sizes: sizes, changes: wideChanges)
        let curve = QuacCurve.interpolated(sizes: sizes, changes: wideChanges)
        let score = QuacCurve.trapezoid(curve)
        let u = masks.maskIndex[optimal]
        hybridOf(masks, u, shape: shape, blur: scratch.blur, x: x, cf: cf, into: hybrid, mask: mask)
        let counterfactual = Array(probabilities[((2 + u) * classes)..<((3 + u) * classes)])
        return SampleResult(sizes: sizes, changes: changes, optimalIndex: optimal, curve: curve, score: score,
                            query: query, generated: generated, counterfactual: counterfactual)
    }

    /// The hybrid of distinct mask `index` into `hybrid`, and its blurred mask into `mask` when given
    /// (C * H * W floats each). The blur's own result is read in place: it is not copied per mask.
    private func hybridOf(_ masks: QuacMaskSet, _ index: Int, shape: (c: Int, h: Int, w: Int), blur: MaskBlur,
                          x: UnsafePointer<Float>, cf: UnsafePointer<Float>,
                          into hybrid: UnsafeMutablePointer<Float>, mask: UnsafeMutablePointer<Float>? = nil) {
        let plane = shape.h * shape.w
        let wpr = BitRows.wordsPerRow(shape.w)
        var soft: UnsafePointer<Float>?
        for ch in 0..<shape.c {
            // With one plane for every channel (channel_wise off), one blur serves them all.
            if masks.planes > 1 || soft == nil {
                soft = masks.withPlane(index, masks.planes == 1 ? 0 : ch) { blur.blurred($0, wordsPerRow: wpr, slot: ch) }
            }
            let offset = ch * plane
            Self.hybrid(x: x + offset, cf: cf + offset, mask: soft!, count: plane, into: hybrid + offset)
            mask?.advanced(by: offset).update(from: soft!, count: plane)
        }
    }

    /// hybrid = x_cf * mask + x * (1 - mask), in float32 and in this order (NumPy's, no fused
    /// multiply-add).
    static func hybrid(x: UnsafePointer<Float>, cf: UnsafePointer<Float>, mask: UnsafePointer<Float>, count: Int,
                       into out: UnsafeMutablePointer<Float>) {
        for i in 0..<count { out[i] = cf[i] * mask[i] + x[i] * (1 - mask[i]) }
    }

    /// Softmax of one row in float32 (PyTorch's: exp(l - max) times the reciprocal of their sum).
    static func softmax(_ logits: UnsafePointer<Float>, classes: Int, into out: UnsafeMutablePointer<Float>) {
        var m = -Float.infinity
        for k in 0..<classes { m = max(m, logits[k]) }
        var sum: Float = 0
        for k in 0..<classes { out[k] = Foundation.exp(logits[k] - m); sum += out[k] }
        let inv = 1 / sum
        for k in 0..<classes { out[k] *= inv }
    }

    /// The per-sample fields of QuAC's report JSON, one array entry per sample.
    struct SampleJSON {
        var score: [JSONValue] = [], optimalThreshold: [JSONValue] = [], optimalIndex: [JSONValue] = []
        var sizes: [JSONValue] = [], changes: [JSONValue] = []
        var query: [JSONValue] = [], counterfactual: [JSONValue] = [], generated: [JSONValue] = []
        var target: [JSONValue] = [], source: [JSONValue] = []

        mutating func add(_ r: SampleResult, thresholds: [Double], target t: Int, source s: Int?) {
            score.append(.double(r.score))
            optimalThreshold.append(.double(thresholds[r.optimalIndex]))
            optimalIndex.append(.int(Int64(r.optimalIndex)))
            sizes.append(.array(r.sizes.map { .double($0) }))
            changes.append(.array(r.changes.map { .double(Double($0)) }))
            query.append(.array(r.query.map { .double(Double($0)) }))
            counterfactual.append(.array(r.counterfactual.map { .double(Double($0)) }))
            generated.append(.array(r.generated.map { .double(Double($0)) }))
            target.append(.int(Int64(t)))
            if let s { source.append(.int(Int64(s))) }
        }

        var object: JSONObject {
            var o = JSONObject()
            o["score"] = .array(score)
            o["optimal_threshold"] = .array(optimalThreshold)
            o["optimal_index"] = .array(optimalIndex)
            o["normalized_mask_sizes"] = .array(sizes)
            o["score_changes"] = .array(changes)
            o["query_prediction"] = .array(query)
            o["counterfactual_prediction"] = .array(counterfactual)
            o["generated_prediction"] = .array(generated)
            o["target_class"] = .array(target)
            if source.count == target.count { o["source_class"] = .array(source) }
            return o
        }
    }
}
