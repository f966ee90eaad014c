//! The kinds as traits, a batch's inputs, and the glue between them and the C ABI: every function the
//! host calls runs inside `catch_unwind`, so an `Err` or a panic becomes an error status with its
//! message (set_error) and never unwinds into the host.

use crate::abi::*;
use crate::error::{Error, Result};
use crate::host::*;
use crate::json::Params;
use crate::tensor::*;
use std::ffi::CStr;
use std::os::raw::{c_char, c_void};
use std::panic::{self, AssertUnwindSafe};

/// What every plugin implements: creation from its parameters (already validated against the
/// manifest's schema by the host, defaults filled in).
pub trait Plugin: Sized + 'static {
    fn create(host: Host, params: &Params) -> Result<Self>;
}

/// "quac.attributor/1": puts "attribution" (float32, shaped like x).
pub trait Attributor: Plugin {
    fn attribute(&mut self, host: Host, batch: &Batch, out: &mut Outputs) -> Result<()>;
}

/// "quac.scorer/1": puts "score" (float32 [N]).
pub trait Scorer: Plugin {
    fn score(&mut self, host: Host, batch: &Batch, out: &mut Outputs) -> Result<()>;
}

/// "quac.converter/1": puts "counterfactual" (float32, shaped like x).
pub trait Converter: Plugin {
    fn convert(&mut self, host: Host, batch: &Batch, out: &mut Outputs) -> Result<()>;
}

/// "quac.classifier/1". A forward-only classifier sets HAS_VJP to false.
pub trait Classifier: Plugin {
    const HAS_VJP: bool = true;
    fn info(&mut self, host: Host) -> Result<ClassifierInfo>;
    /// logits [N, classes], allocated with `host.alloc`.
    fn forward(&mut self, host: Host, x: TensorView<f32>) -> Result<OwnedTensor<f32>>;
    /// grad_x shaped like x.
    fn vjp(&mut self, host: Host, x: TensorView<f32>, grad_logits: TensorView<f32>) -> Result<OwnedTensor<f32>> {
        let _ = (host, x, grad_logits);
        Err(Error::unsupported("this classifier is forward-only"))
    }
}

/// The inputs of one call (borrowed, read-only). Absent inputs are errors naming them.
pub struct Batch<'a> {
    raw: &'a quac_batch,
}

macro_rules! has_field {
    ($b:expr, $f:ident) => {{
        let base = $b as *const quac_batch as usize;
        let end = std::ptr::addr_of!($b.$f) as usize + std::mem::size_of_val(&$b.$f);
        ($b.struct_size as usize) >= end - base
    }};
}

impl<'a> Batch<'a> {
    /// # Safety
    /// `raw` must be the batch of the call in progress.
    pub unsafe fn from_raw(raw: *const quac_batch) -> Result<Batch<'a>> {
        Ok(Batch { raw: raw.as_ref().ok_or_else(|| Error::internal("no batch given"))? })
    }
    pub fn raw(&self) -> &'a quac_batch {
        self.raw
    }
    /// The queries, float32 [N, sample shape...].
    pub fn x(&self) -> Result<TensorView<'a, f32>> {
        unsafe { TensorView::from_raw(self.raw.x, "x") }
    }
    /// The class of each query (the class being explained), int64 [N].
    pub fn source(&self) -> Result<TensorView<'a, i64>> {
        unsafe { TensorView::from_raw(self.raw.source, "source") }
    }
    pub fn target(&self) -> Result<TensorView<'a, i64>> {
        unsafe { TensorView::from_raw(self.raw.target, "target") }
    }
    pub fn x_cf(&self) -> Result<TensorView<'a, f32>> {
        unsafe { TensorView::from_raw(self.raw.x_cf, "x_cf") }
    }
    /// Scorers: the map being scored, in [0, 1].
    pub fn attribution(&self) -> Result<TensorView<'a, f32>> {
        unsafe { TensorView::from_raw(self.raw.attribution, "attribution") }
    }
    pub fn reference(&self) -> Result<Option<TensorView<'a, f32>>> {
        if self.raw.reference.is_null() {
            return Ok(None);
        }
        unsafe { TensorView::from_raw(self.raw.reference, "reference").map(Some) }
    }
    pub fn concepts(&self) -> Result<TensorView<'a, f32>> {
        let p = if has_field!(self.raw, concepts) { self.raw.concepts } else { std::ptr::null() };
        unsafe { TensorView::from_raw(p, "concepts") }
    }
    pub fn seed(&self) -> u64 {
        self.raw.seed
    }
    /// Other attributors' maps (ABI 1.2), by name.
    pub fn maps(&self) -> Result<Vec<(String, TensorView<'a, f32>)>> {
        if !has_field!(self.raw, n_maps) || self.raw.maps.is_null() {
            return Ok(Vec::new());
        }
        let entries = unsafe { std::slice::from_raw_parts(self.raw.maps, self.raw.n_maps as usize) };
        entries
            .iter()
            .map(|m| {
                let name = unsafe { CStr::from_ptr(m.name) }.to_string_lossy().into_owned();
                let v = unsafe { TensorView::from_raw(m.tensor, &format!("maps.{}", name))? };
                Ok((name, v))
            })
            .collect()
    }
    /// Scorers: the scored method's JSON (ABI 1.2), if it put any.
    pub fn method_json(&self) -> Option<String> {
        if !has_field!(self.raw, method_json) || self.raw.method_json.is_null() {
            return None;
        }
        Some(unsafe { CStr::from_ptr(self.raw.method_json) }.to_string_lossy().into_owned())
    }
}

thread_local! {
    /// Set while this thread runs a guarded call: its panics are reported through set_error, not
    /// printed. Holds the location of the last such panic.
    static GUARDED: std::cell::RefCell<Option<Option<String>>> = std::cell::RefCell::new(None);
}

/// Installs, once, a panic hook that records where a guarded call panicked and stays silent for it;
/// other panics (threads of the plugin's own) go to the hook that was there before.
fn install_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let guarded = GUARDED.with(|g| {
                let mut g = g.borrow_mut();
                match g.as_mut() {
                    Some(slot) => {
                        *slot = info.location().map(|l| format!("{}:{}", l.file(), l.line()));
                        true
                    }
                    None => false,
                }
            });
            if !guarded {
                previous(info);
            }
        }));
    });
}

/// Runs `f`, turning an Err or a panic into a status (after set_error with its message; a panic's
/// message says where it happened).
pub fn guard(host: Option<Host>, f: impl FnOnce() -> Result<()>) -> quac_status {
    install_hook();
    let outer = GUARDED.with(|g| g.borrow_mut().replace(None));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    let location = GUARDED.with(|g| std::mem::replace(&mut *g.borrow_mut(), outer)).flatten();
    let (status, message) = match result {
        Ok(Ok(())) => return QUAC_OK,
        Ok(Err(e)) => (if e.status == QUAC_OK { QUAC_ERR_INTERNAL } else { e.status }, e.message),
        Err(payload) => {
            let text = if let Some(s) = payload.downcast_ref::<&str>() {
                s.to_string()
            } else if let Some(s) = payload.downcast_ref::<String>() {
                s.clone()
            } else {
                "a panic without a message".to_string()
            };
            let at = location.map_or(String::new(), |l| format!(" (at {})", l));
            (QUAC_ERR_INTERNAL, Some(format!("panic: {}{}", text, at)))
        }
    };
    if let (Some(h), Some(m)) = (host, message) {
        h.set_error(&m);
    }
    status
}

/// One live instance. `plugin` comes first, so the host's `*const quac_plugin` is the instance.
#[repr(C)]
struct Instance<T> {
    plugin: quac_plugin,
    host: Host,
    table_id: &'static str,
    batch_table: quac_attributor, // same layout as quac_scorer and quac_converter
    classifier_table: quac_classifier,
    value: T,
}

unsafe fn instance<'a, T>(p: *const quac_plugin) -> &'a mut Instance<T> {
    &mut *(p as *mut Instance<T>)
}

unsafe extern "C" fn destroy<T>(p: *const quac_plugin) {
    let _ = panic::catch_unwind(|| drop(Box::from_raw(p as *mut Instance<T>)));
}

unsafe extern "C" fn get_extension<T>(p: *const quac_plugin, id: *const c_char) -> *const c_void {
    let inst = instance::<T>(p);
    if id.is_null() || CStr::from_ptr(id).to_bytes() != inst.table_id.as_bytes() {
        return std::ptr::null();
    }
    if inst.table_id == QUAC_KIND_TABLE_CLASSIFIER {
        &inst.classifier_table as *const quac_classifier as *const c_void
    } else {
        &inst.batch_table as *const quac_attributor as *const c_void
    }
}

/// A factory's create function for one plugin (made by `export!`).
pub type CreateFn = unsafe fn(*const quac_host, *const quac_plugin_descriptor, *const c_char, *mut *const quac_plugin) -> quac_status;

unsafe fn create<T: Plugin>(
    host: *const quac_host,
    descriptor: *const quac_plugin_descriptor,
    params: *const c_char,
    out: *mut *const quac_plugin,
    table_id: &'static str,
    batch_fn: quac_batch_fn,
    classifier_table: quac_classifier,
) -> quac_status {
    let h = Host::from_raw(host);
    guard(Some(h), || {
        let text = if params.is_null() { "{}".into() } else { CStr::from_ptr(params).to_string_lossy() };
        let value = T::create(h, &Params::parse(&text)?)?;
        let inst = Box::new(Instance {
            plugin: quac_plugin {
                struct_size: std::mem::size_of::<quac_plugin>() as u32,
                descriptor,
                plugin_data: std::ptr::null_mut(),
                destroy: Some(destroy::<T>),
                get_extension: Some(get_extension::<T>),
            },
            host: h,
            table_id,
            batch_table: quac_attributor { struct_size: std::mem::size_of::<quac_attributor>() as u32, attribute: batch_fn },
            classifier_table,
            value,
        });
        *out = Box::into_raw(inst) as *const quac_plugin;
        Ok(())
    })
}

fn no_classifier() -> quac_classifier {
    quac_classifier { struct_size: 0, get_info: None, forward: None, vjp: None }
}

/// The per-kind create functions and C callbacks `export!` refers to.
pub mod glue {
    use super::*;

    macro_rules! batch_kind {
        ($create:ident, $call:ident, $trait:ident, $method:ident, $table:expr) => {
            unsafe extern "C" fn $call<T: $trait>(p: *const quac_plugin, batch: *const quac_batch, out: *const quac_output_sink) -> quac_status {
                let inst = instance::<T>(p);
                let host = inst.host;
                guard(Some(host), || {
                    let b = Batch::from_raw(batch)?;
                    let mut o = Outputs::from_raw(out);
                    inst.value.$method(host, &b, &mut o)
                })
            }
            pub unsafe fn $create<T: $trait>(
                host: *const quac_host,
                d: *const quac_plugin_descriptor,
                params: *const c_char,
                out: *mut *const quac_plugin,
            ) -> quac_status {
                create::<T>(host, d, params, out, $table, Some($call::<T>), no_classifier())
            }
        };
    }
    batch_kind!(attributor, attribute_call, Attributor, attribute, QUAC_KIND_TABLE_ATTRIBUTOR);
    batch_kind!(scorer, score_call, Scorer, score, QUAC_KIND_TABLE_SCORER);
    batch_kind!(converter, convert_call, Converter, convert, QUAC_KIND_TABLE_CONVERTER);

    unsafe extern "C" fn get_info<T: Classifier>(p: *const quac_plugin, out: *mut quac_classifier_info) -> quac_status {
        let inst = instance::<T>(p);
        let host = inst.host;
        guard(Some(host), || {
            let info = inst.value.info(host)?;
            let out = out.as_mut().ok_or_else(|| Error::internal("get_info: no output struct"))?;
            if info.input_shape.is_empty() || info.input_shape.len() > 4 {
                return Err(Error::internal(format!("info: input_shape must have 1 to 4 dimensions, got {:?}", info.input_shape)));
            }
            out.num_classes = info.num_classes as i32;
            out.input_ndim = info.input_shape.len() as i32;
            out.input_shape = [0; 4];
            out.input_shape[..info.input_shape.len()].copy_from_slice(&info.input_shape);
            out.has_vjp = info.has_vjp && T::HAS_VJP;
            Ok(())
        })
    }
    unsafe extern "C" fn forward<T: Classifier>(p: *const quac_plugin, x: *const quac_tensor, logits: *mut *mut quac_managed_tensor) -> quac_status {
        let inst = instance::<T>(p);
        let host = inst.host;
        guard(Some(host), || {
            let l = inst.value.forward(host, TensorView::from_raw(x, "x")?)?;
            *logits = l.into_raw();
            Ok(())
        })
    }
    unsafe extern "C" fn vjp<T: Classifier>(
        p: *const quac_plugin,
        x: *const quac_tensor,
        grad_logits: *const quac_tensor,
        logits: *mut *mut quac_managed_tensor,
        grad_x: *mut *mut quac_managed_tensor,
    ) -> quac_status {
        let inst = instance::<T>(p);
        let host = inst.host;
        guard(Some(host), || {
            let xv = TensorView::from_raw(x, "x")?;
            let g = inst.value.vjp(host, xv, TensorView::from_raw(grad_logits, "grad_logits")?)?;
            if !logits.is_null() {
                *logits = inst.value.forward(host, xv)?.into_raw();
            }
            *grad_x = g.into_raw();
            Ok(())
        })
    }
    pub unsafe fn classifier<T: Classifier>(
        host: *const quac_host,
        d: *const quac_plugin_descriptor,
        params: *const c_char,
        out: *mut *const quac_plugin,
    ) -> quac_status {
        let table = quac_classifier {
            struct_size: std::mem::size_of::<quac_classifier>() as u32,
            get_info: Some(get_info::<T>),
            forward: Some(forward::<T>),
            vjp: if T::HAS_VJP { Some(vjp::<T>) } else { None },
        };
        create::<T>(host, d, params, out, QUAC_KIND_TABLE_CLASSIFIER, None, table)
    }
}
