/*
 * bridge_host.c -- the `host` object a Python method receives: the host's services as methods taking
 * and returning NumPy arrays. Arrays go to the host without a copy when they are already C-contiguous
 * float32; the host's results come back as arrays that own the host's tensors. The GIL is released
 * for the duration of every call into the host (the classifier may itself be a Python plugin).
 */
#include "bridge.h"

PyObject *bridge_host_error;

typedef struct {
    PyObject_HEAD
    const quac_host *host;
} HostObject;

static int gone(HostObject *self) {
    if (self->host != NULL) return 0;
    PyErr_SetString(PyExc_RuntimeError, "host: the plugin instance this host belonged to was destroyed");
    return 1;
}

/* Raises HostError for a failed host call; the host has already recorded the reason. */
static PyObject *host_failed(const char *service, quac_status status) {
    PyObject *msg = PyUnicode_FromFormat("host.%s failed: %s (the host's message says why)", service,
                                         quac_sdk_status_name(status));
    PyObject *exc = msg ? PyObject_CallOneArg(bridge_host_error, msg) : NULL;
    Py_XDECREF(msg);
    if (exc != NULL) {
        PyObject *st = PyLong_FromLong(status);
        PyObject_SetAttrString(exc, "status", st);
        Py_XDECREF(st);
        PyErr_SetObject(bridge_host_error, exc);
        Py_DECREF(exc);
    }
    return NULL;
}

static PyObject *host_classifier_info(HostObject *self, PyObject *Py_UNUSED(args)) {
    if (gone(self)) return NULL;
    quac_classifier_info info = {0};
    info.struct_size = sizeof info;
    quac_status status;
    Py_BEGIN_ALLOW_THREADS
    status = self->host->classifier_info(self->host, &info);
    Py_END_ALLOW_THREADS
    if (status != QUAC_OK) return host_failed("classifier_info", status);
    PyObject *shape = PyList_New(0);
    for (int i = 0; shape != NULL && i < info.input_ndim && i < 4; i++) {
        PyObject *d = PyLong_FromLongLong(info.input_shape[i]);
        PyList_Append(shape, d);
        Py_XDECREF(d);
    }
    PyObject *r = Py_BuildValue("{s:i,s:N,s:O}", "num_classes", (int)info.num_classes, "input_shape", shape,
                                "has_vjp", info.has_vjp ? Py_True : Py_False);
    return r;
}

/* x (and grad_logits...) as borrowed float32 tensors, kept alive in keep[]. */
typedef struct {
    quac_tensor t;
    int64_t shape[8];
    PyObject *keep;
} arg_tensor;

static int arg(PyObject *obj, const char *what, arg_tensor *a, int float_only) {
    a->keep = NULL;
    if (obj == NULL || obj == Py_None) return 1; /* absent */
    return bridge_describe(obj, float_only, what, &a->t, a->shape, &a->keep) == 0 ? 0 : -1;
}

/* A required array: None is a TypeError naming the argument (arg() calls it absent). */
static int required(PyObject *obj, const char *what, arg_tensor *a) {
    int r = arg(obj, what, a, 1);
    if (r == 1) PyErr_Format(PyExc_TypeError, "%s: an array is required, not None", what);
    return r == 0 ? 0 : -1;
}

static PyObject *host_forward(HostObject *self, PyObject *args, PyObject *kw) {
    if (gone(self)) return NULL;
    static char *names[] = {"x", NULL};
    PyObject *x_obj;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O:forward", names, &x_obj)) return NULL;
    arg_tensor x;
    if (required(x_obj, "x", &x) != 0) return NULL;
    quac_managed_tensor *logits = NULL;
    quac_status status;
    Py_BEGIN_ALLOW_THREADS
    status = self->host->classifier_forward(self->host, &x.t, &logits);
    Py_END_ALLOW_THREADS
    Py_DECREF(x.keep);
    if (status != QUAC_OK) return host_failed("forward", status);
    return bridge_adopt(logits);
}

static PyObject *host_vjp(HostObject *self, PyObject *args, PyObject *kw) {
    if (gone(self)) return NULL;
    static char *names[] = {"x", "grad_logits", "return_logits", NULL};
    PyObject *x_obj, *g_obj;
    int want_logits = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|p:vjp", names, &x_obj, &g_obj, &want_logits)) return NULL;
    arg_tensor x, g;
    if (required(x_obj, "x", &x) != 0) return NULL;
    if (required(g_obj, "grad_logits", &g) != 0) { Py_DECREF(x.keep); return NULL; }
    quac_managed_tensor *logits = NULL, *grad = NULL;
    quac_status status;
    Py_BEGIN_ALLOW_THREADS
    status = self->host->classifier_vjp(self->host, &x.t, &g.t, want_logits ? &logits : NULL, &grad);
    Py_END_ALLOW_THREADS
    Py_DECREF(x.keep);
    Py_DECREF(g.keep);
    if (status != QUAC_OK) return host_failed("vjp", status);
    PyObject *grad_a = bridge_adopt(grad);
    if (!want_logits) return grad_a;
    PyObject *logits_a = bridge_adopt(logits);
    if (grad_a == NULL || logits_a == NULL) { Py_XDECREF(grad_a); Py_XDECREF(logits_a); return NULL; }
    return Py_BuildValue("(NN)", logits_a, grad_a);
}

static PyObject *host_vjp_rule(HostObject *self, PyObject *args, PyObject *kw) {
    if (gone(self)) return NULL;
    static char *names[] = {"rule", "x", "grad_logits", "baseline", NULL};
    const char *rule_name;
    PyObject *x_obj, *g_obj, *b_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "sOO|O:vjp_rule", names, &rule_name, &x_obj, &g_obj, &b_obj)) return NULL;
    quac_backward_rule rule;
    if (strcmp(rule_name, "deeplift") == 0) rule = QUAC_RULE_DEEPLIFT_RESCALE;
    else if (strcmp(rule_name, "guided_backprop") == 0) rule = QUAC_RULE_GUIDED_BACKPROP;
    else return PyErr_Format(PyExc_ValueError, "vjp_rule: unknown rule \"%s\" (deeplift, guided_backprop)", rule_name);
    arg_tensor x, g, b;
    if (required(x_obj, "x", &x) != 0) return NULL;
    if (required(g_obj, "grad_logits", &g) != 0) { Py_DECREF(x.keep); return NULL; }
    int has_b = arg(b_obj, "baseline", &b, 1);
    if (has_b < 0) { Py_DECREF(x.keep); Py_DECREF(g.keep); return NULL; }
    quac_managed_tensor *grad = NULL;
    quac_status status;
    Py_BEGIN_ALLOW_THREADS
    status = self->host->classifier_vjp_rule(self->host, rule, &x.t, has_b == 0 ? &b.t : NULL, &g.t, &grad);
    Py_END_ALLOW_THREADS
    Py_DECREF(x.keep);
    Py_DECREF(g.keep);
    Py_XDECREF(b.keep);
    if (status != QUAC_OK) return host_failed("vjp_rule", status);
    return bridge_adopt(grad);
}

static PyObject *host_convert(HostObject *self, PyObject *args, PyObject *kw) {
    if (gone(self)) return NULL;
    static char *names[] = {"x", "target", "reference", "seed", NULL};
    PyObject *x_obj, *t_obj, *r_obj = Py_None;
    unsigned long long seed = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|OK:convert", names, &x_obj, &t_obj, &r_obj, &seed)) return NULL;
    arg_tensor x, t, r;
    if (required(x_obj, "x", &x) != 0) return NULL;
    PyObject *t64 = PyArray_FROMANY(t_obj, NPY_INT64, 1, 1, NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED);
    if (t64 == NULL || arg(t64, "target", &t, 0) != 0) { Py_XDECREF(t64); Py_DECREF(x.keep); return NULL; }
    Py_DECREF(t64);
    int has_r = arg(r_obj, "reference", &r, 1);
    if (has_r < 0) { Py_DECREF(x.keep); Py_DECREF(t.keep); return NULL; }
    quac_managed_tensor *cf = NULL;
    quac_status status;
    Py_BEGIN_ALLOW_THREADS
    status = self->host->converter_convert(self->host, &x.t, &t.t, has_r == 0 ? &r.t : NULL, (uint64_t)seed, &cf);
    Py_END_ALLOW_THREADS
    Py_DECREF(x.keep);
    Py_DECREF(t.keep);
    Py_XDECREF(r.keep);
    if (status != QUAC_OK) return host_failed("convert", status);
    return bridge_adopt(cf);
}

static PyObject *host_log(HostObject *self, PyObject *args, PyObject *kw) {
    if (gone(self)) return NULL;
    static char *names[] = {"message", "level", NULL};
    const char *message, *level = "info";
    if (!PyArg_ParseTupleAndKeywords(args, kw, "s|s:log", names, &message, &level)) return NULL;
    quac_log_level l = QUAC_LOG_INFO;
    if (strcmp(level, "debug") == 0) l = QUAC_LOG_DEBUG;
    else if (strcmp(level, "warning") == 0) l = QUAC_LOG_WARNING;
    else if (strcmp(level, "error") == 0) l = QUAC_LOG_ERROR;
    else if (strcmp(level, "info") != 0) return PyErr_Format(PyExc_ValueError, "log: unknown level \"%s\" (debug, info, warning, error)", level);
    self->host->log(self->host, l, message);
    Py_RETURN_NONE;
}

static PyObject *host_progress(HostObject *self, PyObject *args, PyObject *kw) {
    if (gone(self)) return NULL;
    static char *names[] = {"done", "total", "label", NULL};
    long long done, total;
    const char *label = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "LL|z:progress", names, &done, &total, &label)) return NULL;
    self->host->progress(self->host, done, total, label);
    Py_RETURN_NONE;
}

static PyObject *host_cancelled(HostObject *self, PyObject *Py_UNUSED(args)) {
    if (gone(self)) return NULL;
    return PyBool_FromLong(self->host->is_cancelled(self->host));
}

static PyMethodDef host_methods[] = {
    {"classifier_info", (PyCFunction)host_classifier_info, METH_NOARGS,
     "The run's classifier: {'num_classes', 'input_shape', 'has_vjp'}."},
    {"forward", (PyCFunction)(void (*)(void))host_forward, METH_VARARGS | METH_KEYWORDS,
     "forward(x) -> logits [N, classes] of the run's classifier."},
    {"vjp", (PyCFunction)(void (*)(void))host_vjp, METH_VARARGS | METH_KEYWORDS,
     "vjp(x, grad_logits, return_logits=False) -> grad_x (or (logits, grad_x))."},
    {"vjp_rule", (PyCFunction)(void (*)(void))host_vjp_rule, METH_VARARGS | METH_KEYWORDS,
     "vjp_rule(rule, x, grad_logits, baseline=None): rule 'deeplift' or 'guided_backprop'."},
    {"convert", (PyCFunction)(void (*)(void))host_convert, METH_VARARGS | METH_KEYWORDS,
     "convert(x, target, reference=None, seed=0) -> counterfactuals shaped like x."},
    {"log", (PyCFunction)(void (*)(void))host_log, METH_VARARGS | METH_KEYWORDS,
     "log(message, level='info'): one line in the host's log."},
    {"progress", (PyCFunction)(void (*)(void))host_progress, METH_VARARGS | METH_KEYWORDS,
     "progress(done, total, label=None)."},
    {"cancelled", (PyCFunction)host_cancelled, METH_NOARGS, "True once the user asked to stop."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject HostType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "quac_bridge.Host",
    .tp_basicsize = sizeof(HostObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The quac-host services of one plugin instance.",
    .tp_methods = host_methods,
};

int bridge_host_ready(void) {
    bridge_host_error = PyErr_NewException("quac_bridge.HostError", PyExc_RuntimeError, NULL);
    if (bridge_host_error == NULL || PyType_Ready(&HostType) < 0) return -1;
    /* host.Error: what a method catches to handle a failed host call itself. */
    if (PyDict_SetItemString(HostType.tp_dict, "Error", bridge_host_error) < 0) return -1;
    PyType_Modified(&HostType);
    return 0;
}

void bridge_host_detach(PyObject *host) {
    if (host != NULL) ((HostObject *)host)->host = NULL;
}

PyObject *bridge_host_new(const quac_host *host) {
    HostObject *o = PyObject_New(HostObject, &HostType);
    if (o != NULL) o->host = host;
    return (PyObject *)o;
}
