/*
 * bridge_arrays.c -- host tensors as NumPy arrays and back. Inputs are read-only views of the host's
 * memory (no copy); tensors the host returns become arrays that own them; outputs are copied once into
 * tensors the host allocates.
 */
#include "bridge.h"

#include <string.h>

static int npy_type_of(quac_dtype d) {
    if (d.lanes != 1) return -1;
    if (d.code == QUAC_DTYPE_FLOAT && d.bits == 32) return NPY_FLOAT32;
    if (d.code == QUAC_DTYPE_FLOAT && d.bits == 64) return NPY_FLOAT64;
    if (d.code == QUAC_DTYPE_INT && d.bits == 64) return NPY_INT64;
    if (d.code == QUAC_DTYPE_INT && d.bits == 32) return NPY_INT32;
    if (d.code == QUAC_DTYPE_UINT && d.bits == 8) return NPY_UINT8;
    if (d.code == QUAC_DTYPE_BOOL && d.bits == 8) return NPY_BOOL;
    return -1;
}

/* An array over t's bytes: strides converted from elements to bytes. */
static PyObject *array_over(const quac_tensor *t, int writeable) {
    int type = npy_type_of(t->dtype);
    if (type < 0) {
        PyErr_Format(PyExc_TypeError, "tensor dtype (code %d, bits %d, lanes %d) has no NumPy type",
                     t->dtype.code, t->dtype.bits, t->dtype.lanes);
        return NULL;
    }
    if (t->ndim < 0 || t->ndim > NPY_MAXDIMS) {
        PyErr_Format(PyExc_ValueError, "tensor rank %d out of range", (int)t->ndim);
        return NULL;
    }
    npy_intp dims[NPY_MAXDIMS], strides[NPY_MAXDIMS];
    npy_intp item = t->dtype.bits / 8;
    for (int i = 0; i < t->ndim; i++) dims[i] = (npy_intp)t->shape[i];
    if (t->strides != NULL) {
        for (int i = 0; i < t->ndim; i++) strides[i] = (npy_intp)t->strides[i] * item;
    } else {
        npy_intp s = item;
        for (int i = t->ndim - 1; i >= 0; i--) { strides[i] = s; s *= dims[i] > 0 ? dims[i] : 1; }
    }
    char *data = (char *)t->data + t->byte_offset;
    return PyArray_New(&PyArray_Type, t->ndim, dims, type, strides, data, (int)item,
                       writeable ? NPY_ARRAY_WRITEABLE : 0, NULL);
}

PyObject *bridge_view(const quac_tensor *t) {
    if (t == NULL) Py_RETURN_NONE;
    return array_over(t, 0); /* read-only: inputs are borrowed and never written */
}

static void release_capsule(PyObject *capsule) {
    quac_managed_tensor *t = PyCapsule_GetPointer(capsule, "quac_managed_tensor");
    if (t != NULL && t->deleter != NULL) t->deleter(t);
}

PyObject *bridge_adopt(quac_managed_tensor *t) {
    PyObject *capsule = PyCapsule_New(t, "quac_managed_tensor", release_capsule);
    if (capsule == NULL) {
        if (t->deleter != NULL) t->deleter(t);
        return NULL;
    }
    PyObject *a = array_over(&t->tensor, 1);
    if (a == NULL) {
        Py_DECREF(capsule);
        return NULL;
    }
    if (PyArray_SetBaseObject((PyArrayObject *)a, capsule) < 0) { /* steals capsule */
        Py_DECREF(a);
        return NULL;
    }
    return a;
}

int bridge_describe(PyObject *obj, int float_only, const char *what, quac_tensor *out, int64_t *shape,
                    PyObject **keep) {
    *keep = NULL;
    PyArray_Descr *want = NULL;
    int type = NPY_FLOAT32;
    if (!float_only && PyArray_Check(obj) && PyArray_ISINTEGER((PyArrayObject *)obj)) type = NPY_INT64;
    want = PyArray_DescrFromType(type);
    /* No copy when obj is already a C-contiguous array of that type; float64 from NumPy arithmetic is
     * converted. */
    PyObject *a = PyArray_FromAny(obj, want, 0, 0, NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST, NULL);
    if (a == NULL) return -1;
    PyArrayObject *arr = (PyArrayObject *)a;
    if (PyArray_NDIM(arr) > 8) {
        PyErr_Format(PyExc_ValueError, "%s: rank %d is more than 8", what, PyArray_NDIM(arr));
        Py_DECREF(a);
        return -1;
    }
    memset(out, 0, sizeof *out);
    out->data = PyArray_DATA(arr);
    out->device.device_type = QUAC_DEVICE_CPU;
    out->ndim = PyArray_NDIM(arr);
    out->dtype = type == NPY_FLOAT32 ? quac_sdk_dtype_f32() : quac_sdk_dtype_i64();
    for (int i = 0; i < out->ndim; i++) shape[i] = (int64_t)PyArray_DIM(arr, i);
    out->shape = shape;
    out->strides = NULL;
    *keep = a;
    return 0;
}

/* Copies n float32 values as bits and says whether any is NaN or infinite (all exponent bits set),
 * in one pass that the compiler vectorises. */
static int copy_f32_checked(uint32_t *restrict dst, const uint32_t *restrict src, size_t n) {
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t b = src[i];
        dst[i] = b;
        bad |= (uint32_t)((b & 0x7f800000u) == 0x7f800000u);
    }
    return bad != 0;
}

quac_status bridge_copy_out(const quac_host *host, PyArrayObject *a, const char *name, quac_managed_tensor **out,
                            int *nonfinite) {
    int64_t shape[NPY_MAXDIMS];
    int nd = PyArray_NDIM(a);
    *nonfinite = 0;
    for (int i = 0; i < nd; i++) shape[i] = (int64_t)PyArray_DIM(a, i);
    int is_f32 = PyArray_TYPE(a) == NPY_FLOAT32;
    if (!(is_f32 || PyArray_TYPE(a) == NPY_INT64) || !PyArray_IS_C_CONTIGUOUS(a)) {
        return quac_sdk_fail(host, QUAC_ERR_INTERNAL, "python bridge: output \"%s\" is not a C-contiguous float32 or int64 array", name);
    }
    quac_status status = host->tensor_alloc(host, is_f32 ? quac_sdk_dtype_f32() : quac_sdk_dtype_i64(), nd,
                                            nd > 0 ? shape : NULL, out);
    if (status != QUAC_OK) return status; /* the host said why */
    size_t bytes = (size_t)PyArray_NBYTES(a);
    if (bytes > 0) {
        /* The one copy of an output, checking floats for NaN and infinity on the way; the GIL is
         * released so other Python threads may run meanwhile. */
        const void *src = PyArray_DATA(a);
        void *dst = (char *)(*out)->tensor.data + (*out)->tensor.byte_offset;
        int bad = 0;
        Py_BEGIN_ALLOW_THREADS
        if (is_f32) bad = copy_f32_checked(dst, src, bytes / 4);
        else memcpy(dst, src, bytes);
        Py_END_ALLOW_THREADS
        *nonfinite = bad;
    }
    return QUAC_OK;
}
