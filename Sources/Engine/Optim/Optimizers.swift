import Foundation

/// Updates parameters from their accumulated `grad`s, as torch.optim does (same formulas and order of
/// floating-point operations, so trajectories match). Its state saves and loads for exact resumption.
public protocol Optimizer: AnyObject {
    var parameters: [Var] { get }
    var learningRate: Float { get set }
    /// Steps taken so far.
    var stepCount: Int { get }
    func step()
    /// Per-parameter state arrays by name ("3.exp_avg"), and scalar state.
    func stateArrays() -> [(String, NDArray)]
    func loadState(arrays: [String: NDArray], stepCount: Int) throws
}

extension Optimizer {
    public func zeroGrad() { for p in parameters { p.grad = nil } }
}

/// SGD with momentum (dampening 0 by default), Nesterov, and L2 weight decay.
public final class SGD: Optimizer {
    public let parameters: [Var]
    public var learningRate: Float
    public let momentum: Float, dampening: Float, weightDecay: Float, nesterov: Bool
    public private(set) var stepCount = 0
    var buffers: [NDArray?]

    public init(_ parameters: [Var], lr: Float, momentum: Float = 0, dampening: Float = 0,
                weightDecay: Float = 0, nesterov: Bool = false) {
        self.parameters = parameters
        learningRate = lr
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        buffers = Array(repeating: nil, count: parameters.count)
    }

    public func step() {
        stepCount += 1
        let (lr, mu, wd, damp, nest) = (learningRate, momentum, weightDecay, dampening, nesterov)
        for (k, p) in parameters.enumerated() {
            guard let g = p.grad?.data.contiguous() else { continue }
            let w = p.data.contiguous()
            let (pw, pg, n) = (w.pointer, g.pointer, w.count)
            // Elementwise, so spread over the threads (each entry's update is the same whatever the split).
            if mu == 0 {
                parallelChunks(n, cost: 3) { r in for i in r { pw[i] -= lr * (pg[i] + wd * pw[i]) } }
            } else if let b = buffers[k] {
                let pb = b.pointer
                parallelChunks(n, cost: 4) { r in
                    for i in r {
                        let d = pg[i] + wd * pw[i]
                        pb[i] = mu * pb[i] + (1 - damp) * d
                        pw[i] -= lr * (nest ? d + mu * pb[i] : pb[i])
                    }
                }
            } else {
                // First step: the buffer starts as the (decayed) gradient itself.
                let b = NDArray.uninitialized(w.shape)
                let pb = b.pointer
                parallelChunks(n, cost: 4) { r in
                    for i in r {
                        let d = pg[i] + wd * pw[i]
                        pb[i] = d
                        pw[i] -= lr * (nest ? d + mu * d : d)
                    }
                }
                buffers[k] = b
            }
            if !p.data.isContiguous { p.setData(w) }
        }
    }

    public func stateArrays() -> [(String, NDArray)] {
        buffers.enumerated().compactMap { k, b in b.map { ("\(k).momentum_buffer", $0) } }
    }

    public func loadState(arrays: [String: NDArray], stepCount: Int) throws {
        for k in parameters.indices {
            buffers[k] = try arrays["\(k).momentum_buffer"].map { try checked($0, parameters[k], "\(k).momentum_buffer") }
        }
        self.stepCount = stepCount
    }
}

/// Adam, or AdamW with `decoupled` weight decay (torch.optim.Adam / AdamW).
public final class Adam: Optimizer {
    public let parameters: [Var]
    public var learningRate: Float
    public let beta1: Float, beta2: Float, eps: Float, weightDecay: Float, decoupled: Bool
    public private(set) var stepCount = 0
    var expAvg: [NDArray], expAvgSq: [NDArray]

    public init(_ parameters: [Var], lr: Float = 1e-3, betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8,
                weightDecay: Float = 0, decoupled: Bool = false) {
        self.parameters = parameters
        learningRate = lr
        (beta1, beta2) = betas
        self.eps = eps
        self.weightDecay = weightDecay
        self.decoupled = decoupled
        expAvg = parameters.map { .zeros($0.shape) }
        expAvgSq = parameters.map { .zeros($0.shape) }
    }

    /// torch.optim.AdamW's defaults (weight decay 1e-2, decoupled).
    public static func adamW(_ parameters: [Var], lr: Float = 1e-3, betas: (Float, Float) = (0.9, 0.999),
                             eps: Float = 1e-8, weightDecay: Float = 1e-2) -> Adam {
        Adam(parameters, lr: lr, betas: betas, eps: eps, weightDecay: weightDecay, decoupled: true)
    }

    public func step() {
        stepCount += 1
        let t = Float(stepCount)
        let (lr, b1, b2, eps, wd, dec) = (learningRate, beta1, beta2, eps, weightDecay, decoupled)
        let bc1 = 1 - Foundation.pow(b1, t), bc2 = 1 - Foundation.pow(b2, t)
        let stepSize = lr / bc1, bc2Sqrt = bc2.squareRoot()
        for (k, p) in parameters.enumerated() {
            guard let g = p.grad?.data.contiguous() else { continue }
            let w = p.data.contiguous()
            let (pw, pg, pm, pv) = (w.pointer, g.pointer, expAvg[k].pointer, expAvgSq[k].pointer)
            // Branch-free so the loop vectorizes: AdamW shrinks the weight, Adam adds wd * w to the
            // gradient (both exact no-ops when the other applies).
            let shrink: Float = dec ? 1 - lr * wd : 1, l2: Float = dec ? 0 : wd
            // Elementwise, so spread over the threads (each entry's update is the same whatever the split).
            parallelChunks(w.count, cost: 5) { r in
                for i in r {
                    let grad = pg[i] + l2 * pw[i]
                    let m = pm[i] * b1 + (1 - b1) * grad
                    let v = pv[i] * b2 + (1 - b2) * grad * grad
                    pm[i] = m
                    pv[i] = v
                    pw[i] = pw[i] * shrink - stepSize * (m / (v.squareRoot() / bc2Sqrt + eps))
                }
            }
            if !p.data.isContiguous { p.setData(w) }
        }
    }

    public func stateArrays() -> [(String, NDArray)] {
        parameters.indices.flatMap { k in [("\(k).exp_avg", expAvg[k]), ("\(k).exp_avg_sq", expAvgSq[k])] }
    }

    public func loadState(arrays: [String: NDArray], stepCount: Int) throws {
        for k in parameters.indices {
            guard let m = arrays["\(k).exp_avg"], let v = arrays["\(k).exp_avg_sq"] else {
                throw EngineError.badCheckpoint("optimizer state of parameter \(k) is missing")
            }
            expAvg[k] = try checked(m, parameters[k], "\(k).exp_avg")
            expAvgSq[k] = try checked(v, parameters[k], "\(k).exp_avg_sq")
        }
        self.stepCount = stepCount
    }
}

private func checked(_ a: NDArray, _ p: Var, _ name: String) throws -> NDArray {
    guard a.shape == p.shape else { throw EngineError.shapeMismatch(name, expected: p.shape, found: a.shape) }
    return a.copy()
}

// MARK: Gradient clipping and weight averaging

/// torch.nn.utils.clip_grad_norm_: scales all gradients so their joint L2 norm is at most `maxNorm`.
/// Returns the norm before clipping.
@discardableResult
public func clipGradNorm(_ parameters: [Var], maxNorm: Float) -> Float {
    var total: Double = 0
    for p in parameters { if let g = p.grad { let c = g.data.contiguous(); for i in 0..<c.count { total += Double(c.pointer[i] * c.pointer[i]) } } }
    let norm = Float(total.squareRoot())
    let coef = maxNorm / (norm + 1e-6)
    if coef < 1 {
        for p in parameters { if let g = p.grad { p.grad = Var(Kernels.unary(g.data) { $0 * coef }) } }
    }
    return norm
}

/// Exponential moving average of weights (StarGAN v2 keeps one of each network):
/// average = beta * average + (1 - beta) * current, parameter by parameter.
public func updateMovingAverage(_ average: Module, from current: Module, beta: Float) {
    let src = current.namedParameters(), dst = average.namedParameters()
    precondition(src.count == dst.count, "moving average of networks with different parameters")
    for ((n1, s), (n2, d)) in zip(src, dst) {
        precondition(n1 == n2 && s.shape == d.shape, "moving average: \(n1) vs \(n2)")
        let sc = s.data.contiguous(), dc = d.data.contiguous()
        for i in 0..<dc.count { dc.pointer[i] = sc.pointer[i] + beta * (dc.pointer[i] - sc.pointer[i]) }
        if !d.data.isContiguous { d.setData(dc) }
    }
}

// MARK: Learning-rate schedules

/// The learning rate as a function of the step (0-based), applied with `apply(to:step:)`.
public enum LRSchedule: Sendable {
    case constant(Float)
    /// lr * gamma^(step / stepSize), as StepLR.
    case step(lr: Float, stepSize: Int, gamma: Float)
    /// lr * gamma^step, as ExponentialLR.
    case exponential(lr: Float, gamma: Float)
    /// Cosine from lr to minLR over totalSteps, as CosineAnnealingLR.
    case cosine(lr: Float, totalSteps: Int, minLR: Float)
    /// Linear warm-up from 0 over `warmup` steps, then `after` (its step counted from the warm-up's end).
    indirect case warmup(steps: Int, then: LRSchedule)

    public func rate(at step: Int) -> Float {
        switch self {
        case .constant(let lr): return lr
        case .step(let lr, let n, let g): return lr * Foundation.pow(g, Float(step / Swift.max(n, 1)))
        case .exponential(let lr, let g): return lr * Foundation.pow(g, Float(step))
        case .cosine(let lr, let total, let minLR):
            let t = Float(Swift.min(step, total)) / Float(Swift.max(total, 1))
            return minLR + (lr - minLR) * (1 + Foundation.cos(Float.pi * t)) / 2
        case .warmup(let n, let after):
            if step < n { return after.rate(at: 0) * Float(step + 1) / Float(n) }
            return after.rate(at: step - n)
        }
    }

    public func apply(to optimizer: Optimizer, step: Int) { optimizer.learningRate = rate(at: step) }
}
