import Foundation

/// The engine draws from QuacCore's seeded generator (xoshiro256**): the same seed gives the same
/// weights, dropout masks and batches on every machine.
public typealias RandomGenerator = SeededRandom

extension SeededRandom {
    /// Uniform integer in 0..<n.
    public mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    /// Fisher-Yates shuffle.
    public mutating func shuffle(_ a: inout [Int]) {
        if a.count < 2 { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, int(i + 1)) }
    }
}

extension NDArray {
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1, rng: inout RandomGenerator) -> NDArray {
        let a = uninitialized(shape)
        let p = a.pointer
        for i in 0..<a.count { p[i] = low + (high - low) * rng.uniform() }
        return a
    }

    public static func normal(_ shape: [Int], mean: Float = 0, std: Float = 1, rng: inout RandomGenerator) -> NDArray {
        let a = uninitialized(shape)
        let p = a.pointer
        for i in 0..<a.count { p[i] = mean + std * rng.normal() }
        return a
    }

    /// He initialization, fan-in mode (PyTorch's kaiming_normal_ defaults): std = gain / sqrt(fan_in),
    /// gain = sqrt(2 / (1 + a^2)), fan_in = shape[1] * receptive field.
    public static func kaimingNormal(_ shape: [Int], a: Float = 0, rng: inout RandomGenerator) -> NDArray {
        precondition(shape.count >= 2, "Kaiming initialization needs at least 2 dimensions")
        let fanIn = shape.dropFirst().reduce(1, *)
        let gain = (2 / (1 + a * a)).squareRoot()
        return normal(shape, std: gain / Float(fanIn).squareRoot(), rng: &rng)
    }

    /// PyTorch's default for Linear and Conv weights and biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in));
    /// zeros, and no draws from rng, when `draw` is false.
    public static func fanInUniform(_ shape: [Int], fanIn: Int, draw: Bool = true, rng: inout RandomGenerator) -> NDArray {
        guard draw else { return zeros(shape) }
        let bound = 1 / Float(max(fanIn, 1)).squareRoot()
        return uniform(shape, low: -bound, high: bound, rng: &rng)
    }
}
