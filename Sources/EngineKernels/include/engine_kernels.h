// Vectorized kernels of the compute engine that Swift cannot express portably: direct 2-D convolution
// and its weight gradient for layers with few channels, where im2col + GEMM spends its time copying,
// Winograd convolution for 3x3 layers with more channels, 2x2 max pooling, and a matrix product
// without packing for linear layers on small batches. Each function is built for AVX-512, AVX2 + FMA
// and baseline SSE; the widest one the CPU supports runs (chosen once).
//
// Conventions: arrays are float32, contiguous, NCHW; weights [out, in, kh, kw] as F.conv2d. Stride 1
// and dilation 1 only (the caller falls back to im2col + GEMM otherwise). Functions never allocate
// per row; the ones that allocate return -1 when memory runs out, else 0.
#ifndef QUAC_ENGINE_KERNELS_H
#define QUAC_ENGINE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// How a direct convolution tiles its output: `ob` output channels by `nv` vectors of `vw` pixels
/// are accumulated in registers. Weights are packed for one plan.
typedef struct ek_conv_plan {
    int ob;
    int nv;
    int vw;
} ek_conv_plan;

/// The instruction set the kernels run with: "avx512", "avx2" or "sse".
const char *ek_isa(void);

/// Switches the kernels to `name` ("avx512", "avx2", "sse") when this CPU supports it (tests compare
/// the variants); returns 0, or -1 and changes nothing. Not thread-safe: call it between kernel calls.
int ek_set_isa(const char *name);

/// The tiling for a convolution with `out_channels` output channels and output rows `out_width` wide.
ek_conv_plan ek_conv_plan_for(int out_channels, int out_width);

/// Floats of packed weights for `plan` and a convolution with `out_channels` x `in_channels` x kh x kw.
size_t ek_conv_packed_count(ek_conv_plan plan, int out_channels, int in_channels, int kh, int kw);

/// Packs weights w [wo, wi, kh, kw] for `plan`. adjoint == 0: for conv2d with w (out = wo, in = wi).
/// adjoint == 1: for the convolution that computes conv2d's input gradient (out = wi, in = wo, the
/// kernel flipped in both axes).
void ek_conv_pack(ek_conv_plan plan, const float *w, int wo, int wi, int kh, int kw, int adjoint, float *packed);

/// y[n, o, r, :] for the flattened output rows r = n * oh + row in [row_begin, row_end) of the
/// cross-correlation of x [N, c, h, w] (zero padding ph, pw; stride 1) with packed weights, plus
/// bias [o] (may be NULL), through a ReLU when `relu` is nonzero. y is [N, o, oh, ow] with
/// oh = h + 2 ph - kh + 1, ow = w + 2 pw - kw + 1.
/// mask (may be NULL; shaped like x): x is read as 0 wherever mask <= 0, which fuses the backward
/// pass of a ReLU (mask = its output) into the input gradient of the convolution before it.
int ek_conv2d_rows(ek_conv_plan plan, const float *x, int c, int h, int w, const float *packed, int o,
                   int kh, int kw, int ph, int pw, const float *bias, int relu, const float *mask, float *y,
                   long row_begin, long row_end);

/// How the weight gradient of a stride-1 convolution with kernels 3 wide (any height) goes: in chunks
/// of `samples` samples x `rows` output rows (several whole samples when planes are small, else part of
/// one), each split into `tiles` tiles of a few output channels x 1 input channel. Every dw entry
/// belongs to one tile and sums in a fixed order, so the result does not depend on how tiles are
/// spread over threads.
typedef struct ek_wgrad_plan {
    int vw, owp, wp, samples, rows;
    long tiles;
} ek_wgrad_plan;

ek_wgrad_plan ek_wgrad_plan_for(int out_channels, int out_height, int out_width, int in_channels, int samples);

/// Adds to dw [o, c, kh, 3] the contribution of samples [sample0, sample0 + samples) x output rows
/// [row0, row0 + rows) for tiles [tile_begin, tile_end): x [N, c, h, w] with padding ph, pw and the
/// output gradient g [N, o, oh, ow] (oh = h + 2 ph - kh + 1, ow = w + 2 pw - 2). Calls for disjoint
/// tile ranges of one chunk may run at once; chunks must go in order for a reproducible sum.
int ek_wgrad_chunk(ek_wgrad_plan plan, const float *x, const float *g, int c, int h, int w, int o, int kh, int ph,
                   int pw, long sample0, int samples, int row0, int rows, float *dw, long tile_begin, long tile_end);

/// 2x2 max pooling with stride 2 and no padding over the planes [plane_begin, plane_end) of
/// x [planes, h, w]: y [planes, h / 2, w / 2] and, per output, the index within its input plane of
/// the value taken (of top-left, top-right, bottom-left, bottom-right, a later one wins when it is
/// larger or NaN).
void ek_max_pool_2x2(const float *x, int h, int w, float *y, int32_t *index, long plane_begin, long plane_end);

/// Floats of transformed weights for a Winograd convolution with out_channels x in_channels 3x3 kernels.
size_t ek_winograd_packed_count(int out_channels, int in_channels);

/// The Winograd transform G g G^T of every kernel of w [wo, wi, 3, 3], laid out for
/// ek_winograd_conv3x3; adjoint as in ek_conv_pack (1: for the convolution that computes conv2d's input
/// gradient, out = wi, in = wo).
void ek_winograd_pack(const float *w, int wo, int wi, int adjoint, float *u);

/// How many work items of ek_winograd_conv3x3 one sample makes (blocks of its tile rows; 0 when h or w
/// is odd): a call covers items [item_begin, item_end) of N x this many.
long ek_winograd_blocks(int c, int h, int w, int o);

/// y [N, o, h, w] for the given work items (sample item / blocks, block item % blocks) of the 3x3
/// cross-correlation (padding 1, stride 1) of x [N, c, h, w] with packed weights u, plus bias (may be
/// NULL), through a ReLU when `relu`; mask as in ek_conv2d_rows. Winograd F(2x2, 3x3): 16 multiplies
/// per 2x2 outputs and channel pair instead of 36, so it pays where the channel counts make those
/// products most of the work. h and w must be even (else -2); -1 when memory runs out; 0 otherwise.
/// Calls for disjoint item ranges may run at once.
int ek_winograd_conv3x3(const float *x, int c, int h, int w, const float *u, int o, const float *bias, int relu,
                        const float *mask, float *y, long item_begin, long item_end);

/// C = A B for rows [row_begin, row_end) x columns [col_begin, col_end) of C, plus row_bias[i] on row i
/// when row_bias is not NULL: A [m, k], B [k, n], C [m, n], row-major with rows lda, ldb, ldc apart.
/// Nothing is rearranged: A's entries are broadcast from its rows and B's rows are read as vectors
/// (a block of B's rows is copied as it is when they lie a page or more apart), which beats a packing
/// GEMM when one side is short (a linear layer on a batch of tens: packing the weight costs about as
/// much as the product). Each entry sums in an order that does not depend on the ranges, so callers
/// may split rows or columns over threads freely. Uses a per-thread scratch block; never fails.
void ek_gemm(int k, const float *a, long lda, const float *b, long ldb, float *c, long ldc, const float *row_bias,
             long row_begin, long row_end, long col_begin, long col_end);

/// Columns of one register tile of ek_gemm: splits of the columns at multiples of it keep every tile whole.
long ek_gemm_column_block(void);

/// Floats per vector of ek_gemm: columns in multiples of it run without the one-column tail.
long ek_gemm_vector_floats(void);

#ifdef __cplusplus
}
#endif

#endif
