/* Labels: validating class-index tensors and turning them into one-hot gradient seeds. */
#include "quac_sdk.h"

#include <inttypes.h>
#include <string.h>

quac_status quac_sdk_check_labels(const quac_host *host, const quac_tensor *t, const char *name, int64_t n,
                                  int32_t num_classes) {
    if (name == NULL) name = "labels";
    quac_status status = quac_sdk_check_tensor(host, t, name, 1, false);
    if (status != QUAC_OK) return status;
    if (!quac_sdk_is_i64(t)) {
        char dtype[48];
        return quac_sdk_fail(host, QUAC_ERR_INVALID_ARGUMENT, "%s: expected int64, got %s", name,
                             quac_sdk_dtype_name(t->dtype, dtype, sizeof dtype));
    }
    if (n >= 0 && t->shape[0] != n) {
        return quac_sdk_fail(host, QUAC_ERR_INVALID_ARGUMENT,
                             "%s: expected %" PRId64 " labels (one per query), got %" PRId64, name, n, t->shape[0]);
    }
    if (num_classes <= 0) {
        return quac_sdk_fail(host, QUAC_ERR_INVALID_ARGUMENT, "%s: cannot check labels against %d classes", name,
                             (int)num_classes);
    }
    const int64_t *labels = quac_sdk_i64(t);
    for (int64_t i = 0; i < t->shape[0]; i++) {
        if (labels[i] < 0 || labels[i] >= num_classes) {
            return quac_sdk_fail(host, QUAC_ERR_INVALID_ARGUMENT,
                                 "%s: label %" PRId64 " at index %" PRId64 " is outside [0, %d)", name, labels[i], i,
                                 (int)num_classes);
        }
    }
    return QUAC_OK;
}

quac_status quac_sdk_one_hot(const quac_host *host, const quac_tensor *labels, int32_t num_classes,
                             quac_managed_tensor **out) {
    if (out == NULL) return quac_sdk_fail(host, QUAC_ERR_INTERNAL, "quac_sdk_one_hot: out is NULL");
    *out = NULL;
    quac_status status = quac_sdk_check_labels(host, labels, "labels", -1, num_classes);
    if (status != QUAC_OK) return status;
    int64_t n = labels->shape[0];
    int64_t shape[2] = {n, num_classes};
    quac_managed_tensor *one_hot = NULL;
    status = quac_sdk_alloc_f32(host, 2, shape, &one_hot);
    if (status != QUAC_OK) return status;
    float *rows = quac_sdk_f32(&one_hot->tensor);
    const int64_t *values = quac_sdk_i64(labels);
    if (n > 0) memset(rows, 0, (size_t)n * (size_t)num_classes * sizeof(float));
    for (int64_t i = 0; i < n; i++) rows[i * num_classes + values[i]] = 1.0f;
    *out = one_hot;
    return QUAC_OK;
}
