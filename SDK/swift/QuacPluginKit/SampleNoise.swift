import Foundation

/// Random numbers for one sample of a batch, so that a batch of N gives the same result as N batches
/// of one under the same seed (the conformance check's batch invariance): each sample's generator is
/// seeded from the batch seed and a hash of the sample's own float32 bytes (FNV-1a, 64 bit), never from
/// its position in the batch. Identical images in one batch therefore get identical noise; a different
/// seed gives different noise for every image.
public enum SampleNoise {
    public static func generator(seed: UInt64, sample: UnsafeMutableBufferPointer<Float>.SubSequence, salt: UInt64 = 0) -> SeededRandom {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for v in sample {
            var bits = v.bitPattern
            for _ in 0..<4 {
                h ^= UInt64(bits & 0xff)
                h = h &* 0x0000_0100_0000_01b3
                bits >>= 8
            }
        }
        // Mix so that nearby seeds and hashes give unrelated streams (SeededRandom runs SplitMix64 on it).
        return SeededRandom(seed: h ^ (seed &* 0x9E37_79B9_7F4A_7C15) ^ (salt &* 0xD1B5_4A32_D192_ED03))
    }
}

