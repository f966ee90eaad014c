//! quac-plugin: write quac-host plugins in Rust.
//!
//! `abi` is the C header (`SDK/include/quac_plugin.h`) transcribed once, checked field by field
//! against it by `tests/layout.rs`. The rest wraps it safely: a trait per kind (`Attributor`,
//! `Scorer`, `Converter`, `Classifier`), the batch's inputs as slices with their shapes
//! (`TensorView`), tensors the plugin owns (`OwnedTensor`, released on drop), the host's services
//! (`Host`), outputs (`Outputs`), parameters (`Params`), and `export!`, which defines the library's
//! entry and factory. Every callback runs inside `catch_unwind`: an `Err` or a panic becomes an error
//! status with its message, never an unwind into the host. See `SDK/examples/rust-saliency`.

pub mod abi;
mod error;
mod export;
mod host;
mod json;
mod plugin;
mod tensor;

pub use error::{Error, Result};
pub use export::{entry, Entry, Library, PluginDef};
pub use host::{BackwardRule, ClassifierInfo, Host, LogLevel, Outputs};
pub use json::{Json, Params};
pub use plugin::{glue, guard, Attributor, Batch, Classifier, Converter, CreateFn, Plugin, Scorer};
pub use tensor::{AsTensor, Element, OwnedTensor, TensorView};
