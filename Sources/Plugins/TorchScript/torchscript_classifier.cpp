/*
 * torchscript_classifier.cpp -- org.quac.torchscript-classifier: a PyTorch classifier saved with
 * torch.jit.save (scripted or traced), run by libtorch, behind the same C ABI every plugin uses.
 *
 * forward:  logits = module(x) under inference mode, the module in evaluation mode.
 * vjp:      grad_x = torch::autograd::grad(module(x), x, grad_logits): PyTorch's own backward.
 * No QUAC_EXT_MODIFIED_BACKWARD: libtorch has no DeepLift or guided-backprop rules for an arbitrary
 * scripted graph, so methods that need them are refused by the host, naming this plugin and the
 * extension.
 *
 * Threads: libtorch's intra-op pool follows the host's engine setting (QUAC_ENGINE_THREADS, else every
 * core), set once when the library is initialised.
 *
 * Exceptions never cross the ABI: every entry point runs its body through `guarded`, which turns
 * c10::Error, std::bad_alloc and anything else into a status and a one-line message.
 */
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/script.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "quac_sdk.h"

namespace {

struct Instance {
    torch::jit::Module module;
    std::string path;
    std::vector<int64_t> sample_shape;
    int64_t num_classes = 0;
};

// An error the plugin raises itself: its status and message go to the host as they are.
struct Failure {
    quac_status status;
    std::string message;
};

std::string first_line(const std::string &s) {
    std::string line = s.substr(0, s.find('\n'));
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
    return line.empty() ? std::string("(no message)") : line;
}

// The line of a libtorch message that says what went wrong: TorchScript interpreter errors put a
// traceback first and the error ("RuntimeError: mat1 and mat2 shapes cannot be multiplied ...") last.
std::string summary(const std::string &s) {
    size_t at = s.rfind("Error: ");
    if (at != std::string::npos) {
        size_t start = s.rfind('\n', at);
        start = start == std::string::npos ? 0 : start + 1;
        return first_line(s.substr(start));
    }
    return first_line(s);
}

std::string shape_string(const std::vector<int64_t> &shape) {
    std::ostringstream out;
    out << "[";
    for (size_t i = 0; i < shape.size(); i++) out << (i ? ", " : "") << shape[i];
    out << "]";
    return out.str();
}

// Runs `body`, turning anything it throws into a status and set_error. `context` prefixes messages
// that come from libtorch (the model's file).
template <typename Body>
quac_status guarded(const quac_host *host, const std::string &context, Body body) {
    try {
        body();
        return QUAC_OK;
    } catch (const Failure &f) {
        return quac_sdk_fail(host, f.status, "%s", f.message.c_str());
    } catch (const c10::Error &e) {
        return quac_sdk_fail(host, QUAC_ERR_INVALID_ARGUMENT, "%s: libtorch: %s", context.c_str(),
                             summary(e.what_without_backtrace()).c_str());
    } catch (const std::bad_alloc &) {
        return quac_sdk_fail(host, QUAC_ERR_OUT_OF_MEMORY, "%s: out of memory", context.c_str());
    } catch (const std::exception &e) {
        // TorchScript interpreter errors (a module failing on its input) are std::runtime_errors.
        return quac_sdk_fail(host, QUAC_ERR_INVALID_ARGUMENT, "%s: %s", context.c_str(), summary(e.what()).c_str());
    } catch (...) {
        return quac_sdk_fail(host, QUAC_ERR_INTERNAL, "%s: unknown C++ exception", context.c_str());
    }
}

void check(quac_status status) {
    // The SDK helpers have already given the host their message.
    if (status != QUAC_OK) throw status;
}

// x must be float32 [N, sample shape...], compact, finite. Returns N.
int64_t check_batch(const quac_host *host, const Instance &inst, const quac_tensor *x, const char *name) {
    check(quac_sdk_check_tensor(host, x, name, (int32_t)inst.sample_shape.size() + 1, true));
    for (size_t d = 0; d < inst.sample_shape.size(); d++) {
        if (x->shape[d + 1] != inst.sample_shape[d]) {
            char buf[128];
            throw Failure{QUAC_ERR_INVALID_ARGUMENT,
                          std::string(name) + ": expected shape [N, " + shape_string(inst.sample_shape).substr(1) +
                              ", got " + quac_sdk_shape_string(x, buf, sizeof buf)};
        }
    }
    check(quac_sdk_check_finite(host, x, name));
    return x->shape[0];
}

// A torch view of a borrowed host tensor (never written: inputs are read-only).
torch::Tensor view(const quac_tensor *t) {
    std::vector<int64_t> sizes(t->shape, t->shape + t->ndim);
    return torch::from_blob(quac_sdk_f32(t), sizes, torch::TensorOptions().dtype(torch::kFloat32));
}

// The module's output, which must be one float tensor [n, classes].
torch::Tensor logits_of(const Instance &inst, const torch::IValue &out, int64_t n) {
    if (!out.isTensor()) {
        throw Failure{QUAC_ERR_INVALID_ARGUMENT, "model " + inst.path + ": the module returns a " +
                                                     out.tagKind() + ", not one tensor of logits"};
    }
    torch::Tensor y = out.toTensor();
    if (y.dim() != 2 || y.size(0) != n || (inst.num_classes > 0 && y.size(1) != inst.num_classes) ||
        !y.is_floating_point()) {
        std::ostringstream msg;
        msg << "model " << inst.path << ": the module maps [" << n << ", " << shape_string(inst.sample_shape).substr(1)
            << " to " << y.sizes() << " " << y.dtype() << ", expected [" << n << ", "
            << (inst.num_classes > 0 ? std::to_string(inst.num_classes) : std::string("classes")) << "] float";
        throw Failure{QUAC_ERR_INVALID_ARGUMENT, msg.str()};
    }
    return y.to(torch::kFloat32).contiguous();
}

// Copies a compact float32 torch tensor into a host-allocated output.
quac_managed_tensor *to_host(const quac_host *host, const torch::Tensor &t) {
    std::vector<int64_t> sizes(t.sizes().begin(), t.sizes().end());
    quac_managed_tensor *out = nullptr;
    check(quac_sdk_alloc_f32(host, (int32_t)sizes.size(), sizes.data(), &out));
    std::memcpy(quac_sdk_f32(&out->tensor), t.data_ptr<float>(), (size_t)t.numel() * sizeof(float));
    return out;
}

torch::Tensor run(const Instance &inst, const torch::Tensor &x) {
    std::vector<torch::IValue> inputs{x};
    return logits_of(inst, const_cast<torch::jit::Module &>(inst.module).forward(inputs), x.size(0));
}

// MARK: the classifier table

quac_status get_info(const quac_plugin *self, quac_classifier_info *out) {
    const quac_host *host = quac_sdk_plugin_host(self);
    const Instance &inst = *static_cast<Instance *>(self->plugin_data);
    return guarded(host, "model " + inst.path, [&] {
        if (out == nullptr) throw Failure{QUAC_ERR_INVALID_ARGUMENT, "get_info: no output struct"};
        out->num_classes = (int32_t)inst.num_classes;
        out->input_ndim = (int32_t)inst.sample_shape.size();
        for (int i = 0; i < 4; i++) out->input_shape[i] = i < (int)inst.sample_shape.size() ? inst.sample_shape[i] : 0;
        out->has_vjp = true;
    });
}

quac_status forward(const quac_plugin *self, const quac_tensor *x, quac_managed_tensor **logits) {
    const quac_host *host = quac_sdk_plugin_host(self);
    const Instance &inst = *static_cast<Instance *>(self->plugin_data);
    if (logits) *logits = nullptr;
    quac_status status = QUAC_OK;
    quac_status body = guarded(host, "model " + inst.path, [&] {
        try {
            if (logits == nullptr) throw Failure{QUAC_ERR_INVALID_ARGUMENT, "forward: no output pointer"};
            int64_t n = check_batch(host, inst, x, "x");
            torch::Tensor y;
            if (n == 0) {
                y = torch::zeros({0, inst.num_classes});
            } else {
                c10::InferenceMode guard;
                y = run(inst, view(x));
            }
            *logits = to_host(host, y);
        } catch (quac_status s) {
            status = s;
        }
    });
    return body != QUAC_OK ? body : status;
}

quac_status vjp(const quac_plugin *self, const quac_tensor *x, const quac_tensor *grad_logits,
                quac_managed_tensor **logits, quac_managed_tensor **grad_x) {
    const quac_host *host = quac_sdk_plugin_host(self);
    const Instance &inst = *static_cast<Instance *>(self->plugin_data);
    if (logits) *logits = nullptr;
    if (grad_x) *grad_x = nullptr;
    quac_managed_tensor *y_out = nullptr, *g_out = nullptr;
    quac_status status = QUAC_OK;
    quac_status body = guarded(host, "model " + inst.path, [&] {
        try {
            if (grad_x == nullptr) throw Failure{QUAC_ERR_INVALID_ARGUMENT, "vjp: no output pointer"};
            int64_t n = check_batch(host, inst, x, "x");
            check(quac_sdk_check_tensor(host, grad_logits, "grad_logits", 2, true));
            if (grad_logits->shape[0] != n || grad_logits->shape[1] != inst.num_classes) {
                char buf[128];
                throw Failure{QUAC_ERR_INVALID_ARGUMENT,
                              "grad_logits: expected shape [" + std::to_string(n) + ", " +
                                  std::to_string(inst.num_classes) + "], got " +
                                  quac_sdk_shape_string(grad_logits, buf, sizeof buf)};
            }
            check(quac_sdk_check_finite(host, grad_logits, "grad_logits"));
            torch::Tensor y, g;
            if (n == 0) {
                y = torch::zeros({0, inst.num_classes});
                g = torch::zeros(std::vector<int64_t>(x->shape, x->shape + x->ndim));
            } else {
                torch::Tensor xv = view(x).clone().requires_grad_(true);
                y = run(inst, xv);
                auto grads = torch::autograd::grad({y}, {xv}, {view(grad_logits)}, /*retain_graph=*/false,
                                                   /*create_graph=*/false, /*allow_unused=*/true);
                g = grads[0].defined() ? grads[0].contiguous() : torch::zeros_like(xv);
                y = y.detach();
            }
            if (logits) y_out = to_host(host, y);
            g_out = to_host(host, g.to(torch::kFloat32).contiguous());
        } catch (quac_status s) {
            status = s;
        }
    });
    if (body != QUAC_OK || status != QUAC_OK) {
        quac_sdk_release(y_out);
        quac_sdk_release(g_out);
        return body != QUAC_OK ? body : status;
    }
    if (logits) *logits = y_out;
    *grad_x = g_out;
    return QUAC_OK;
}

const quac_classifier classifier_table = {sizeof(quac_classifier), get_info, forward, vjp};
const quac_sdk_extension extensions[] = {{QUAC_KIND_TABLE_CLASSIFIER, &classifier_table}, {nullptr, nullptr}};

const quac_plugin_descriptor descriptor = {
    sizeof(quac_plugin_descriptor),
    "org.quac.torchscript-classifier",
    "TorchScript classifier",
    "1.0.0",
    "A PyTorch classifier saved with torch.jit.save, run by libtorch: forward and autograd's vector-Jacobian product",
    QUAC_KIND_CLASSIFIER,
    0,
};

void free_instance(void *data) {
    try {
        delete static_cast<Instance *>(data);
    } catch (...) {
        // A destructor that throws has nowhere to report; the memory is gone either way.
    }
}

// Reads the parameters, loads the file, and runs one zero sample to check input_shape (and
// num_classes) before any batch runs.
quac_status create(const quac_host *host, const quac_plugin_descriptor *desc, const char *params_json,
                   const quac_plugin **out) {
    quac_sdk_params *params = quac_sdk_params_parse(host, params_json);
    if (params == nullptr) return QUAC_ERR_INVALID_ARGUMENT;
    Instance *inst = nullptr;
    quac_status status = QUAC_OK;
    quac_status body = guarded(host, "torchscript-classifier", [&] {
        try {
            const char *path = nullptr;
            check(quac_sdk_param_string(params, "model", nullptr, &path));
            if (path == nullptr || *path == '\0') {
                throw Failure{QUAC_ERR_INVALID_ARGUMENT, "parameter \"model\": the TorchScript file is required"};
            }
            int64_t classes = 0;
            check(quac_sdk_param_int64(params, "num_classes", 0, &classes));
            int64_t dims[4];
            size_t ndims = 0;
            check(quac_sdk_param_int64_list(params, "input_shape", dims, 4, &ndims));
            if (ndims == 0) throw Failure{QUAC_ERR_INVALID_ARGUMENT, "parameter \"input_shape\": the shape of one sample is required"};
            std::vector<int64_t> shape(dims, dims + ndims);
            for (int64_t d : shape) {
                if (d < 1) throw Failure{QUAC_ERR_INVALID_ARGUMENT, "parameter \"input_shape\": sizes must be positive, got " + shape_string(shape)};
            }
            inst = new Instance();
            inst->path = path;
            inst->sample_shape = shape;
            inst->num_classes = classes;
            try {
                inst->module = torch::jit::load(inst->path, torch::kCPU);
            } catch (const c10::Error &e) {
                throw Failure{QUAC_ERR_IO, "model " + inst->path + ": not a TorchScript file torch.jit.load can read (" +
                                               first_line(e.what_without_backtrace()) + ")"};
            }
            inst->module.eval();
            std::vector<int64_t> probe_shape{1};
            probe_shape.insert(probe_shape.end(), shape.begin(), shape.end());
            torch::Tensor y;
            try {
                c10::InferenceMode guard;
                y = run(*inst, torch::zeros(probe_shape));
            } catch (const c10::Error &e) {
                throw Failure{QUAC_ERR_INVALID_ARGUMENT, "model " + inst->path + ": input_shape " + shape_string(shape) +
                                                             ": the module fails on a zero sample of that shape (" +
                                                             summary(e.what_without_backtrace()) + ")"};
            } catch (const std::exception &e) {
                // TorchScript interpreter errors (torch::jit::JITException) are std::runtime_errors.
                throw Failure{QUAC_ERR_INVALID_ARGUMENT, "model " + inst->path + ": input_shape " + shape_string(shape) +
                                                             ": the module fails on a zero sample of that shape (" +
                                                             summary(e.what()) + ")"};
            }
            if (inst->num_classes == 0) inst->num_classes = y.size(1);
            check(quac_sdk_plugin_new(host, desc, extensions, inst, free_instance, out));
        } catch (quac_status s) {
            status = s;
        }
    });
    quac_sdk_params_free(params);
    if (body != QUAC_OK || status != QUAC_OK) {
        free_instance(inst);
        return body != QUAC_OK ? body : status;
    }
    return QUAC_OK;
}

quac_status library_init(const char *) {
    try {
        int threads = 0;
        if (const char *env = std::getenv("QUAC_ENGINE_THREADS")) threads = std::atoi(env);
        if (threads <= 0) threads = (int)std::thread::hardware_concurrency();
        if (threads > 0) at::set_num_threads(threads);
        return QUAC_OK;
    } catch (...) {
        return QUAC_ERR_INTERNAL;
    }
}

void library_deinit(void) {}

const quac_sdk_plugin_def plugins[] = {{&descriptor, create}};
const quac_sdk_simple_factory factory = QUAC_SDK_SIMPLE_FACTORY_HOOKS(plugins, library_init, library_deinit);

}  // namespace

QUAC_SDK_DEFINE_ENTRY(&factory);
