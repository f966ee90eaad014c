/* Test fixture: org.quac.test.legacy-1-0, a well-behaved attributor (zeros shaped like x) built against
 * ABI 1.0's header (quac_plugin_1_0.h, a copy of the header as it was at 1.0). A host of a later 1.x
 * minor version must load and check it like any plugin.
 * Build: cc -shared -fPIC -I<repo>/Sources/PluginAPI/include -o liblegacy_1_0.so legacy_1_0.c */
#include "quac_plugin_1_0.h" /* defines QUAC_PLUGIN_H, so the fixture header's include is a no-op */
#define FIXTURE_ID "org.quac.test.legacy-1-0"
#define FIXTURE_NAME "ABI 1.0 attributor (test fixture)"
#define FIXTURE_SUMMARY "Zeros shaped like x, built against the 1.0 header"
#include "fixture_attributor.h"

#include "zeros_attribute.h"

_Static_assert(QUAC_ABI_VERSION_MINOR == 0, "this fixture must be built against the 1.0 header");
