import Engine
import Foundation

/// The pieces of SMAT-style meta-learned explanations, as engine computations (see docs/algorithms.md,
/// "SMAT-style learned explainers"). Maps are compared over the input's positions P = H * W.
public enum SMATMath {
    /// Per sample and per map, (v - mean) / (std + 1e-5) over the positions of v [N, K, P]: heads of
    /// very different scales (a gradient, an activation) become comparable before they are mixed.
    public static func standardize(_ v: Var) -> Var {
        let centered = v - v.mean(axes: [2], keepDims: true)
        let std = (centered.square().mean(axes: [2], keepDims: true) + 1e-12).sqrt()
        return centered / (std + 1e-5)
    }

    /// An attribution map [N, C, H, W] as one head [N, P]: the sum over channels of |a|.
    public static func attributionHead(_ a: NDArray) -> NDArray {
        let n = a.shape[0], c = a.shape[1], p = a.count / max(n * c, 1)
        let src = a.contiguous(), out = NDArray.zeros([n, p])
        for s in 0..<n { for ch in 0..<c { for i in 0..<p { out.pointer[s * p + i] += abs(src.pointer[(s * c + ch) * p + i]) } } }
        return out
    }

    /// Layer activations [N, c, h, w] as c heads at the input's resolution [N, c, H * W] (nearest, as
    /// PyTorch's interpolate: source index floor(dst * h / H)).
    public static func layerHeads(_ a: NDArray, height: Int, width: Int) -> NDArray {
        let (n, c, h, w) = (a.shape[0], a.shape[1], a.shape[2], a.shape[3])
        let src = a.contiguous(), out = NDArray.zeros([n, c, height * width])
        for s in 0..<n {
            for ch in 0..<c {
                let from = (s * c + ch) * h * w, to = (s * c + ch) * height * width
                for y in 0..<height {
                    let sy = min(y * h / height, h - 1)
                    for x in 0..<width { out.pointer[to + y * width + x] = src.pointer[from + sy * w + min(x * w / width, w - 1)] }
                }
            }
        }
        return out
    }

    /// z = sum_h w_h * heads[:, h, :] for heads [N, H, P] and weights [H].
    public static func mix(_ heads: Var, _ weights: Var) -> Var {
        (heads * weights.reshape([1, weights.count, 1])).sum(axes: [1])
    }

    /// log softmax over positions of z [N, P]; positions where `mask` [N, P] is 0 get -1e10 first, so
    /// they carry no probability.
    public static func logExplanation(_ z: Var, mask: NDArray? = nil) -> Var {
        guard let mask else { return z.logSoftmax(axis: 1) }
        let m = mask.contiguous(), keep = NDArray.zeros(mask.shape), off = NDArray.zeros(mask.shape)
        for i in 0..<m.count {
            keep.pointer[i] = m.pointer[i] > 0 ? 1 : 0
            off.pointer[i] = m.pointer[i] > 0 ? 0 : -1e10
        }
        return Var.select(keep, z, Var(off)).logSoftmax(axis: 1)
    }

    /// KL(p || q) per sample, averaged over the batch, from log-probabilities [N, P].
    public static func kl(_ logP: Var, _ logQ: Var) -> Var {
        (logP.exp() * (logP - logQ)).sum() / Float(logP.shape[0])
    }
}
