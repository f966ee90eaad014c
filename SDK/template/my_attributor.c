/*
 * my_attributor.c -- a skeleton attributor to copy and edit. Search for TODO.
 *
 * As it stands it builds, loads and runs, and returns a placeholder attribution, scale * x. Read
 * ../README.md ("Write your first attribution plugin") and ../examples/c-saliency/saliency.c, a
 * complete plugin built the same way.
 *
 * Checklist when you copy it:
 *   1. the id (reverse-DNS, yours), name, version and description below, and the same id, name,
 *      version and kind in my-attributor.json;
 *   2. the parameters: read them in my_create, declare them (with defaults) in the manifest's
 *      "parameters" schema;
 *   3. the computation in my_attribute;
 *   4. "requires" in the manifest: "classifier.vjp" if you call host->classifier_vjp, and so on;
 *   5. the library's file name in the Makefile (PLUGIN) and in the manifest ("library").
 */
#include <stdlib.h>

#include "quac_sdk.h"

/* The instance's state, made by my_create from the parameters. Owned by the instance: destroy frees it
 * (with `free`, as passed to quac_sdk_plugin_new; pass your own function if it owns more). */
typedef struct my_state {
    double scale; /* TODO: your parameters */
} my_state;

static const quac_plugin_descriptor my_descriptor = {
    .struct_size = sizeof(quac_plugin_descriptor),
    .id = "org.example.my-attributor", /* TODO: your id; must equal the manifest's */
    .name = "My attributor",           /* TODO */
    .version = "0.1.0",
    .description = "TODO: one line on what it computes",
    .kind = QUAC_KIND_ATTRIBUTOR,
    .flags = 0, /* QUAC_PLUGIN_FLAG_REENTRANT if calls on one instance may overlap */
};

/* [instance] Explains batch->source for each query of batch->x: puts "attribution", float32 shaped like
 * x. Inputs are borrowed and read-only. Every tensor this function owns is released on every path. */
static quac_status my_attribute(const quac_plugin *self, const quac_batch *batch, const quac_output_sink *out) {
    const quac_host *host = quac_sdk_plugin_host(self);
    const my_state *state = self->plugin_data;
    quac_managed_tensor *attribution = NULL;

    quac_status status = quac_sdk_check_tensor(host, batch->x, "x", -1, true);
    if (status == QUAC_OK) status = quac_sdk_check_finite(host, batch->x, "x");
    /* TODO: check the other inputs you use, e.g.
     *   quac_sdk_check_labels(host, batch->source, "source", batch->x->shape[0], num_classes) */
    if (status != QUAC_OK) return status;

    status = quac_sdk_alloc_like(host, batch->x, &attribution);
    if (status != QUAC_OK) return status;
    float *a = quac_sdk_f32(&attribution->tensor);
    const float *x = quac_sdk_f32(batch->x);
    int64_t n = quac_sdk_numel(batch->x);
    for (int64_t i = 0; i < n; i++) {
        /* TODO: your method; this placeholder scales the input. Long loops: call quac_sdk_progress now
         * and then, and when quac_sdk_is_cancelled(host) is true, release what you own and return
         * quac_sdk_cancelled(host). */
        a[i] = (float)(state->scale * x[i]);
    }

    return out->put_tensor(out, "attribution", attribution); /* ownership moves to the host */
}

static const quac_attributor my_table = {
    .struct_size = sizeof(quac_attributor),
    .attribute = my_attribute,
};

static const quac_sdk_extension my_extensions[] = {
    {QUAC_KIND_TABLE_ATTRIBUTOR, &my_table},
    {NULL, NULL},
};

/* [main-thread] Makes an instance from its parameters (a JSON object the host has validated against the
 * manifest's schema, defaults filled in). */
static quac_status my_create(const quac_host *host, const quac_plugin_descriptor *descriptor,
                             const char *params_json, const quac_plugin **out) {
    quac_sdk_params *params = quac_sdk_params_parse(host, params_json);
    if (params == NULL) return QUAC_ERR_INVALID_ARGUMENT;
    my_state values = {0};
    /* TODO: read your parameters; each getter names the parameter in its error. */
    quac_status status = quac_sdk_param_double(params, "scale", 1.0, &values.scale);
    quac_sdk_params_free(params);
    if (status != QUAC_OK) return status;

    my_state *state = malloc(sizeof *state);
    if (state == NULL) return quac_sdk_fail(host, QUAC_ERR_OUT_OF_MEMORY, "out of memory");
    *state = values;
    status = quac_sdk_plugin_new(host, descriptor, my_extensions, state, free, out);
    if (status != QUAC_OK) free(state);
    return status;
}

/* The library's plugins (one here) and its one exported symbol, quac_plugin_entry. */
static const quac_sdk_plugin_def my_plugins[] = {{&my_descriptor, my_create}};
static const quac_sdk_simple_factory my_factory = QUAC_SDK_SIMPLE_FACTORY(my_plugins);
QUAC_SDK_DEFINE_ENTRY(&my_factory);
