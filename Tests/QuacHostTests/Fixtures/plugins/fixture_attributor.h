/* The shared body of the single-attributor test fixtures. A fixture defines FIXTURE_ID (the id its
 * descriptor claims), FIXTURE_NAME, FIXTURE_SUMMARY and
 *     static quac_status attribute(const quac_plugin *, const quac_batch *, const quac_output_sink *);
 * then includes this file, which adds the descriptor, the instance (plugin_data keeps the host), the
 * factory and the exported entry. FIXTURE_ON_CREATE names a function create() calls first. FIXTURE_ENTRY_ABI_MAJOR makes the entry claim another ABI major
 * version (and answer whatever the host asks); FIXTURE_FLAGS sets the descriptor's flags (default 0).
 * Only the ABI header is used: no SDK, no json-c. */
#ifndef FIXTURE_ATTRIBUTOR_H
#define FIXTURE_ATTRIBUTOR_H

#include <stdlib.h>
#include <string.h>

#include "quac_plugin.h"

static quac_status attribute(const quac_plugin *self, const quac_batch *batch, const quac_output_sink *out);

#ifndef FIXTURE_FLAGS
#define FIXTURE_FLAGS 0
#endif

static const quac_plugin_descriptor descriptor = {
    .struct_size = sizeof(quac_plugin_descriptor),
    .id = FIXTURE_ID,
    .name = FIXTURE_NAME,
    .version = "1.0.0",
    .description = FIXTURE_SUMMARY,
    .kind = QUAC_KIND_ATTRIBUTOR,
    .flags = FIXTURE_FLAGS,
};

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
#ifdef FIXTURE_ON_CREATE
    FIXTURE_ON_CREATE();
#endif
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

#ifdef FIXTURE_ENTRY_ABI_MAJOR
static const quac_plugin_entry_v1 entry = {
    .abi_major = FIXTURE_ENTRY_ABI_MAJOR, .abi_minor = 0, .init = NULL, .deinit = NULL, .factory = &factory};

QUAC_EXPORT const quac_plugin_entry_v1 *quac_plugin_entry(uint32_t host_abi_major, uint32_t host_abi_minor) {
    (void)host_abi_major;
    (void)host_abi_minor;
    return &entry;
}
#else
static const quac_plugin_entry_v1 entry = {
    .abi_major = QUAC_ABI_VERSION_MAJOR, .abi_minor = QUAC_ABI_VERSION_MINOR, .init = NULL, .deinit = NULL,
    .factory = &factory};

QUAC_EXPORT const quac_plugin_entry_v1 *quac_plugin_entry(uint32_t host_abi_major, uint32_t host_abi_minor) {
    (void)host_abi_minor;
    return host_abi_major == QUAC_ABI_VERSION_MAJOR ? &entry : NULL;
}
#endif

#endif /* FIXTURE_ATTRIBUTOR_H */
