// The weight gradient of stride-1 convolutions with 3-wide kernels: see include/engine_kernels.h.
// The kernel body is written once (weight_grad_body.inc) and compiled here for three instruction sets.
#include "engine_kernels.h"
#include "isa.h"

#include <stdlib.h>
#include <string.h>

// Output channels per tile: 3 x 3 taps x OB accumulators, plus OB output-gradient vectors, fit the
// vector registers (32 with AVX-512, 16 otherwise).
#define EK_VW 16
#define EK_OB 3
#define EK_NAME(x) ek_avx512_##x
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma"))), apply_to = function)
#include "weight_grad_body.inc"
#pragma clang attribute pop
#undef EK_VW
#undef EK_OB
#undef EK_NAME

#define EK_VW 8
#define EK_OB 1
#define EK_NAME(x) ek_avx2_##x
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#include "weight_grad_body.inc"
#pragma clang attribute pop
#undef EK_VW
#undef EK_OB
#undef EK_NAME

#define EK_VW 4
#define EK_OB 1
#define EK_NAME(x) ek_sse_##x
#include "weight_grad_body.inc"
#undef EK_VW
#undef EK_OB
#undef EK_NAME

ek_wgrad_plan ek_wgrad_plan_for(int out_channels, int out_height, int out_width, int in_channels, int samples) {
    ek_wgrad_plan p;
    int ob;
    switch (ek_current_isa()) {
    case ISA_AVX512: ob = 3, p.vw = 16; break;
    case ISA_AVX2: ob = 1, p.vw = 8; break;
    default: ob = 1, p.vw = 4; break;
    }
    p.owp = (out_width + p.vw - 1) / p.vw * p.vw;
    p.wp = p.owp + 2;
    // A chunk's input rows (one input channel) and output-gradient rows (all channels) take about
    // 1 MB: in L2 while every tile passes over them. Small planes go several samples at a time, so
    // each tile's horizontal sums are spread over enough products.
    long per_row = (long)p.wp + (long)out_channels * p.owp;
    long rows = (256L * 1024) / (per_row > 0 ? per_row : 1);
    if (rows < 1) rows = 1;
    if (rows >= out_height) {
        long s = rows / (out_height > 0 ? out_height : 1);
        p.samples = (int)(s < 1 ? 1 : s > samples ? samples : s);
        p.rows = out_height;
    } else {
        p.samples = 1;
        p.rows = (int)rows;
    }
    p.tiles = (long)((out_channels + ob - 1) / ob) * in_channels;
    return p;
}

int ek_wgrad_chunk(ek_wgrad_plan plan, const float *x, const float *g, int c, int h, int w, int o, int kh, int ph,
                   int pw, long sample0, int samples, int row0, int rows, float *dw, long tile_begin, long tile_end) {
    switch (plan.vw) {
    case 16:
        return ek_avx512_wgrad_chunk(plan, x, g, c, h, w, o, kh, ph, pw, sample0, samples, row0, rows, dw, tile_begin, tile_end);
    case 8:
        return ek_avx2_wgrad_chunk(plan, x, g, c, h, w, o, kh, ph, pw, sample0, samples, row0, rows, dw, tile_begin, tile_end);
    default:
        return ek_sse_wgrad_chunk(plan, x, g, c, h, w, o, kh, ph, pw, sample0, samples, row0, rows, dw, tile_begin, tile_end);
    }
}
