/* Test fixture: a library built for a future ABI: quac_plugin_entry returns an entry whose abi_major is 2
 * whatever the host asks (id org.quac.test.future, an attributor putting zeros shaped like x). Tests check
 * that the host refuses it with a message naming both versions, before calling anything else.
 * Build: cc -shared -fPIC -I<repo>/Sources/PluginAPI/include -o libabi_major_mismatch.so abi_major_mismatch.c */
#define FIXTURE_ID "org.quac.test.future"
#define FIXTURE_NAME "Future-ABI attributor (test fixture)"
#define FIXTURE_SUMMARY "Built for plugin ABI 2.0"
#define FIXTURE_ENTRY_ABI_MAJOR 2
#include "fixture_attributor.h"
#include "zeros_attribute.h"
