/* Test fixture: org.quac.test.concept-echo, an attributor over concepts (ABI 1.1). Each sample's map is
 * filled with the sum of its concepts (batch->concepts, [N, k]); its JSON output is the run's concept
 * names from the host's concepts service (QUAC_HOST_EXT_CONCEPTS). Refuses a batch without concepts.
 * Build: cc -shared -fPIC -I<repo>/Sources/PluginAPI/include -o libconcept_echo.so concept_echo.c */
#include <stddef.h>
#include <stdio.h>
#define FIXTURE_ID "org.quac.test.concept-echo"
#define FIXTURE_NAME "Concept echo (test fixture)"
#define FIXTURE_SUMMARY "Fills each map with the sum of the sample's concepts; reports the concept names"
#include "fixture_attributor.h"

static quac_status attribute(const quac_plugin *self, const quac_batch *batch, const quac_output_sink *out) {
    const quac_host *host = self->plugin_data;
    if (batch->struct_size < offsetof(quac_batch, concepts) + sizeof batch->concepts || batch->concepts == NULL) {
        host->set_error(host, "this explainer needs the samples' concepts, and the run has none");
        return QUAC_ERR_UNSUPPORTED;
    }
    const quac_tensor *c = batch->concepts;
    const quac_dtype f32 = {QUAC_DTYPE_FLOAT, 32, 1};
    quac_managed_tensor *a = NULL;
    quac_status s = host->tensor_alloc(host, f32, batch->x->ndim, batch->x->shape, &a);
    if (s != QUAC_OK) return s;
    int64_t n = batch->x->shape[0], per = 1, k = c->shape[1];
    for (int32_t i = 1; i < batch->x->ndim; i++) per *= batch->x->shape[i];
    const float *cv = (const float *)((const char *)c->data + c->byte_offset);
    float *dst = a->tensor.data;
    for (int64_t i = 0; i < n; i++) {
        float sum = 0;
        for (int64_t j = 0; j < k; j++) sum += cv[i * k + j];
        for (int64_t e = 0; e < per; e++) dst[i * per + e] = sum;
    }
    s = out->put_tensor(out, "attribution", a);
    if (s != QUAC_OK) return s;
    const quac_host_concepts *concepts = NULL;
    if (host->struct_size >= offsetof(quac_host, get_extension) + sizeof host->get_extension)
        concepts = host->get_extension(host, QUAC_HOST_EXT_CONCEPTS);
    const char *names = concepts != NULL ? concepts->names_json(host) : NULL;
    char json[1024];
    int len = snprintf(json, sizeof json, "{\"concept_names\": %s}", names != NULL ? names : "null");
    return out->put_json(out, json, (size_t)len);
}
