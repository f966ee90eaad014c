/* Test fixture: attributor org.quac.test.duplicate-output, which puts "attribution" twice and returns
 * the second put_tensor's status without calling set_error, as the header allows: the host reports
 * such sink violations itself.
 * Build: cc -shared -fPIC -I<repo>/Sources/PluginAPI/include -o libduplicate_output.so duplicate_output.c */
#define FIXTURE_ID "org.quac.test.duplicate-output"
#define FIXTURE_NAME "Duplicate-output attributor (test fixture)"
#define FIXTURE_SUMMARY "Puts the attribution twice and returns put_tensor's status"
#include "fixture_attributor.h"

static quac_status zeros_like_x(const quac_host *host, const quac_batch *batch, quac_managed_tensor **out) {
    const quac_dtype f32 = {QUAC_DTYPE_FLOAT, 32, 1};
    return host->tensor_alloc(host, f32, batch->x->ndim, batch->x->shape, out);
}

/* [instance] Two puts under one name; the second fails with QUAC_ERR_INVALID_ARGUMENT, returned as is. */
static quac_status attribute(const quac_plugin *self, const quac_batch *batch, const quac_output_sink *out) {
    const quac_host *host = self->plugin_data;
    quac_managed_tensor *first = NULL, *second = NULL;
    quac_status status = zeros_like_x(host, batch, &first);
    if (status != QUAC_OK) return status;
    status = out->put_tensor(out, "attribution", first);
    if (status != QUAC_OK) return status;
    status = zeros_like_x(host, batch, &second);
    if (status != QUAC_OK) return status;
    return out->put_tensor(out, "attribution", second);
}
