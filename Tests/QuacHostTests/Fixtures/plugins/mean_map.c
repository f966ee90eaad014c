/* Test fixture: org.quac.test.mean-map, a learned explainer as small as one can be. Trained on a dataset
 * with a "targets" field (another attributor's maps, which the pipeline computes for it), it learns
 * the mean target map and explains every sample with it. Its training JSON reports the fields it was
 * given and whether "teacher" is the argmax of "teacher_logits", so tests can see what the pipeline
 * computed. save/load write the map as raw floats after an int64 count.
 * Build: cc -shared -fPIC -I<repo>/Sources/PluginAPI/include -o libmean_map.so mean_map.c */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quac_plugin.h"

typedef struct {
    const quac_host *host;
    float *mean;  /* per-sample map, `size` floats; NULL until trained or loaded */
    int64_t size;
} mean_map;

static const quac_plugin_descriptor descriptor = {
    .struct_size = sizeof(quac_plugin_descriptor), .id = "org.quac.test.mean-map", .name = "Mean-map explainer (test fixture)",
    .version = "1.0.0", .description = "Explains every sample with the mean of its training targets", .kind = QUAC_KIND_ATTRIBUTOR};

static mean_map *self_of(const quac_plugin *p) { return p->plugin_data; }

static int64_t per_sample(const quac_tensor *t) {
    int64_t n = 1;
    for (int32_t i = 1; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

/* [instance] The learned map for every sample of the batch. */
static quac_status attribute(const quac_plugin *p, const quac_batch *batch, const quac_output_sink *out) {
    mean_map *m = self_of(p);
    if (m->mean == NULL) {
        m->host->set_error(m->host, "not trained");
        return QUAC_ERR_INVALID_ARGUMENT;
    }
    if (batch->x == NULL || batch->x->ndim < 1 || per_sample(batch->x) != m->size) {
        m->host->set_error(m->host, "x: samples do not have the trained map's size");
        return QUAC_ERR_INVALID_ARGUMENT;
    }
    const quac_dtype f32 = {QUAC_DTYPE_FLOAT, 32, 1};
    quac_managed_tensor *a = NULL;
    quac_status s = m->host->tensor_alloc(m->host, f32, batch->x->ndim, batch->x->shape, &a);
    if (s != QUAC_OK) return s;
    float *dst = a->tensor.data;
    for (int64_t i = 0; i < batch->x->shape[0]; i++) memcpy(dst + i * m->size, m->mean, (size_t)m->size * sizeof(float));
    return out->put_tensor(out, "attribution", a);
}

static quac_status gather(const quac_dataset *d, const char *field, quac_managed_tensor **out) {
    int64_t *all = malloc((size_t)(d->count > 0 ? d->count : 1) * sizeof(int64_t));
    if (all == NULL) return QUAC_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < d->count; i++) all[i] = i;
    quac_status s = d->get(d, field, all, d->count, out);
    free(all);
    return s;
}

/* [main-thread] The mean of the "targets" field; JSON {"fields": [...], "teacher_consistent": bool}. */
static quac_status train(const quac_plugin *p, const quac_dataset *data, const quac_dataset *val, const char *dir, uint64_t seed,
                         const quac_output_sink *out) {
    (void)val; (void)dir; (void)seed;
    mean_map *m = self_of(p);
    quac_managed_tensor *targets = NULL;
    if (gather(data, "targets", &targets) != QUAC_OK) {
        m->host->set_error(m->host, "the training data has no \"targets\" field (set \"targets_from\" in the train block)");
        return QUAC_ERR_INVALID_ARGUMENT;
    }
    int64_t n = targets->tensor.shape[0], size = per_sample(&targets->tensor);
    free(m->mean);
    m->mean = calloc((size_t)size, sizeof(float));
    m->size = size;
    const float *t = targets->tensor.data;
    for (int64_t i = 0; i < n; i++) for (int64_t k = 0; k < size; k++) m->mean[k] += t[i * size + k] / (float)n;
    targets->deleter(targets);

    int consistent = -1; /* -1: no teacher fields */
    quac_managed_tensor *teacher = NULL, *logits = NULL;
    if (gather(data, "teacher", &teacher) == QUAC_OK && gather(data, "teacher_logits", &logits) == QUAC_OK) {
        consistent = 1;
        int64_t k = logits->tensor.shape[1];
        const float *l = logits->tensor.data;
        const int64_t *y = teacher->tensor.data;
        for (int64_t i = 0; i < n; i++) {
            int64_t best = 0;
            for (int64_t c = 1; c < k; c++) if (l[i * k + c] > l[i * k + best]) best = c;
            if (best != y[i]) consistent = 0;
        }
    }
    if (teacher) teacher->deleter(teacher);
    if (logits) logits->deleter(logits);
    char json[1024];
    int len = snprintf(json, sizeof json, "{\"fields\": %s, \"teacher_consistent\": %s}", data->fields_json,
                       consistent < 0 ? "null" : consistent ? "true" : "false");
    return out->put_json(out, json, (size_t)len);
}

static quac_status save(const quac_plugin *p, const char *path) {
    mean_map *m = self_of(p);
    FILE *f = fopen(path, "wb");
    if (f == NULL) { m->host->set_error(m->host, "cannot write the model"); return QUAC_ERR_IO; }
    fwrite(&m->size, sizeof m->size, 1, f);
    fwrite(m->mean, sizeof(float), (size_t)m->size, f);
    fclose(f);
    return QUAC_OK;
}

static quac_status load(const quac_plugin *p, const char *path) {
    mean_map *m = self_of(p);
    FILE *f = fopen(path, "rb");
    int64_t size = 0;
    if (f == NULL || fread(&size, sizeof size, 1, f) != 1 || size <= 0) {
        if (f) fclose(f);
        m->host->set_error(m->host, "cannot read the model");
        return QUAC_ERR_IO;
    }
    free(m->mean);
    m->mean = malloc((size_t)size * sizeof(float));
    m->size = size;
    size_t got = fread(m->mean, sizeof(float), (size_t)size, f);
    fclose(f);
    return got == (size_t)size ? QUAC_OK : QUAC_ERR_IO;
}

static const quac_attributor attributor_table = {.struct_size = sizeof(quac_attributor), .attribute = attribute};
static const quac_trainer trainer_table = {.struct_size = sizeof(quac_trainer), .train = train, .save = save, .load = load};

static const void *get_extension(const quac_plugin *p, const char *id) {
    (void)p;
    if (id == NULL) return NULL;
    if (strcmp(id, QUAC_KIND_TABLE_ATTRIBUTOR) == 0) return &attributor_table;
    if (strcmp(id, QUAC_EXT_TRAINER) == 0) return &trainer_table;
    return NULL;
}

static void destroy(const quac_plugin *p) {
    mean_map *m = self_of(p);
    free(m->mean);
    free(m);
    free((void *)(uintptr_t)p);
}

static uint32_t count(const quac_plugin_factory *f) { (void)f; return 1; }
static const quac_plugin_descriptor *get_descriptor(const quac_plugin_factory *f, uint32_t i) { (void)f; return i == 0 ? &descriptor : NULL; }

static quac_status create(const quac_plugin_factory *f, const quac_host *host, const char *id, const char *params, const quac_plugin **out) {
    (void)f; (void)params;
    *out = NULL;
    if (id == NULL || strcmp(id, descriptor.id) != 0) { host->set_error(host, "unknown plugin id"); return QUAC_ERR_INVALID_ARGUMENT; }
    quac_plugin *p = calloc(1, sizeof *p);
    mean_map *m = calloc(1, sizeof *m);
    if (p == NULL || m == NULL) { free(p); free(m); return QUAC_ERR_OUT_OF_MEMORY; }
    m->host = host;
    p->struct_size = sizeof *p;
    p->descriptor = &descriptor;
    p->plugin_data = m;
    p->destroy = destroy;
    p->get_extension = get_extension;
    *out = p;
    return QUAC_OK;
}

static const quac_plugin_factory factory = {.struct_size = sizeof factory, .count = count, .get_descriptor = get_descriptor, .create = create};
static const quac_plugin_entry_v1 entry = {.abi_major = QUAC_ABI_VERSION_MAJOR, .abi_minor = QUAC_ABI_VERSION_MINOR, .factory = &factory};

QUAC_EXPORT const quac_plugin_entry_v1 *quac_plugin_entry(uint32_t major, uint32_t minor) {
    (void)minor;
    return major == QUAC_ABI_VERSION_MAJOR ? &entry : NULL;
}
