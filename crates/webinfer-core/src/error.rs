//! Errors of the core: lowering, shape inference, execution.

use thiserror::Error;
pub use webinfer_tfjs::FormatError;

pub type Result<T, E = CoreError> = std::result::Result<T, E>;

#[derive(Debug, Error)]
pub enum CoreError {
    #[error(transparent)]
    Format(#[from] FormatError),

    #[error("unsupported layer class{}: {}", if .0.len() > 1 { "es" } else { "" }, .0.iter().map(|(c, l)| format!("{c} (layer \"{l}\")")).collect::<Vec<_>>().join(", "))]
    UnknownLayers(Vec<(String, String)>),

    #[error("layer \"{layer}\" ({class}): {message}")]
    Layer {
        layer: String,
        class: String,
        message: String,
    },

    #[error(
        "layer \"{layer}\": missing weight \"{weight}\" (the weights manifest has no such tensor)"
    )]
    MissingWeight { layer: String, weight: String },

    #[error("weights manifest holds {} tensor{} that no layer uses: {}", .0.len(), if .0.len() == 1 { "" } else { "s" }, .0.join(", "))]
    SurplusWeights(Vec<String>),

    /// `expected` has `None` where the layer config does not fix the size.
    #[error(
        "layer \"{layer}\": weight \"{weight}\" has shape {}, the layer config implies {}",
        dims(actual),
        open_dims(expected)
    )]
    WeightShape {
        layer: String,
        weight: String,
        expected: Vec<Option<usize>>,
        actual: Vec<usize>,
    },

    #[error("{node}: {message}")]
    Shape { node: String, message: String },

    /// A value would hold more elements than `Limits::max_activation_elements` allows
    /// (checked before anything is allocated; see [`crate::bounds`]).
    #[error("{node}: shape {shape} has {elements} elements ({context}), over the limit max_activation_elements = {limit} (raise Limits::max_activation_elements if the model really needs it)")]
    ActivationLimit {
        node: String,
        shape: String,
        elements: u64,
        context: String,
        limit: u64,
    },

    #[error(
        "input {index} (\"{name}\"): expected shape {expected}, got {}",
        dims(actual)
    )]
    InputShape {
        index: usize,
        name: String,
        expected: String,
        actual: Vec<usize>,
    },

    #[error("expected {expected} input tensor{}, got {actual}", if *.expected == 1 { "" } else { "s" })]
    InputCount { expected: usize, actual: usize },

    #[error("tensor data length {len} does not match shape {shape:?}")]
    DataLength { shape: Vec<usize>, len: usize },

    #[error("model graph: {0}")]
    Graph(String),

    #[error("backend {backend}: {message}")]
    Backend { backend: String, message: String },
}

/// `[1,224,224,3]`: shapes in messages, in the same form as tfjs and the JS API print them.
pub fn dims(shape: &[usize]) -> String {
    format!(
        "[{}]",
        shape
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// `[?,?,3,8]`: a shape with sizes left open.
pub fn open_dims(shape: &[Option<usize>]) -> String {
    format!(
        "[{}]",
        shape
            .iter()
            .map(|d| d.map_or("?".to_string(), |d| d.to_string()))
            .collect::<Vec<_>>()
            .join(",")
    )
}

impl CoreError {
    pub fn layer(layer: &str, class: &str, message: impl Into<String>) -> Self {
        CoreError::Layer {
            layer: layer.to_string(),
            class: class.to_string(),
            message: message.into(),
        }
    }
    pub fn shape(node: &str, message: impl Into<String>) -> Self {
        CoreError::Shape {
            node: node.to_string(),
            message: message.into(),
        }
    }
}
