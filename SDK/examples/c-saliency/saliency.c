/*
 * saliency.c -- a complete quac-host attributor in plain C: Saliency (Simonyan et al., 2014).
 *
 *     attribution = | d f_y(x) / d x |        y = batch->source, f = the run's classifier (logits)
 *
 * The gradient comes from the host (host->classifier_vjp) with a one-hot grad_logits, so this plugin
 * works with any classifier that has a vector-Jacobian product, whatever language it is written in.
 *
 * Parameters (see c-saliency.json):
 *   absolute           (bool, default true)  take |.| of the result; false keeps the sign
 *   multiply_by_input  (bool, default false) multiply the gradient by x first ("Input x Gradient")
 * so the output is g, |g|, g*x or |g*x| with g = d f_y(x) / d x.
 *
 * Threading: one call at a time per instance (the descriptor does not set QUAC_PLUGIN_FLAG_REENTRANT),
 * though attribute() keeps no state between calls.
 */
#include <math.h>
#include <stdlib.h>

#include "quac_sdk.h"

/* The parameters of one instance. Owned by the instance; freed by destroy (free). */
typedef struct saliency_params {
    bool absolute;
    bool multiply_by_input;
} saliency_params;

static const quac_plugin_descriptor saliency_descriptor = {
    .struct_size = sizeof(quac_plugin_descriptor),
    .id = "org.quac.example.c-saliency",
    .name = "Saliency (C example)",
    .version = "1.0.0",
    .description = "Absolute gradient of the source-class logit with respect to the input",
    .kind = QUAC_KIND_ATTRIBUTOR,
    .flags = 0,
};

/* Checks the batch: x float32 [N, ...] (rank >= 2) and finite; source int64 [N] within the classifier's
 * classes. Fills *info. Errors name the input. [instance] */
static quac_status check_inputs(const quac_host *host, const quac_batch *batch, quac_classifier_info *info) {
    if (batch == NULL) return quac_sdk_fail(host, QUAC_ERR_INTERNAL, "no batch given");
    quac_status status = quac_sdk_check_tensor(host, batch->x, "x", -1, true);
    if (status != QUAC_OK) return status;
    if (batch->x->ndim < 2) {
        return quac_sdk_fail(host, QUAC_ERR_INVALID_ARGUMENT,
                             "x: expected rank >= 2 ([N, sample shape...]), got rank %d", (int)batch->x->ndim);
    }
    status = quac_sdk_check_finite(host, batch->x, "x");
    if (status != QUAC_OK) return status;
    if (batch->source == NULL) {
        return quac_sdk_fail(host, QUAC_ERR_INVALID_ARGUMENT,
                             "source: missing (saliency explains the source class of each query)");
    }

    if (!QUAC_SDK_HAS(host, quac_host, classifier_info) || !QUAC_SDK_HAS(host, quac_host, classifier_vjp)) {
        return quac_sdk_fail(host, QUAC_ERR_UNSUPPORTED, "this host offers no classifier_info/classifier_vjp");
    }
    info->struct_size = sizeof *info;
    status = host->classifier_info(host, info); /* on failure the host has said why */
    if (status != QUAC_OK) return status;
    if (!info->has_vjp) {
        return quac_sdk_fail(host, QUAC_ERR_UNSUPPORTED,
                             "the run's classifier is forward-only; saliency needs its gradient (classifier.vjp)");
    }
    return quac_sdk_check_labels(host, batch->source, "source", batch->x->shape[0], info->num_classes);
}

/* attribution[i] = g, |g|, g*x or |g*x| per the parameters. Buffers are compact and of n floats. */
static void combine(const saliency_params *p, const float *grad, const float *x, float *attribution, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float v = p->multiply_by_input ? grad[i] * x[i] : grad[i];
        attribution[i] = p->absolute ? fabsf(v) : v;
    }
}

/* [instance] The attributor's one function: puts "attribution" (float32, shaped like x). Every tensor
 * this function owns is released on every path; the attribution's ownership moves to the host in
 * put_tensor. */
static quac_status saliency_attribute(const quac_plugin *self, const quac_batch *batch,
                                      const quac_output_sink *out) {
    const quac_host *host = quac_sdk_plugin_host(self);
    const saliency_params *params = self->plugin_data;
    quac_managed_tensor *grad_logits = NULL, *grad_x = NULL, *attribution = NULL;
    quac_classifier_info info = {0};

    quac_status status = check_inputs(host, batch, &info);
    if (status != QUAC_OK) return status;
    const quac_tensor *x = batch->x;
    int64_t n = quac_sdk_numel(x);

    /* grad_logits = one_hot(source): the VJP then returns d f_source(x) / d x for every query. */
    status = quac_sdk_one_hot(host, batch->source, info.num_classes, &grad_logits);
    if (status != QUAC_OK) goto done;
    if (quac_sdk_is_cancelled(host)) {
        status = quac_sdk_cancelled(host);
        goto done;
    }
    quac_sdk_progress(host, 0, 1, "saliency: gradient");
    status = host->classifier_vjp(host, x, &grad_logits->tensor, NULL, &grad_x);
    if (status != QUAC_OK) goto done; /* the host chained the classifier's message */
    status = quac_sdk_check_like(host, &grad_x->tensor, "grad_x", x, "x");
    if (status != QUAC_OK) goto done;

    status = quac_sdk_alloc_like(host, x, &attribution);
    if (status != QUAC_OK) goto done;
    combine(params, quac_sdk_f32(&grad_x->tensor), quac_sdk_f32(x), quac_sdk_f32(&attribution->tensor), n);
    quac_sdk_progress(host, 1, 1, "saliency: gradient");

    status = out->put_tensor(out, "attribution", attribution); /* ownership moves, even on failure */
    attribution = NULL;

done:
    quac_sdk_release(attribution);
    quac_sdk_release(grad_x);
    quac_sdk_release(grad_logits);
    return status;
}

static const quac_attributor saliency_table = {
    .struct_size = sizeof(quac_attributor),
    .attribute = saliency_attribute,
};

static const quac_sdk_extension saliency_extensions[] = {
    {QUAC_KIND_TABLE_ATTRIBUTOR, &saliency_table},
    {NULL, NULL},
};

/* [main-thread] Reads the parameters and makes the instance; the instance owns the parameter struct. */
static quac_status saliency_create(const quac_host *host, const quac_plugin_descriptor *descriptor,
                                   const char *params_json, const quac_plugin **out) {
    saliency_params values = {.absolute = true, .multiply_by_input = false};
    quac_sdk_params *params = quac_sdk_params_parse(host, params_json);
    if (params == NULL) return QUAC_ERR_INVALID_ARGUMENT; /* the reason is set */
    quac_status status = quac_sdk_param_bool(params, "absolute", true, &values.absolute);
    if (status == QUAC_OK) status = quac_sdk_param_bool(params, "multiply_by_input", false, &values.multiply_by_input);
    quac_sdk_params_free(params);
    if (status != QUAC_OK) return status;

    saliency_params *data = malloc(sizeof *data);
    if (data == NULL) return quac_sdk_fail(host, QUAC_ERR_OUT_OF_MEMORY, "out of memory");
    *data = values;
    status = quac_sdk_plugin_new(host, descriptor, saliency_extensions, data, free, out);
    if (status != QUAC_OK) free(data);
    return status;
}

static const quac_sdk_plugin_def saliency_plugins[] = {{&saliency_descriptor, saliency_create}};
static const quac_sdk_simple_factory saliency_factory = QUAC_SDK_SIMPLE_FACTORY(saliency_plugins);
QUAC_SDK_DEFINE_ENTRY(&saliency_factory);
