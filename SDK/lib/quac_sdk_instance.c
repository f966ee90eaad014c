/* Instances: a quac_plugin with an extension list, the instance's host and a destroy that frees both. */
#include "quac_sdk.h"

#include <stdlib.h>
#include <string.h>

/* The instance as allocated; `base` first so a quac_plugin pointer converts back. */
typedef struct sdk_instance {
    quac_plugin base;
    const quac_host *host;                   /* borrowed from the host, valid until destroy */
    const quac_sdk_extension *extensions;    /* static, {NULL, NULL}-terminated; may be NULL */
    void (*free_data)(void *plugin_data);    /* may be NULL */
} sdk_instance;

static const void *instance_get_extension(const quac_plugin *self, const char *id) {
    const sdk_instance *instance = (const sdk_instance *)self;
    if (instance == NULL || id == NULL || instance->extensions == NULL) return NULL;
    for (const quac_sdk_extension *e = instance->extensions; e->id != NULL; e++) {
        if (strcmp(e->id, id) == 0) return e->table;
    }
    return NULL;
}

static void instance_destroy(const quac_plugin *self) {
    sdk_instance *instance = (sdk_instance *)(void *)(uintptr_t)self;
    if (instance == NULL) return;
    if (instance->free_data != NULL) instance->free_data(instance->base.plugin_data);
    free(instance);
}

/* The function-table id a kind must offer, or NULL for a kind this SDK does not know. */
static const char *kind_table_id(quac_plugin_kind kind) {
    switch (kind) {
    case QUAC_KIND_CLASSIFIER: return QUAC_KIND_TABLE_CLASSIFIER;
    case QUAC_KIND_CONVERTER: return QUAC_KIND_TABLE_CONVERTER;
    case QUAC_KIND_ATTRIBUTOR: return QUAC_KIND_TABLE_ATTRIBUTOR;
    case QUAC_KIND_SCORER: return QUAC_KIND_TABLE_SCORER;
    default: return NULL;
    }
}

quac_status quac_sdk_plugin_new(const quac_host *host, const quac_plugin_descriptor *descriptor,
                                const quac_sdk_extension *extensions, void *plugin_data,
                                void (*free_data)(void *plugin_data), const quac_plugin **out) {
    if (out == NULL || descriptor == NULL) {
        return quac_sdk_fail(host, QUAC_ERR_INTERNAL, "quac_sdk_plugin_new: out and descriptor must not be NULL");
    }
    *out = NULL;
    /* A missing kind table is a bug in the plugin; catch it here rather than in the host. */
    const char *table_id = kind_table_id(descriptor->kind);
    bool found = table_id == NULL;
    for (const quac_sdk_extension *e = extensions; !found && e != NULL && e->id != NULL; e++) {
        found = strcmp(e->id, table_id) == 0 && e->table != NULL;
    }
    if (!found) {
        return quac_sdk_fail(host, QUAC_ERR_INTERNAL, "plugin %s offers no \"%s\" function table",
                             descriptor->id ? descriptor->id : "(no id)", table_id);
    }
    sdk_instance *instance = calloc(1, sizeof *instance);
    if (instance == NULL) {
        return quac_sdk_fail(host, QUAC_ERR_OUT_OF_MEMORY, "plugin %s: out of memory creating the instance",
                             descriptor->id ? descriptor->id : "(no id)");
    }
    instance->base.struct_size = (uint32_t)sizeof(quac_plugin);
    instance->base.descriptor = descriptor;
    instance->base.plugin_data = plugin_data;
    instance->base.destroy = instance_destroy;
    instance->base.get_extension = instance_get_extension;
    instance->host = host;
    instance->extensions = extensions;
    instance->free_data = free_data;
    *out = &instance->base;
    return QUAC_OK;
}

const quac_host *quac_sdk_plugin_host(const quac_plugin *self) {
    return self == NULL ? NULL : ((const sdk_instance *)self)->host;
}
