/* Test fixture: attributor org.quac.test.misbehaving, which misbehaves in attribute() as the
 * environment variable QUAC_TEST_MISBEHAVE says: "hang" (never returns), "exit0" (ends the process
 * with status 0), "abort", "segv", or "stderr" (writes 700 KB to stderr, then returns zeros like a
 * well-behaved attributor); "create-segv" and "create-hang" do it in create() instead. Unset:
 * well-behaved. The host must survive each (or, for "stderr", not deadlock on the output). */
#define FIXTURE_ID "org.quac.test.misbehaving"
#define FIXTURE_NAME "Misbehaving attributor (test fixture)"
#define FIXTURE_SUMMARY "Hangs, exits, aborts, crashes or floods stderr inside attribute(), as QUAC_TEST_MISBEHAVE says"
static void misbehave_on_create(void);
#define FIXTURE_ON_CREATE misbehave_on_create
#include "fixture_attributor.h"

#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static void misbehave_on_create(void) {
    const char *mode = getenv("QUAC_TEST_MISBEHAVE");
    if (mode != NULL && strcmp(mode, "create-hang") == 0) {
        for (;;) pause();
    } else if (mode != NULL && strcmp(mode, "create-segv") == 0) {
        /* A real fault (raise() would let a handler that returns resume the call). */
        *(volatile int *)NULL = 1;
    }
}

#define attribute zeros_attribute
#include "zeros_attribute.h"
#undef attribute

static quac_status attribute(const quac_plugin *self, const quac_batch *batch, const quac_output_sink *out) {
    const char *mode = getenv("QUAC_TEST_MISBEHAVE");
    if (mode != NULL && strcmp(mode, "hang") == 0) {
        for (;;) pause();
    } else if (mode != NULL && strcmp(mode, "exit0") == 0) {
        exit(0);
    } else if (mode != NULL && strcmp(mode, "abort") == 0) {
        abort();
    } else if (mode != NULL && strcmp(mode, "segv") == 0) {
        raise(SIGSEGV);
    } else if (mode != NULL && strcmp(mode, "stderr") == 0) {
        static char line[1024];
        memset(line, 'x', sizeof line - 1);
        line[sizeof line - 2] = '\n';
        for (int i = 0; i < 700; i++) fputs(line, stderr);
    }
    return zeros_attribute(self, batch, out);
}
