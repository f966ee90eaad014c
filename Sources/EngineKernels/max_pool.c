// 2x2 / stride 2 max pooling with the index of each maximum: see include/engine_kernels.h. The body
// is written once (max_pool_body.inc) and compiled here for three instruction sets.
#include "engine_kernels.h"
#include "isa.h"

#include <stdint.h>
#include <string.h>

#define EK_VW 16
#define EK_NAME(x) ek_avx512_##x
#define EK_EVEN(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
#define EK_ODD(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma"))), apply_to = function)
#include "max_pool_body.inc"
#pragma clang attribute pop
#undef EK_VW
#undef EK_NAME
#undef EK_EVEN
#undef EK_ODD

#define EK_VW 8
#define EK_NAME(x) ek_avx2_##x
#define EK_EVEN(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14)
#define EK_ODD(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#include "max_pool_body.inc"
#pragma clang attribute pop
#undef EK_VW
#undef EK_NAME
#undef EK_EVEN
#undef EK_ODD

#define EK_VW 4
#define EK_NAME(x) ek_sse_##x
#define EK_EVEN(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6)
#define EK_ODD(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7)
#include "max_pool_body.inc"
#undef EK_VW
#undef EK_NAME
#undef EK_EVEN
#undef EK_ODD

void ek_max_pool_2x2(const float *x, int h, int w, float *y, int32_t *index, long plane_begin, long plane_end) {
    switch (ek_current_isa()) {
    case ISA_AVX512: ek_avx512_max_pool_2x2(x, h, w, y, index, plane_begin, plane_end); return;
    case ISA_AVX2: ek_avx2_max_pool_2x2(x, h, w, y, index, plane_begin, plane_end); return;
    default: ek_sse_max_pool_2x2(x, h, w, y, index, plane_begin, plane_end); return;
    }
}
