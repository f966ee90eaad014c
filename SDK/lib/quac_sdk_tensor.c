/* Tensors: inspecting them, naming dtypes and shapes, allocating through the host, releasing. */
#include "quac_sdk.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int64_t quac_sdk_numel(const quac_tensor *t) {
    if (t == NULL || t->ndim < 0 || (t->ndim > 0 && t->shape == NULL)) return 0;
    int64_t n = 1;
    for (int32_t i = 0; i < t->ndim; i++) {
        int64_t d = t->shape[i];
        if (d <= 0) return 0; /* empty, or malformed */
        if (n > INT64_MAX / d) return 0;
        n *= d;
    }
    return n;
}

bool quac_sdk_is_f32(const quac_tensor *t) {
    return t != NULL && t->dtype.code == QUAC_DTYPE_FLOAT && t->dtype.bits == 32 && t->dtype.lanes == 1;
}

bool quac_sdk_is_i64(const quac_tensor *t) {
    return t != NULL && t->dtype.code == QUAC_DTYPE_INT && t->dtype.bits == 64 && t->dtype.lanes == 1;
}

bool quac_sdk_is_compact(const quac_tensor *t) {
    if (t == NULL) return false;
    if (t->strides == NULL || quac_sdk_numel(t) == 0) return true;
    int64_t expected = 1;
    for (int32_t i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->strides[i] != expected) return false;
        expected *= t->shape[i];
    }
    return true;
}

float *quac_sdk_f32(const quac_tensor *t) {
    return (float *)((char *)t->data + t->byte_offset);
}

int64_t *quac_sdk_i64(const quac_tensor *t) {
    return (int64_t *)((char *)t->data + t->byte_offset);
}

const char *quac_sdk_dtype_name(quac_dtype dtype, char *buf, size_t size) {
    const char *prefix = NULL;
    switch (dtype.code) {
    case QUAC_DTYPE_INT: prefix = "int"; break;
    case QUAC_DTYPE_UINT: prefix = "uint"; break;
    case QUAC_DTYPE_FLOAT: prefix = "float"; break;
    case QUAC_DTYPE_BOOL: prefix = "bool"; break;
    case 4: prefix = "bfloat"; break;  /* DLPack kDLBfloat */
    case 5: prefix = "complex"; break; /* DLPack kDLComplex */
    default: break;
    }
    char lanes[16] = "";
    if (dtype.lanes != 1) snprintf(lanes, sizeof lanes, "x%u", (unsigned)dtype.lanes);
    if (prefix == NULL) {
        snprintf(buf, size, "dtype(code=%u, bits=%u)%s", (unsigned)dtype.code, (unsigned)dtype.bits, lanes);
    } else if (dtype.code == QUAC_DTYPE_BOOL && dtype.bits == 8) {
        snprintf(buf, size, "bool%s", lanes);
    } else {
        snprintf(buf, size, "%s%u%s", prefix, (unsigned)dtype.bits, lanes);
    }
    return buf;
}

/* "[2, 3, 32, 32]", cut with "...]" when it does not fit. */
static const char *format_shape(int32_t ndim, const int64_t *shape, char *buf, size_t size) {
    if (size == 0) return buf;
    if (ndim > 0 && shape == NULL) {
        snprintf(buf, size, "(rank %d, no shape)", (int)ndim);
        return buf;
    }
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int32_t i = 0; i < ndim && used < size; i++) {
        used += (size_t)snprintf(buf + used, size - used, i == 0 ? "%" PRId64 : ", %" PRId64, shape[i]);
    }
    if (used < size) used += (size_t)snprintf(buf + used, size - used, "]");
    if (used >= size && size >= 5) memcpy(buf + size - 5, "...]", 5);
    return buf;
}

const char *quac_sdk_shape_string(const quac_tensor *t, char *buf, size_t size) {
    if (t == NULL) {
        if (size > 0) snprintf(buf, size, "(none)");
        return buf;
    }
    return format_shape(t->ndim, t->shape, buf, size);
}

quac_status quac_sdk_alloc_f32(const quac_host *host, int32_t ndim, const int64_t *shape,
                               quac_managed_tensor **out) {
    if (out == NULL) return quac_sdk_fail(host, QUAC_ERR_INTERNAL, "quac_sdk_alloc_f32: out is NULL");
    *out = NULL;
    if (!QUAC_SDK_HAS(host, quac_host, tensor_alloc)) {
        return quac_sdk_fail(host, QUAC_ERR_UNSUPPORTED, "the host offers no tensor_alloc service");
    }
    char shape_text[128];
    quac_status status = host->tensor_alloc(host, quac_sdk_dtype_f32(), ndim, shape, out);
    if (status != QUAC_OK) {
        *out = NULL;
        return quac_sdk_fail(host, status, "cannot allocate a float32 tensor %s: %s",
                             format_shape(ndim, shape, shape_text, sizeof shape_text), quac_sdk_status_name(status));
    }
    if (*out == NULL) {
        return quac_sdk_fail(host, QUAC_ERR_INTERNAL, "the host's tensor_alloc returned no tensor for %s",
                             format_shape(ndim, shape, shape_text, sizeof shape_text));
    }
    return QUAC_OK;
}

quac_status quac_sdk_alloc_like(const quac_host *host, const quac_tensor *like, quac_managed_tensor **out) {
    if (like == NULL) {
        if (out != NULL) *out = NULL;
        return quac_sdk_fail(host, QUAC_ERR_INTERNAL, "quac_sdk_alloc_like: no tensor to copy the shape of");
    }
    return quac_sdk_alloc_f32(host, like->ndim, like->shape, out);
}

void quac_sdk_release(quac_managed_tensor *t) {
    if (t != NULL && t->deleter != NULL) t->deleter(t);
}
