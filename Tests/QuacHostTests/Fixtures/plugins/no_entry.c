/* Test fixture: a shared library that loads fine but does not export quac_plugin_entry (manifest id
 * org.quac.test.no-entry). It exports another function, so the library is not empty. Tests check that
 * the host reports the missing symbol, naming the library and "quac_plugin_entry".
 * Build: cc -shared -fPIC -I<repo>/Sources/PluginAPI/include -o libno_entry.so no_entry.c */
#include <stdint.h>

#include "quac_plugin.h"

/* An exported function that is not the entry point (a near miss of its name). */
QUAC_EXPORT uint32_t quac_plugin_entry_missing(void) { return 42; }
