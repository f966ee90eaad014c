import XCTest
@testable import Engine

/// Finite-difference checks of engine gradients.
///
/// The checked scalar is L = sum(f(inputs) * w) for a fixed random w, evaluated in Double on the host so
/// the finite difference sees only f's own float32 rounding. `secondOrder` checks the gradient of the
/// gradient too: it applies the same check to inputs -> dL/dinputs computed with createGraph.
enum GradCheck {
    static func randomInputs(_ shapes: [[Int]], seed: UInt64 = 1, low: Float = -1, high: Float = 1) -> [NDArray] {
        var rng = RandomGenerator(seed: seed)
        return shapes.map { NDArray.uniform($0, low: low, high: high, rng: &rng) }
    }

    /// Values that differ pairwise by at least `gap` (no ties for max and max pooling), shuffled.
    static func spreadInputs(_ shape: [Int], seed: UInt64 = 3, gap: Float = 0.05) -> NDArray {
        let n = shape.reduce(1, *)
        var order = Array(0..<n)
        var rng = RandomGenerator(seed: seed)
        rng.shuffle(&order)
        return NDArray(order.map { (Float($0) - Float(n) / 2) * gap }, shape: shape)
    }

    static func check(_ inputs: [NDArray], eps: Float = 1e-3, rtol: Float = 2e-2, atol: Float = 2e-3,
                      secondOrder: Bool = false, file: StaticString = #filePath, line: UInt = #line,
                      _ f: @escaping ([Var]) -> Var) {
        check1(inputs, eps: eps, rtol: rtol, atol: atol, label: "gradient", file: file, line: line, f)
        guard secondOrder else { return }
        // The map inputs -> (flattened) dL/dinputs, differentiated again.
        let shape = f(inputs.map { Var($0) }).shape
        var rng = RandomGenerator(seed: 99)
        let w = NDArray.uniform(shape, low: -1, high: 1, rng: &rng)
        check1(inputs, eps: eps, rtol: rtol * 2, atol: atol * 5, label: "second derivative", file: file, line: line) { xs in
            let l = (f(xs) * Var(w)).sum()
            let gs = gradients(of: [l], wrt: xs, createGraph: true)
            return Var.concat(zip(gs, xs).map { ($0 ?? Var(NDArray.zeros($1.shape))).reshape([-1]) }, axis: 0)
        }
    }

    private static func check1(_ inputs: [NDArray], eps: Float, rtol: Float, atol: Float, label: String,
                               file: StaticString, line: UInt, _ f: @escaping ([Var]) -> Var) {
        let xs = inputs.map { Var($0.copy(), requiresGrad: true) }
        let y = f(xs)
        var rng = RandomGenerator(seed: 7)
        let w = NDArray.uniform(y.shape, low: -1, high: 1, rng: &rng).array.map(Double.init)
        let analytic = gradients(of: [y], wrt: xs, seeds: [Var(NDArray(w.map(Float.init), shape: y.shape))])
        func loss(_ values: [NDArray]) -> Double {
            let out = f(values.map { Var($0, requiresGrad: true) }).array
            return zip(out, w).reduce(0) { $0 + Double($1.0) * $1.1 }
        }
        for (k, x) in inputs.enumerated() {
            let a = analytic[k]?.data.array ?? [Float](repeating: 0, count: x.count)
            var worst: (Int, Float, Float)?
            var worstExcess: Float = 0
            for i in 0..<x.count {
                var plus = inputs.map { $0.copy() }, minus = inputs.map { $0.copy() }
                plus[k].pointer[i] += eps
                minus[k].pointer[i] -= eps
                let numeric = Float((loss(plus) - loss(minus)) / Double(2 * eps))
                let excess = Swift.abs(a[i] - numeric) - (atol + rtol * Swift.abs(numeric))
                if excess > worstExcess { worstExcess = excess; worst = (i, a[i], numeric) }
            }
            if let (i, an, nu) = worst {
                XCTFail("\(label) of input \(k) element \(i): analytic \(an), finite difference \(nu)", file: file, line: line)
            }
        }
    }
}
