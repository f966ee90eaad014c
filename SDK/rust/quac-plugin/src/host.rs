//! The host's services for one instance, and where a call's results go.

use crate::abi::*;
use crate::error::{Error, Result};
use crate::tensor::*;
use std::ffi::CString;
use std::os::raw::c_char;

/// What the run's classifier is.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassifierInfo {
    pub num_classes: usize,
    /// One sample's shape; -1 where any size goes.
    pub input_shape: Vec<i64>,
    pub has_vjp: bool,
}

/// Modified backward rules (QUAC_EXT_MODIFIED_BACKWARD).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackwardRule {
    DeepLiftRescale,
    GuidedBackprop,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
}

/// The host of one instance. Valid until the instance is destroyed.
#[derive(Clone, Copy)]
pub struct Host {
    raw: *const quac_host,
}

fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', " ")).expect("no NUL left")
}

fn status(s: quac_status) -> Result<()> {
    if s == QUAC_OK {
        Ok(())
    } else {
        Err(Error::from_host(s))
    }
}

impl Host {
    /// # Safety
    /// `raw` must be the host the instance was created with.
    pub unsafe fn from_raw(raw: *const quac_host) -> Host {
        Host { raw }
    }
    pub fn raw(&self) -> *const quac_host {
        self.raw
    }
    fn h(&self) -> &quac_host {
        unsafe { &*self.raw }
    }
    /// Records the reason of a failing call (what the boundary does with an Error's message).
    pub fn set_error(&self, message: &str) {
        if let Some(f) = self.h().set_error {
            unsafe { f(self.raw, cstring(message).as_ptr()) }
        }
    }
    pub fn log(&self, level: LogLevel, message: &str) {
        let l = match level {
            LogLevel::Debug => QUAC_LOG_DEBUG,
            LogLevel::Info => QUAC_LOG_INFO,
            LogLevel::Warning => QUAC_LOG_WARNING,
            LogLevel::Error => QUAC_LOG_ERROR,
        };
        if let Some(f) = self.h().log {
            unsafe { f(self.raw, l, cstring(message).as_ptr()) }
        }
    }
    pub fn progress(&self, done: i64, total: i64, label: Option<&str>) {
        let label = label.map(cstring);
        if let Some(f) = self.h().progress {
            unsafe { f(self.raw, done, total, label.as_ref().map_or(std::ptr::null(), |c| c.as_ptr())) }
        }
    }
    pub fn is_cancelled(&self) -> bool {
        self.h().is_cancelled.map_or(false, |f| unsafe { f(self.raw) })
    }
    /// Err(QUAC_ERR_CANCELLED) once the user asked to stop: `host.check_cancelled()?` in long loops.
    pub fn check_cancelled(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::new(QUAC_ERR_CANCELLED, "cancelled"))
        } else {
            Ok(())
        }
    }
    /// A compact, zero-filled tensor of `shape`.
    pub fn alloc<T: Element>(&self, shape: &[i64]) -> Result<OwnedTensor<T>> {
        let f = self.h().tensor_alloc.ok_or_else(|| Error::unsupported("the host has no tensor_alloc"))?;
        let mut out = std::ptr::null_mut();
        status(unsafe { f(self.raw, dtype_of::<T>(), shape.len() as i32, shape.as_ptr(), &mut out) })?;
        unsafe { OwnedTensor::from_raw(out, "tensor_alloc") }
    }
    pub fn classifier_info(&self) -> Result<ClassifierInfo> {
        let f = self.h().classifier_info.ok_or_else(|| Error::unsupported("the host has no classifier_info"))?;
        let mut info = quac_classifier_info {
            struct_size: std::mem::size_of::<quac_classifier_info>() as u32,
            num_classes: 0,
            input_ndim: 0,
            input_shape: [0; 4],
            has_vjp: false,
        };
        status(unsafe { f(self.raw, &mut info) })?;
        let nd = (info.input_ndim.max(0) as usize).min(4);
        Ok(ClassifierInfo { num_classes: info.num_classes.max(0) as usize, input_shape: info.input_shape[..nd].to_vec(), has_vjp: info.has_vjp })
    }
    /// logits = f(x), [N, classes].
    pub fn forward(&self, x: &dyn AsTensor) -> Result<OwnedTensor<f32>> {
        let f = self.h().classifier_forward.ok_or_else(|| Error::unsupported("the host has no classifier_forward"))?;
        let mut out = std::ptr::null_mut();
        status(unsafe { f(self.raw, x.raw(), &mut out) })?;
        unsafe { OwnedTensor::from_raw(out, "logits") }
    }
    /// grad_x = (d f(x) / d x)^T grad_logits, shaped like x.
    pub fn vjp(&self, x: &dyn AsTensor, grad_logits: &dyn AsTensor) -> Result<OwnedTensor<f32>> {
        let f = self.h().classifier_vjp.ok_or_else(|| Error::unsupported("the host has no classifier_vjp"))?;
        let mut out = std::ptr::null_mut();
        status(unsafe { f(self.raw, x.raw(), grad_logits.raw(), std::ptr::null_mut(), &mut out) })?;
        unsafe { OwnedTensor::from_raw(out, "grad_x") }
    }
    /// As vjp, with a modified backward rule against `baseline`.
    pub fn vjp_rule(&self, rule: BackwardRule, x: &dyn AsTensor, baseline: Option<&dyn AsTensor>, grad_logits: &dyn AsTensor) -> Result<OwnedTensor<f32>> {
        let f = self.h().classifier_vjp_rule.ok_or_else(|| Error::unsupported("the host has no classifier_vjp_rule"))?;
        let r = match rule {
            BackwardRule::DeepLiftRescale => QUAC_RULE_DEEPLIFT_RESCALE,
            BackwardRule::GuidedBackprop => QUAC_RULE_GUIDED_BACKPROP,
        };
        let mut out = std::ptr::null_mut();
        let b = baseline.map_or(std::ptr::null(), |b| b.raw());
        status(unsafe { f(self.raw, r, x.raw(), b, grad_logits.raw(), &mut out) })?;
        unsafe { OwnedTensor::from_raw(out, "grad_x") }
    }
    /// Counterfactuals of x towards `target` (int64 [N]) from the run's converter.
    pub fn convert(&self, x: &dyn AsTensor, target: &dyn AsTensor, reference: Option<&dyn AsTensor>, seed: u64) -> Result<OwnedTensor<f32>> {
        let f = self.h().converter_convert.ok_or_else(|| Error::unsupported("the host has no converter_convert"))?;
        let mut out = std::ptr::null_mut();
        let r = reference.map_or(std::ptr::null(), |r| r.raw());
        status(unsafe { f(self.raw, x.raw(), target.raw(), r, seed, &mut out) })?;
        unsafe { OwnedTensor::from_raw(out, "x_cf") }
    }
    /// A float32 [N, classes] one-hot of int64 labels [N], each checked to be in 0..classes.
    pub fn one_hot(&self, labels: &TensorView<i64>, classes: usize) -> Result<OwnedTensor<f32>> {
        let mut t = self.alloc::<f32>(&[labels.len() as i64, classes as i64])?;
        let rows = t.as_mut_slice();
        for (i, &y) in labels.as_slice().iter().enumerate() {
            if y < 0 || y as usize >= classes {
                return Err(Error::invalid(format!("labels: {} at [{}] is not a class of 0..{}", y, i, classes)));
            }
            rows[i * classes + y as usize] = 1.0;
        }
        Ok(t)
    }
}

/// Where a call puts its results (borrowed for the call).
pub struct Outputs {
    raw: *const quac_output_sink,
}

impl Outputs {
    /// # Safety
    /// `raw` must be the sink of the call in progress.
    pub unsafe fn from_raw(raw: *const quac_output_sink) -> Outputs {
        Outputs { raw }
    }
    /// Hands `tensor` to the host under `name` (ownership moves, even on failure).
    pub fn put<T: Element>(&mut self, name: &str, tensor: OwnedTensor<T>) -> Result<()> {
        let sink = unsafe { &*self.raw };
        let f = sink.put_tensor.ok_or_else(|| Error::internal("the sink has no put_tensor"))?;
        let name = cstring(name);
        status(unsafe { f(self.raw, name.as_ptr(), tensor.into_raw()) })
    }
    /// Puts one JSON object (at most once per call).
    pub fn put_json(&mut self, json: &str) -> Result<()> {
        let sink = unsafe { &*self.raw };
        let f = sink.put_json.ok_or_else(|| Error::internal("the sink has no put_json"))?;
        status(unsafe { f(self.raw, json.as_ptr() as *const c_char, json.len()) })
    }
}
