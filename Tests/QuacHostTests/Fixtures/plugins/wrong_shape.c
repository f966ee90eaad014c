/* Test fixture: attributor org.quac.test.wrong-shape, which puts an "attribution" of shape [N, 1]
 * instead of x's shape [N, ...]. Tests check that the host refuses the output with a message naming the
 * plugin, the output and both shapes.
 * Build: cc -shared -fPIC -I<repo>/Sources/PluginAPI/include -o libwrong_shape.so wrong_shape.c */
#define FIXTURE_ID "org.quac.test.wrong-shape"
#define FIXTURE_NAME "Wrong-shape attributor (test fixture)"
#define FIXTURE_SUMMARY "Puts an attribution of shape [N, 1] instead of the shape of x"
#include "fixture_attributor.h"

/* [instance] Puts an "attribution" of shape [N, 1] (zeros) instead of x's shape. The tensor comes from
 * host->tensor_alloc; its ownership moves to the host in put_tensor. */
static quac_status attribute(const quac_plugin *self, const quac_batch *batch, const quac_output_sink *out) {
    const quac_host *host = self->plugin_data;
    if (batch->x == NULL || batch->x->ndim < 1) {
        host->set_error(host, "x: missing");
        return QUAC_ERR_INVALID_ARGUMENT;
    }
    const int64_t shape[2] = {batch->x->shape[0], 1};
    const quac_dtype f32 = {QUAC_DTYPE_FLOAT, 32, 1};
    quac_managed_tensor *attribution = NULL;
    quac_status status = host->tensor_alloc(host, f32, 2, shape, &attribution);
    if (status != QUAC_OK) return status;
    return out->put_tensor(out, "attribution", attribution);
}
