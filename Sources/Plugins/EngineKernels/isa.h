// Internal: the instruction set every kernel file dispatches on (isa.c).
#ifndef QUAC_ENGINE_KERNELS_ISA_H
#define QUAC_ENGINE_KERNELS_ISA_H

typedef enum { ISA_UNKNOWN, ISA_SSE, ISA_AVX2, ISA_AVX512 } isa_t;

isa_t ek_current_isa(void);

#endif
