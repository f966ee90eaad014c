/* Fixture: an attributor whose attribute() dereferences NULL. `plugins check` runs each plugin in a
 * child process and must report this as a failed check, not die with it. */
#include "quac_plugin.h"
#include <stddef.h>
static quac_status attribute(const quac_plugin *self, const quac_batch *b, const quac_output_sink *out) {
    (void)self; (void)out; volatile int *p = NULL; if (b) *p = 1; return QUAC_OK; }
static const quac_attributor table = {sizeof(quac_attributor), attribute};
static const quac_plugin_descriptor desc = {sizeof(quac_plugin_descriptor), "org.quac.test.crashy", "Crashy", "1.0.0", "segfaults", QUAC_KIND_ATTRIBUTOR, 0};
static void destroy(const quac_plugin *p) { (void)p; }
static const void *ext(const quac_plugin *p, const char *id) { (void)p; return id && id[0]=='q' && id[5]=='a' ? &table : NULL; }
static const quac_plugin instance = {sizeof(quac_plugin), &desc, NULL, destroy, ext};
static uint32_t count(const quac_plugin_factory *f) { (void)f; return 1; }
static const quac_plugin_descriptor *get(const quac_plugin_factory *f, uint32_t i) { (void)f; return i == 0 ? &desc : NULL; }
static quac_status create(const quac_plugin_factory *f, const quac_host *h, const char *id, const char *p, const quac_plugin **out) { (void)f;(void)h;(void)id;(void)p; *out = &instance; return QUAC_OK; }
static const quac_plugin_factory factory = {sizeof(quac_plugin_factory), count, get, create};
static const quac_plugin_entry_v1 entry = {1, 0, NULL, NULL, &factory};
QUAC_EXPORT const quac_plugin_entry_v1 *quac_plugin_entry(uint32_t a, uint32_t b) { (void)a; (void)b; return &entry; }
