/*
 * bridge.h -- the parts of the org.quac.python bridge plugin, shared between its files.
 *
 * The bridge embeds CPython (one interpreter per process, started by the first instance and never
 * finalised: NumPy cannot be re-initialised). The GIL is held only while Python runs: every entry from
 * the host takes it with PyGILState_Ensure and gives it back before returning, and every call back into
 * the host from Python releases it for the duration of the host call.
 */
#ifndef QUAC_PYTHON_BRIDGE_H
#define QUAC_PYTHON_BRIDGE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL quac_bridge_numpy_api
#ifndef QUAC_BRIDGE_IMPORTS_NUMPY
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include "quac_sdk.h"

/* One instance: the Python object that runs the method (bridge_support.Loaded) and the host. */
typedef struct bridge_instance {
    const quac_host *host;
    PyObject *loaded;   /* owned */
    PyObject *py_host;  /* owned: the `host` object the method was given */
    const char *kind;   /* "attributor", "scorer", "converter", "classifier" (static) */
} bridge_instance;

/* bridge_python.c */
/* [main-thread] Starts the interpreter and imports NumPy and the support module once per process.
 * Returns QUAC_OK with the GIL released, or fails with the reason set on `host`. */
quac_status bridge_python_start(const quac_host *host);
/* The support module's function `name` (borrowed). GIL held. */
PyObject *bridge_support(const char *name);
/* Turns the pending Python exception into the call's error: a method's own exception becomes
 * "Type: message (at file:line)", a host call that failed keeps the host's message. Returns the status
 * to return. GIL held. */
quac_status bridge_fail_from_python(const quac_host *host, PyObject *loaded);

/* bridge_arrays.c (GIL held) */
/* A read-only NumPy view of a borrowed host tensor (no copy), or Py_None for NULL. New reference, NULL
 * with a Python exception set. */
PyObject *bridge_view(const quac_tensor *t);
/* An array that owns a managed tensor the host handed us (its deleter runs when the array dies).
 * Ownership of `t` moves to the array, even on failure. */
PyObject *bridge_adopt(quac_managed_tensor *t);
/* A borrowed quac_tensor describing a C-contiguous float32 or int64 array; *keep holds the array the
 * tensor points into until the caller drops it. shape must hold 8 entries. */
int bridge_describe(PyObject *obj, int float_only, const char *what, quac_tensor *out, int64_t *shape,
                    PyObject **keep);
/* Copies a C-contiguous float32 or int64 array into a new host tensor (the one copy of an output);
 * *nonfinite tells whether a float was NaN or infinite. Sets the host's error on failure. */
quac_status bridge_copy_out(const quac_host *host, PyArrayObject *a, const char *name, quac_managed_tensor **out,
                            int *nonfinite);

/* bridge_host.c (GIL held) */
/* The `host` object methods call: forward, vjp, vjp_rule, convert, log, progress, cancelled,
 * classifier_info. New reference. */
PyObject *bridge_host_new(const quac_host *host);
/* Makes later calls on `host` raise instead of reaching a destroyed instance's host. */
void bridge_host_detach(PyObject *host);
int bridge_host_ready(void); /* readies the type; 0 on success */
/* The exception a failed host service raises; the host has already recorded why. */
extern PyObject *bridge_host_error;

#endif
