/* Tensor validation: structure (device, dtype, rank, strides, data), shape agreement, finiteness. */
#include "quac_sdk.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define NAME_OR_DEFAULT(name) ((name) != NULL ? (name) : "tensor")

quac_status quac_sdk_check_tensor(const quac_host *host, const quac_tensor *t, const char *name,
                                  int32_t ndim, bool require_f32) {
    name = NAME_OR_DEFAULT(name);
    if (t == NULL) return quac_sdk_fail(host, QUAC_ERR_INVALID_ARGUMENT, "%s: missing", name);
    if (t->device.device_type != QUAC_DEVICE_CPU) {
        return quac_sdk_fail(host, QUAC_ERR_INVALID_ARGUMENT, "%s: expected a CPU tensor, got device type %d",
                             name, (int)t->device.device_type);
    }
    if (require_f32 && !quac_sdk_is_f32(t)) {
        char dtype[48];
        return quac_sdk_fail(host, QUAC_ERR_INVALID_ARGUMENT, "%s: expected float32, got %s", name,
                             quac_sdk_dtype_name(t->dtype, dtype, sizeof dtype));
    }
    if (t->ndim < 0 || (t->ndim > 0 && t->shape == NULL)) {
        return quac_sdk_fail(host, QUAC_ERR_INVALID_ARGUMENT, "%s: malformed tensor (rank %d, shape %s)", name,
                             (int)t->ndim, t->shape == NULL ? "NULL" : "given");
    }
    if (ndim >= 0 && t->ndim != ndim) {
        char shape[128];
        return quac_sdk_fail(host, QUAC_ERR_INVALID_ARGUMENT, "%s: expected rank %d, got %d (shape %s)", name,
                             (int)ndim, (int)t->ndim, quac_sdk_shape_string(t, shape, sizeof shape));
    }
    for (int32_t i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0) {
            return quac_sdk_fail(host, QUAC_ERR_INVALID_ARGUMENT, "%s: dimension %d is negative (%" PRId64 ")",
                                 name, (int)i, t->shape[i]);
        }
    }
    if (!quac_sdk_is_compact(t)) {
        return quac_sdk_fail(host, QUAC_ERR_INVALID_ARGUMENT,
                             "%s: expected compact row-major strides (a contiguous tensor)", name);
    }
    bool empty = false;
    for (int32_t i = 0; i < t->ndim; i++) empty = empty || t->shape[i] == 0;
    if (!empty && quac_sdk_numel(t) == 0) {
        return quac_sdk_fail(host, QUAC_ERR_INVALID_ARGUMENT, "%s: too many elements for int64", name);
    }
    if (!empty && t->data == NULL) return quac_sdk_fail(host, QUAC_ERR_INVALID_ARGUMENT, "%s: data is NULL", name);
    return QUAC_OK;
}

quac_status quac_sdk_check_like(const quac_host *host, const quac_tensor *t, const char *name,
                                const quac_tensor *like, const char *like_name) {
    name = NAME_OR_DEFAULT(name);
    like_name = NAME_OR_DEFAULT(like_name);
    if (like == NULL) {
        return quac_sdk_fail(host, QUAC_ERR_INTERNAL, "%s: no tensor %s to compare the shape with", name, like_name);
    }
    quac_status status = quac_sdk_check_tensor(host, t, name, -1, true);
    if (status != QUAC_OK) return status;
    bool same = t->ndim == like->ndim;
    for (int32_t i = 0; same && i < t->ndim; i++) same = t->shape[i] == like->shape[i];
    if (!same) {
        char want[128], got[128];
        return quac_sdk_fail(host, QUAC_ERR_INVALID_ARGUMENT, "%s: expected shape %s (like %s), got %s", name,
                             quac_sdk_shape_string(like, want, sizeof want), like_name,
                             quac_sdk_shape_string(t, got, sizeof got));
    }
    return QUAC_OK;
}

/* Fails naming the multi-index of flat element `flat` of compact tensor t. */
static quac_status fail_at(const quac_host *host, const quac_tensor *t, const char *name, int64_t flat,
                           double value) {
    int64_t index[64];
    int32_t ndim = t->ndim < 64 ? t->ndim : 64;
    for (int32_t i = t->ndim - 1; i >= 0; i--) {
        if (i < 64) index[i] = flat % t->shape[i];
        flat /= t->shape[i];
    }
    quac_tensor at = {0};
    at.ndim = ndim;
    at.shape = index;
    char where[160];
    return quac_sdk_fail(host, QUAC_ERR_INVALID_ARGUMENT, "%s: %s at %s", name,
                         isnan(value) ? "NaN" : (value > 0 ? "+infinity" : "-infinity"),
                         quac_sdk_shape_string(&at, where, sizeof where));
}

quac_status quac_sdk_check_finite(const quac_host *host, const quac_tensor *t, const char *name) {
    name = NAME_OR_DEFAULT(name);
    quac_status status = quac_sdk_check_tensor(host, t, name, -1, false);
    if (status != QUAC_OK) return status;
    if (t->dtype.code != QUAC_DTYPE_FLOAT || t->dtype.lanes != 1) return QUAC_OK;
    int64_t n = quac_sdk_numel(t);
    if (t->dtype.bits == 32) {
        const float *v = quac_sdk_f32(t);
        for (int64_t i = 0; i < n; i++) {
            if (!isfinite(v[i])) return fail_at(host, t, name, i, v[i]);
        }
    } else if (t->dtype.bits == 64) {
        const double *v = (const double *)((const char *)t->data + t->byte_offset);
        for (int64_t i = 0; i < n; i++) {
            if (!isfinite(v[i])) return fail_at(host, t, name, i, v[i]);
        }
    }
    return QUAC_OK;
}
