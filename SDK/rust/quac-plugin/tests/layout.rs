//! The ABI's Rust types against the C header: a C program compiled here prints sizeof of every struct
//! and offsetof of every field, and each must equal what Rust lays out. Also the constants.

use ::quac_plugin::abi::*;
use std::collections::BTreeMap;
use std::mem::{align_of, size_of, MaybeUninit};
use std::path::PathBuf;
use std::process::Command;

macro_rules! offset {
    ($t:ty, $f:ident) => {{
        let u = MaybeUninit::<$t>::uninit();
        let base = u.as_ptr();
        // addr_of! on an uninitialised value computes the address without reading it.
        let field = unsafe { std::ptr::addr_of!((*base).$f) };
        field as usize - base as usize
    }};
}

/// (C expression, C name of the struct or field, Rust value) for every size, alignment and offset.
macro_rules! layouts {
    ($($s:ident { $($f:ident),* $(,)? })*) => {{
        let mut v: Vec<(String, usize)> = Vec::new();
        $(
            v.push((format!("sizeof({})", stringify!($s)), size_of::<$s>()));
            v.push((format!("_Alignof({})", stringify!($s)), align_of::<$s>()));
            $( v.push((format!("offsetof({}, {})", stringify!($s), stringify!($f)), offset!($s, $f))); )*
        )*
        v
    }};
}

fn rust_layouts() -> Vec<(String, usize)> {
    let mut v = layouts! {
        quac_device { device_type, device_id }
        quac_dtype { code, bits, lanes }
        quac_tensor { data, device, ndim, dtype, shape, strides, byte_offset }
        quac_managed_tensor { version, manager_ctx, deleter, flags, tensor }
        quac_classifier_info { struct_size, num_classes, input_ndim, input_shape, has_vjp }
        quac_host { struct_size, abi_major, abi_minor, host_data, log, progress, is_cancelled, set_error, tensor_alloc,
                    classifier_info, classifier_forward, classifier_vjp, classifier_vjp_rule, converter_convert, get_extension }
        quac_host_concepts { struct_size, names_json }
        quac_host_classifier_layers { struct_size, list_json, forward, vjp_input, vjp_logits }
        quac_host_scored_method { struct_size, attribute, attribute_randomized }
        quac_output_sink { struct_size, host_data, put_tensor, put_json }
        quac_plugin_descriptor { struct_size, id, name, version, description, kind, flags }
        quac_plugin { struct_size, descriptor, plugin_data, destroy, get_extension }
        quac_classifier { struct_size, get_info, forward, vjp }
        quac_modified_backward { struct_size, vjp_rule }
        quac_classifier_randomize { struct_size, layers_json, randomize }
        quac_classifier_layers { struct_size, list_json, forward, vjp_input, vjp_logits }
        quac_classifier_weights { struct_size, describe_json, get }
        quac_host_classifier_weights { struct_size, describe_json, get }
        quac_named_tensor { name, tensor }
        quac_batch { struct_size, x, source, target, x_cf, attribution, reference, seed, concepts, maps, n_maps, method_json }
        quac_converter { struct_size, convert }
        quac_attributor { struct_size, attribute }
        quac_scorer { struct_size, score }
        quac_dataset { struct_size, host_data, count, num_classes, fields_json, get }
        quac_trainer { struct_size, train, save, load }
        quac_plugin_factory { struct_size, count, get_descriptor, create }
        quac_plugin_entry_v1 { abi_major, abi_minor, init, deinit, factory }
    };
    // The anonymous version struct of quac_managed_tensor, through a field of it.
    v.push(("sizeof(((quac_managed_tensor *)0)->version)".into(), size_of::<quac_dlpack_version>()));
    v.push(("offsetof(quac_managed_tensor, version.minor)".into(), offset!(quac_dlpack_version, minor)));
    // Enums passed by value are C ints.
    v.push(("sizeof(quac_log_level)".into(), size_of::<quac_log_level>()));
    v.push(("sizeof(quac_backward_rule)".into(), size_of::<quac_backward_rule>()));
    v
}

fn rust_constants() -> Vec<(&'static str, i64)> {
    vec![
        ("QUAC_ABI_VERSION_MAJOR", QUAC_ABI_VERSION_MAJOR as i64),
        ("QUAC_ABI_VERSION_MINOR", QUAC_ABI_VERSION_MINOR as i64),
        ("QUAC_OK", QUAC_OK as i64),
        ("QUAC_ERR_INVALID_ARGUMENT", QUAC_ERR_INVALID_ARGUMENT as i64),
        ("QUAC_ERR_UNSUPPORTED", QUAC_ERR_UNSUPPORTED as i64),
        ("QUAC_ERR_OUT_OF_MEMORY", QUAC_ERR_OUT_OF_MEMORY as i64),
        ("QUAC_ERR_CANCELLED", QUAC_ERR_CANCELLED as i64),
        ("QUAC_ERR_IO", QUAC_ERR_IO as i64),
        ("QUAC_ERR_VERSION", QUAC_ERR_VERSION as i64),
        ("QUAC_ERR_INTERNAL", QUAC_ERR_INTERNAL as i64),
        ("QUAC_DEVICE_CPU", QUAC_DEVICE_CPU as i64),
        ("QUAC_DTYPE_INT", QUAC_DTYPE_INT as i64),
        ("QUAC_DTYPE_UINT", QUAC_DTYPE_UINT as i64),
        ("QUAC_DTYPE_FLOAT", QUAC_DTYPE_FLOAT as i64),
        ("QUAC_DTYPE_BOOL", QUAC_DTYPE_BOOL as i64),
        ("QUAC_TENSOR_FLAG_READ_ONLY", QUAC_TENSOR_FLAG_READ_ONLY as i64),
        ("QUAC_LOG_DEBUG", QUAC_LOG_DEBUG as i64),
        ("QUAC_LOG_INFO", QUAC_LOG_INFO as i64),
        ("QUAC_LOG_WARNING", QUAC_LOG_WARNING as i64),
        ("QUAC_LOG_ERROR", QUAC_LOG_ERROR as i64),
        ("QUAC_RULE_DEEPLIFT_RESCALE", QUAC_RULE_DEEPLIFT_RESCALE as i64),
        ("QUAC_RULE_GUIDED_BACKPROP", QUAC_RULE_GUIDED_BACKPROP as i64),
        ("QUAC_KIND_CLASSIFIER", QUAC_KIND_CLASSIFIER as i64),
        ("QUAC_KIND_CONVERTER", QUAC_KIND_CONVERTER as i64),
        ("QUAC_KIND_ATTRIBUTOR", QUAC_KIND_ATTRIBUTOR as i64),
        ("QUAC_KIND_SCORER", QUAC_KIND_SCORER as i64),
        ("QUAC_PLUGIN_FLAG_REENTRANT", QUAC_PLUGIN_FLAG_REENTRANT as i64),
    ]
}

fn rust_strings() -> Vec<(&'static str, &'static str)> {
    vec![
        ("QUAC_KIND_TABLE_CLASSIFIER", QUAC_KIND_TABLE_CLASSIFIER),
        ("QUAC_KIND_TABLE_CONVERTER", QUAC_KIND_TABLE_CONVERTER),
        ("QUAC_KIND_TABLE_ATTRIBUTOR", QUAC_KIND_TABLE_ATTRIBUTOR),
        ("QUAC_KIND_TABLE_SCORER", QUAC_KIND_TABLE_SCORER),
        ("QUAC_HOST_EXT_CONCEPTS", QUAC_HOST_EXT_CONCEPTS),
        ("QUAC_HOST_EXT_CLASSIFIER_LAYERS", QUAC_HOST_EXT_CLASSIFIER_LAYERS),
        ("QUAC_HOST_EXT_SCORED_METHOD", QUAC_HOST_EXT_SCORED_METHOD),
        ("QUAC_EXT_MODIFIED_BACKWARD", QUAC_EXT_MODIFIED_BACKWARD),
        ("QUAC_EXT_CLASSIFIER_RANDOMIZE", QUAC_EXT_CLASSIFIER_RANDOMIZE),
        ("QUAC_EXT_CLASSIFIER_LAYERS", QUAC_EXT_CLASSIFIER_LAYERS),
        ("QUAC_EXT_CLASSIFIER_WEIGHTS", QUAC_EXT_CLASSIFIER_WEIGHTS),
        ("QUAC_HOST_EXT_CLASSIFIER_WEIGHTS", QUAC_HOST_EXT_CLASSIFIER_WEIGHTS),
        ("QUAC_EXT_TRAINER", QUAC_EXT_TRAINER),
        ("QUAC_PLUGIN_ENTRY_SYMBOL", QUAC_PLUGIN_ENTRY_SYMBOL),
    ]
}

/// Compiles and runs the C program; returns its "expression value" lines.
fn c_values(layouts: &[(String, usize)]) -> BTreeMap<String, String> {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let include = manifest_dir.join("../../include");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let mut c = String::from("#include <stddef.h>\n#include <stdio.h>\n#include \"quac_plugin.h\"\nint main(void) {\n");
    for (expr, _) in layouts {
        c += &format!("    printf(\"%s\\t%zu\\n\", \"{}\", (size_t)({}));\n", expr, expr);
    }
    for (name, _) in rust_constants() {
        c += &format!("    printf(\"%s\\t%lld\\n\", \"{}\", (long long)({}));\n", name, name);
    }
    for (name, _) in rust_strings() {
        c += &format!("    printf(\"%s\\t%s\\n\", \"{}\", {});\n", name, name);
    }
    c += "    return 0;\n}\n";
    let src = out.join("layout.c");
    let exe = out.join("layout");
    std::fs::write(&src, c).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Werror", "-I"])
        .arg(&include)
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {}: {}", cc, e));
    assert!(status.success(), "the layout program did not compile");
    let output = Command::new(&exe).output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('\t').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn every_size_alignment_offset_and_constant_equals_the_c_header() {
    let layouts = rust_layouts();
    let c = c_values(&layouts);
    let mut mismatches = Vec::new();
    for (expr, rust) in &layouts {
        if c[expr] != rust.to_string() {
            mismatches.push(format!("{}: C {} vs Rust {}", expr, c[expr], rust));
        }
    }
    for (name, rust) in rust_constants() {
        if c[name] != rust.to_string() {
            mismatches.push(format!("{}: C {} vs Rust {}", name, c[name], rust));
        }
    }
    for (name, rust) in rust_strings() {
        if c[name] != rust {
            mismatches.push(format!("{}: C {:?} vs Rust {:?}", name, c[name], rust));
        }
    }
    assert!(mismatches.is_empty(), "the Rust ABI differs from quac_plugin.h:\n{}", mismatches.join("\n"));
    // 25 structs with every field, so a forgotten struct shows up here.
    assert!(layouts.len() > 150, "{} layout facts", layouts.len());
}
