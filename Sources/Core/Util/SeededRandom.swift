import Foundation

/// A small, fast, seedable generator (xoshiro256**, seeded through SplitMix64) so every random choice
/// of a run can be replayed from the seed recorded in run.json.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)
    private var spareNormal: Float?

    public init(seed: UInt64) {
        var z = seed
        func splitmix() -> UInt64 {
            z &+= 0x9E37_79B9_7F4A_7C15
            var x = z
            x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
            x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
            return x ^ (x >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    public mutating func next() -> UInt64 {
        let result = rotl(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = rotl(s.3, 45)
        return result
    }

    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform in [0, 1), 24 random bits.
    public mutating func uniform() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Standard normal (Box-Muller; the second value of each pair is kept for the next call).
    public mutating func normal() -> Float {
        if let n = spareNormal { spareNormal = nil; return n }
        var u1: Float = 0
        repeat { u1 = uniform() } while u1 <= Float.leastNormalMagnitude
        let u2 = uniform()
        let r = (-2 * Foundation.log(Double(u1))).squareRoot()
        spareNormal = Float(r * Foundation.sin(2 * .pi * Double(u2)))
        return Float(r * Foundation.cos(2 * .pi * Double(u2)))
    }
}

