//! Tensors: borrowed views of the host's inputs as slices, and tensors the plugin owns (allocated by
//! the host, released by their deleter when dropped unless handed to the host).

use crate::abi::*;
use crate::error::{Error, Result};
use std::marker::PhantomData;

/// Element types a view can have.
pub trait Element: Copy + 'static {
    const CODE: u8;
    const NAME: &'static str;
}
impl Element for f32 {
    const CODE: u8 = QUAC_DTYPE_FLOAT;
    const NAME: &'static str = "float32";
}
impl Element for i64 {
    const CODE: u8 = QUAC_DTYPE_INT;
    const NAME: &'static str = "int64";
}

pub fn dtype_of<T: Element>() -> quac_dtype {
    quac_dtype { code: T::CODE, bits: (std::mem::size_of::<T>() * 8) as u8, lanes: 1 }
}

fn dtype_name(d: quac_dtype) -> String {
    let base = match d.code {
        QUAC_DTYPE_FLOAT => "float",
        QUAC_DTYPE_INT => "int",
        QUAC_DTYPE_UINT => "uint",
        QUAC_DTYPE_BOOL => "bool",
        _ => "dtype",
    };
    format!("{}{}", base, d.bits)
}

/// Anything that can be passed to the host as a borrowed tensor.
pub trait AsTensor {
    fn raw(&self) -> *const quac_tensor;
}

/// A borrowed, compact CPU tensor of T: its shape and its elements as a slice. Valid for the call.
#[derive(Clone, Copy)]
pub struct TensorView<'a, T: Element> {
    raw: &'a quac_tensor,
    shape: &'a [i64],
    data: &'a [T],
}

impl<'a, T: Element> TensorView<'a, T> {
    /// Checks dtype, device and compactness; `name` goes into the error ("x: expected float32, got int64").
    ///
    /// # Safety
    /// `raw` must point to a valid tensor that lives for 'a.
    pub unsafe fn from_raw(raw: *const quac_tensor, name: &str) -> Result<TensorView<'a, T>> {
        let raw = raw.as_ref().ok_or_else(|| Error::invalid(format!("{}: missing", name)))?;
        if raw.device.device_type != QUAC_DEVICE_CPU {
            return Err(Error::invalid(format!("{}: expected a CPU tensor", name)));
        }
        if raw.dtype != dtype_of::<T>() {
            return Err(Error::invalid(format!("{}: expected {}, got {}", name, T::NAME, dtype_name(raw.dtype))));
        }
        let shape: &[i64] = if raw.ndim > 0 { std::slice::from_raw_parts(raw.shape, raw.ndim as usize) } else { &[] };
        if shape.iter().any(|&d| d < 0) {
            return Err(Error::invalid(format!("{}: negative dimension in {:?}", name, shape)));
        }
        let n: i64 = shape.iter().product();
        if !raw.strides.is_null() {
            let mut expected = 1i64;
            for i in (0..shape.len()).rev() {
                if shape[i] != 1 && *raw.strides.add(i) != expected {
                    return Err(Error::invalid(format!("{}: expected a compact (row-major) tensor", name)));
                }
                expected *= shape[i];
            }
        }
        if n > 0 && raw.data.is_null() {
            return Err(Error::invalid(format!("{}: no data", name)));
        }
        let data: &[T] = if n == 0 {
            &[]
        } else {
            std::slice::from_raw_parts((raw.data as *const u8).add(raw.byte_offset as usize) as *const T, n as usize)
        };
        Ok(TensorView { raw, shape, data })
    }
    pub fn shape(&self) -> &'a [i64] {
        self.shape
    }
    pub fn as_slice(&self) -> &'a [T] {
        self.data
    }
    /// Size of dimension 0 (the batch), 0 for a scalar.
    pub fn len(&self) -> usize {
        self.shape.first().copied().unwrap_or(0) as usize
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// Fails unless the shape is `expected` (-1 matches any size), naming the tensor.
    pub fn expect_shape(&self, name: &str, expected: &[i64]) -> Result<()> {
        let ok = self.shape.len() == expected.len() && self.shape.iter().zip(expected).all(|(a, b)| *b < 0 || a == b);
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(format!("{}: expected shape {:?}, got {:?}", name, expected, self.shape)))
        }
    }
}

impl<'a, T: Element> AsTensor for TensorView<'a, T> {
    fn raw(&self) -> *const quac_tensor {
        self.raw
    }
}

/// A tensor the plugin owns: from `Host::alloc`, or returned by a host call. Dropping it releases it;
/// `Outputs::put` hands it to the host.
pub struct OwnedTensor<T: Element> {
    ptr: *mut quac_managed_tensor,
    _t: PhantomData<T>,
}

impl<T: Element> OwnedTensor<T> {
    /// Takes ownership of a managed tensor, checking its dtype and layout (released on failure).
    ///
    /// # Safety
    /// `ptr` must be a valid managed tensor the caller owns.
    pub unsafe fn from_raw(ptr: *mut quac_managed_tensor, name: &str) -> Result<OwnedTensor<T>> {
        let owned = OwnedTensor { ptr, _t: PhantomData };
        if ptr.is_null() {
            std::mem::forget(owned);
            return Err(Error::internal(format!("{}: the host returned no tensor", name)));
        }
        TensorView::<T>::from_raw(&(*ptr).tensor, name)?;
        Ok(owned)
    }
    fn view(&self) -> TensorView<'_, T> {
        // Checked in from_raw.
        unsafe { TensorView::from_raw(&(*self.ptr).tensor, "tensor").expect("checked when adopted") }
    }
    pub fn shape(&self) -> &[i64] {
        self.view().shape
    }
    pub fn as_slice(&self) -> &[T] {
        self.view().data
    }
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        let n = self.as_slice().len();
        if n == 0 {
            return &mut [];
        }
        unsafe {
            let t = &(*self.ptr).tensor;
            std::slice::from_raw_parts_mut((t.data as *mut u8).add(t.byte_offset as usize) as *mut T, n)
        }
    }
    /// Gives up ownership (for the host).
    pub fn into_raw(self) -> *mut quac_managed_tensor {
        let p = self.ptr;
        std::mem::forget(self);
        p
    }
}

impl<T: Element> AsTensor for OwnedTensor<T> {
    fn raw(&self) -> *const quac_tensor {
        unsafe { &(*self.ptr).tensor }
    }
}

impl<T: Element> Drop for OwnedTensor<T> {
    fn drop(&mut self) {
        unsafe {
            if let Some(d) = (*self.ptr).deleter {
                d(self.ptr);
            }
        }
    }
}
