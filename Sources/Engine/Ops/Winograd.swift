import EngineKernels
import Foundation

/// Winograd F(2x2, 3x3) convolution (EngineKernels' ek_winograd_conv3x3) for the 3x3, stride-1,
/// padding-1 convolutions of VGG-style networks, forward and input gradient (the adjoint is one too).
/// Each 2x2 block of outputs takes 16 multiplies per channel pair instead of 36; the input and output
/// transforms around them cost passes over memory, so it pays once the channel counts are large enough
/// that the products dominate. Results differ from the direct convolution by rounding only (the
/// transforms' coefficients are 1 and 1/2).
enum Winograd {
    /// QUAC_ENGINE_WINOGRAD=off or on forces the choice (tests and benchmarks compare both); by default
    /// convolutions with at least `minChannels` input and output channels.
    nonisolated(unsafe) static var choice =
        KernelChoice.fromEnvironment("QUAC_ENGINE_WINOGRAD", always: "on", never: "off")
    static let minChannels = 16

    /// Winograd for the convolution inC x (h, w) -> outC with this kernel and padding?
    static func applies(inC: Int, outC: Int, h: Int, w: Int, kh: Int, kw: Int, ph: Int, pw: Int) -> Bool {
        guard kh == 3 && kw == 3 && ph == 1 && pw == 1, h > 0 && w > 0 && h % 2 == 0 && w % 2 == 0 else {
            return false
        }
        switch choice {
        case .never: return false
        case .always: return true
        case .automatic: return Swift.min(inC, outC) >= minChannels
        }
    }

    /// The convolution of DirectConv.run (x [n, inC, h, w] contiguous; weights w as conv2d's, read as
    /// the adjoint's when `adjoint`), blocks of samples' tile rows spread over the threads.
    static func run(_ x: NDArray, _ w: NDArray, bias: NDArray?, relu: Bool, mask: NDArray?, n: Int, inC: Int, outC: Int,
                    h: Int, width: Int, adjoint: Bool) -> NDArray {
        let wc = w.contiguous()
        var packed = [Float](repeating: 0, count: ek_winograd_packed_count(Int32(outC), Int32(inC)))
        packed.withUnsafeMutableBufferPointer {
            ek_winograd_pack(wc.pointer, Int32(w.shape[0]), Int32(w.shape[1]), adjoint ? 1 : 0, $0.baseAddress)
        }
        let out = NDArray.uninitialized([n, outC, h, width])
        let biasData = bias?.contiguous()
        let xp = x.pointer, yp = out.pointer, mp = mask.map { UnsafePointer($0.pointer) }
        let blocks = ek_winograd_blocks(Int32(inC), Int32(h), Int32(width), Int32(outC))
        precondition(blocks > 0, "Winograd convolution of an odd plane \(h)x\(width)")
        packed.withUnsafeBufferPointer { pk in
            // Work items: blocks of tile rows of each sample, so one sample still spreads over threads.
            parallelChunks(n * blocks, cost: inC * outC * h * width / blocks) { range in
                let status = ek_winograd_conv3x3(xp, Int32(inC), Int32(h), Int32(width), pk.baseAddress, Int32(outC),
                                                 biasData?.pointer, relu ? 1 : 0, mp, yp, range.lowerBound, range.upperBound)
                precondition(status == 0, "out of memory in a Winograd convolution")
            }
        }
        return out
    }
}
