import Foundation
import QuacPluginKit

/// The integration rules of Integrated Gradients, as Captum defines them
/// (captum/attr/_utils/approximation_methods.py): `alphas` are the points on the path from the baseline
/// (0) to the input (1), `weights` the step sizes that multiply the gradient at each point.
struct PathQuadrature {
    enum Method: String, CaseIterable {
        case gaussLegendre = "gausslegendre"
        case riemannLeft = "riemann_left"
        case riemannRight = "riemann_right"
        case riemannMiddle = "riemann_middle"
        case riemannTrapezoid = "riemann_trapezoid"
    }

    let method: Method
    let alphas: [Double]
    let weights: [Double]

    init(method: Method, steps n: Int) throws {
        self.method = method
        switch method {
        case .gaussLegendre:
            guard n >= 1 else { throw PluginError.invalid("n_steps must be at least 1 for gausslegendre") }
            // numpy.polynomial.legendre.leggauss(n) on [-1, 1], mapped to [0, 1]: alpha = (1 + node) / 2,
            // weight = w / 2 (nodes ascending, as numpy returns them).
            let (nodes, w) = PathQuadrature.legendreGauss(n)
            alphas = nodes.map { 0.5 * (1 + $0) }
            weights = w.map { 0.5 * $0 }
        default:
            // Captum asserts n > 1 for its Riemann rules.
            guard n >= 2 else { throw PluginError.invalid("n_steps must be at least 2 for \(method.rawValue)") }
            let h = 1 / Double(n)
            var steps = [Double](repeating: h, count: n)
            // Captum halves the end steps of the trapezoid rule but keeps n points spaced 1/(n-1), so its
            // step sizes sum to 1 - 1/n; kept as is so that numbers match Captum's.
            if method == .riemannTrapezoid { steps[0] /= 2; steps[n - 1] /= 2 }
            weights = steps
            func linspace(_ a: Double, _ b: Double) -> [Double] {
                // numpy.linspace: a + i * (b - a) / (n - 1), with the last point exactly b.
                (0..<n).map { i in i == n - 1 ? b : a + Double(i) * (b - a) / Double(n - 1) }
            }
            switch method {
            case .riemannTrapezoid: alphas = linspace(0, 1)
            case .riemannLeft: alphas = linspace(0, 1 - h)
            case .riemannMiddle: alphas = linspace(h / 2, 1 - h / 2)
            default: alphas = linspace(h, 1)
            }
        }
    }

    /// Gauss-Legendre nodes (ascending) and weights on [-1, 1]: Newton's method on P_n from the
    /// Chebyshev-like initial guesses, to double precision (numpy's leggauss agrees to ~1e-15).
    static func legendreGauss(_ n: Int) -> ([Double], [Double]) {
        var nodes = [Double](repeating: 0, count: n), weights = [Double](repeating: 0, count: n)
        /// P_n(x) and P_n'(x) by the three-term recurrence.
        func legendre(_ x: Double) -> (Double, Double) {
            var p0 = 1.0, p1 = x
            if n == 0 { return (1, 0) }
            for k in stride(from: 2, through: n, by: 1) {
                let pk = (Double(2 * k - 1) * x * p1 - Double(k - 1) * p0) / Double(k)
                p0 = p1; p1 = pk
            }
            let dp = Double(n) * (x * p1 - p0) / (x * x - 1)
            return (p1, dp)
        }
        for i in 0..<(n + 1) / 2 {
            // The i-th largest root.
            var x = cos(Double.pi * (Double(i) + 0.75) / (Double(n) + 0.5))
            for _ in 0..<100 {
                let (p, dp) = legendre(x)
                let dx = p / dp
                x -= dx
                if abs(dx) < 1e-16 { break }
            }
            let (_, dp) = legendre(x)
            let w = 2 / ((1 - x * x) * dp * dp)
            nodes[n - 1 - i] = x; weights[n - 1 - i] = w
            nodes[i] = -x; weights[i] = w
        }
        if n % 2 == 1 { nodes[n / 2] = 0 }
        return (nodes, weights)
    }
}

/// Integrated Gradients of the source logit f_y along the straight path from `baseline` to x, with
/// the path points of all samples batched through the classifier `internalBatchSize` rows at a time.
/// Returns the attribution (x - baseline) * sum_k w_k grad f_y(baseline + alpha_k (x - baseline)) and,
/// per sample, Captum's convergence delta sum(attribution) - (f_y(x) - f_y(baseline)).
struct IntegratedGradientsCore {
    let quadrature: PathQuadrature
    let internalBatchSize: Int

    init(parameters: Parameters) throws {
        let name = try parameters.string("method")
        guard let method = PathQuadrature.Method(rawValue: name) else {
            throw PluginError.invalid("method must be one of \(PathQuadrature.Method.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(name)\"")
        }
        let steps = try parameters.int("n_steps")
        quadrature = try PathQuadrature(method: method, steps: steps)
        internalBatchSize = try parameters.int("internal_batch_size")
        guard internalBatchSize >= 1 else { throw PluginError.invalid("internal_batch_size must be at least 1") }
    }

    func attribute(_ host: HostServices, _ batch: Batch, baseline: Tensor) throws -> Outputs {
        let labels = try batch.requireSource()
        let x = batch.x
        let n = batch.count
        let (spec, _) = try host.classifierInfo()
        guard n > 0 else {
            return Outputs([("attribution", Tensor(zeros: x.shape))], json: ["convergence_delta": .array([])])
        }
        let classes = spec.numClasses
        for (s, y) in labels.enumerated() where y < 0 || y >= Int64(classes) {
            throw PluginError.invalid("source label \(y) of sample \(s) is outside [0, \(classes))")
        }
        let d = x.count / n
        let steps = quadrature.alphas.count
        let sampleShape = Array(x.shape.dropFirst())
        let xs = x.floats, bs = baseline.floats
        // Sum over the path of w_k * grad, per element, in double.
        var total = [Double](repeating: 0, count: n * d)
        let rows = n * steps
        let chunks = (rows + internalBatchSize - 1) / internalBatchSize
        var start = 0
        for chunk in 0..<chunks {
            try host.checkCancelled()
            let end = min(start + internalBatchSize, rows)
            let m = end - start
            // Row r is sample r / steps at path point r % steps.
            let path = Tensor(zeros: [m] + sampleShape)
            let gradLogits = Tensor(zeros: [m, classes])
            let p = path.floats, gl = gradLogits.floats
            for j in 0..<m {
                let r = start + j, s = r / steps
                let alpha = Float(quadrature.alphas[r % steps])
                for i in 0..<d { p[j * d + i] = bs[s * d + i] + alpha * (xs[s * d + i] - bs[s * d + i]) }
                gl[j * classes + Int(labels[s])] = 1
            }
            let result = try host.classifierVJP(path, gradLogits: gradLogits)
            let grad = result.gradX
            let g = grad.floats
            for j in 0..<m {
                let r = start + j, s = r / steps
                let w = quadrature.weights[r % steps]
                for i in 0..<d { total[s * d + i] += w * Double(g[j * d + i]) }
            }
            withExtendedLifetime(result) {}
            start = end
            host.progress(chunk + 1, of: chunks, "path steps")
        }
        let out = Tensor(zeros: x.shape)
        let o = out.floats
        for k in 0..<(n * d) { o[k] = Float(total[k] * (Double(xs[k]) - Double(bs[k]))) }

        // Convergence delta from the endpoints' logits (one forward pass over inputs and baselines).
        let endpoints = try host.classifierForward(Tensor.concatenate([x, baseline]))
        let f = endpoints.floats
        var deltas: [JSONValue] = []
        for s in 0..<n {
            let y = Int(labels[s])
            var sum = 0.0
            for i in 0..<d { sum += Double(o[s * d + i]) }
            let change = Double(f[s * classes + y]) - Double(f[(n + s) * classes + y])
            deltas.append(.double(sum - change))
        }
        withExtendedLifetime(endpoints) {}
        return Outputs([("attribution", out)], json: ["convergence_delta": .array(deltas)])
    }
}
