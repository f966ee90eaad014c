// The engine's C kernels alone, on one core, without Swift around them: the no-packing GEMM on W1's
// largest linear layer (batch 64, 6144 -> 4096: forward y^T = W x^T and input gradient g W, as
// Ops/SmallBatchGEMM.swift calls them) and Winograd F(2x2, 3x3) against the direct kernel on QuAC's
// VGG's C -> C convolutions (16 samples, bias-free, with ReLU). Best of 8 (GEMM) or 5 (convolutions)
// calls, GFLOP/s counted at the direct convolution's multiply-adds. Run by bench/kernels_bench.sh.
#include "engine_kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static float *filled(size_t n, int mod, float scale, float shift) {
    float *p = malloc(n * sizeof(float));
    if (!p) { fprintf(stderr, "out of memory\n"); exit(1); }
    for (size_t i = 0; i < n; i++) p[i] = (float)((i * 7919) % (size_t)mod) * scale + shift;
    return p;
}

static void gemm_bench(void) {
    const int m = 64, k = 6144, n = 4096;
    float *w = filled((size_t)n * k, 7, 0.1f, -0.3f), *xt = filled((size_t)k * m, 5, 0.1f, -0.2f);
    float *yt = filled((size_t)n * m, 1, 0, 0), *g = filled((size_t)m * n, 3, 0.1f, -0.1f);
    float *dx = filled((size_t)m * k, 1, 0, 0);
    double best_f = 1e9, best_b = 1e9;
    for (int rep = 0; rep < 8; rep++) {
        double t = now();
        ek_gemm(k, w, k, xt, m, yt, m, NULL, 0, n, 0, m);
        if (now() - t < best_f) best_f = now() - t;
        t = now();
        ek_gemm(n, g, n, w, k, dx, k, NULL, 0, m, 0, k);
        if (now() - t < best_b) best_b = now() - t;
    }
    double flops = 2.0 * m * n * k;
    printf("ek_gemm %d x %d -> %d: forward %.1f GFLOP/s, input gradient %.1f GFLOP/s\n", m, k, n, flops / best_f / 1e9,
           flops / best_b / 1e9);
    free(w), free(xt), free(yt), free(g), free(dx);
}

static void conv_bench(int c, int h) {
    const int n = 16, o = c, w = h;
    float *x = filled((size_t)n * c * h * w, 13, 0.1f, -0.6f), *y = filled((size_t)n * o * h * w, 1, 0, 0);
    float *wt = filled((size_t)o * c * 9, 5, 0.1f, -0.2f);
    float *u = malloc(ek_winograd_packed_count(o, c) * sizeof(float));
    ek_winograd_pack(wt, o, c, 0, u);
    ek_conv_plan plan = ek_conv_plan_for(o, w);
    float *pk = malloc(ek_conv_packed_count(plan, o, c, 3, 3) * sizeof(float));
    ek_conv_pack(plan, wt, o, c, 3, 3, 0, pk);
    long items = n * ek_winograd_blocks(c, h, w, o);
    double best_d = 1e9, best_w = 1e9;
    for (int rep = 0; rep < 5; rep++) {
        double t = now();
        if (ek_conv2d_rows(plan, x, c, h, w, pk, o, 3, 3, 1, 1, NULL, 1, NULL, y, 0, (long)n * h) != 0) exit(1);
        if (now() - t < best_d) best_d = now() - t;
        t = now();
        if (ek_winograd_conv3x3(x, c, h, w, u, o, NULL, 1, NULL, y, 0, items) != 0) exit(1);
        if (now() - t < best_w) best_w = now() - t;
    }
    double flops = 2.0 * n * c * o * 9 * h * w;
    printf("conv %d -> %d @%dx%d: direct %.1f GFLOP/s, Winograd %.1f GFLOP/s (%.2fx)\n", c, o, h, w,
           flops / best_d / 1e9, flops / best_w / 1e9, best_d / best_w);
    free(x), free(y), free(wt), free(u), free(pk);
}

int main(void) {
    printf("kernels: %s, one thread\n", ek_isa());
    gemm_bench();
    int shapes[][2] = {{12, 128}, {24, 64}, {48, 32}, {96, 16}};
    for (int i = 0; i < 4; i++) conv_bench(shapes[i][0], shapes[i][1]);
    return 0;
}
