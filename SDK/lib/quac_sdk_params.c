/* Parameters: parsing the factory's params_json with json-c and reading typed values with defaults. */
#include "quac_sdk.h"

#include <json-c/json.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct quac_sdk_params {
    const quac_host *host; /* borrowed: where the getters report type errors */
    json_object *root;     /* owned: a JSON object */
};

/* A value as an error message shows it: its JSON type, and for scalars the value, e.g. `string
 * "fifty"`, `number 2.5`. Formats without json_object_to_json_string, which caches its result inside
 * the object and so is not safe to call from concurrent readers. */
static const char *describe(json_object *value, char *buf, size_t size) {
    switch (json_object_get_type(value)) {
    case json_type_null: snprintf(buf, size, "null"); break;
    case json_type_boolean:
        snprintf(buf, size, "boolean %s", json_object_get_boolean(value) ? "true" : "false");
        break;
    case json_type_int: snprintf(buf, size, "integer %" PRId64, json_object_get_int64(value)); break;
    case json_type_double: snprintf(buf, size, "number %.17g", json_object_get_double(value)); break;
    case json_type_string: {
        const char *s = json_object_get_string(value);
        int len = json_object_get_string_len(value);
        if (len > 40) snprintf(buf, size, "string \"%.40s...\"", s);
        else snprintf(buf, size, "string \"%s\"", s);
        break;
    }
    case json_type_array: snprintf(buf, size, "array"); break;
    case json_type_object: snprintf(buf, size, "object"); break;
    }
    return buf;
}

static quac_status type_error(const quac_sdk_params *params, const char *name, const char *expected,
                              json_object *value) {
    char got[80];
    return quac_sdk_fail(params->host, QUAC_ERR_INVALID_ARGUMENT, "parameter \"%s\": expected %s, got %s",
                         name, expected, describe(value, got, sizeof got));
}

/* Finds `name`. *value is NULL when absent or null (the caller then uses its default). Fails only on a
 * misuse of the API (NULL arguments). */
static quac_status lookup(const quac_sdk_params *params, const char *name, const void *out,
                          json_object **value) {
    *value = NULL;
    if (params == NULL || name == NULL || out == NULL) {
        return quac_sdk_fail(params ? params->host : NULL, QUAC_ERR_INTERNAL,
                             "quac_sdk_param_*: params, name and out must not be NULL (parameter \"%s\")",
                             name ? name : "(null)");
    }
    json_object *found = NULL;
    if (json_object_object_get_ex(params->root, name, &found) && !json_object_is_type(found, json_type_null)) {
        *value = found;
    }
    return QUAC_OK;
}

quac_sdk_params *quac_sdk_params_parse(const quac_host *host, const char *json) {
    if (json == NULL) json = "{}";
    size_t len = strlen(json);
    if (len >= INT32_MAX) {
        quac_sdk_fail(host, QUAC_ERR_INVALID_ARGUMENT, "parameters: %zu bytes of JSON is too long", len);
        return NULL;
    }
    json_tokener *tokener = json_tokener_new();
    if (tokener == NULL) {
        quac_sdk_fail(host, QUAC_ERR_OUT_OF_MEMORY, "parameters: out of memory");
        return NULL;
    }
    json_tokener_set_flags(tokener, JSON_TOKENER_STRICT);
    /* Passing the terminating NUL too tells json-c the input ends (else "12" stays incomplete). */
    json_object *root = json_tokener_parse_ex(tokener, json, (int)len + 1);
    enum json_tokener_error error = json_tokener_get_error(tokener);
    size_t end = json_tokener_get_parse_end(tokener);
    json_tokener_free(tokener);

    if (root == NULL) {
        const char *why = error == json_tokener_continue ? "unexpected end of input" : json_tokener_error_desc(error);
        quac_sdk_fail(host, QUAC_ERR_INVALID_ARGUMENT, "parameters: invalid JSON at byte %zu: %s", end, why);
        return NULL;
    }
    while (end < len && (json[end] == ' ' || json[end] == '\t' || json[end] == '\r' || json[end] == '\n')) end++;
    if (end < len) {
        json_object_put(root);
        quac_sdk_fail(host, QUAC_ERR_INVALID_ARGUMENT,
                      "parameters: invalid JSON at byte %zu: unexpected text after the object", end);
        return NULL;
    }
    if (!json_object_is_type(root, json_type_object)) {
        char got[80];
        quac_sdk_fail(host, QUAC_ERR_INVALID_ARGUMENT, "parameters: expected a JSON object, got %s",
                      describe(root, got, sizeof got));
        json_object_put(root);
        return NULL;
    }
    quac_sdk_params *params = malloc(sizeof *params);
    if (params == NULL) {
        json_object_put(root);
        quac_sdk_fail(host, QUAC_ERR_OUT_OF_MEMORY, "parameters: out of memory");
        return NULL;
    }
    params->host = host;
    params->root = root;
    return params;
}

void quac_sdk_params_free(quac_sdk_params *params) {
    if (params == NULL) return;
    json_object_put(params->root);
    free(params);
}

bool quac_sdk_param_has(const quac_sdk_params *params, const char *name) {
    if (params == NULL || name == NULL) return false;
    json_object *found = NULL;
    return json_object_object_get_ex(params->root, name, &found) && !json_object_is_type(found, json_type_null);
}

quac_status quac_sdk_param_double(const quac_sdk_params *params, const char *name, double def, double *out) {
    json_object *value;
    quac_status status = lookup(params, name, out, &value);
    if (status != QUAC_OK) return status;
    *out = def;
    if (value == NULL) return QUAC_OK;
    if (!json_object_is_type(value, json_type_double) && !json_object_is_type(value, json_type_int)) {
        return type_error(params, name, "a number", value);
    }
    double d = json_object_get_double(value);
    if (!isfinite(d)) return type_error(params, name, "a finite number", value);
    *out = d;
    return QUAC_OK;
}

quac_status quac_sdk_param_int64(const quac_sdk_params *params, const char *name, int64_t def, int64_t *out) {
    json_object *value;
    quac_status status = lookup(params, name, out, &value);
    if (status != QUAC_OK) return status;
    *out = def;
    if (value == NULL) return QUAC_OK;
    if (json_object_is_type(value, json_type_int)) {
        int64_t v = json_object_get_int64(value);
        /* json-c keeps integers above INT64_MAX as uint64 and reads them back clamped. */
        if (v == INT64_MAX && json_object_get_uint64(value) > (uint64_t)INT64_MAX) {
            return quac_sdk_fail(params->host, QUAC_ERR_INVALID_ARGUMENT,
                                 "parameter \"%s\": expected an integer within int64, got %" PRIu64, name,
                                 json_object_get_uint64(value));
        }
        *out = v;
        return QUAC_OK;
    }
    if (json_object_is_type(value, json_type_double)) {
        double d = json_object_get_double(value);
        /* -2^63 <= d < 2^63, and integral. */
        if (isfinite(d) && d == floor(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0) {
            *out = (int64_t)d;
            return QUAC_OK;
        }
        return type_error(params, name, "an integer within int64", value);
    }
    return type_error(params, name, "an integer", value);
}

quac_status quac_sdk_param_bool(const quac_sdk_params *params, const char *name, bool def, bool *out) {
    json_object *value;
    quac_status status = lookup(params, name, out, &value);
    if (status != QUAC_OK) return status;
    *out = def;
    if (value == NULL) return QUAC_OK;
    if (!json_object_is_type(value, json_type_boolean)) return type_error(params, name, "true or false", value);
    *out = json_object_get_boolean(value) != 0;
    return QUAC_OK;
}

quac_status quac_sdk_param_string(const quac_sdk_params *params, const char *name, const char *def,
                                  const char **out) {
    json_object *value;
    quac_status status = lookup(params, name, out, &value);
    if (status != QUAC_OK) return status;
    *out = def;
    if (value == NULL) return QUAC_OK;
    if (!json_object_is_type(value, json_type_string)) return type_error(params, name, "a string", value);
    const char *s = json_object_get_string(value);
    if (strlen(s) != (size_t)json_object_get_string_len(value)) {
        return quac_sdk_fail(params->host, QUAC_ERR_INVALID_ARGUMENT,
                             "parameter \"%s\": the string contains a NUL character (\\u0000)", name);
    }
    *out = s;
    return QUAC_OK;
}

quac_status quac_sdk_param_string_copy(const quac_sdk_params *params, const char *name, const char *def,
                                       char *buf, size_t size) {
    if (buf == NULL || size == 0) {
        return quac_sdk_fail(params ? params->host : NULL, QUAC_ERR_INTERNAL,
                             "quac_sdk_param_string_copy: no buffer for parameter \"%s\"", name ? name : "(null)");
    }
    buf[0] = '\0';
    const char *s = NULL;
    quac_status status = quac_sdk_param_string(params, name, def, &s);
    if (status != QUAC_OK) return status;
    if (s == NULL) {
        return quac_sdk_fail(params->host, QUAC_ERR_INTERNAL,
                             "quac_sdk_param_string_copy: parameter \"%s\" is absent and its default is NULL", name);
    }
    size_t len = strlen(s);
    if (len >= size) {
        return quac_sdk_fail(params->host, QUAC_ERR_INVALID_ARGUMENT,
                             "parameter \"%s\": %zu bytes do not fit in %zu", name, len, size - 1);
    }
    memcpy(buf, s, len + 1);
    return QUAC_OK;
}

quac_status quac_sdk_param_int64_list(const quac_sdk_params *params, const char *name, int64_t *out,
                                      size_t capacity, size_t *count) {
    json_object *value;
    quac_status status = lookup(params, name, out, &value);
    if (status != QUAC_OK) return status;
    if (count == NULL) {
        return quac_sdk_fail(params->host, QUAC_ERR_INTERNAL, "quac_sdk_param_int64_list: count must not be NULL");
    }
    *count = 0;
    if (value == NULL) return QUAC_OK;
    if (!json_object_is_type(value, json_type_array)) return type_error(params, name, "a list of integers", value);
    size_t n = json_object_array_length(value);
    if (n > capacity) {
        return quac_sdk_fail(params->host, QUAC_ERR_INVALID_ARGUMENT,
                             "parameter \"%s\": at most %zu integers, got %zu", name, capacity, n);
    }
    for (size_t i = 0; i < n; i++) {
        json_object *item = json_object_array_get_idx(value, i);
        bool integral = json_object_is_type(item, json_type_int);
        if (json_object_is_type(item, json_type_double)) {
            double d = json_object_get_double(item);
            integral = isfinite(d) && d == floor(d) && fabs(d) < 9007199254740992.0;
        }
        if (!integral) {
            char got[80];
            return quac_sdk_fail(params->host, QUAC_ERR_INVALID_ARGUMENT,
                                 "parameter \"%s\": item %zu: expected an integer, got %s", name, i,
                                 describe(item, got, sizeof got));
        }
        out[i] = json_object_is_type(item, json_type_int) ? json_object_get_int64(item)
                                                           : (int64_t)json_object_get_double(item);
    }
    *count = n;
    return QUAC_OK;
}
