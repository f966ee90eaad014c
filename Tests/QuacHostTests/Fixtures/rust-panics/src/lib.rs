//! Test fixture: an attributor that panics inside attribute (with the message of its "message"
//! parameter), or returns an Err when "panic" is false. The quac-plugin crate must turn both into an
//! error status with the message, and the host must go on.
use quac_plugin::{Attributor, Batch, Error, Host, Outputs, Params, Plugin, Result};

struct Panics {
    panic: bool,
    message: String,
}

impl Plugin for Panics {
    fn create(_host: Host, params: &Params) -> Result<Self> {
        Ok(Panics { panic: params.bool("panic", true)?, message: params.string("message", "boom")? })
    }
}

impl Attributor for Panics {
    fn attribute(&mut self, _host: Host, batch: &Batch, _out: &mut Outputs) -> Result<()> {
        let n = batch.x()?.len();
        if self.panic {
            panic!("{} ({} queries)", self.message, n);
        }
        Err(Error::invalid(format!("{} ({} queries)", self.message, n)))
    }
}

quac_plugin::export! {
    Panics => attributor {
        id: "org.quac.test.rust-panics",
        name: "Panics (Rust test fixture)",
        version: "1.0.0",
        description: "Panics or fails inside attribute",
    },
}
