/* Test fixture: org.quac.test.concurrent-failing, a reentrant attributor (QUAC_PLUGIN_FLAG_REENTRANT)
 * whose attribute() always fails with "failure of the call with seed <seed>", waiting 20 ms between
 * set_error and returning so that concurrent calls interleave. Each call must get its own message.
 * Build: cc -shared -fPIC -I<repo>/Sources/PluginAPI/include -o libconcurrent_failing.so concurrent_failing.c */
#include <stdio.h>
#include <time.h>
#define FIXTURE_ID "org.quac.test.concurrent-failing"
#define FIXTURE_NAME "Concurrently failing attributor (test fixture)"
#define FIXTURE_SUMMARY "Reentrant; every call fails with a message naming its seed"
#define FIXTURE_FLAGS QUAC_PLUGIN_FLAG_REENTRANT
#include "fixture_attributor.h"

static quac_status attribute(const quac_plugin *self, const quac_batch *batch, const quac_output_sink *out) {
    (void)out;
    const quac_host *host = self->plugin_data;
    char message[96];
    snprintf(message, sizeof message, "failure of the call with seed %llu", (unsigned long long)batch->seed);
    host->set_error(host, message);
    const struct timespec wait = {0, 20 * 1000 * 1000};
    nanosleep(&wait, NULL);
    return QUAC_ERR_INVALID_ARGUMENT;
}
