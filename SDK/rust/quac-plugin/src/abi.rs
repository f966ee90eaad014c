//! The ABI of `SDK/include/quac_plugin.h` (version 1.2), field for field. This file is the only
//! transcription of the header; `tests/layout.rs` compiles a C program against the header and checks
//! the size of every struct and the offset of every field here against it.
#![allow(non_camel_case_types)]

use std::os::raw::{c_char, c_void};

pub const QUAC_ABI_VERSION_MAJOR: u32 = 1;
pub const QUAC_ABI_VERSION_MINOR: u32 = 2;

pub type quac_status = i32;
pub const QUAC_OK: quac_status = 0;
pub const QUAC_ERR_INVALID_ARGUMENT: quac_status = 1;
pub const QUAC_ERR_UNSUPPORTED: quac_status = 2;
pub const QUAC_ERR_OUT_OF_MEMORY: quac_status = 3;
pub const QUAC_ERR_CANCELLED: quac_status = 4;
pub const QUAC_ERR_IO: quac_status = 5;
pub const QUAC_ERR_VERSION: quac_status = 6;
pub const QUAC_ERR_INTERNAL: quac_status = 7;

pub const QUAC_DEVICE_CPU: i32 = 1;
pub const QUAC_DTYPE_INT: u8 = 0;
pub const QUAC_DTYPE_UINT: u8 = 1;
pub const QUAC_DTYPE_FLOAT: u8 = 2;
pub const QUAC_DTYPE_BOOL: u8 = 6;
pub const QUAC_TENSOR_FLAG_READ_ONLY: u64 = 1;

/// C enums passed by value in function signatures (quac_log_level, quac_backward_rule) are `int`.
pub type quac_log_level = i32;
pub const QUAC_LOG_DEBUG: quac_log_level = 0;
pub const QUAC_LOG_INFO: quac_log_level = 1;
pub const QUAC_LOG_WARNING: quac_log_level = 2;
pub const QUAC_LOG_ERROR: quac_log_level = 3;
pub type quac_backward_rule = i32;
pub const QUAC_RULE_DEEPLIFT_RESCALE: quac_backward_rule = 1;
pub const QUAC_RULE_GUIDED_BACKPROP: quac_backward_rule = 2;

pub const QUAC_KIND_CLASSIFIER: i32 = 1;
pub const QUAC_KIND_CONVERTER: i32 = 2;
pub const QUAC_KIND_ATTRIBUTOR: i32 = 3;
pub const QUAC_KIND_SCORER: i32 = 4;
pub const QUAC_PLUGIN_FLAG_REENTRANT: u32 = 1;

pub const QUAC_KIND_TABLE_CLASSIFIER: &str = "quac.classifier/1";
pub const QUAC_KIND_TABLE_CONVERTER: &str = "quac.converter/1";
pub const QUAC_KIND_TABLE_ATTRIBUTOR: &str = "quac.attributor/1";
pub const QUAC_KIND_TABLE_SCORER: &str = "quac.scorer/1";
pub const QUAC_HOST_EXT_CONCEPTS: &str = "quac.host.concepts/1";
pub const QUAC_HOST_EXT_CLASSIFIER_LAYERS: &str = "quac.host.classifier-layers/1";
pub const QUAC_HOST_EXT_SCORED_METHOD: &str = "quac.host.scored-method/1";
pub const QUAC_EXT_MODIFIED_BACKWARD: &str = "quac.classifier.modified-backward/1";
pub const QUAC_EXT_CLASSIFIER_RANDOMIZE: &str = "quac.classifier.randomize/1";
pub const QUAC_EXT_CLASSIFIER_LAYERS: &str = "quac.classifier.layers/1";
pub const QUAC_EXT_CLASSIFIER_WEIGHTS: &str = "quac.classifier.weights/1";
pub const QUAC_HOST_EXT_CLASSIFIER_WEIGHTS: &str = "quac.host.classifier-weights/1";
pub const QUAC_EXT_TRAINER: &str = "quac.trainer/1";
pub const QUAC_PLUGIN_ENTRY_SYMBOL: &str = "quac_plugin_entry";

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct quac_device {
    pub device_type: i32,
    pub device_id: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct quac_dtype {
    pub code: u8,
    pub bits: u8,
    pub lanes: u16,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct quac_tensor {
    pub data: *mut c_void,
    pub device: quac_device,
    pub ndim: i32,
    pub dtype: quac_dtype,
    pub shape: *mut i64,
    pub strides: *mut i64,
    pub byte_offset: u64,
}

/// The anonymous `version` struct of quac_managed_tensor.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct quac_dlpack_version {
    pub major: u32,
    pub minor: u32,
}

#[repr(C)]
pub struct quac_managed_tensor {
    pub version: quac_dlpack_version,
    pub manager_ctx: *mut c_void,
    pub deleter: Option<unsafe extern "C" fn(self_: *mut quac_managed_tensor)>,
    pub flags: u64,
    pub tensor: quac_tensor,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct quac_classifier_info {
    pub struct_size: u32,
    pub num_classes: i32,
    pub input_ndim: i32,
    pub input_shape: [i64; 4],
    pub has_vjp: bool,
}

#[repr(C)]
pub struct quac_host {
    pub struct_size: u32,
    pub abi_major: u32,
    pub abi_minor: u32,
    pub host_data: *mut c_void,
    pub log: Option<unsafe extern "C" fn(host: *const quac_host, level: quac_log_level, message: *const c_char)>,
    pub progress: Option<unsafe extern "C" fn(host: *const quac_host, done: i64, total: i64, label: *const c_char)>,
    pub is_cancelled: Option<unsafe extern "C" fn(host: *const quac_host) -> bool>,
    pub set_error: Option<unsafe extern "C" fn(host: *const quac_host, message: *const c_char)>,
    pub tensor_alloc: Option<
        unsafe extern "C" fn(host: *const quac_host, dtype: quac_dtype, ndim: i32, shape: *const i64, out: *mut *mut quac_managed_tensor) -> quac_status,
    >,
    pub classifier_info: Option<unsafe extern "C" fn(host: *const quac_host, out: *mut quac_classifier_info) -> quac_status>,
    pub classifier_forward:
        Option<unsafe extern "C" fn(host: *const quac_host, x: *const quac_tensor, logits: *mut *mut quac_managed_tensor) -> quac_status>,
    pub classifier_vjp: Option<
        unsafe extern "C" fn(
            host: *const quac_host,
            x: *const quac_tensor,
            grad_logits: *const quac_tensor,
            logits: *mut *mut quac_managed_tensor,
            grad_x: *mut *mut quac_managed_tensor,
        ) -> quac_status,
    >,
    pub classifier_vjp_rule: Option<
        unsafe extern "C" fn(
            host: *const quac_host,
            rule: quac_backward_rule,
            x: *const quac_tensor,
            baseline: *const quac_tensor,
            grad_logits: *const quac_tensor,
            grad_x: *mut *mut quac_managed_tensor,
        ) -> quac_status,
    >,
    pub converter_convert: Option<
        unsafe extern "C" fn(
            host: *const quac_host,
            x: *const quac_tensor,
            target: *const quac_tensor,
            reference: *const quac_tensor,
            seed: u64,
            x_cf: *mut *mut quac_managed_tensor,
        ) -> quac_status,
    >,
    /// Since 1.1.
    pub get_extension: Option<unsafe extern "C" fn(host: *const quac_host, id: *const c_char) -> *const c_void>,
}

#[repr(C)]
pub struct quac_host_concepts {
    pub struct_size: u32,
    pub names_json: Option<unsafe extern "C" fn(host: *const quac_host) -> *const c_char>,
}

#[repr(C)]
pub struct quac_host_classifier_layers {
    pub struct_size: u32,
    pub list_json: Option<unsafe extern "C" fn(host: *const quac_host) -> *const c_char>,
    pub forward: Option<
        unsafe extern "C" fn(
            host: *const quac_host,
            layer: *const c_char,
            x: *const quac_tensor,
            activations: *mut *mut quac_managed_tensor,
            logits: *mut *mut quac_managed_tensor,
        ) -> quac_status,
    >,
    pub vjp_input: Option<
        unsafe extern "C" fn(
            host: *const quac_host,
            layer: *const c_char,
            x: *const quac_tensor,
            grad_activations: *const quac_tensor,
            grad_x: *mut *mut quac_managed_tensor,
        ) -> quac_status,
    >,
    pub vjp_logits: Option<
        unsafe extern "C" fn(
            host: *const quac_host,
            layer: *const c_char,
            x: *const quac_tensor,
            activations: *const quac_tensor,
            grad_logits: *const quac_tensor,
            logits: *mut *mut quac_managed_tensor,
            grad_activations: *mut *mut quac_managed_tensor,
        ) -> quac_status,
    >,
}

#[repr(C)]
pub struct quac_host_scored_method {
    pub struct_size: u32,
    pub attribute:
        Option<unsafe extern "C" fn(host: *const quac_host, batch: *const quac_batch, attribution: *mut *mut quac_managed_tensor) -> quac_status>,
    pub attribute_randomized: Option<
        unsafe extern "C" fn(
            host: *const quac_host,
            batch: *const quac_batch,
            count: u32,
            seed: u64,
            attribution: *mut *mut quac_managed_tensor,
        ) -> quac_status,
    >,
}

#[repr(C)]
pub struct quac_output_sink {
    pub struct_size: u32,
    pub host_data: *mut c_void,
    pub put_tensor:
        Option<unsafe extern "C" fn(sink: *const quac_output_sink, name: *const c_char, tensor: *mut quac_managed_tensor) -> quac_status>,
    pub put_json: Option<unsafe extern "C" fn(sink: *const quac_output_sink, json: *const c_char, len: usize) -> quac_status>,
}

#[repr(C)]
pub struct quac_plugin_descriptor {
    pub struct_size: u32,
    pub id: *const c_char,
    pub name: *const c_char,
    pub version: *const c_char,
    pub description: *const c_char,
    pub kind: i32,
    pub flags: u32,
}

#[repr(C)]
pub struct quac_plugin {
    pub struct_size: u32,
    pub descriptor: *const quac_plugin_descriptor,
    pub plugin_data: *mut c_void,
    pub destroy: Option<unsafe extern "C" fn(self_: *const quac_plugin)>,
    pub get_extension: Option<unsafe extern "C" fn(self_: *const quac_plugin, id: *const c_char) -> *const c_void>,
}

#[repr(C)]
pub struct quac_classifier {
    pub struct_size: u32,
    pub get_info: Option<unsafe extern "C" fn(self_: *const quac_plugin, out: *mut quac_classifier_info) -> quac_status>,
    pub forward:
        Option<unsafe extern "C" fn(self_: *const quac_plugin, x: *const quac_tensor, logits: *mut *mut quac_managed_tensor) -> quac_status>,
    pub vjp: Option<
        unsafe extern "C" fn(
            self_: *const quac_plugin,
            x: *const quac_tensor,
            grad_logits: *const quac_tensor,
            logits: *mut *mut quac_managed_tensor,
            grad_x: *mut *mut quac_managed_tensor,
        ) -> quac_status,
    >,
}

#[repr(C)]
pub struct quac_modified_backward {
    pub struct_size: u32,
    pub vjp_rule: Option<
        unsafe extern "C" fn(
            self_: *const quac_plugin,
            rule: quac_backward_rule,
            x: *const quac_tensor,
            baseline: *const quac_tensor,
            grad_logits: *const quac_tensor,
            grad_x: *mut *mut quac_managed_tensor,
        ) -> quac_status,
    >,
}

#[repr(C)]
pub struct quac_host_classifier_weights {
    pub struct_size: u32,
    pub describe_json: Option<unsafe extern "C" fn(host: *const quac_host) -> *const c_char>,
    pub get: Option<unsafe extern "C" fn(host: *const quac_host, name: *const c_char, out: *mut *mut quac_managed_tensor) -> quac_status>,
}

#[repr(C)]
pub struct quac_classifier_weights {
    pub struct_size: u32,
    pub describe_json: Option<unsafe extern "C" fn(self_: *const quac_plugin) -> *const c_char>,
    pub get: Option<unsafe extern "C" fn(self_: *const quac_plugin, name: *const c_char, out: *mut *mut quac_managed_tensor) -> quac_status>,
}

#[repr(C)]
pub struct quac_classifier_randomize {
    pub struct_size: u32,
    pub layers_json: Option<unsafe extern "C" fn(self_: *const quac_plugin) -> *const c_char>,
    pub randomize: Option<unsafe extern "C" fn(self_: *const quac_plugin, count: u32, seed: u64) -> quac_status>,
}

#[repr(C)]
pub struct quac_classifier_layers {
    pub struct_size: u32,
    pub list_json: Option<unsafe extern "C" fn(self_: *const quac_plugin) -> *const c_char>,
    pub forward: Option<
        unsafe extern "C" fn(
            self_: *const quac_plugin,
            layer: *const c_char,
            x: *const quac_tensor,
            activations: *mut *mut quac_managed_tensor,
            logits: *mut *mut quac_managed_tensor,
        ) -> quac_status,
    >,
    pub vjp_input: Option<
        unsafe extern "C" fn(
            self_: *const quac_plugin,
            layer: *const c_char,
            x: *const quac_tensor,
            grad_activations: *const quac_tensor,
            grad_x: *mut *mut quac_managed_tensor,
        ) -> quac_status,
    >,
    pub vjp_logits: Option<
        unsafe extern "C" fn(
            self_: *const quac_plugin,
            layer: *const c_char,
            x: *const quac_tensor,
            activations: *const quac_tensor,
            grad_logits: *const quac_tensor,
            logits: *mut *mut quac_managed_tensor,
            grad_activations: *mut *mut quac_managed_tensor,
        ) -> quac_status,
    >,
}

#[repr(C)]
pub struct quac_named_tensor {
    pub name: *const c_char,
    pub tensor: *const quac_tensor,
}

#[repr(C)]
pub struct quac_batch {
    pub struct_size: u32,
    pub x: *const quac_tensor,
    pub source: *const quac_tensor,
    pub target: *const quac_tensor,
    pub x_cf: *const quac_tensor,
    pub attribution: *const quac_tensor,
    pub reference: *const quac_tensor,
    pub seed: u64,
    /// Since 1.1.
    pub concepts: *const quac_tensor,
    /// Since 1.2.
    pub maps: *const quac_named_tensor,
    pub n_maps: u64,
    pub method_json: *const c_char,
}

/// The one function of converters, attributors and scorers (their tables have the same layout).
pub type quac_batch_fn =
    Option<unsafe extern "C" fn(self_: *const quac_plugin, batch: *const quac_batch, out: *const quac_output_sink) -> quac_status>;

#[repr(C)]
pub struct quac_converter {
    pub struct_size: u32,
    pub convert: quac_batch_fn,
}

#[repr(C)]
pub struct quac_attributor {
    pub struct_size: u32,
    pub attribute: quac_batch_fn,
}

#[repr(C)]
pub struct quac_scorer {
    pub struct_size: u32,
    pub score: quac_batch_fn,
}

#[repr(C)]
pub struct quac_dataset {
    pub struct_size: u32,
    pub host_data: *mut c_void,
    pub count: i64,
    pub num_classes: i32,
    pub fields_json: *const c_char,
    pub get: Option<
        unsafe extern "C" fn(
            self_: *const quac_dataset,
            field: *const c_char,
            indices: *const i64,
            n: i64,
            out: *mut *mut quac_managed_tensor,
        ) -> quac_status,
    >,
}

#[repr(C)]
pub struct quac_trainer {
    pub struct_size: u32,
    pub train: Option<
        unsafe extern "C" fn(
            self_: *const quac_plugin,
            train: *const quac_dataset,
            val: *const quac_dataset,
            checkpoint_dir: *const c_char,
            seed: u64,
            out: *const quac_output_sink,
        ) -> quac_status,
    >,
    pub save: Option<unsafe extern "C" fn(self_: *const quac_plugin, path: *const c_char) -> quac_status>,
    pub load: Option<unsafe extern "C" fn(self_: *const quac_plugin, path: *const c_char) -> quac_status>,
}

#[repr(C)]
pub struct quac_plugin_factory {
    pub struct_size: u32,
    pub count: Option<unsafe extern "C" fn(factory: *const quac_plugin_factory) -> u32>,
    pub get_descriptor: Option<unsafe extern "C" fn(factory: *const quac_plugin_factory, index: u32) -> *const quac_plugin_descriptor>,
    pub create: Option<
        unsafe extern "C" fn(
            factory: *const quac_plugin_factory,
            host: *const quac_host,
            plugin_id: *const c_char,
            params_json: *const c_char,
            out: *mut *const quac_plugin,
        ) -> quac_status,
    >,
}

#[repr(C)]
pub struct quac_plugin_entry_v1 {
    pub abi_major: u32,
    pub abi_minor: u32,
    pub init: Option<unsafe extern "C" fn(library_path: *const c_char) -> quac_status>,
    pub deinit: Option<unsafe extern "C" fn()>,
    pub factory: *const quac_plugin_factory,
}
