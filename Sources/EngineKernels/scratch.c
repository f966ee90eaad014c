// Per-thread scratch buffers that outlive a call: see isa.h.
#define _GNU_SOURCE
#include "isa.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>

typedef struct {
    float *data[EK_SCRATCH_SLOTS];
    size_t count[EK_SCRATCH_SLOTS];
} ek_scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p) {
    ek_scratch *s = p;
    for (int i = 0; i < EK_SCRATCH_SLOTS; i++) free(s->data[i]);
    free(s);
}

static void scratch_init(void) {
    pthread_key_create(&scratch_key, scratch_free);
    // Threads that outlive this code run scratch_free when they end, so the library holding it must
    // never be unloaded: pin it (a plugin's dlclose would otherwise leave them a dangling destructor).
    Dl_info info;
    if (dladdr((void *)scratch_free, &info) && info.dli_fname)
        dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

float *ek_thread_scratch(int slot, size_t count) {
    pthread_once(&scratch_once, scratch_init);
    ek_scratch *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || pthread_setspecific(scratch_key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    if (s->count[slot] < count) {
        free(s->data[slot]);
        s->data[slot] = malloc(count * sizeof(float));
        s->count[slot] = s->data[slot] ? count : 0;
    }
    return s->data[slot];
}
