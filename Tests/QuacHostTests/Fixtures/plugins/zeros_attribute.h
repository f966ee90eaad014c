/* A well-behaved attribute(): zeros shaped like a float32 x, from host->tensor_alloc (zero-filled);
 * ownership of the tensor moves to the host in put_tensor. Shared by fixtures that fail elsewhere. */
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
