//! TensorFlow.js file formats: `model.json`, the weights manifest, shard
//! decoding with de-quantization, and the Keras layers topology.
//!
//! # Contract
//!
//! - **Pure data in, typed values out.** No I/O, no GPU, no `wasm-bindgen`:
//!   the caller fetches `model.json` and the shard files and hands over bytes.
//!   Builds for `wasm32-unknown-unknown` as it does natively.
//! - **Untrusted input never panics.** Every malformed, truncated or hostile
//!   file yields a [`FormatError`] that names the weight, group, layer or JSON
//!   path at fault. Size arithmetic is overflow-checked.
//! - **Absurd sizes are rejected before allocating**, against [`Limits`].
//! - **tfjs semantics, bit for bit.** Decoding follows tfjs-core's
//!   `io_utils.decodeWeights`; topology normalization follows tfjs-layers'
//!   `Sequential.fromConfig` / `Container.fromConfig`. Where we are stricter
//!   (shard lengths must match the manifest exactly; weight names must be
//!   unique) the module docs say so.
//!
//! # Map
//!
//! - [`model_json`]: [`parse_model_json`] → [`ModelJson`] (format, topology as
//!   raw JSON, weights manifest).
//! - [`manifest`]: [`WeightGroup`] / [`WeightEntry`] with byte offsets,
//!   [`DType`], [`Quantization`].
//! - [`decode`]: [`decode_group`] / [`decode_weights`] → [`DecodedWeight`]s.
//! - [`layers`]: [`parse_layers_topology`] → [`LayersModel`] in functional form,
//!   with typed config accessors on [`LayerSpec`] for layer lowering.
//! - [`limits`], [`error`].
//!
//! ```
//! use webinfer_tfjs::*;
//! let json = br#"{"format": "layers-model",
//!   "modelTopology": {"class_name": "Sequential", "config": {"name": "s", "layers": [
//!     {"class_name": "Dense", "config": {"name": "d", "units": 1, "batch_input_shape": [null, 2]}}]}},
//!   "weightsManifest": [{"paths": ["w.bin"], "weights": [
//!     {"name": "d/kernel", "shape": [2, 1], "dtype": "float32"}]}]}"#;
//! let limits = Limits::default();
//! let model = parse_model_json(json, &limits)?;
//! let topology = parse_layers_topology(&model.topology, &limits)?;
//! assert_eq!(topology.layers[0].name, "d_input");
//! let shard: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|x| x.to_le_bytes()).collect();
//! let weights = decode_weights(&model.weights_manifest, &[vec![&shard[..]]])?;
//! assert_eq!(weights[0].data, TensorData::F32(vec![1.0, 2.0]));
//! # Ok::<(), FormatError>(())
//! ```

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]
#![warn(missing_debug_implementations)]

pub mod decode;
pub mod error;
pub mod graph;
mod json;
mod json_parser;
pub mod layers;
pub mod limits;
pub mod manifest;
pub mod model_json;
pub mod order;
pub mod stream;

pub use decode::{decode_group, decode_weight, decode_weights, DecodedWeight, TensorData};
pub use error::{FormatError, Result};
pub use graph::{parse_graph_model, GraphModel, GraphNode, GraphTensor};
pub use json::Num;
pub use layers::{parse_layers_topology, LayerSpec, LayersModel, TensorRef};
pub use limits::Limits;
pub use manifest::{
    parse_weights_manifest, DType, QuantDType, Quantization, WeightEntry, WeightGroup,
};
pub use model_json::{
    parse_model_json, parse_model_json_value, peek_shard_paths, ModelFormat, ModelJson,
};
pub use stream::{CodeFormat, KeptCodes, StoredSink, StreamDecoder, ValueSink};
