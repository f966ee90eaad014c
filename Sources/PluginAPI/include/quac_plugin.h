/*
 * quac_plugin.h -- the quac-host plugin ABI, version 1.2.
 *
 * This header is the only thing the host and its plugins share. A plugin is a shared library that
 * exports one symbol, `quac_plugin_entry`; everything else is reached through the structs below.
 *
 * Conventions used in every comment:
 *   Threading   [thread-safe]  may be called from any thread, concurrently.
 *               [main-thread]  called only from the host's main thread.
 *               [instance]     any thread, but at most one call at a time per instance, unless the
 *                              descriptor sets QUAC_PLUGIN_FLAG_REENTRANT.
 *   Ownership   "borrowed"     valid only for the duration of the call; never freed or written.
 *               "owned by X"   X frees it (tensors through their deleter, instances through destroy).
 *   Failure     every call returns a quac_status; on anything but QUAC_OK the callee first gives a
 *               one-line reason with host->set_error, from the thread the host called it on. Nothing
 *               unwinds across this boundary: no C++ exception, Swift error or longjmp may leave a
 *               plugin function.
 *
 * Versioning: QUAC_ABI_VERSION_MAJOR changes only when an existing struct or meaning changes; a host
 * refuses a plugin of another major version. Minor versions only append fields to the end of structs;
 * every struct that may grow begins with `struct_size`, so each side reads only the fields the other
 * one has. Kind tables and extensions are looked up by versioned string id ("quac.attributor/1"), and
 * so are new host services (host->get_extension, since 1.1). Values of the enums below travel in
 * structs as fixed-width integers, never as C enum types, whose size a compiler may choose.
 *
 * History: 1.1 added host->get_extension (and the concepts service), quac_batch.concepts, made an error message belong to its call (concurrent calls
 * of a reentrant instance keep their own messages), stored the descriptor's kind as int32_t (same
 * layout as 1.0 on every supported platform) and stated the lifetimes of create's strings and of a
 * quac_dataset. 1.2 added quac_batch.maps (other attributors' maps, for methods built on them),
 * quac_batch.method_json (the scored method's JSON, for scorers), the classifier extension
 * QUAC_EXT_CLASSIFIER_LAYERS and its host service QUAC_HOST_EXT_CLASSIFIER_LAYERS, the classifier
 * extension QUAC_EXT_CLASSIFIER_RANDOMIZE, and the host service QUAC_HOST_EXT_SCORED_METHOD.
 * A host of 1.2 loads plugins built against 1.0 and 1.1. Extensions added since, looked up by id with
 * no change of layout or version: the classifier extension QUAC_EXT_CLASSIFIER_WEIGHTS and its host
 * service QUAC_HOST_EXT_CLASSIFIER_WEIGHTS (a side without them answers NULL).
 *
 * Tensors are laid out exactly as DLPack's DLTensor / DLManagedTensorVersioned (v1.x), so a plugin may
 * cast them to DLPack types. Only CPU memory and float32 are required; other dtypes are declared by
 * dtype, never assumed.
 */
#ifndef QUAC_PLUGIN_H
#define QUAC_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QUAC_ABI_VERSION_MAJOR 1
#define QUAC_ABI_VERSION_MINOR 2

#if defined(_WIN32)
#define QUAC_EXPORT __declspec(dllexport)
#else
#define QUAC_EXPORT __attribute__((visibility("default")))
#endif

/* ---------------------------------------------------------------------------------------------- */
/* Status codes                                                                                    */
/* ---------------------------------------------------------------------------------------------- */

typedef int32_t quac_status;
enum {
    QUAC_OK = 0,
    QUAC_ERR_INVALID_ARGUMENT = 1, /* bad input: rank, shape, dtype, NaN, parameter value */
    QUAC_ERR_UNSUPPORTED = 2,      /* a valid request this plugin cannot serve (missing extension...) */
    QUAC_ERR_OUT_OF_MEMORY = 3,
    QUAC_ERR_CANCELLED = 4,        /* host->is_cancelled returned true */
    QUAC_ERR_IO = 5,               /* a file the plugin needs could not be read or written */
    QUAC_ERR_VERSION = 6,          /* incompatible ABI or file version */
    QUAC_ERR_INTERNAL = 7          /* a bug in the plugin */
};

/* ---------------------------------------------------------------------------------------------- */
/* Tensors: layout-compatible with DLPack                                                           */
/* ---------------------------------------------------------------------------------------------- */

enum { QUAC_DEVICE_CPU = 1 };                            /* DLDeviceType kDLCPU */
enum { QUAC_DTYPE_INT = 0, QUAC_DTYPE_UINT = 1, QUAC_DTYPE_FLOAT = 2, QUAC_DTYPE_BOOL = 6 };

typedef struct quac_device { int32_t device_type; int32_t device_id; } quac_device;   /* DLDevice */
typedef struct quac_dtype { uint8_t code; uint8_t bits; uint16_t lanes; } quac_dtype; /* DLDataType */

/* DLTensor. `strides` is in elements and may be NULL (compact row-major). The bytes of element 0 are at
 * (char *)data + byte_offset. */
typedef struct quac_tensor {
    void *data;
    quac_device device;
    int32_t ndim;
    quac_dtype dtype;
    int64_t *shape;
    int64_t *strides;
    uint64_t byte_offset;
} quac_tensor;

#define QUAC_TENSOR_FLAG_READ_ONLY (UINT64_C(1) << 0) /* DLPACK_FLAG_BITMASK_READ_ONLY */

/* DLManagedTensorVersioned. Whoever holds one owns it and releases it by calling
 * `deleter(self)` exactly once (deleter may be NULL for a tensor that owns nothing). */
typedef struct quac_managed_tensor {
    struct { uint32_t major; uint32_t minor; } version; /* DLPack version, {1, 0} */
    void *manager_ctx;
    void (*deleter)(struct quac_managed_tensor *self);
    uint64_t flags;
    quac_tensor tensor;
} quac_managed_tensor;

/* ---------------------------------------------------------------------------------------------- */
/* Host services                                                                                   */
/* ---------------------------------------------------------------------------------------------- */

typedef enum quac_log_level {
    QUAC_LOG_DEBUG = 0, QUAC_LOG_INFO = 1, QUAC_LOG_WARNING = 2, QUAC_LOG_ERROR = 3
} quac_log_level;

/* What the run's classifier is. Filled by quac_classifier.get_info and host->classifier_info. */
typedef struct quac_classifier_info {
    uint32_t struct_size;
    int32_t num_classes;
    int32_t input_ndim;        /* rank of one sample, e.g. 3 for (C,H,W), 1 for a concept vector */
    int64_t input_shape[4];    /* one sample's shape; -1 in a dimension means "any size" */
    bool has_vjp;              /* false: forward-only (gradient methods refuse it) */
} quac_classifier_info;

/* Modified backward rules, asked of a classifier through QUAC_EXT_MODIFIED_BACKWARD. */
typedef enum quac_backward_rule {
    QUAC_RULE_DEEPLIFT_RESCALE = 1, /* DeepLift rescale rule against a baseline */
    QUAC_RULE_GUIDED_BACKPROP = 2   /* guided backpropagation (baseline ignored) */
} quac_backward_rule;

/* The host, as one plugin instance sees it. Every instance gets its own quac_host (host_data tells them
 * apart); it stays valid until the instance is destroyed. All tensors a plugin returns are allocated
 * through tensor_alloc, so the host owns and frees every output byte. */
typedef struct quac_host {
    uint32_t struct_size;
    uint32_t abi_major, abi_minor; /* the host's QUAC_ABI_VERSION */
    void *host_data;               /* the host's; plugins leave it alone */

    /* [thread-safe] Writes one log line, tagged with the instance's name. message: borrowed UTF-8. */
    void (*log)(const struct quac_host *host, quac_log_level level, const char *message);

    /* [thread-safe] Reports progress of the call in flight: `done` of `total` units (total <= 0 means
     * unknown). label: borrowed, may be NULL. Cheap; call it as often as convenient. */
    void (*progress)(const struct quac_host *host, int64_t done, int64_t total, const char *label);

    /* [thread-safe] True once the user asked to stop. Long calls poll it and return
     * QUAC_ERR_CANCELLED. */
    bool (*is_cancelled)(const struct quac_host *host);

    /* [thread-safe] Records why the status about to be returned is not QUAC_OK. message: borrowed,
     * copied by the host; one line, no trailing period needed. The message belongs to the call the host
     * made on the calling thread (the last one set before that call returns wins), so concurrent calls
     * of a reentrant instance each report their own reason. A message set from a thread of the
     * plugin's own (not one the host called in on) goes to a failing call that set none. */
    void (*set_error)(const struct quac_host *host, const char *message);

    /* [thread-safe] Allocates a compact, zero-filled CPU tensor. On QUAC_OK *out is owned by the caller:
     * hand it back as an output (ownership moves to the host) or release it with its deleter. On
     * failure the host has already recorded the reason (as if set_error had been called). */
    quac_status (*tensor_alloc)(const struct quac_host *host, quac_dtype dtype, int32_t ndim,
                                const int64_t *shape, quac_managed_tensor **out);

    /* --- The run's classifier and converter. The host checks shapes and dtypes on both sides and
     * chains the callee's error message into the caller's. [instance]: the host serialises calls. --- */

    /* Fills *out (set out->struct_size first). QUAC_ERR_UNSUPPORTED when the run has no classifier. */
    quac_status (*classifier_info)(const struct quac_host *host, quac_classifier_info *out);

    /* logits = f(x). x: borrowed, float32 [N, sample shape...]. *logits: float32 [N, classes], owned by
     * the caller. */
    quac_status (*classifier_forward)(const struct quac_host *host, const quac_tensor *x,
                                      quac_managed_tensor **logits);

    /* Vector-Jacobian product: grad_x = (d f(x) / d x)^T grad_logits. grad_logits: float32 [N, classes],
     * borrowed. *grad_x: float32 shaped like x, owned by the caller. logits may be NULL; when given,
     * *logits receives f(x) from the same pass. QUAC_ERR_UNSUPPORTED for a forward-only classifier. */
    quac_status (*classifier_vjp)(const struct quac_host *host, const quac_tensor *x,
                                  const quac_tensor *grad_logits, quac_managed_tensor **logits,
                                  quac_managed_tensor **grad_x);

    /* As classifier_vjp, with a modified backward rule against `baseline` (shaped like x; may be NULL
     * for rules that take none). QUAC_ERR_UNSUPPORTED, with a message naming the classifier and the
     * extension, when the classifier lacks QUAC_EXT_MODIFIED_BACKWARD. */
    quac_status (*classifier_vjp_rule)(const struct quac_host *host, quac_backward_rule rule,
                                       const quac_tensor *x, const quac_tensor *baseline,
                                       const quac_tensor *grad_logits, quac_managed_tensor **grad_x);

    /* Runs the run's converter: counterfactuals of x towards `target` (int64 [N]). reference: borrowed
     * images of the target classes for reference style, or NULL for latent style. *x_cf: owned by
     * the caller, shaped like x. QUAC_ERR_UNSUPPORTED when the run has no converter. */
    quac_status (*converter_convert)(const struct quac_host *host, const quac_tensor *x,
                                     const quac_tensor *target, const quac_tensor *reference,
                                     uint64_t seed, quac_managed_tensor **x_cf);

    /* --- Since 1.1 (read only when struct_size covers it). --- */

    /* [thread-safe] The host service table registered under `id` (versioned, e.g.
     * "quac.host.something/1"), or NULL when this host does not offer it. New host services come this
     * way, without a new major version. The table lives as long as `host`. id: borrowed. */
    const void *(*get_extension)(const struct quac_host *host, const char *id);
} quac_host;

/* Host extension "quac.host.concepts/1" (host->get_extension): what the run's concepts are called. */
#define QUAC_HOST_EXT_CONCEPTS "quac.host.concepts/1"
typedef struct quac_host_concepts {
    uint32_t struct_size;
    /* [thread-safe] The run's concept names, a JSON array of k strings in the order of the concepts'
     * columns; NULL when the run has no concepts. Borrowed: valid as long as `host`. */
    const char *(*names_json)(const struct quac_host *host);
} quac_host_concepts;

/* Host extension "quac.host.classifier-layers/1" (since 1.2): the run's classifier's
 * QUAC_EXT_CLASSIFIER_LAYERS, for attributors. Same meanings, shapes and ownership as there; every call
 * is QUAC_ERR_UNSUPPORTED, with a message naming the classifier, when it does not offer the extension
 * (list_json then returns NULL). */
#define QUAC_HOST_EXT_CLASSIFIER_LAYERS "quac.host.classifier-layers/1"
typedef struct quac_host_classifier_layers {
    uint32_t struct_size;
    const char *(*list_json)(const struct quac_host *host);
    quac_status (*forward)(const struct quac_host *host, const char *layer, const quac_tensor *x,
                           quac_managed_tensor **activations, quac_managed_tensor **logits);
    quac_status (*vjp_input)(const struct quac_host *host, const char *layer, const quac_tensor *x,
                             const quac_tensor *grad_activations, quac_managed_tensor **grad_x);
    quac_status (*vjp_logits)(const struct quac_host *host, const char *layer, const quac_tensor *x,
                              const quac_tensor *activations, const quac_tensor *grad_logits,
                              quac_managed_tensor **logits, quac_managed_tensor **grad_activations);
} quac_host_classifier_layers;

/* Host extension "quac.host.scored-method/1" (since 1.2): for scorers that must explain other inputs
 * than the batch's (a sensitivity to perturbations re-runs the method being scored). */
#define QUAC_HOST_EXT_SCORED_METHOD "quac.host.scored-method/1"
struct quac_batch; /* defined below */
typedef struct quac_host_scored_method {
    uint32_t struct_size;
    /* [instance] Runs the attributor whose maps the current score call scores on `batch` (its x,
     * source, target, x_cf, concepts and seed are used; borrowed) and returns its raw map in
     * *attribution (owned by the caller; shaped like batch->x, or like its concepts for a concept
     * explainer). QUAC_ERR_UNSUPPORTED outside a score call, or for a method that takes other
     * attributors' maps (they are not known for other inputs). */
    quac_status (*attribute)(const struct quac_host *host, const struct quac_batch *batch,
                             quac_managed_tensor **attribution);
    /* [instance] As attribute, with the run's classifier's `count` top layers re-drawn from `seed`
     * (QUAC_EXT_CLASSIFIER_RANDOMIZE; the cascading model randomisation of a sanity check); the trained
     * weights are back when it returns. QUAC_ERR_UNSUPPORTED when the classifier cannot do it. */
    quac_status (*attribute_randomized)(const struct quac_host *host, const struct quac_batch *batch, uint32_t count,
                                        uint64_t seed, quac_managed_tensor **attribution);
} quac_host_scored_method;

/* Host extension "quac.host.classifier-weights/1" (added after 1.2; looked up by id): the run's
 * classifier's QUAC_EXT_CLASSIFIER_WEIGHTS, for plugins that start from its trained weights (an
 * empirical explainer's encoder). Same meanings, shapes and ownership as there; describe_json returns
 * NULL and get is QUAC_ERR_UNSUPPORTED, with a message naming the classifier, when it does not offer
 * the extension. */
#define QUAC_HOST_EXT_CLASSIFIER_WEIGHTS "quac.host.classifier-weights/1"
typedef struct quac_host_classifier_weights {
    uint32_t struct_size;
    const char *(*describe_json)(const struct quac_host *host);
    quac_status (*get)(const struct quac_host *host, const char *name, quac_managed_tensor **out);
} quac_host_classifier_weights;

/* ---------------------------------------------------------------------------------------------- */
/* Outputs                                                                                         */
/* ---------------------------------------------------------------------------------------------- */

/* Where a call puts its results: named tensors, plus at most one JSON document for what is not a
 * tensor (a scorer's scalars and curves, a logic explainer's rules, IG's convergence deltas). Each kind
 * below names the outputs it must and may put. Borrowed; valid for the duration of the call. */
typedef struct quac_output_sink {
    uint32_t struct_size;
    void *host_data;

    /* [instance] Hands `tensor` to the host under `name` (borrowed). Ownership moves to the host even
     * when this fails. Putting a name twice is QUAC_ERR_INVALID_ARGUMENT; the host reports such
     * violations itself, so the plugin just returns the status. */
    quac_status (*put_tensor)(const struct quac_output_sink *sink, const char *name,
                              quac_managed_tensor *tensor);

    /* [instance] Copies a UTF-8 JSON object (len bytes, need not be NUL-terminated). The host parses it
     * and refuses anything but an object. At most once per call. */
    quac_status (*put_json)(const struct quac_output_sink *sink, const char *json, size_t len);
} quac_output_sink;

/* ---------------------------------------------------------------------------------------------- */
/* Plugin instances and kinds                                                                       */
/* ---------------------------------------------------------------------------------------------- */

typedef enum quac_plugin_kind {
    QUAC_KIND_CLASSIFIER = 1,
    QUAC_KIND_CONVERTER = 2,
    QUAC_KIND_ATTRIBUTOR = 3,
    QUAC_KIND_SCORER = 4
} quac_plugin_kind;

#define QUAC_PLUGIN_FLAG_REENTRANT (1u << 0) /* calls on one instance may overlap */

/* A plugin's self-description. Static data owned by the library, valid until deinit. It must agree
 * with the plugin's JSON manifest (id, kind); `quac-host plugins check` verifies that. */
typedef struct quac_plugin_descriptor {
    uint32_t struct_size;
    const char *id;          /* reverse-DNS, e.g. "org.quac.saliency" */
    const char *name;        /* human-readable */
    const char *version;     /* semver of the plugin */
    const char *description; /* one line */
    int32_t kind;            /* a quac_plugin_kind */
    uint32_t flags;          /* QUAC_PLUGIN_FLAG_* */
} quac_plugin_descriptor;

/* One live instance, created by the factory with its parameters. Owned by the host; freed by destroy. */
typedef struct quac_plugin {
    uint32_t struct_size;
    const quac_plugin_descriptor *descriptor;
    void *plugin_data; /* the plugin's */

    /* [main-thread] Frees the instance and everything it owns (the struct itself included: cast away
     * the const). No call on it is in flight. */
    void (*destroy)(const struct quac_plugin *self);

    /* [thread-safe] The function table registered under `id`, or NULL when absent. Kind tables
     * (QUAC_KIND_TABLE_*), the training capability (QUAC_EXT_TRAINER) and optional extensions all come
     * through here. The returned pointer lives as long as the instance. id: borrowed. */
    const void *(*get_extension)(const struct quac_plugin *self, const char *id);
} quac_plugin;

/* --- Classifier: "quac.classifier/1" --- */
#define QUAC_KIND_TABLE_CLASSIFIER "quac.classifier/1"
typedef struct quac_classifier {
    uint32_t struct_size;
    /* [instance] Fills *out (out->struct_size is set by the caller). */
    quac_status (*get_info)(const quac_plugin *self, quac_classifier_info *out);
    /* [instance] Forward pass; see host->classifier_forward for shapes and ownership. The host allocates
     * through the instance's quac_host. */
    quac_status (*forward)(const quac_plugin *self, const quac_tensor *x, quac_managed_tensor **logits);
    /* [instance] Vector-Jacobian product; see host->classifier_vjp. NULL for a forward-only classifier. */
    quac_status (*vjp)(const quac_plugin *self, const quac_tensor *x, const quac_tensor *grad_logits,
                       quac_managed_tensor **logits, quac_managed_tensor **grad_x);
} quac_classifier;

/* Classifier extension "quac.classifier.modified-backward/1": DeepLift rescale and guided backprop need
 * the network's internals, so the classifier computes them. */
#define QUAC_EXT_MODIFIED_BACKWARD "quac.classifier.modified-backward/1"
typedef struct quac_modified_backward {
    uint32_t struct_size;
    /* [instance] See host->classifier_vjp_rule. QUAC_ERR_UNSUPPORTED for a rule it does not know. */
    quac_status (*vjp_rule)(const quac_plugin *self, quac_backward_rule rule, const quac_tensor *x,
                            const quac_tensor *baseline, const quac_tensor *grad_logits,
                            quac_managed_tensor **grad_x);
} quac_modified_backward;

/* Classifier extension "quac.classifier.randomize/1" (since 1.2): re-draws the weights of its top layers,
 * for the model-randomisation sanity check (a map that does not change when the model does explains
 * nothing about the model). */
#define QUAC_EXT_CLASSIFIER_RANDOMIZE "quac.classifier.randomize/1"
typedef struct quac_classifier_randomize {
    uint32_t struct_size;
    /* [thread-safe] A JSON array of the names of the layers with weights, from the output backwards:
     * the order a cascading randomisation follows. Borrowed: valid as long as the instance. */
    const char *(*layers_json)(const quac_plugin *self);
    /* [instance] Re-draws the weights of the first `count` layers of that list from `seed`; count 0
     * puts the trained weights back. Lasts until the next call. */
    quac_status (*randomize)(const quac_plugin *self, uint32_t count, uint64_t seed);
} quac_classifier_randomize;

/* Classifier extension "quac.classifier.layers/1" (since 1.2): a named inner layer's activations and
 * the gradients through it, for layer methods (Grad-CAM, layer Integrated Gradients) and explainers
 * whose candidate maps are a layer's channels. Layer names are the classifier's own (for the engine's
 * networks, the PyTorch module paths: "features.12"). Activations are float32 [N, layer shape...]. */
#define QUAC_EXT_CLASSIFIER_LAYERS "quac.classifier.layers/1"
typedef struct quac_classifier_layers {
    uint32_t struct_size;
    /* [thread-safe] A JSON array of {"name": string, "shape": [per-sample sizes]}, one per layer a
     * caller may name, in the order the network runs them. Borrowed: valid as long as the instance. */
    const char *(*list_json)(const quac_plugin *self);
    /* [instance] The activations of `layer` for x, and f(x) from the same pass into *logits unless
     * logits is NULL. Both owned by the caller. Unknown layer: QUAC_ERR_INVALID_ARGUMENT. */
    quac_status (*forward)(const quac_plugin *self, const char *layer, const quac_tensor *x,
                           quac_managed_tensor **activations, quac_managed_tensor **logits);
    /* [instance] From the layer to the input: grad_x = (d a(x) / d x)^T grad_activations, where a(x)
     * is the layer's activations. *grad_x shaped like x, owned by the caller. */
    quac_status (*vjp_input)(const quac_plugin *self, const char *layer, const quac_tensor *x,
                             const quac_tensor *grad_activations, quac_managed_tensor **grad_x);
    /* [instance] From the logits to the layer: runs x through the network with the layer's output
     * replaced by `activations` (NULL: the layer's own), and returns
     * grad_a = (d f / d a)^T grad_logits (float32 [N, classes] borrowed) in *grad_activations, and the
     * logits of that pass in *logits unless it is NULL. */
    quac_status (*vjp_logits)(const quac_plugin *self, const char *layer, const quac_tensor *x,
                              const quac_tensor *activations, const quac_tensor *grad_logits,
                              quac_managed_tensor **logits, quac_managed_tensor **grad_activations);
} quac_classifier_layers;

/* Classifier extension "quac.classifier.weights/1" (added after 1.2; looked up by id): the network and
 * its trained weights, read-only, for plugins that start from them. */
#define QUAC_EXT_CLASSIFIER_WEIGHTS "quac.classifier.weights/1"
typedef struct quac_classifier_weights {
    uint32_t struct_size;
    /* [thread-safe] A JSON object {"format": string or null, "network": any, "tensors": [{"name":
     * string, "shape": [sizes]}, ...]}: "format" says how "network" describes the network (the engine's
     * model description is "quac.engine-model/1"; null: only the tensors are offered; a reader that does
     * not know the format uses only the tensors), "tensors" every parameter and buffer by name, each
     * name once. Borrowed: valid as long as the instance. */
    const char *(*describe_json)(const quac_plugin *self);
    /* [instance] A float32 copy of the named tensor, owned by the caller. Unknown name:
     * QUAC_ERR_INVALID_ARGUMENT. */
    quac_status (*get)(const quac_plugin *self, const char *name, quac_managed_tensor **out);
} quac_classifier_weights;

/* A borrowed tensor with a name (since 1.2). */
typedef struct quac_named_tensor {
    const char *name;
    const quac_tensor *tensor;
} quac_named_tensor;

/* --- The inputs of one batch, shared by converters, attributors and scorers. Every tensor is borrowed
 * and read-only; an input the run does not have is NULL. Shapes: x, x_cf and attribution are
 * [N, sample shape...] float32 (images are [N,C,H,W] in [-1,1]; concept tables [N,k] in [0,1]);
 * source, target are int64 [N]; concepts (since 1.1) float32 [N, k] in [0,1]: the concepts of each
 * query, from the data or the run's concept model (names: QUAC_HOST_EXT_CONCEPTS). --- */
typedef struct quac_batch {
    uint32_t struct_size;
    const quac_tensor *x;           /* the queries; always present */
    const quac_tensor *source;      /* class of each query (the class being explained) */
    const quac_tensor *target;      /* counterfactual target class */
    const quac_tensor *x_cf;        /* counterfactuals of x towards target */
    const quac_tensor *attribution; /* scorers only: the map being scored, in [0,1] */
    const quac_tensor *reference;   /* converters only: target-class images for reference style, or
                                     * NULL for latent style */
    uint64_t seed;                  /* seed for every random choice of this call */
    /* Since 1.1 (read only when struct_size covers it). */
    const quac_tensor *concepts;    /* [N, k] concepts of the queries, or NULL */
    /* Since 1.2. Other attributors' maps of these queries, for a method built on them (a SMAT-style
     * explainer mixes them). A plugin asks for them with a parameter whose schema says
     * "format": "attributors" (a list of the run's attributor names); the host computes those
     * attributors first and passes their raw maps (float32, shaped like x) here, named as in the run,
     * in the parameter's order. Scorers get the scored method's raw map here, named by the method
     * (shaped like the concepts when the method explains concepts). NULL / 0 otherwise. */
    const quac_named_tensor *maps;
    uint64_t n_maps;
    /* Since 1.2, scorers only: the JSON object the scored method put (its arrays with one entry per
     * sample cut to this batch's samples), e.g. a logic explainer's rules; NULL when it put none.
     * UTF-8, NUL-terminated. */
    const char *method_json;
} quac_batch;

/* --- Converter: "quac.converter/1" ---
 * Puts "counterfactual" (float32, shaped like x) and may put JSON
 * {"converted": [bool per sample], ...} naming the queries that never reached their target. */
#define QUAC_KIND_TABLE_CONVERTER "quac.converter/1"
typedef struct quac_converter {
    uint32_t struct_size;
    /* [instance] batch->x, batch->target are given; batch->x_cf is NULL. */
    quac_status (*convert)(const quac_plugin *self, const quac_batch *batch, const quac_output_sink *out);
} quac_converter;

/* --- Attributor: "quac.attributor/1" ---
 * Puts "attribution" (float32, shaped like x; raw, the host normalises when a method asks for it; an
 * attributor whose manifest says "explains": "concepts" puts it shaped like batch->concepts [N, k]) and
 * may put JSON, e.g. {"convergence_delta": [per sample]} or a logic explainer's {"rules": {"classes": ...}} (a
 * value that is not one entry per sample belongs in an object: the host joins arrays as long as the
 * batch across batches). */
#define QUAC_KIND_TABLE_ATTRIBUTOR "quac.attributor/1"
typedef struct quac_attributor {
    uint32_t struct_size;
    /* [instance] Explains batch->source for each query of batch->x. */
    quac_status (*attribute)(const quac_plugin *self, const quac_batch *batch, const quac_output_sink *out);
} quac_attributor;

/* --- Scorer: "quac.scorer/1" ---
 * Puts "score" (float32 [N]) and may put more tensors (e.g. "curve" [N, points]) and JSON with
 * per-sample fields (e.g. {"optimal_threshold": [...], ...}). */
#define QUAC_KIND_TABLE_SCORER "quac.scorer/1"
typedef struct quac_scorer {
    uint32_t struct_size;
    /* [instance] Scores batch->attribution as an explanation of batch->x. */
    quac_status (*score)(const quac_plugin *self, const quac_batch *batch, const quac_output_sink *out);
} quac_scorer;

/* --- Training capability: "quac.trainer/1", for instances that learn (a classifier, a StarGAN
 * converter, an empirical or SMAT-style explainer, a logic explained network). --- */

/* A dataset the host serves in batches. Fields are named tensors per sample: "x" (input), "label"
 * (int64), "target" (int64), and whatever else the run computed for the training ("x_cf", "targets":
 * another attributor's maps, "teacher_logits" and "teacher": the classifier's outputs, "concepts",
 * "maps.<name>": the maps of attributor <name> for a plugin that asks for them (quac_batch.maps)...).
 * Owned by the host and valid for the duration of the call it is passed to (train): copy what you
 * keep. */
typedef struct quac_dataset {
    uint32_t struct_size;
    void *host_data;
    int64_t count;           /* number of samples */
    int32_t num_classes;
    const char *fields_json; /* borrowed JSON array of field names, e.g. ["x","label"] */
    /* [instance] Gathers `field` for samples indices[0..n) into a new tensor [n, field shape...],
     * owned by the caller. Unknown field: QUAC_ERR_INVALID_ARGUMENT. */
    quac_status (*get)(const struct quac_dataset *self, const char *field, const int64_t *indices,
                       int64_t n, quac_managed_tensor **out);
} quac_dataset;

#define QUAC_EXT_TRAINER "quac.trainer/1"
typedef struct quac_trainer {
    uint32_t struct_size;
    /* [main-thread] Trains the instance on `train` (validating on `val`, which may be NULL). Writes its
     * checkpoints under checkpoint_dir (borrowed path, exists) and resumes from the newest one found
     * there. Reports progress, polls cancellation, and may put JSON (history, metrics) and tensors. On
     * success the instance is the trained model; `save` persists it. Deterministic under `seed`. The
     * host sets the manifest's "trainable": true only for plugins that offer this table. */
    quac_status (*train)(const quac_plugin *self, const quac_dataset *train, const quac_dataset *val,
                         const char *checkpoint_dir, uint64_t seed, const quac_output_sink *out);
    /* [main-thread] Writes the trained model to `path` (borrowed; a safetensors file the instance can be
     * created from again through its parameters). The host renames it into place. */
    quac_status (*save)(const quac_plugin *self, const char *path);
    /* [main-thread] Replaces the instance's model by one `save` wrote (path borrowed), so a trained
     * model is reused without training again. */
    quac_status (*load)(const quac_plugin *self, const char *path);
} quac_trainer;

/* ---------------------------------------------------------------------------------------------- */
/* Library entry                                                                                   */
/* ---------------------------------------------------------------------------------------------- */

/* Lists and creates the plugins of one library. Static data owned by the library. */
typedef struct quac_plugin_factory {
    uint32_t struct_size;
    /* [thread-safe] Number of plugins in the library. */
    uint32_t (*count)(const struct quac_plugin_factory *factory);
    /* [thread-safe] Descriptor `index` (0-based), or NULL when out of range. */
    const quac_plugin_descriptor *(*get_descriptor)(const struct quac_plugin_factory *factory,
                                                    uint32_t index);
    /* [main-thread] Creates plugin `plugin_id` with `params_json` (a JSON object, UTF-8, already
     * validated against the manifest's schema, with every default of the schema filled in). plugin_id
     * and params_json are borrowed: valid only during create, so copy what the instance keeps. host:
     * owned by the host, valid until the instance is destroyed. On QUAC_OK *out is a new instance owned
     * by the host. */
    quac_status (*create)(const struct quac_plugin_factory *factory, const quac_host *host,
                          const char *plugin_id, const char *params_json, const quac_plugin **out);
} quac_plugin_factory;

/* What `quac_plugin_entry` returns. Static data owned by the library. */
typedef struct quac_plugin_entry_v1 {
    uint32_t abi_major, abi_minor; /* the QUAC_ABI_VERSION the library was built with */
    /* [main-thread] Called once after loading, before anything else; may be NULL. library_path:
     * borrowed, the absolute path it was loaded from (to find files shipped beside it). Not QUAC_OK:
     * the host unloads the library without calling deinit. */
    quac_status (*init)(const char *library_path);
    /* [main-thread] Called once before unloading; every instance has been destroyed. May be NULL. */
    void (*deinit)(void);
    const quac_plugin_factory *factory;
} quac_plugin_entry_v1;

/* The one exported symbol. [main-thread] The host passes its own ABI version; the library returns its
 * entry (which states the library's version; the host refuses another major), or NULL when it cannot
 * serve a host of that version. */
#define QUAC_PLUGIN_ENTRY_SYMBOL "quac_plugin_entry"
typedef const quac_plugin_entry_v1 *(*quac_plugin_entry_fn)(uint32_t host_abi_major,
                                                            uint32_t host_abi_minor);

#ifdef __cplusplus
}
#endif

#endif /* QUAC_PLUGIN_H */
