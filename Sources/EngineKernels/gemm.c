// Matrix product without packed copies, for products with one short side: see
// include/engine_kernels.h. The body is written once (gemm_body.inc) and compiled here for three
// instruction sets.
#include "engine_kernels.h"
#include "isa.h"

#include <string.h>

#define EK_VW 16
#define EK_MR 6
#define EK_NV 4
#define EK_NAME(x) ek_avx512_##x
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma"))), apply_to = function)
#include "gemm_body.inc"
#pragma clang attribute pop
#undef EK_VW
#undef EK_MR
#undef EK_NV
#undef EK_NAME

#define EK_VW 8
#define EK_MR 6
#define EK_NV 2
#define EK_NAME(x) ek_avx2_##x
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#include "gemm_body.inc"
#pragma clang attribute pop
#undef EK_VW
#undef EK_MR
#undef EK_NV
#undef EK_NAME

#define EK_VW 4
#define EK_MR 6
#define EK_NV 2
#define EK_NAME(x) ek_sse_##x
#include "gemm_body.inc"
#undef EK_VW
#undef EK_MR
#undef EK_NV
#undef EK_NAME

long ek_gemm_vector_floats(void) {
    switch (ek_current_isa()) {
    case ISA_AVX512: return ek_avx512_gemm_vector_floats;
    case ISA_AVX2: return ek_avx2_gemm_vector_floats;
    default: return ek_sse_gemm_vector_floats;
    }
}

long ek_gemm_column_block(void) {
    switch (ek_current_isa()) {
    case ISA_AVX512: return ek_avx512_gemm_column_block;
    case ISA_AVX2: return ek_avx2_gemm_column_block;
    default: return ek_sse_gemm_column_block;
    }
}

void ek_gemm(int k, const float *a, long lda, const float *b, long ldb, float *c, long ldc, const float *row_bias,
             long row_begin, long row_end, long col_begin, long col_end) {
    switch (ek_current_isa()) {
    case ISA_AVX512: ek_avx512_gemm(k, a, lda, b, ldb, c, ldc, row_bias, row_begin, row_end, col_begin, col_end); return;
    case ISA_AVX2: ek_avx2_gemm(k, a, lda, b, ldb, c, ldc, row_bias, row_begin, row_end, col_begin, col_end); return;
    default: ek_sse_gemm(k, a, lda, b, ldb, c, ldc, row_bias, row_begin, row_end, col_begin, col_end); return;
    }
}
