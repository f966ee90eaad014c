import QuacPluginAPI

/// What a classifier is: the numbers every caller checks its calls against.
public struct ClassifierInfo: Equatable, Sendable {
    public var numClasses: Int
    /// One sample's shape; -1 means any size in that dimension.
    public var sampleShape: [Int]
    public var hasVJP: Bool
    public var hasModifiedBackward: Bool
    /// Whether it offers its inner layers (QUAC_EXT_CLASSIFIER_LAYERS).
    public var hasLayers: Bool
    /// Whether it can re-draw its top layers (QUAC_EXT_CLASSIFIER_RANDOMIZE).
    public var hasRandomize: Bool = false

    public init(numClasses: Int, sampleShape: [Int], hasVJP: Bool, hasModifiedBackward: Bool, hasLayers: Bool = false) {
        self.numClasses = numClasses
        self.sampleShape = sampleShape
        self.hasVJP = hasVJP
        self.hasModifiedBackward = hasModifiedBackward
        self.hasLayers = hasLayers
    }

    /// Why `x` is not a valid batch for this classifier, or nil.
    public func problem(withBatch x: Tensor, name: String = "x") -> String? {
        if x.dtype != .float32 { return "\(name): expected float32, got \(x.dtype.displayName)" }
        if x.rank != sampleShape.count + 1 {
            return "\(name): expected rank \(sampleShape.count + 1) [N, \(sampleShape.map { $0 < 0 ? "*" : String($0) }.joined(separator: ", "))], got rank \(x.rank) \(x.shape)"
        }
        for (i, d) in sampleShape.enumerated() where d >= 0 && x.shape[i + 1] != d {
            return "\(name): expected shape [N, \(sampleShape.map { $0 < 0 ? "*" : String($0) }.joined(separator: ", "))], got \(x.shape)"
        }
        return nil
    }

    /// A sample shape with every "any" dimension fixed (for making test inputs).
    public func concreteSampleShape(default d: Int = 8) -> [Int] { sampleShape.map { $0 < 0 ? d : $0 } }
}

/// A classifier the host can call: a plugin instance, or a foreign C function through libffi.
public protocol Classifier: AnyObject {
    var label: String { get }
    func info() throws -> ClassifierInfo
    func rawForward(_ x: Tensor) throws -> Tensor
    func rawVJP(_ x: Tensor, gradLogits: Tensor, wantLogits: Bool) throws -> (logits: Tensor?, gradX: Tensor)
    func rawVJPRule(_ rule: quac_backward_rule, x: Tensor, baseline: Tensor?, gradLogits: Tensor) throws -> Tensor
    /// The classifier's layer extension (QUAC_EXT_CLASSIFIER_LAYERS), or nil when it has none.
    func rawLayers() -> ClassifierLayerCalls?
    /// The classifier's weights extension (QUAC_EXT_CLASSIFIER_WEIGHTS), or nil when it has none.
    func rawWeights() -> ClassifierWeightCalls?
}

/// Checked calls: inputs are validated before a classifier sees them and outputs before anyone else
/// does, so a bad classifier is reported by name instead of corrupting a run.
extension Classifier {
    public func forward(_ x: Tensor) throws -> Tensor {
        let info = try self.info()
        if let p = info.problem(withBatch: x) { throw QuacError("classifier \(label): \(p)") }
        let logits = try rawForward(x)
        try checkLogits(logits, info: info, n: x.shape[0], function: "forward")
        return logits
    }

    public func vjp(_ x: Tensor, gradLogits: Tensor, wantLogits: Bool = false) throws -> (logits: Tensor?, gradX: Tensor) {
        let info = try self.info()
        guard info.hasVJP else {
            throw QuacError("classifier \(label) is forward-only: it has no vector-Jacobian product, which gradient-based methods need", category: .user)
        }
        try checkVJPInputs(x, gradLogits: gradLogits, info: info)
        let (logits, gradX) = try rawVJP(x, gradLogits: gradLogits, wantLogits: wantLogits)
        if let logits { try checkLogits(logits, info: info, n: x.shape[0], function: "vjp") }
        try checkGradient(gradX, like: x, function: "vjp")
        return (logits, gradX)
    }

    public func vjpRule(_ rule: quac_backward_rule, x: Tensor, baseline: Tensor?, gradLogits: Tensor) throws -> Tensor {
        let info = try self.info()
        guard info.hasModifiedBackward else {
            throw QuacError("classifier \(label) does not offer the extension \(QUAC_EXT_MODIFIED_BACKWARD) (DeepLift / guided backprop rules)", category: .user)
        }
        try checkVJPInputs(x, gradLogits: gradLogits, info: info)
        if let baseline, baseline.shape != x.shape || baseline.dtype != .float32 {
            throw QuacError("classifier \(label): baseline must be float32 shaped like x \(x.shape), got \(baseline.dtype.displayName) \(baseline.shape)")
        }
        let g = try rawVJPRule(rule, x: x, baseline: baseline, gradLogits: gradLogits)
        try checkGradient(g, like: x, function: "vjp_rule")
        return g
    }

    private func checkVJPInputs(_ x: Tensor, gradLogits: Tensor, info: ClassifierInfo) throws {
        if let p = info.problem(withBatch: x) { throw QuacError("classifier \(label): \(p)") }
        if gradLogits.dtype != .float32 || gradLogits.shape != [x.shape[0], info.numClasses] {
            throw QuacError("classifier \(label): grad_logits must be float32 [\(x.shape[0]), \(info.numClasses)], got \(gradLogits.dtype.displayName) \(gradLogits.shape)")
        }
    }

    private func checkLogits(_ logits: Tensor, info: ClassifierInfo, n: Int, function: String) throws {
        if logits.dtype != .float32 || logits.shape != [n, info.numClasses] {
            throw QuacError("classifier \(label): \(function) returned logits of \(logits.dtype.displayName) \(logits.shape), expected float32 [\(n), \(info.numClasses)]")
        }
    }

    private func checkGradient(_ g: Tensor, like x: Tensor, function: String) throws {
        if g.dtype != .float32 || g.shape != x.shape {
            throw QuacError("classifier \(label): \(function) returned a gradient of \(g.dtype.displayName) \(g.shape), expected float32 \(x.shape)")
        }
    }
}
