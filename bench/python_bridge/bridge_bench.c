/*
 * bridge_bench.c -- the per-call overhead of org.quac.python: a no-op Python attributor (noop.py)
 * called through the ABI on a batch of 16 images, against a no-op C attributor called the same way in
 * the same run, alternately (both allocate an output shaped like x through the host and fill it).
 * Prints the median microseconds per call of each and their difference, the bridge's overhead per
 * batch; then the same for a Python method that allocates a new NumPy array each call.
 *
 *   bridge_bench LIBRARY NOOP_PY [CALLS]
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quac_plugin.h"

static void bench_log(const quac_host *h, quac_log_level l, const char *m) { (void)h; (void)l; fprintf(stderr, "log: %s\n", m); }
static void bench_progress(const quac_host *h, int64_t d, int64_t t, const char *l) { (void)h; (void)d; (void)t; (void)l; }
static bool bench_cancelled(const quac_host *h) { (void)h; return false; }
static char last_error[1024];
static void bench_set_error(const quac_host *h, const char *m) { (void)h; snprintf(last_error, sizeof last_error, "%s", m); }

typedef struct { quac_managed_tensor m; int64_t shape[8]; } owned;
static void release(quac_managed_tensor *t) { free(t->tensor.data); free(t); }
static quac_status bench_alloc(const quac_host *h, quac_dtype dtype, int32_t ndim, const int64_t *shape, quac_managed_tensor **out) {
    (void)h;
    owned *o = calloc(1, sizeof *o);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) { o->shape[i] = shape[i]; n *= (size_t)shape[i]; }
    o->m.version.major = 1;
    o->m.deleter = release;
    o->m.tensor.data = calloc(n ? n : 1, dtype.bits / 8);
    o->m.tensor.device.device_type = QUAC_DEVICE_CPU;
    o->m.tensor.ndim = ndim;
    o->m.tensor.dtype = dtype;
    o->m.tensor.shape = o->shape;
    *out = &o->m;
    return QUAC_OK;
}

static quac_status sink_put(const quac_output_sink *s, const char *name, quac_managed_tensor *t) { (void)s; (void)name; t->deleter(t); return QUAC_OK; }
static quac_status sink_json(const quac_output_sink *s, const char *j, size_t n) { (void)s; (void)j; (void)n; return QUAC_OK; }

static quac_host host = {
    .struct_size = sizeof(quac_host), .abi_major = QUAC_ABI_VERSION_MAJOR, .abi_minor = QUAC_ABI_VERSION_MINOR,
    .log = bench_log, .progress = bench_progress, .is_cancelled = bench_cancelled, .set_error = bench_set_error,
    .tensor_alloc = bench_alloc,
};

/* The reference: what any attributor does at least: an output shaped like x, every element written. */
static quac_status c_noop(const quac_plugin *self, const quac_batch *b, const quac_output_sink *out) {
    (void)self;
    quac_managed_tensor *t;
    quac_status s = host.tensor_alloc(&host, b->x->dtype, b->x->ndim, b->x->shape, &t);
    if (s != QUAC_OK) return s;
    size_t n = 1;
    for (int i = 0; i < b->x->ndim; i++) n *= (size_t)b->x->shape[i];
    float *a = t->tensor.data;
    for (size_t i = 0; i < n; i++) a[i] = 0.0f * ((const float *)b->x->data)[i]; /* writes every element */
    return out->put_tensor(out, "attribution", t);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef quac_status (*attribute_fn)(const quac_plugin *, const quac_batch *, const quac_output_sink *);

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median microseconds per call of f and of the reference, called alternately so that both see the
 * same machine load. */
static void median_us(attribute_fn f, const quac_plugin *p, attribute_fn ref, const quac_batch *b,
                      const quac_output_sink *s, int calls, double *f_us, double *ref_us) {
    double *tf = malloc(sizeof(double) * calls), *tr = malloc(sizeof(double) * calls);
    for (int i = 0; i < 20; i++) { f(p, b, s); ref(p, b, s); } /* warm up */
    for (int i = 0; i < calls; i++) {
        double t0 = now();
        if (f(p, b, s) != QUAC_OK) { fprintf(stderr, "call failed: %s\n", last_error); exit(1); }
        double t1 = now();
        ref(p, b, s);
        double t2 = now();
        tf[i] = (t1 - t0) * 1e6;
        tr[i] = (t2 - t1) * 1e6;
    }
    qsort(tf, calls, sizeof *tf, by_value);
    qsort(tr, calls, sizeof *tr, by_value);
    *f_us = tf[calls / 2];
    *ref_us = tr[calls / 2];
    free(tf);
    free(tr);
}

static const quac_plugin *create(const quac_plugin_entry_v1 *e, const char *module, const char *cls) {
    char params[4096];
    snprintf(params, sizeof params, "{\"module\": \"%s\", \"class\": \"%s\", \"python_path\": []}", module, cls);
    const quac_plugin *plugin;
    if (e->factory->create(e->factory, &host, "org.quac.python.attributor", params, &plugin) != QUAC_OK) {
        fprintf(stderr, "create failed: %s\n", last_error);
        exit(1);
    }
    return plugin;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s LIBRARY NOOP_PY [CALLS]\n", argv[0]); return 2; }
    int calls = argc > 3 ? atoi(argv[3]) : 2000;
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    quac_plugin_entry_fn entry = (quac_plugin_entry_fn)dlsym(lib, QUAC_PLUGIN_ENTRY_SYMBOL);
    const quac_plugin_entry_v1 *e = entry(QUAC_ABI_VERSION_MAJOR, QUAC_ABI_VERSION_MINOR);
    if (e->init && e->init(argv[1]) != QUAC_OK) return 1;
    const quac_plugin *noop = create(e, argv[2], "NoOp"), *fresh = create(e, argv[2], "FreshZeros");
    const quac_attributor *table = noop->get_extension(noop, QUAC_KIND_TABLE_ATTRIBUTOR);

    /* 16 images of 1x128x128 (QuAC's image size), and their classes. */
    int64_t xs[4] = {16, 1, 128, 128}, ss[1] = {16};
    float *x = calloc(16 * 128 * 128, sizeof *x);
    int64_t src[16] = {0};
    quac_tensor xt = {.data = x, .device = {QUAC_DEVICE_CPU, 0}, .ndim = 4, .dtype = {QUAC_DTYPE_FLOAT, 32, 1}, .shape = xs};
    quac_tensor st = {.data = src, .device = {QUAC_DEVICE_CPU, 0}, .ndim = 1, .dtype = {QUAC_DTYPE_INT, 64, 1}, .shape = ss};
    quac_batch batch = {.struct_size = sizeof batch, .x = &xt, .source = &st, .seed = 1};
    quac_output_sink sink = {.struct_size = sizeof sink, .put_tensor = sink_put, .put_json = sink_json};

    double py, c, py_fresh, c2;
    median_us(table->attribute, noop, c_noop, &batch, &sink, calls, &py, &c);
    median_us(table->attribute, fresh, c_noop, &batch, &sink, calls, &py_fresh, &c2);
    printf("batch of 16 images [16, 1, 128, 128], %d calls each, medians\n", calls);
    printf("  C no-op attributor (reference):             %8.1f us per call\n", c);
    printf("  Python no-op through the bridge:            %8.1f us per call\n", py);
    printf("  bridge overhead: %.3f ms per batch (target < 1 ms); ratio to the reference %.2fx\n", (py - c) / 1000, py / c);
    printf("  (a Python method that allocates its output each call: %.1f us against %.1f us, %.3f ms more)\n",
           py_fresh, c2, (py_fresh - c2) / 1000);
    noop->destroy(noop);
    fresh->destroy(fresh);
    return 0;
}
