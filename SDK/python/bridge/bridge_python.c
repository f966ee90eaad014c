/*
 * bridge_python.c -- starting the embedded interpreter once per process, the support module compiled
 * into the library, and turning Python exceptions into the call's error message.
 */
#define QUAC_BRIDGE_IMPORTS_NUMPY
#include "bridge.h"

#include <dlfcn.h>
#include <pthread.h>

/* bridge_support.py, embedded at build time (see the Makefile's BRIDGE_SUPPORT) and NUL-terminated. */
__asm__(".section .rodata\n"
        ".balign 16\n"
        "quac_bridge_support_source:\n"
        ".incbin \"" BRIDGE_SUPPORT "\"\n"
        ".byte 0\n"
        ".previous\n");
extern const char quac_bridge_support_source[] __attribute__((visibility("hidden")));

static PyObject *support_module; /* owned for the life of the process */
static int started;              /* guarded by the host: create runs on the main thread */

/* NumPy's C API table; import_array returns NULL from the function it is expanded in on failure. */
static void *import_numpy(void) {
    import_array();
    return (void *)1;
}

/* A Python that is embedded in a library loaded with RTLD_LOCAL cannot load extension modules (NumPy's
 * refer to libpython's symbols without linking it): make libpython's symbols global first. */
static void promote_libpython(void) {
#ifdef QUAC_PYTHON_SONAME
    void *handle = dlopen(QUAC_PYTHON_SONAME, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
    if (handle == NULL) handle = dlopen(QUAC_PYTHON_SONAME, RTLD_NOW | RTLD_GLOBAL);
    (void)handle; /* kept open for the life of the process */
#endif
}

/* The pending exception, normalised, with its traceback attached (PyErr_GetRaisedException is 3.12+).
 * New reference or NULL. */
static PyObject *take_exception(void) {
    PyObject *type = NULL, *value = NULL, *tb = NULL;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL) return NULL;
    PyErr_NormalizeException(&type, &value, &tb);
    if (value != NULL && tb != NULL) PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
}

static quac_status fail_with_python_error(const quac_host *host, const char *what) {
    PyObject *exc = take_exception();
    PyObject *text = exc ? PyObject_Str(exc) : NULL;
    const char *s = text ? PyUnicode_AsUTF8(text) : NULL;
    quac_status status = quac_sdk_fail(host, QUAC_ERR_UNSUPPORTED, "python bridge: %s: %s%s%s", what,
                                       exc ? Py_TYPE(exc)->tp_name : "unknown error", s ? ": " : "", s ? s : "");
    PyErr_Clear();
    Py_XDECREF(text);
    Py_XDECREF(exc);
    return status;
}

quac_status bridge_python_start(const quac_host *host) {
    if (started) return QUAC_OK;
    if (!Py_IsInitialized()) {
        promote_libpython();
        PyConfig config;
        PyConfig_InitPythonConfig(&config); /* honours PYTHONPATH, PYTHONHOME... like python3 does */
        config.install_signal_handlers = 0;  /* Ctrl-C belongs to the host */
        config.parse_argv = 0;
        PyStatus st = Py_InitializeFromConfig(&config);
        PyConfig_Clear(&config);
        if (PyStatus_Exception(st)) {
            return quac_sdk_fail(host, QUAC_ERR_UNSUPPORTED, "python bridge: cannot start Python %s: %s",
                                 PY_VERSION, st.err_msg ? st.err_msg : "unknown error");
        }
    } else {
        PyGILState_Ensure(); /* a host that runs Python itself: take the GIL as our own start did */
    }
    /* This thread holds the GIL here. */
    if (import_numpy() == NULL) {
        quac_status s = fail_with_python_error(host, "cannot import NumPy (install python3-numpy)");
        PyEval_SaveThread();
        return s;
    }
    PyObject *code = Py_CompileString(quac_bridge_support_source, "quac_bridge_support.py", Py_file_input);
    support_module = code ? PyImport_ExecCodeModule("quac_bridge_support", code) : NULL;
    Py_XDECREF(code);
    if (support_module == NULL || bridge_host_ready() != 0) {
        quac_status s = fail_with_python_error(host, "cannot load the bridge's support module");
        PyEval_SaveThread();
        return s;
    }
    started = 1;
    PyEval_SaveThread(); /* the GIL is held only inside Python calls from now on */
    return QUAC_OK;
}

PyObject *bridge_support(const char *name) {
    PyObject *f = PyObject_GetAttrString(support_module, name);
    Py_XDECREF(f); /* the module keeps it alive */
    return f;
}

quac_status bridge_fail_from_python(const quac_host *host, PyObject *loaded) {
    PyObject *exc = take_exception();
    if (exc == NULL) return quac_sdk_fail(host, QUAC_ERR_INTERNAL, "python bridge: a call failed without an exception");
    if (PyErr_GivenExceptionMatches(exc, bridge_host_error)) {
        /* A host service failed and the method let it through: the host's message (which names the
         * callee) stands; return the host's status. */
        PyObject *st = PyObject_GetAttrString(exc, "status");
        long status = st ? PyLong_AsLong(st) : QUAC_ERR_INTERNAL;
        Py_XDECREF(st);
        PyErr_Clear();
        Py_DECREF(exc);
        return status > 0 ? (quac_status)status : QUAC_ERR_INTERNAL;
    }
    quac_status status = QUAC_ERR_INVALID_ARGUMENT;
    if (PyErr_GivenExceptionMatches(exc, PyExc_MemoryError)) status = QUAC_ERR_OUT_OF_MEMORY;
    else if (PyErr_GivenExceptionMatches(exc, PyExc_NotImplementedError)) status = QUAC_ERR_UNSUPPORTED;
    else if (PyErr_GivenExceptionMatches(exc, PyExc_OSError)) status = QUAC_ERR_IO;

    PyObject *module_file = loaded ? PyObject_GetAttrString(loaded, "module_file") : NULL;
    if (module_file == NULL) { PyErr_Clear(); module_file = Py_NewRef(Py_None); }
    PyObject *text = PyObject_CallFunctionObjArgs(bridge_support("format_exception"), exc, module_file, NULL);
    const char *s = text ? PyUnicode_AsUTF8(text) : NULL;
    if (s == NULL) {
        PyErr_Clear();
        quac_sdk_fail(host, status, "python: %s (its message could not be formatted)", Py_TYPE(exc)->tp_name);
    } else {
        quac_sdk_fail(host, status, "python: %s", s);
    }
    Py_XDECREF(text);
    Py_DECREF(module_file);
    Py_DECREF(exc);
    return status;
}
