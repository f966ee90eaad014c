import Foundation

/// Evaluation-mode fusion of [conv2d, batch_norm, relu] runs in a Sequential: a batch norm with running
/// statistics is an affine map per channel, so it folds into the convolution before it (weights
/// w * scale, bias (b - mean) * scale + beta, as PyTorch's fuse_conv_bn_eval), and a ReLU after them
/// runs in the convolution's output pass. Both save whole passes over the largest activations of a
/// CNN, which is what attribution methods run over and over.
///
/// The folded weights are computed with Var ops, so gradients still reach the original parameters and
/// second derivatives stay right; only rounding differs from the unfused layers. A ReLU is fused only
/// under the standard backward rule (guided backpropagation and DeepLift replace the ReLU's own rule).
enum ConvFusion {
    /// When layers[i] is a convolution that fuses with the layers after it: its output for x and the
    /// number of layers it covers.
    static func apply(_ layers: [Module], at i: Int, to x: Var) -> (Var, Int)? {
        guard let conv = layers[i] as? Conv2d, !conv.training else { return nil }
        var (w, b, used) = (conv.weight, conv.bias, 1)
        if i + 1 < layers.count, let bn = layers[i + 1] as? BatchNorm, !bn.training {
            let (scale, shift) = Var.batchNormEvalAffine(runningMean: bn.runningMean, runningVar: bn.runningVar,
                                                         weight: bn.weight, bias: bn.bias, eps: bn.eps)
            w = w * scale.reshape([scale.count, 1, 1, 1])
            b = b.map { $0 * scale + shift } ?? shift
            used += 1
        }
        var relu = false
        if i + used < layers.count, let act = layers[i + used] as? Lambda, act.name == "relu",
           ThreadContext.current.rule == .standard {
            relu = true
            used += 1
        }
        guard used > 1, !layers[i..<i + used].contains(where: { $0.outputHook != nil }) else { return nil }
        return (x.conv2dFused(w, bias: b, conv.geometry, relu: relu), used)
    }
}
