//! Saliency (Simonyan et al., 2014) as a quac-host attributor in Rust: |d f_y(x) / d x| with
//! y = batch.source, the gradient asked of the host (so any classifier with a VJP works).
//! Parameters: absolute (default true; false keeps the sign), multiply_by_input (default false:
//! Input x Gradient). The same method as SDK/examples/c-saliency.
use quac_plugin::{Attributor, Batch, Error, Host, Outputs, Params, Plugin, Result};

struct Saliency {
    absolute: bool,
    multiply_by_input: bool,
}

impl Plugin for Saliency {
    fn create(_host: Host, params: &Params) -> Result<Self> {
        Ok(Saliency { absolute: params.bool("absolute", true)?, multiply_by_input: params.bool("multiply_by_input", false)? })
    }
}

impl Attributor for Saliency {
    fn attribute(&mut self, host: Host, batch: &Batch, out: &mut Outputs) -> Result<()> {
        let x = batch.x()?;
        let source = batch.source()?;
        source.expect_shape("source", &[x.len() as i64])?;
        if let Some(i) = x.as_slice().iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(format!("x: NaN or infinity at flat index {}", i)));
        }
        let info = host.classifier_info()?;
        if !info.has_vjp {
            return Err(Error::unsupported("the run's classifier is forward-only; saliency needs classifier.vjp"));
        }
        // grad_logits = one_hot(source): the VJP is then d f_source(x) / d x for every query.
        let one_hot = host.one_hot(&source, info.num_classes)?;
        host.check_cancelled()?;
        let grad = host.vjp(&x, &one_hot)?;
        let mut attribution = host.alloc::<f32>(x.shape())?;
        for ((a, g), xi) in attribution.as_mut_slice().iter_mut().zip(grad.as_slice()).zip(x.as_slice()) {
            let v = if self.multiply_by_input { g * xi } else { *g };
            *a = if self.absolute { v.abs() } else { v };
        }
        out.put("attribution", attribution)
    }
}

quac_plugin::export! {
    Saliency => attributor {
        id: "org.quac.example.rust-saliency",
        name: "Saliency (Rust example)",
        version: "1.0.0",
        description: "Absolute gradient of the source-class logit with respect to the input",
    },
}
