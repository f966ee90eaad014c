/* Test fixture: org.quac.test.legacy-1-0, a well-behaved attributor (zeros shaped like x) built against
 * ABI 1.0's header (quac_plugin_1_0.h, a copy of the header as it was at 1.0). A host of a later 1.x
 * minor version must load and check it like any plugin.
 * Build: cc -shared -fPIC -I<repo>/Sources/PluginAPI/include -o liblegacy_1_0.so legacy_1_0.c */
#include "quac_plugin_1_0.h" /* defines QUAC_PLUGIN_H, so the fixture header's include is a no-op */
#define FIXTURE_ID "org.quac.test.legacy-1-0"
#define FIXTURE_NAME "ABI 1.0 attributor (test fixture)"
#define FIXTURE_SUMMARY "Zeros shaped like x, built against the 1.0 header"
#include "fixture_attributor.h"

/* [instance] Zeros shaped like x, for float32 x. */
static quac_status attribute(const quac_plugin *self, const quac_batch *batch, const quac_output_sink *out) {
    const quac_host *host = self->plugin_data;
    if (batch->x == NULL || batch->x->dtype.code != QUAC_DTYPE_FLOAT || batch->x->dtype.bits != 32) {
        host->set_error(host, "x: expected float32");
        return QUAC_ERR_INVALID_ARGUMENT;
    }
    const quac_dtype f32 = {QUAC_DTYPE_FLOAT, 32, 1};
    quac_managed_tensor *attribution = NULL;
    quac_status status = host->tensor_alloc(host, f32, batch->x->ndim, batch->x->shape, &attribution);
    if (status != QUAC_OK) return status;
    return out->put_tensor(out, "attribution", attribution);
}

_Static_assert(QUAC_ABI_VERSION_MINOR == 0, "this fixture must be built against the 1.0 header");
