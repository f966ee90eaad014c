/* Test fixture: a correct attributor (zeros shaped like x) whose descriptor says org.quac.test.other while
 * its manifest says org.quac.test.mismatch. Tests check that loading and `plugins check` report that the
 * library does not offer the manifest's id.
 * Build: cc -shared -fPIC -I<repo>/Sources/PluginAPI/include -o libmismatch_id.so mismatch_id.c */
#define FIXTURE_ID "org.quac.test.other"
#define FIXTURE_NAME "Mismatched-id attributor (test fixture)"
#define FIXTURE_SUMMARY "Its descriptor id differs from its manifest's"
#include "fixture_attributor.h"
#include "zeros_attribute.h"
