// The compute engine: float32 tensors, reverse-mode autodiff and neural-network layers on OpenBLAS.
//
// Layout of this library:
//   Core/NDArray.swift      NDArray: float32 values, shape and strides over shared storage (QuacCore's
//                           TensorStorage, so host tensors and ABI tensors bridge without copies); Labels.
//   Core/BufferPool.swift   reuse of freed buffers by size, so training steps stop allocating.
//   Core/Random.swift       seeded uniform / normal / Kaiming-normal initialization.
//   Core/Parallel.swift     the one thread setting (EngineThreads), parallel loops, OpenBLAS threads.
//   Core/Kernels.swift      forward kernels without autodiff (broadcasting, reductions, GEMM).
//   Core/Autograd.swift     Var (a value in a differentiable computation), backward(), gradients(),
//                           no-grad mode.
//   Ops/*.swift             one place per op: its forward kernel and its derivative, the derivative
//                           written with Var ops so that gradients can be differentiated again.
//   Rules/BackwardRules.swift  DeepLift's rescale rule and guided backpropagation.
//   NN/Module.swift         layers with PyTorch's parameter names (Sequential, Residual, Graph), parameter
//                           substitution for one-step meta-gradients; NN/ModelFile.swift builds
//                           networks from JSON (extensible with ModelBuilder.register) and reads/writes
//                           self-describing safetensors model files.
//   Optim/                  SGD, Adam/AdamW, clipping, EMA, LR schedules, checkpoints.
//
// Speed (docs/engine.md): stride-1 convolutions run on EngineKernels' direct kernels
// (Ops/DirectConv.swift), 3x3 ones with 16+ channels on Winograd F(2x2, 3x3) (Ops/Winograd.swift), the
// rest as im2col + GEMM; linear layers on small batches on a GEMM that packs nothing
// (Ops/SmallBatchGEMM.swift); eval-mode conv + batch norm + ReLU run as one op (NN/ConvFusion.swift);
// normalization and affine steps are fused kernels whose recorded backward falls back to the composite
// formula. OpenBLAS 0.3.21 mistakes some Xeons for "Prescott" and runs
// its generic kernel; EngineThreads.recommendedBLASCoreType() names the OPENBLAS_CORETYPE to set
// before the library loads.
//
// A training step:
//   let loss = Loss.crossEntropy(net(Var(x)), labels)
//   opt.zeroGrad(); loss.backward(); opt.step()
// A gradient of a gradient (R1 penalty):
//   let g = gradient(of: net(xr).sum(), wrt: xr, createGraph: true)!
//   let r1 = g.square().sum() * 0.5; r1.backward()

/// Identification of the engine (for logs and plugin descriptors).
public enum EngineInfo {
    public static let name = "engine"
}
