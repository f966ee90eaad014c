// Winograd F(2x2, 3x3) convolution (stride 1, padding 1): see include/engine_kernels.h. The body is
// written once (winograd_body.inc) and compiled here for three instruction sets.
#include "engine_kernels.h"
#include "isa.h"

#include <stdlib.h>
#include <string.h>

// Output channels per register tile of the 16 products (every instruction set): weights are packed, and
// output channels padded, in groups of this many.
#define EK_WINO_OB 6

static inline int ek_wino_padded_out(int o) { return (o + EK_WINO_OB - 1) / EK_WINO_OB * EK_WINO_OB; }

#define EK_VW 16
#define EK_NV 4
#define EK_NAME(x) ek_avx512_##x
#define EK_EVEN(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
#define EK_ODD(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)
#define EK_ZIP_LO(a, b) __builtin_shufflevector(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23)
#define EK_ZIP_HI(a, b) __builtin_shufflevector(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma"))), apply_to = function)
#include "winograd_body.inc"
#pragma clang attribute pop
#undef EK_VW
#undef EK_NV
#undef EK_NAME
#undef EK_EVEN
#undef EK_ODD
#undef EK_ZIP_LO
#undef EK_ZIP_HI

#define EK_VW 8
#define EK_NV 2
#define EK_NAME(x) ek_avx2_##x
#define EK_EVEN(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14)
#define EK_ODD(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15)
#define EK_ZIP_LO(a, b) __builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11)
#define EK_ZIP_HI(a, b) __builtin_shufflevector(a, b, 4, 12, 5, 13, 6, 14, 7, 15)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#include "winograd_body.inc"
#pragma clang attribute pop
#undef EK_VW
#undef EK_NV
#undef EK_NAME
#undef EK_EVEN
#undef EK_ODD
#undef EK_ZIP_LO
#undef EK_ZIP_HI

#define EK_VW 4
#define EK_NV 2
#define EK_NAME(x) ek_sse_##x
#define EK_EVEN(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6)
#define EK_ODD(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7)
#define EK_ZIP_LO(a, b) __builtin_shufflevector(a, b, 0, 4, 1, 5)
#define EK_ZIP_HI(a, b) __builtin_shufflevector(a, b, 2, 6, 3, 7)
#include "winograd_body.inc"
#undef EK_VW
#undef EK_NV
#undef EK_NAME
#undef EK_EVEN
#undef EK_ODD
#undef EK_ZIP_LO
#undef EK_ZIP_HI

size_t ek_winograd_packed_count(int out_channels, int in_channels) {
    return 16 * (size_t)in_channels * (size_t)ek_wino_padded_out(out_channels);
}

void ek_winograd_pack(const float *w, int wo, int wi, int adjoint, float *u) {
    int out = adjoint ? wi : wo, in = adjoint ? wo : wi, op = ek_wino_padded_out(out);
    memset(u, 0, ek_winograd_packed_count(out, in) * sizeof(float));
    for (int a = 0; a < out; a++) {
        for (int b = 0; b < in; b++) {
            float g[3][3], t[4][3];
            for (int ky = 0; ky < 3; ky++)
                for (int kx = 0; kx < 3; kx++)
                    // The adjoint (input gradient) correlates with the kernel transposed and flipped.
                    g[ky][kx] = adjoint ? w[((long)b * wi + a) * 9 + (2 - ky) * 3 + (2 - kx)] : w[((long)a * wi + b) * 9 + ky * 3 + kx];
            for (int k = 0; k < 3; k++) {  // G g: rows
                t[0][k] = g[0][k];
                t[1][k] = 0.5f * (g[0][k] + g[1][k] + g[2][k]);
                t[2][k] = 0.5f * (g[0][k] - g[1][k] + g[2][k]);
                t[3][k] = g[2][k];
            }
            for (int i = 0; i < 4; i++) {  // (G g) G^T: columns
                float r[4] = {t[i][0], 0.5f * (t[i][0] + t[i][1] + t[i][2]), 0.5f * (t[i][0] - t[i][1] + t[i][2]), t[i][2]};
                for (int j = 0; j < 4; j++) u[(((long)(i * 4 + j) * (op / EK_WINO_OB) + a / EK_WINO_OB) * in + b) * EK_WINO_OB + a % EK_WINO_OB] = r[j];
            }
        }
    }
}

long ek_winograd_blocks(int c, int h, int w, int o) {
    if (h < 2 || h % 2 || w % 2) return 0;
    int rows;
    switch (ek_current_isa()) {
    case ISA_AVX512: rows = ek_avx512_wino_rows_per_block(c, h, w, o); break;
    case ISA_AVX2: rows = ek_avx2_wino_rows_per_block(c, h, w, o); break;
    default: rows = ek_sse_wino_rows_per_block(c, h, w, o); break;
    }
    return (h / 2 + rows - 1) / rows;
}

int ek_winograd_conv3x3(const float *x, int c, int h, int w, const float *u, int o, const float *bias, int relu,
                        const float *mask, float *y, long item_begin, long item_end) {
    if (h % 2 || w % 2) return -2;
    switch (ek_current_isa()) {
    case ISA_AVX512: return ek_avx512_winograd_conv3x3(x, c, h, w, u, o, bias, relu, mask, y, item_begin, item_end);
    case ISA_AVX2: return ek_avx2_winograd_conv3x3(x, c, h, w, u, o, bias, relu, mask, y, item_begin, item_end);
    default: return ek_sse_winograd_conv3x3(x, c, h, w, u, o, bias, relu, mask, y, item_begin, item_end);
    }
}
