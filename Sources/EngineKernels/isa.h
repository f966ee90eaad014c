// Internal: the instruction set every kernel file dispatches on (isa.c), and per-thread scratch
// buffers (scratch.c).
#ifndef QUAC_ENGINE_KERNELS_ISA_H
#define QUAC_ENGINE_KERNELS_ISA_H

#include <stddef.h>

typedef enum { ISA_UNKNOWN, ISA_SSE, ISA_AVX2, ISA_AVX512 } isa_t;

isa_t ek_current_isa(void);

// A buffer of at least `count` floats for this thread (contents undefined; NULL when memory runs out),
// kept between calls and freed when the thread ends: a fresh allocation per call would come from the
// OS as new pages, and faulting those in costs as much as the work on them. One slot per kernel, so
// kernels never share one.
enum { EK_SCRATCH_WINOGRAD, EK_SCRATCH_GEMM, EK_SCRATCH_SLOTS };
float *ek_thread_scratch(int slot, size_t count);

#endif
