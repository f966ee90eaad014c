import Engine
import Foundation

/// The meta step of SMAT-style training (see SMATStudent): the gradient of the outer loss with respect
/// to the teacher explainer's mixing parameters phi, through one simulated student update, and the
/// AdamW update of phi it drives.
public enum SMATMeta {
    /// The meta-gradient of one outer step: d/dphi of the student's CE on (xVal, yVal) after one
    /// simulated update on the inner loss of (x, y, heads); and that outer loss.
    public static func metaGradient(student: SMATStudent, phi: Var, heads: NDArray, x: NDArray, y: Labels,
                             xVal: NDArray, yVal: Labels, beta: Float) -> (outer: Float, grad: NDArray) {
        let logE = SMATMath.logExplanation(SMATMath.mix(Var(heads), phi.sparsemax()))
        let inner = student.innerLoss(x, y, teacher: logE, beta: beta)
        let stepped = student.simulatedWeights(inner)
        let outer = student.net.substituting(stepped) { Loss.crossEntropy(student.forward(Var(xVal)).logits, yVal) }
        let g = gradients(of: [outer], wrt: [phi])[0]
        return (outer.item, g?.data.copy() ?? NDArray.zeros(phi.shape))
    }

    /// One meta update of phi: the meta-gradient, clipped to norm `clip`, through AdamW.
    public static func metaUpdate(_ optimizer: Adam, phi: Var, grad: NDArray, clip: Float) {
        phi.grad = Var(grad)
        _ = clipGradNorm([phi], maxNorm: clip)
        optimizer.step()
        phi.grad = nil
    }

}
