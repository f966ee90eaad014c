//! Errors: a status and a one-line message, given to the host with set_error at the boundary.

use crate::abi::*;

/// Why a call failed. `message` is None when the host already recorded the reason (a failed host call,
/// whose message names the callee): the status is passed on unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub status: quac_status,
    pub message: Option<String>,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(status: quac_status, message: impl Into<String>) -> Error {
        Error { status, message: Some(message.into()) }
    }
    /// Bad input: rank, shape, dtype, NaN, a parameter's value.
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(QUAC_ERR_INVALID_ARGUMENT, message)
    }
    /// A valid request this plugin cannot serve.
    pub fn unsupported(message: impl Into<String>) -> Error {
        Error::new(QUAC_ERR_UNSUPPORTED, message)
    }
    /// A bug in the plugin.
    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(QUAC_ERR_INTERNAL, message)
    }
    /// A host call failed; the host has said why.
    pub fn from_host(status: quac_status) -> Error {
        Error { status, message: None }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.message {
            Some(m) => write!(f, "{} (status {})", m, self.status),
            None => write!(f, "host call failed (status {})", self.status),
        }
    }
}
