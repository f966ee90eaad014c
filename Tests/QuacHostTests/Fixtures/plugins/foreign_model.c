/*
 * Test fixture: a plain C model library, NOT a plugin (it has no quac_plugin_entry and no manifest), for
 * the host's tests that call a model's own C function through libffi.
 *
 * The model: 2 classes; each sample is 1x4x4 = 16 floats, samples back to back (row-major [n, 1, 4, 4]).
 * With s = the sum of a sample's 16 values,
 *     logits[2*i + 0] =  s / 16          (the mean)
 *     logits[2*i + 1] = -s / 16 + 0.5
 * so logits are [n, 2] row-major. Example: an all-zero sample gives [0, 0.5]; all ones gives [1, -0.5].
 * Forward only (no gradient).
 *
 * Build: cc -shared -fPIC -o libforeign_model.so foreign_model.c
 */
#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define FOREIGN_EXPORT __declspec(dllexport)
#else
#define FOREIGN_EXPORT __attribute__((visibility("default")))
#endif

enum { SAMPLE_SIZE = 16, NUM_CLASSES = 2 };

/* logits for samples x[0..n) as described above. x: n*16 floats, read; logits: n*2 floats, written. */
static void model(const float *x, int64_t n, float *logits) {
    for (int64_t i = 0; i < n; i++) {
        float sum = 0.0f;
        for (int j = 0; j < SAMPLE_SIZE; j++) sum += x[i * SAMPLE_SIZE + j];
        logits[i * NUM_CLASSES + 0] = sum / 16.0f;
        logits[i * NUM_CLASSES + 1] = -sum / 16.0f + 0.5f;
    }
}

/* The model with an int64 sample count and no status. Thread-safe (no state). */
FOREIGN_EXPORT void predict(const float *x, int64_t n, float *logits) { model(x, n, logits); }

/* The same model with an int32 count and an int status: 0 on success, 1 when n < 0 or a pointer is
 * NULL (then logits is not written). Thread-safe. */
FOREIGN_EXPORT int predict_status(const float *x, int32_t n, float *logits) {
    if (n < 0 || x == NULL || logits == NULL) return 1;
    model(x, n, logits);
    return 0;
}
