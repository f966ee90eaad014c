/* Test fixture: attributor org.quac.test.wrong-shape, which puts an "attribution" of shape [N, 1]
 * instead of x's shape [N, ...]. Tests check that the host refuses the output with a message naming the
 * plugin, the output and both shapes.
 * Build: cc -shared -fPIC -I<repo>/Sources/PluginAPI/include -o libwrong_shape.so wrong_shape.c */
#include <stdlib.h>
#include <string.h>

#include "quac_plugin.h"

static const quac_plugin_descriptor descriptor = {
    .struct_size = sizeof(quac_plugin_descriptor),
    .id = "org.quac.test.wrong-shape",
    .name = "Wrong-shape attributor (test fixture)",
    .version = "1.0.0",
    .description = "Puts an attribution of shape [N, 1] instead of the shape of x",
    .kind = QUAC_KIND_ATTRIBUTOR,
    .flags = 0,
};

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

static const quac_attributor attributor = {.struct_size = sizeof(quac_attributor), .attribute = attribute};

/* [thread-safe] The attributor table; NULL for any other id. id: borrowed. */
static const void *get_extension(const quac_plugin *self, const char *id) {
    (void)self;
    return id != NULL && strcmp(id, QUAC_KIND_TABLE_ATTRIBUTOR) == 0 ? &attributor : NULL;
}

/* [main-thread] Frees the instance (malloc'd by create). */
static void destroy(const quac_plugin *self) { free((void *)(uintptr_t)self); }

static uint32_t count(const quac_plugin_factory *factory) {
    (void)factory;
    return 1;
}

static const quac_plugin_descriptor *get_descriptor(const quac_plugin_factory *factory, uint32_t index) {
    (void)factory;
    return index == 0 ? &descriptor : NULL;
}

/* [main-thread] A new instance owned by the host; it keeps `host` (valid until destroy). */
static quac_status create(const quac_plugin_factory *factory, const quac_host *host, const char *plugin_id,
                          const char *params_json, const quac_plugin **out) {
    (void)factory;
    (void)params_json;
    *out = NULL;
    if (plugin_id == NULL || strcmp(plugin_id, descriptor.id) != 0) {
        host->set_error(host, "unknown plugin id");
        return QUAC_ERR_INVALID_ARGUMENT;
    }
    quac_plugin *plugin = calloc(1, sizeof *plugin);
    if (plugin == NULL) {
        host->set_error(host, "out of memory");
        return QUAC_ERR_OUT_OF_MEMORY;
    }
    plugin->struct_size = sizeof(quac_plugin);
    plugin->descriptor = &descriptor;
    plugin->plugin_data = (void *)(uintptr_t)host;
    plugin->destroy = destroy;
    plugin->get_extension = get_extension;
    *out = plugin;
    return QUAC_OK;
}

static const quac_plugin_factory factory = {
    .struct_size = sizeof(quac_plugin_factory), .count = count, .get_descriptor = get_descriptor, .create = create};

static quac_status init(const char *library_path) {
    (void)library_path;
    return QUAC_OK;
}

static void deinit(void) {}

static const quac_plugin_entry_v1 entry = {
    .abi_major = QUAC_ABI_VERSION_MAJOR, .abi_minor = QUAC_ABI_VERSION_MINOR,
    .init = init, .deinit = deinit, .factory = &factory};

QUAC_EXPORT const quac_plugin_entry_v1 *quac_plugin_entry(uint32_t host_abi_major, uint32_t host_abi_minor) {
    (void)host_abi_minor;
    return host_abi_major == QUAC_ABI_VERSION_MAJOR ? &entry : NULL;
}
