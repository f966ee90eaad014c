// Direct 2-D convolution (stride 1): see include/engine_kernels.h. The kernel body is written once
// (direct_conv_body.inc) and compiled here for three instruction sets.
#include "engine_kernels.h"
#include "isa.h"

#include <stdlib.h>
#include <string.h>

#define EK_VW 16
#define EK_MAXACC 24
#define EK_NAME(x) ek_avx512_##x
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma"))), apply_to = function)
#include "direct_conv_body.inc"
#pragma clang attribute pop
#undef EK_VW
#undef EK_MAXACC
#undef EK_NAME

#define EK_VW 8
#define EK_MAXACC 12
#define EK_NAME(x) ek_avx2_##x
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#include "direct_conv_body.inc"
#pragma clang attribute pop
#undef EK_VW
#undef EK_MAXACC
#undef EK_NAME

#define EK_VW 4
#define EK_MAXACC 12
#define EK_NAME(x) ek_sse_##x
#include "direct_conv_body.inc"
#undef EK_VW
#undef EK_MAXACC
#undef EK_NAME

ek_conv_plan ek_conv_plan_for(int out_channels, int out_width) {
    switch (ek_current_isa()) {
    case ISA_AVX512: return ek_avx512_plan_for(out_channels, out_width);
    case ISA_AVX2: return ek_avx2_plan_for(out_channels, out_width);
    default: return ek_sse_plan_for(out_channels, out_width);
    }
}

size_t ek_conv_packed_count(ek_conv_plan plan, int out_channels, int in_channels, int kh, int kw) {
    size_t blocks = (size_t)(out_channels + plan.ob - 1) / plan.ob;
    return blocks * plan.ob * in_channels * kh * kw;
}

void ek_conv_pack(ek_conv_plan plan, const float *w, int wo, int wi, int kh, int kw, int adjoint, float *packed) {
    int o = adjoint ? wi : wo, c = adjoint ? wo : wi;
    int blocks = (o + plan.ob - 1) / plan.ob;
    // packed[block][ci][ky][kx][b] = weight of output channel block * ob + b (0 past the last channel)
    for (int blk = 0; blk < blocks; blk++)
        for (int ci = 0; ci < c; ci++)
            for (int ky = 0; ky < kh; ky++)
                for (int kx = 0; kx < kw; kx++)
                    for (int b = 0; b < plan.ob; b++) {
                        int oc = blk * plan.ob + b;
                        float v = 0;
                        if (oc < o) {
                            v = adjoint ? w[(((size_t)ci * wi + oc) * kh + (kh - 1 - ky)) * kw + (kw - 1 - kx)]
                                        : w[(((size_t)oc * wi + ci) * kh + ky) * kw + kx];
                        }
                        *packed++ = v;
                    }
}

int ek_conv2d_rows(ek_conv_plan plan, const float *x, int c, int h, int w, const float *packed, int o, int kh,
                   int kw, int ph, int pw, const float *bias, int relu, const float *mask, float *y, long row_begin,
                   long row_end) {
    switch (plan.vw) {
    case 16:
        return ek_avx512_conv2d_rows(plan, x, c, h, w, packed, o, kh, kw, ph, pw, bias, relu, mask, y, row_begin, row_end);
    case 8:
        return ek_avx2_conv2d_rows(plan, x, c, h, w, packed, o, kh, kw, ph, pw, bias, relu, mask, y, row_begin, row_end);
    default:
        return ek_sse_conv2d_rows(plan, x, c, h, w, packed, o, kh, kw, ph, pw, bias, relu, mask, y, row_begin, row_end);
    }
}
