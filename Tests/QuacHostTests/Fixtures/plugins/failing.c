/* Test fixture: attributor org.quac.test.failing, whose attribute() always fails with QUAC_ERR_IO and
 * the message "deliberate failure: the model file is corrupt". Loading, creating and destroying it
 * succeed, so tests see the host report a plugin's own error (status and message) and carry on.
 * Build: cc -shared -fPIC -I<repo>/Sources/PluginAPI/include -o libfailing.so failing.c */
#define FIXTURE_ID "org.quac.test.failing"
#define FIXTURE_NAME "Failing attributor (test fixture)"
#define FIXTURE_SUMMARY "Fails every attribute() call with QUAC_ERR_IO"
#include "fixture_attributor.h"

/* [instance] Gives the reason through the instance's host (kept in plugin_data) and fails. */
static quac_status attribute(const quac_plugin *self, const quac_batch *batch, const quac_output_sink *out) {
    (void)batch;
    (void)out;
    const quac_host *host = self->plugin_data;
    host->set_error(host, "deliberate failure: the model file is corrupt");
    return QUAC_ERR_IO;
}
