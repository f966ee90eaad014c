/*
 * bridge_entry.c -- org.quac.python: runs a method written in Python as a quac-host plugin.
 *
 * One descriptor per kind (org.quac.python.attributor, .scorer, .converter, .classifier); each takes
 * the parameters "module" (the .py file), "class" (the class in it), optionally "python_path" (folders
 * put first on sys.path) and "venv" (a virtual environment whose site-packages are used), and passes
 * every other parameter to the class, which declares its kind, parameter schema and requirements
 * (see SDK/python/README.md). Calls hand the method a dict of read-only NumPy views of the batch.
 */
#include "bridge.h"

#include <dlfcn.h>
#include <stdlib.h>

#define DESCRIPTOR(ID, NAME, KIND)                                                                   \
    {.struct_size = sizeof(quac_plugin_descriptor), .id = ID, .name = NAME, .version = "1.0.0",     \
     .description = "Runs a method written in Python (NumPy arrays over the host's memory)",         \
     .kind = KIND, .flags = 0}

static const quac_plugin_descriptor attributor_descriptor =
    DESCRIPTOR("org.quac.python.attributor", "Python attributor", QUAC_KIND_ATTRIBUTOR);
static const quac_plugin_descriptor scorer_descriptor =
    DESCRIPTOR("org.quac.python.scorer", "Python scorer", QUAC_KIND_SCORER);
static const quac_plugin_descriptor converter_descriptor =
    DESCRIPTOR("org.quac.python.converter", "Python converter", QUAC_KIND_CONVERTER);
static const quac_plugin_descriptor classifier_descriptor =
    DESCRIPTOR("org.quac.python.classifier", "Python classifier", QUAC_KIND_CLASSIFIER);

static const char *kind_name(int32_t kind) {
    switch (kind) {
    case QUAC_KIND_ATTRIBUTOR: return "attributor";
    case QUAC_KIND_SCORER: return "scorer";
    case QUAC_KIND_CONVERTER: return "converter";
    default: return "classifier";
    }
}

/* --- Batches: a dict of read-only views; outputs copied into host tensors ----------------------- */

static int set_view(PyObject *dict, const char *key, const quac_tensor *t) {
    PyObject *v = bridge_view(t);
    if (v == NULL) return -1;
    int r = PyDict_SetItemString(dict, key, v);
    Py_DECREF(v);
    return r;
}

#define HAS_FIELD(b, field) ((b)->struct_size >= offsetof(quac_batch, field) + sizeof((b)->field))

static PyObject *batch_dict(const quac_batch *b) {
    PyObject *d = PyDict_New();
    if (d == NULL) return NULL;
    if (set_view(d, "x", b->x) || set_view(d, "source", b->source) || set_view(d, "target", b->target) ||
        set_view(d, "x_cf", b->x_cf) || set_view(d, "attribution", b->attribution) ||
        set_view(d, "reference", b->reference) ||
        set_view(d, "concepts", HAS_FIELD(b, concepts) ? b->concepts : NULL)) goto fail;
    PyObject *seed = PyLong_FromUnsignedLongLong(b->seed);
    if (seed == NULL || PyDict_SetItemString(d, "seed", seed) < 0) { Py_XDECREF(seed); goto fail; }
    Py_DECREF(seed);
    PyObject *maps = PyDict_New();
    if (maps == NULL || PyDict_SetItemString(d, "maps", maps) < 0) { Py_XDECREF(maps); goto fail; }
    Py_DECREF(maps);
    if (HAS_FIELD(b, n_maps)) {
        for (uint64_t i = 0; i < b->n_maps; i++) {
            if (set_view(maps, b->maps[i].name, b->maps[i].tensor)) goto fail;
        }
    }
    const char *mj = HAS_FIELD(b, method_json) ? b->method_json : NULL;
    PyObject *text = mj ? PyUnicode_FromString(mj) : Py_NewRef(Py_None);
    if (text == NULL || PyDict_SetItemString(d, "method_json", text) < 0) { Py_XDECREF(text); goto fail; }
    Py_DECREF(text);
    return d;
fail:
    Py_DECREF(d);
    return NULL;
}

/* A NaN or infinity in output `item` (name, array): the error names the method's file and line and
 * the first bad element. */
static quac_status nonfinite_output(const bridge_instance *inst, PyObject *item) {
    PyObject *msg = PyObject_CallFunctionObjArgs(bridge_support("nonfinite_message"), inst->loaded,
                                                 PyTuple_GetItem(item, 0), PyTuple_GetItem(item, 1), NULL);
    const char *text = msg ? PyUnicode_AsUTF8(msg) : NULL;
    quac_status s = text ? quac_sdk_fail(inst->host, QUAC_ERR_INVALID_ARGUMENT, "python: %s", text)
                         : bridge_fail_from_python(inst->host, inst->loaded);
    Py_XDECREF(msg);
    return s;
}

/* Copies the outputs support.call returned, (tensors, json), into host tensors and puts them: nothing
 * is put unless every tensor is finite. */
static quac_status put_outputs(const bridge_instance *inst, PyObject *result, const quac_output_sink *out) {
    PyObject *tensors = PyTuple_GetItem(result, 0), *json = PyTuple_GetItem(result, 1);
    Py_ssize_t n = PyList_Size(tensors);
    quac_managed_tensor **copies = calloc((size_t)n + 1, sizeof *copies);
    if (copies == NULL) return quac_sdk_fail(inst->host, QUAC_ERR_OUT_OF_MEMORY, "out of memory");
    quac_status status = QUAC_OK;
    Py_ssize_t i = 0;
    for (; i < n && status == QUAC_OK; i++) {
        PyObject *item = PyList_GetItem(tensors, i);
        int nonfinite = 0;
        status = bridge_copy_out(inst->host, (PyArrayObject *)PyTuple_GetItem(item, 1),
                                 PyUnicode_AsUTF8(PyTuple_GetItem(item, 0)), &copies[i], &nonfinite);
        if (status == QUAC_OK && nonfinite) status = nonfinite_output(inst, item);
    }
    for (Py_ssize_t j = 0; j < n; j++) {
        if (copies[j] == NULL) continue;
        if (status == QUAC_OK) {
            const char *name = PyUnicode_AsUTF8(PyTuple_GetItem(PyList_GetItem(tensors, j), 0));
            status = out->put_tensor(out, name, copies[j]); /* ownership moves, even on failure */
        } else {
            quac_sdk_release(copies[j]);
        }
    }
    free(copies);
    if (status != QUAC_OK) return status;
    if (json != Py_None) {
        Py_ssize_t len = 0;
        const char *text = PyUnicode_AsUTF8AndSize(json, &len);
        return out->put_json(out, text, (size_t)len);
    }
    return QUAC_OK;
}

/* attribute, score and convert: the same call with the kind's method. [instance] */
static quac_status run_batch(const quac_plugin *self, const quac_batch *batch, const quac_output_sink *out) {
    const bridge_instance *inst = self->plugin_data;
    const quac_host *host = inst->host;
    if (batch == NULL) return quac_sdk_fail(host, QUAC_ERR_INTERNAL, "no batch given");
    /* The method sees x as float32 [N, ...]; anything else is refused before Python runs. */
    quac_status checked = quac_sdk_check_tensor(host, batch->x, "x", -1, true);
    if (checked != QUAC_OK) return checked;
    if (batch->x->ndim < 1) return quac_sdk_fail(host, QUAC_ERR_INVALID_ARGUMENT, "x: expected [N, sample shape...], got a scalar");
    PyGILState_STATE gil = PyGILState_Ensure();
    quac_status status = QUAC_OK;
    PyObject *d = batch_dict(batch);
    PyObject *result = d ? PyObject_CallFunctionObjArgs(bridge_support("call"), inst->loaded, inst->py_host, d, NULL) : NULL;
    if (result == NULL) status = bridge_fail_from_python(host, inst->loaded);
    else status = put_outputs(inst, result, out);
    Py_XDECREF(result);
    Py_XDECREF(d);
    PyGILState_Release(gil);
    return status;
}

static const quac_attributor attributor_table = {sizeof(quac_attributor), run_batch};
static const quac_scorer scorer_table = {sizeof(quac_scorer), run_batch};
static const quac_converter converter_table = {sizeof(quac_converter), run_batch};

/* --- Classifiers ------------------------------------------------------------------------------------- */

static quac_status classifier_get_info(const quac_plugin *self, quac_classifier_info *out) {
    const bridge_instance *inst = self->plugin_data;
    PyGILState_STATE gil = PyGILState_Ensure();
    quac_status status = QUAC_OK;
    PyObject *info = PyObject_CallOneArg(bridge_support("classifier_info"), inst->loaded);
    if (info == NULL) {
        status = bridge_fail_from_python(inst->host, inst->loaded);
    } else {
        out->num_classes = (int32_t)PyLong_AsLong(PyDict_GetItemString(info, "num_classes"));
        PyObject *shape = PyDict_GetItemString(info, "input_shape");
        out->input_ndim = (int32_t)PyList_Size(shape);
        for (int i = 0; i < out->input_ndim; i++) out->input_shape[i] = PyLong_AsLongLong(PyList_GetItem(shape, i));
        out->has_vjp = PyObject_IsTrue(PyDict_GetItemString(info, "has_vjp")) == 1;
        Py_DECREF(info);
    }
    PyGILState_Release(gil);
    return status;
}

/* support.classifier_call(name) on x (and grad_logits), into a new host tensor. GIL held. */
static quac_status classifier_run(const bridge_instance *inst, const char *name, const quac_tensor *x,
                                  const quac_tensor *grad_logits, quac_managed_tensor **out) {
    /* float32 in, as the method is promised; refused before Python runs. */
    quac_status checked = quac_sdk_check_tensor(inst->host, x, "x", -1, true);
    if (checked == QUAC_OK && grad_logits != NULL) checked = quac_sdk_check_tensor(inst->host, grad_logits, "grad_logits", 2, true);
    if (checked != QUAC_OK) return checked;
    PyObject *xv = bridge_view(x), *gv = grad_logits ? bridge_view(grad_logits) : Py_NewRef(Py_None);
    PyObject *n = PyUnicode_FromString(name);
    PyObject *a = (xv && gv && n) ? PyObject_CallFunctionObjArgs(bridge_support("classifier_call"), inst->loaded, n, xv, gv, NULL) : NULL;
    int nonfinite = 0; /* classifier_call has checked */
    quac_status status = a ? bridge_copy_out(inst->host, (PyArrayObject *)a, name, out, &nonfinite)
                           : bridge_fail_from_python(inst->host, inst->loaded);
    Py_XDECREF(a);
    Py_XDECREF(n);
    Py_XDECREF(gv);
    Py_XDECREF(xv);
    return status;
}

static quac_status classifier_forward(const quac_plugin *self, const quac_tensor *x, quac_managed_tensor **logits) {
    const bridge_instance *inst = self->plugin_data;
    PyGILState_STATE gil = PyGILState_Ensure();
    quac_status status = classifier_run(inst, "forward", x, NULL, logits);
    PyGILState_Release(gil);
    return status;
}

static quac_status classifier_vjp(const quac_plugin *self, const quac_tensor *x, const quac_tensor *grad_logits,
                                  quac_managed_tensor **logits, quac_managed_tensor **grad_x) {
    const bridge_instance *inst = self->plugin_data;
    PyGILState_STATE gil = PyGILState_Ensure();
    quac_status status = classifier_run(inst, "vjp", x, grad_logits, grad_x);
    if (status == QUAC_OK && logits != NULL) {
        status = classifier_run(inst, "forward", x, NULL, logits);
        if (status != QUAC_OK) { quac_sdk_release(*grad_x); *grad_x = NULL; }
    }
    PyGILState_Release(gil);
    return status;
}

static const quac_classifier classifier_table = {sizeof(quac_classifier), classifier_get_info, classifier_forward, classifier_vjp};
static const quac_classifier forward_only_table = {sizeof(quac_classifier), classifier_get_info, classifier_forward, NULL};

static const quac_sdk_extension attributor_ext[] = {{QUAC_KIND_TABLE_ATTRIBUTOR, &attributor_table}, {NULL, NULL}};
static const quac_sdk_extension scorer_ext[] = {{QUAC_KIND_TABLE_SCORER, &scorer_table}, {NULL, NULL}};
static const quac_sdk_extension converter_ext[] = {{QUAC_KIND_TABLE_CONVERTER, &converter_table}, {NULL, NULL}};
static const quac_sdk_extension classifier_ext[] = {{QUAC_KIND_TABLE_CLASSIFIER, &classifier_table}, {NULL, NULL}};
static const quac_sdk_extension forward_only_ext[] = {{QUAC_KIND_TABLE_CLASSIFIER, &forward_only_table}, {NULL, NULL}};

/* --- Instances ------------------------------------------------------------------------------------- */

static void free_instance(void *data) {
    bridge_instance *inst = data;
    PyGILState_STATE gil = PyGILState_Ensure();
    bridge_host_detach(inst->py_host);
    Py_XDECREF(inst->loaded);
    Py_XDECREF(inst->py_host);
    PyGILState_Release(gil);
    free(inst);
}

static quac_status bridge_create(const quac_host *host, const quac_plugin_descriptor *descriptor,
                                 const char *params_json, const quac_plugin **out) {
    quac_status status = bridge_python_start(host);
    if (status != QUAC_OK) return status;
    bridge_instance *inst = calloc(1, sizeof *inst);
    if (inst == NULL) return quac_sdk_fail(host, QUAC_ERR_OUT_OF_MEMORY, "out of memory");
    inst->host = host;
    inst->kind = kind_name(descriptor->kind);

    PyGILState_STATE gil = PyGILState_Ensure();
    int has_vjp = 0;
    inst->py_host = bridge_host_new(host);
    PyObject *kind = PyUnicode_FromString(inst->kind), *params = PyUnicode_FromString(params_json);
    if (inst->py_host && kind && params) {
        inst->loaded = PyObject_CallFunctionObjArgs(bridge_support("load"), kind, params, inst->py_host, NULL);
    }
    if (inst->loaded == NULL) {
        status = bridge_fail_from_python(host, NULL);
    } else if (descriptor->kind == QUAC_KIND_CLASSIFIER) {
        PyObject *obj = PyObject_GetAttrString(inst->loaded, "obj");
        has_vjp = obj != NULL && PyObject_HasAttrString(obj, "vjp");
        Py_XDECREF(obj);
    }
    Py_XDECREF(kind);
    Py_XDECREF(params);
    PyGILState_Release(gil);
    if (status != QUAC_OK) { free_instance(inst); return status; }

    const quac_sdk_extension *ext = attributor_ext;
    switch (descriptor->kind) {
    case QUAC_KIND_SCORER: ext = scorer_ext; break;
    case QUAC_KIND_CONVERTER: ext = converter_ext; break;
    case QUAC_KIND_CLASSIFIER: ext = has_vjp ? classifier_ext : forward_only_ext; break;
    default: break;
    }
    status = quac_sdk_plugin_new(host, descriptor, ext, inst, free_instance, out);
    if (status != QUAC_OK) free_instance(inst);
    return status;
}

/* The library is never unloaded: Python keeps pointers into it (the host type) for the life of the
 * process. */
static quac_status bridge_init(const char *library_path) {
    if (library_path != NULL) dlopen(library_path, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
    return QUAC_OK;
}

static const quac_sdk_plugin_def bridge_plugins[] = {
    {&attributor_descriptor, bridge_create},
    {&scorer_descriptor, bridge_create},
    {&converter_descriptor, bridge_create},
    {&classifier_descriptor, bridge_create},
};
static const quac_sdk_simple_factory bridge_factory = QUAC_SDK_SIMPLE_FACTORY_HOOKS(bridge_plugins, bridge_init, NULL);
QUAC_SDK_DEFINE_ENTRY(&bridge_factory);
