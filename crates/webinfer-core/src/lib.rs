//! webinfer-core: the engine's middle layer.
//!
//! - [`Tensor`]: the value every backend exchanges (dense `f32`, NHWC).
//! - [`ir`]: a small set of primitive ops; Keras layers and graph-model ops lower into it.
//! - [`lower`]: the layer registry, one entry per Keras class, turning a parsed
//!   [`webinfer_tfjs::LayersModel`] and its weights into a [`Graph`].
//! - [`passes`]: graph rewrites (fold BatchNorm into convolutions, fuse activations, drop identities).
//! - [`bounds`]: activation sizes checked against a limit at load and at predict.
//! - [`Backend`]: the interface the CPU and GPU backends implement.
//!
//! No I/O, no GPU code, no wasm-bindgen here.

pub mod backend;
pub mod bounds;
pub mod error;
pub mod ir;
pub mod lower;
pub mod passes;
pub mod tensor;

pub use backend::Backend;
pub use error::{CoreError, Result};
pub use ir::{Activation, BinaryOp, Graph, Op, PoolKind, ValueId};
pub use tensor::Tensor;
/// The one sort every crate shares (`webinfer_tfjs::order`).
pub use webinfer_tfjs::order;
