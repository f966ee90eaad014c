/* The simple factory: a quac_plugin_factory over a static array of (descriptor, create) pairs. */
#include "quac_sdk.h"

#include <stdio.h>
#include <string.h>

static const quac_sdk_simple_factory *simple(const quac_plugin_factory *factory) {
    return (const quac_sdk_simple_factory *)factory; /* `base` is the first member */
}

uint32_t quac_sdk_simple_count(const quac_plugin_factory *factory) {
    return factory == NULL ? 0 : simple(factory)->count;
}

const quac_plugin_descriptor *quac_sdk_simple_get_descriptor(const quac_plugin_factory *factory, uint32_t index) {
    if (factory == NULL || index >= simple(factory)->count) return NULL;
    return simple(factory)->plugins[index].descriptor;
}

/* "a, b, c" -- the ids on offer, for the unknown-id message; cut with "..." when long. */
static const char *offered_ids(const quac_sdk_simple_factory *f, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < f->count && used < size; i++) {
        const char *id = f->plugins[i].descriptor ? f->plugins[i].descriptor->id : NULL;
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "", id ? id : "(no id)");
    }
    if (used >= size && size >= 4) memcpy(buf + size - 4, "...", 4);
    return buf;
}

quac_status quac_sdk_simple_create(const quac_plugin_factory *factory, const quac_host *host,
                                   const char *plugin_id, const char *params_json, const quac_plugin **out) {
    if (out == NULL) return quac_sdk_fail(host, QUAC_ERR_INTERNAL, "factory create: out is NULL");
    *out = NULL;
    if (factory == NULL) return quac_sdk_fail(host, QUAC_ERR_INTERNAL, "factory create: factory is NULL");
    if (plugin_id == NULL) return quac_sdk_fail(host, QUAC_ERR_INVALID_ARGUMENT, "factory create: no plugin id");
    const quac_sdk_simple_factory *f = simple(factory);
    for (uint32_t i = 0; i < f->count; i++) {
        const quac_sdk_plugin_def *def = &f->plugins[i];
        if (def->descriptor == NULL || def->descriptor->id == NULL || strcmp(def->descriptor->id, plugin_id) != 0) {
            continue;
        }
        if (def->create == NULL) {
            return quac_sdk_fail(host, QUAC_ERR_INTERNAL, "plugin %s has no create function", plugin_id);
        }
        quac_status status = def->create(host, def->descriptor, params_json, out);
        if (status == QUAC_OK && *out == NULL) {
            return quac_sdk_fail(host, QUAC_ERR_INTERNAL, "plugin %s: create succeeded but made no instance",
                                 plugin_id);
        }
        return status;
    }
    char ids[256];
    return quac_sdk_fail(host, QUAC_ERR_INVALID_ARGUMENT, "unknown plugin id \"%s\"; this library offers: %s",
                         plugin_id, offered_ids(f, ids, sizeof ids));
}

quac_status quac_sdk_simple_init(const quac_sdk_simple_factory *factory, const char *library_path) {
    if (factory == NULL || factory->init == NULL) return QUAC_OK;
    return factory->init(library_path);
}

void quac_sdk_simple_deinit(const quac_sdk_simple_factory *factory) {
    if (factory != NULL && factory->deinit != NULL) factory->deinit();
}
