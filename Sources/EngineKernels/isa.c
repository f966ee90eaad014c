// Which instruction set the kernels run with: the widest the CPU supports, chosen once.
#include "engine_kernels.h"
#include "isa.h"

#include <stdlib.h>
#include <string.h>


// The widest set this CPU (and OS) supports; QUAC_ENGINE_ISA=avx2|sse asks for a narrower one.
static isa_t detected_isa_uncached(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) return ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return ISA_AVX2;
    return ISA_SSE;
}

static isa_t current_isa = ISA_UNKNOWN;  // a benign race on first use: every thread computes the same value

isa_t ek_current_isa(void) {
    if (current_isa == ISA_UNKNOWN) {
        isa_t best = detected_isa_uncached();
        const char *force = getenv("QUAC_ENGINE_ISA");
        if (force && strcmp(force, "sse") == 0) best = ISA_SSE;
        else if (force && strcmp(force, "avx2") == 0 && best == ISA_AVX512) best = ISA_AVX2;
        current_isa = best;
    }
    return current_isa;
}

static isa_t isa_named(const char *name) {
    if (strcmp(name, "avx512") == 0) return ISA_AVX512;
    if (strcmp(name, "avx2") == 0) return ISA_AVX2;
    if (strcmp(name, "sse") == 0) return ISA_SSE;
    return ISA_UNKNOWN;
}

int ek_set_isa(const char *name) {
    isa_t want = isa_named(name), best = detected_isa_uncached();
    if (want == ISA_UNKNOWN || want > best) return -1;
    current_isa = want;
    return 0;
}

const char *ek_isa(void) {
    switch (ek_current_isa()) {
    case ISA_AVX512: return "avx512";
    case ISA_AVX2: return "avx2";
    default: return "sse";
    }
}

