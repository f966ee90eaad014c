/*
 * quac_sdk.h -- helpers for writing quac-host plugins in C, on top of quac_plugin.h (ABI 1.x).
 *
 * Nothing here is part of the ABI: the host never sees these functions. They are linked statically
 * into each plugin (libquacsdk.a, built by SDK/quac-sdk.mk with hidden visibility), so a plugin still
 * exports exactly one symbol, quac_plugin_entry.
 *
 * The comments follow quac_plugin.h's conventions:
 *   Threading   [thread-safe]  may be called from any thread, concurrently.
 *               [instance]     from inside a call on the instance that owns the `host` given.
 *               [main-thread]  from the host's main thread (factory create, destroy, init, deinit).
 *   Ownership   "borrowed"     valid for the duration of the call; never freed or written.
 *               "owned by the caller" the caller frees it with the function named.
 *   Failure     every function returning quac_status has already given the host a one-line reason
 *               with host->set_error when it returns anything but QUAC_OK, so a plugin can simply
 *               `return status;`. A function that only inspects (returns bool, a number or a pointer)
 *               never calls set_error.
 *
 * Sections: reporting (errors, log, progress), parameters, tensors, labels, instances, the factory and entry.
 * Parameters use json-c internally; this header does not include json-c, so plugins need not either.
 */
#ifndef QUAC_SDK_H
#define QUAC_SDK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quac_plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define QUAC_SDK_PRINTF(fmt_index, args_index) __attribute__((format(printf, fmt_index, args_index)))
#else
#define QUAC_SDK_PRINTF(fmt_index, args_index)
#endif

/* True when the versioned struct `s` (any ABI struct beginning with struct_size) is large enough to
 * hold `field` and that field is set. Use it before calling a function-pointer field another version
 * of the host may lack, e.g. QUAC_SDK_HAS(host, quac_host, classifier_vjp). [thread-safe] */
#define QUAC_SDK_HAS(s, type, field)                                                               \
    ((s) != NULL && (s)->struct_size >= offsetof(type, field) + sizeof(((type *)0)->field) &&       \
     (s)->field != NULL)

/* ---------------------------------------------------------------------------------------------- */
/* Reporting to the host: errors, logging, progress, cancellation                                  */
/* ---------------------------------------------------------------------------------------------- */

/* [thread-safe] Formats a message (printf-style), hands it to host->set_error and returns `status`, so
 * `return quac_sdk_fail(host, QUAC_ERR_INVALID_ARGUMENT, "x: expected rank 4, got %d", r);` is the
 * whole error path. Newlines in the message become spaces (the host wants one line); a message longer
 * than memory allows is truncated, never lost. host: borrowed, may be NULL (then nothing is recorded).
 * fmt and its arguments: borrowed. */
quac_status quac_sdk_fail(const quac_host *host, quac_status status, const char *fmt, ...)
    QUAC_SDK_PRINTF(3, 4);

/* [thread-safe] quac_sdk_fail with a va_list (for wrappers, and for Swift, which cannot call C
 * variadic functions). `args` is consumed as vprintf does. */
quac_status quac_sdk_vfail(const quac_host *host, quac_status status, const char *fmt, va_list args)
    QUAC_SDK_PRINTF(3, 0);

/* [thread-safe] Formats a message (printf-style) and writes it through host->log at `level`. Newlines
 * become spaces. host: borrowed, may be NULL (then nothing is written). */
void quac_sdk_log(const quac_host *host, quac_log_level level, const char *fmt, ...)
    QUAC_SDK_PRINTF(3, 4);

/* [thread-safe] quac_sdk_log with a va_list. */
void quac_sdk_vlog(const quac_host *host, quac_log_level level, const char *fmt, va_list args)
    QUAC_SDK_PRINTF(3, 0);

/* [thread-safe] A short English name of a status code ("invalid argument", "out of memory", ...).
 * Returns a static string. */
const char *quac_sdk_status_name(quac_status status);

/* [instance] True when the host asked to stop. Long loops call it between steps and then return
 * quac_sdk_cancelled(host). False when the host has no is_cancelled service. */
bool quac_sdk_is_cancelled(const quac_host *host);

/* [thread-safe] Records "cancelled" through set_error and returns QUAC_ERR_CANCELLED. */
quac_status quac_sdk_cancelled(const quac_host *host);

/* [thread-safe] host->progress when the host has it: `done` of `total` units (total <= 0: unknown).
 * label: borrowed, may be NULL. */
void quac_sdk_progress(const quac_host *host, int64_t done, int64_t total, const char *label);

/* ---------------------------------------------------------------------------------------------- */
/* Parameters: the JSON object the factory's create receives                                       */
/* ---------------------------------------------------------------------------------------------- */

/* A parsed parameter object. Opaque; owned by whoever parsed it and freed with quac_sdk_params_free.
 * Reading it is [thread-safe] once parsed (the getters do not modify it). */
typedef struct quac_sdk_params quac_sdk_params;

/* [thread-safe] Parses `json`, which must be a JSON object ("{}" when the plugin has no parameters;
 * NULL is read as "{}"). On success returns a new object owned by the caller. On failure returns NULL
 * after set_error, e.g. "parameters: invalid JSON at byte 12: unexpected character", "parameters:
 * expected a JSON object, got array" or "parameters: out of memory"; the caller then returns
 * QUAC_ERR_INVALID_ARGUMENT. host: borrowed; the getters report their errors through it, so it must
 * outlive the returned object (an instance's host does). json: borrowed. The parser is json-c's in
 * strict mode, which still accepts NaN and Infinity; the host only passes standard JSON, and the
 * number getters refuse non-finite values anyway. */
quac_sdk_params *quac_sdk_params_parse(const quac_host *host, const char *json);

/* Frees `params` and every string borrowed from it; NULL is ignored. Any thread, but not while
 * another thread reads the same object. */
void quac_sdk_params_free(quac_sdk_params *params);

/* [thread-safe] True when `name` is present with a value other than null. name: borrowed. */
bool quac_sdk_param_has(const quac_sdk_params *params, const char *name);

/* The getters below share one contract. [thread-safe]. name: borrowed. When `name` is absent or null,
 * *out = def and QUAC_OK. When present with the right type, *out is its value. Otherwise *out = def and
 * QUAC_ERR_INVALID_ARGUMENT after set_error naming the parameter, e.g.
 *   parameter "steps": expected an integer, got string "fifty"
 * params and out must not be NULL (QUAC_ERR_INTERNAL). */

/* A JSON number (integer or not) that is finite. */
quac_status quac_sdk_param_double(const quac_sdk_params *params, const char *name, double def,
                                  double *out);

/* A JSON integer within int64, or a number with an integral value in range (50.0 reads as 50). */
quac_status quac_sdk_param_int64(const quac_sdk_params *params, const char *name, int64_t def,
                                 int64_t *out);

/* true or false; no other value converts (not 0/1, not "true"). */
quac_status quac_sdk_param_bool(const quac_sdk_params *params, const char *name, bool def, bool *out);

/* A JSON string. *out is borrowed from params (valid until quac_sdk_params_free) or is `def` itself.
 * Strings with embedded NUL bytes are refused (they would be silently cut). */
quac_status quac_sdk_param_string(const quac_sdk_params *params, const char *name, const char *def,
                                  const char **out);

/* As quac_sdk_param_string, copying the value (or `def`, which may then not be NULL) into buf[size]
 * with its NUL. A value that does not fit is QUAC_ERR_INVALID_ARGUMENT ("parameter "path": 300 bytes
 * do not fit in 256"), and buf then holds "". buf: owned by the caller. */
quac_status quac_sdk_param_string_copy(const quac_sdk_params *params, const char *name,
                                       const char *def, char *buf, size_t size);

/* A JSON list of integers (each within int64, or a number with an integral value below 2^53), e.g.
 * an input shape. Writes at most `capacity` values into out[] and their number into *count; absent or
 * null gives *count = 0 and QUAC_OK. A value that is not a list, an item that is not an integer, or more
 * than `capacity` items is QUAC_ERR_INVALID_ARGUMENT naming the parameter (and the item). count must
 * not be NULL. */
quac_status quac_sdk_param_int64_list(const quac_sdk_params *params, const char *name, int64_t *out,
                                      size_t capacity, size_t *count);

/* ---------------------------------------------------------------------------------------------- */
/* Tensors                                                                                         */
/* ---------------------------------------------------------------------------------------------- */

/* [thread-safe] The dtypes plugins use most: float32 and int64 (one lane). */
static inline quac_dtype quac_sdk_dtype_f32(void) {
    quac_dtype d = {QUAC_DTYPE_FLOAT, 32, 1};
    return d;
}
static inline quac_dtype quac_sdk_dtype_i64(void) {
    quac_dtype d = {QUAC_DTYPE_INT, 64, 1};
    return d;
}

/* [thread-safe] Number of elements: the product of shape (1 for rank 0; 0 for NULL, a negative
 * dimension or a product beyond INT64_MAX). t: borrowed. */
int64_t quac_sdk_numel(const quac_tensor *t);

/* [thread-safe] True for float32 (code FLOAT, 32 bits, 1 lane) / int64. t: borrowed, may be NULL. */
bool quac_sdk_is_f32(const quac_tensor *t);
bool quac_sdk_is_i64(const quac_tensor *t);

/* [thread-safe] True when t is laid out compact row-major: strides NULL, or equal to the row-major
 * strides (dimensions of size 1 may carry any stride, as in DLPack and PyTorch). t: borrowed. */
bool quac_sdk_is_compact(const quac_tensor *t);

/* [thread-safe] The first element: (char *)data + byte_offset, as float / int64. No checks: call
 * quac_sdk_check_tensor first. The memory is the tensor's; inputs are read-only. */
float *quac_sdk_f32(const quac_tensor *t);
int64_t *quac_sdk_i64(const quac_tensor *t);

/* [thread-safe] Writes a dtype's name into buf[size] ("float32", "int64", "uint8", "bool",
 * "bfloat16", "float32x4" for lanes, "dtype(code=3, bits=8)" for unknown codes) and returns buf. */
const char *quac_sdk_dtype_name(quac_dtype dtype, char *buf, size_t size);

/* [thread-safe] Writes a shape as "[2, 3, 32, 32]" into buf[size] (cut with "...]" when too long) and
 * returns buf. t: borrowed; NULL writes "(none)". */
const char *quac_sdk_shape_string(const quac_tensor *t, char *buf, size_t size);

/* [thread-safe] Validates an input before reading it: present, on the CPU, rank `ndim` (-1: any),
 * float32 when require_f32, non-negative dimensions, compact row-major strides, and data not NULL
 * unless it has no elements. On failure QUAC_ERR_INVALID_ARGUMENT with a message that starts with
 * `name` (e.g. "x: expected float32, got int64", "x: expected rank 4, got 2"). host, t, name:
 * borrowed; t may be NULL (reported as "x: missing"). */
quac_status quac_sdk_check_tensor(const quac_host *host, const quac_tensor *t, const char *name,
                                  int32_t ndim, bool require_f32);

/* [thread-safe] As quac_sdk_check_tensor(host, t, name, like->ndim, true), then requires t's shape to
 * equal like's: "grad_x: expected shape [2, 1, 4, 4] (like x), got [2, 16]". like_name names `like`
 * in that message. */
quac_status quac_sdk_check_like(const quac_host *host, const quac_tensor *t, const char *name,
                                const quac_tensor *like, const char *like_name);

/* [thread-safe] Fails with QUAC_ERR_INVALID_ARGUMENT at the first NaN or infinity of a float32 or
 * float64 tensor: "x: NaN at [0, 2, 5, 1]". Tensors of other dtypes always pass. t must have passed
 * quac_sdk_check_tensor (compact, on the CPU); otherwise the check fails saying so. */
quac_status quac_sdk_check_finite(const quac_host *host, const quac_tensor *t, const char *name);

/* [instance] Allocates through host->tensor_alloc a zero-filled float32 tensor of rank ndim and
 * `shape` (borrowed). On QUAC_OK *out is owned by the caller: put it through the output sink or free it
 * with quac_sdk_release. On failure *out is NULL and the error names the shape. */
quac_status quac_sdk_alloc_f32(const quac_host *host, int32_t ndim, const int64_t *shape,
                               quac_managed_tensor **out);

/* [instance] quac_sdk_alloc_f32 with like's shape (like: borrowed, any dtype). */
quac_status quac_sdk_alloc_like(const quac_host *host, const quac_tensor *like,
                                quac_managed_tensor **out);

/* [thread-safe] Releases a tensor the caller owns: calls its deleter, if any, exactly once. NULL is
 * ignored. Do not release a tensor after handing it to put_tensor (ownership moved to the host). */
void quac_sdk_release(quac_managed_tensor *t);

/* ---------------------------------------------------------------------------------------------- */
/* Labels: class indices (batch->source, batch->target)                                           */
/* ---------------------------------------------------------------------------------------------- */

/* [thread-safe] Validates a label tensor: int64 [n] (n < 0: any length), on the CPU, compact, every
 * value in [0, num_classes). Errors start with `name`: "source: expected int64, got float32",
 * "source: expected 4 labels (one per query), got 3", "source: label 7 at index 2 is outside
 * [0, 5)". */
quac_status quac_sdk_check_labels(const quac_host *host, const quac_tensor *t, const char *name,
                                  int64_t n, int32_t num_classes);

/* [instance] Builds the float32 [N, num_classes] one-hot matrix of `labels` (int64 [N], borrowed) --
 * the grad_logits that make classifier_vjp return d f_label(x) / d x. Validates labels as
 * quac_sdk_check_labels(host, labels, "labels", -1, num_classes). On QUAC_OK *out is owned by the
 * caller (release it with quac_sdk_release); on failure *out is NULL. */
quac_status quac_sdk_one_hot(const quac_host *host, const quac_tensor *labels, int32_t num_classes,
                             quac_managed_tensor **out);

/* ---------------------------------------------------------------------------------------------- */
/* Instances                                                                                       */
/* ---------------------------------------------------------------------------------------------- */

/* One function table an instance offers through get_extension: its kind table, e.g.
 * {QUAC_KIND_TABLE_ATTRIBUTOR, &my_attributor}, or an optional extension. Lists of these are static
 * arrays ending with {NULL, NULL}. */
typedef struct quac_sdk_extension {
    const char *id;
    const void *table;
} quac_sdk_extension;

/* [main-thread] Creates an instance: a quac_plugin whose get_extension looks `id` up in `extensions`
 * and whose destroy calls free_data(plugin_data) (when free_data is not NULL) and then frees the
 * instance. self->plugin_data is `plugin_data`. host, descriptor, extensions: borrowed and kept, so
 * they must outlive the instance (the host's quac_host does; descriptors and tables are static).
 * plugin_data: ownership moves to the instance on QUAC_OK; on failure the caller still owns it. On
 * QUAC_OK *out is owned by the host (return it from the factory's create). */
quac_status quac_sdk_plugin_new(const quac_host *host, const quac_plugin_descriptor *descriptor,
                                const quac_sdk_extension *extensions, void *plugin_data,
                                void (*free_data)(void *plugin_data), const quac_plugin **out);

/* [thread-safe] The host given to quac_sdk_plugin_new for `self`. Only for instances it created. */
const quac_host *quac_sdk_plugin_host(const quac_plugin *self);

/* ---------------------------------------------------------------------------------------------- */
/* The factory and the entry point                                                                 */
/* ---------------------------------------------------------------------------------------------- */

/* [main-thread] Creates plugin `descriptor` with `params_json` (borrowed; validated against the
 * manifest's schema by the host, defaults filled in). Same contract as quac_plugin_factory.create:
 * set_error and return a status on failure; on QUAC_OK *out is owned by the host. */
typedef quac_status (*quac_sdk_create_fn)(const quac_host *host,
                                          const quac_plugin_descriptor *descriptor,
                                          const char *params_json, const quac_plugin **out);

/* One plugin of the library: its descriptor and how to create it. */
typedef struct quac_sdk_plugin_def {
    const quac_plugin_descriptor *descriptor;
    quac_sdk_create_fn create;
} quac_sdk_plugin_def;

/* A factory over a static array of plugin definitions. Declare one with QUAC_SDK_SIMPLE_FACTORY and
 * export it with QUAC_SDK_DEFINE_ENTRY:
 *
 *     static const quac_sdk_plugin_def plugins[] = {{&saliency_descriptor, saliency_create}};
 *     static const quac_sdk_simple_factory factory = QUAC_SDK_SIMPLE_FACTORY(plugins);
 *     QUAC_SDK_DEFINE_ENTRY(&factory);
 *
 * `base` comes first, so &factory.base is the quac_plugin_factory the host sees. create looks the
 * requested id up (an unknown id fails naming the ids on offer) and checks the result. init and deinit
 * are optional library hooks (NULL: nothing to do); see quac_plugin_entry_v1. Static data. */
typedef struct quac_sdk_simple_factory {
    quac_plugin_factory base;
    const quac_sdk_plugin_def *plugins;
    uint32_t count;
    quac_status (*init)(const char *library_path);
    void (*deinit)(void);
} quac_sdk_simple_factory;

/* The factory functions QUAC_SDK_SIMPLE_FACTORY fills in; `factory` must be the `base` of a
 * quac_sdk_simple_factory. Threading as in quac_plugin_factory. */
uint32_t quac_sdk_simple_count(const quac_plugin_factory *factory);
const quac_plugin_descriptor *quac_sdk_simple_get_descriptor(const quac_plugin_factory *factory,
                                                             uint32_t index);
quac_status quac_sdk_simple_create(const quac_plugin_factory *factory, const quac_host *host,
                                   const char *plugin_id, const char *params_json,
                                   const quac_plugin **out);

/* [main-thread] Run the optional init/deinit hooks of a simple factory (QUAC_SDK_DEFINE_ENTRY calls
 * them). init with no hook returns QUAC_OK. An init hook that fails has no host to give its reason
 * to: it writes the reason to stderr, and the host reports that the library's init failed.
 * library_path: borrowed. */
quac_status quac_sdk_simple_init(const quac_sdk_simple_factory *factory, const char *library_path);
void quac_sdk_simple_deinit(const quac_sdk_simple_factory *factory);

/* A quac_sdk_simple_factory initializer over a static array of quac_sdk_plugin_def, without hooks.
 * With hooks: QUAC_SDK_SIMPLE_FACTORY_HOOKS(defs, init_fn, deinit_fn). */
#define QUAC_SDK_SIMPLE_FACTORY_HOOKS(defs, init_fn, deinit_fn)                                     \
    {{(uint32_t)sizeof(quac_plugin_factory), quac_sdk_simple_count,                                  \
      quac_sdk_simple_get_descriptor, quac_sdk_simple_create},                                       \
     (defs), (uint32_t)(sizeof(defs) / sizeof((defs)[0])), (init_fn), (deinit_fn)}
#define QUAC_SDK_SIMPLE_FACTORY(defs) QUAC_SDK_SIMPLE_FACTORY_HOOKS(defs, NULL, NULL)

/* Defines the library's one exported symbol, quac_plugin_entry, for a quac_sdk_simple_factory
 * (factory_ptr: the address of a static one). It returns a static quac_plugin_entry_v1 stating this
 * header's ABI version, or NULL when the host's major version differs (the host then reports the
 * mismatch). Use it once, at file scope, in one file of the library, followed by a semicolon. */
#define QUAC_SDK_DEFINE_ENTRY(factory_ptr)                                                         \
    static quac_status quac_sdk_entry_init_(const char *library_path) {                              \
        return quac_sdk_simple_init((factory_ptr), library_path);                                    \
    }                                                                                                \
    static void quac_sdk_entry_deinit_(void) { quac_sdk_simple_deinit((factory_ptr)); }             \
    QUAC_SDK_DEFINE_ENTRY_EX(&(factory_ptr)->base, quac_sdk_entry_init_, quac_sdk_entry_deinit_)

/* As QUAC_SDK_DEFINE_ENTRY for any quac_plugin_factory (factory_ptr: address of a static one) with
 * your own init and deinit functions (both required, never NULL). */
#define QUAC_SDK_DEFINE_ENTRY_EX(factory_ptr, init_fn, deinit_fn)                                  \
    QUAC_SDK_ENTRY_LINKAGE_ QUAC_EXPORT const quac_plugin_entry_v1 *quac_plugin_entry(              \
        uint32_t host_abi_major, uint32_t host_abi_minor);                                           \
    QUAC_SDK_ENTRY_LINKAGE_ QUAC_EXPORT const quac_plugin_entry_v1 *quac_plugin_entry(              \
        uint32_t host_abi_major, uint32_t host_abi_minor) {                                          \
        static const quac_plugin_entry_v1 entry = {QUAC_ABI_VERSION_MAJOR, QUAC_ABI_VERSION_MINOR,   \
                                                   (init_fn), (deinit_fn), (factory_ptr)};           \
        (void)host_abi_minor;                                                                        \
        return host_abi_major == QUAC_ABI_VERSION_MAJOR ? &entry : NULL;                             \
    }                                                                                                \
    struct quac_sdk_entry_defined_ /* so that the use ends with a semicolon */

#ifdef __cplusplus
#define QUAC_SDK_ENTRY_LINKAGE_ extern "C"
#else
#define QUAC_SDK_ENTRY_LINKAGE_
#endif

#ifdef __cplusplus
}
#endif

#endif /* QUAC_SDK_H */
