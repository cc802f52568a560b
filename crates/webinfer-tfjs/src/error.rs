//! The one error type of this crate.
//!
//! Every variant carries enough context (the weight, the group and its paths,
//! the layer, the JSON path) for a user to find the problem in their files
//! without a debugger.

use thiserror::Error;

/// `Result` with [`FormatError`] as the error type.
pub type Result<T, E = FormatError> = std::result::Result<T, E>;

/// Everything that can be wrong with a TensorFlow.js model's files.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum FormatError {
    /// `model.json` is not JSON at all.
    #[error("model.json is not valid JSON (line {line}, column {column}): {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },

    /// A required field is absent. `path` is the JSON path, e.g. `modelTopology`.
    #[error("model.json: missing required field `{path}`")]
    MissingField { path: String },

    /// A field of `model.json` or of the weights manifest has the wrong type or value.
    /// `path` is the JSON path, e.g. `weightsManifest[0].weights[3].shape[1]`.
    #[error("model.json: {path}: {message}")]
    Invalid { path: String, message: String },

    /// A weight's dtype is one we cannot represent (`string`, `complex64`, or unknown).
    #[error(
        "weight \"{weight}\": unsupported dtype \"{dtype}\" (supported: float32, int32, bool)"
    )]
    UnsupportedDType { weight: String, dtype: String },

    /// A weight's `quantization` block is unusable.
    #[error("weight \"{weight}\": quantization: {message}")]
    Quantization { weight: String, message: String },

    /// A weight that could not be diverted, or whose destination refused its values.
    #[error("weight \"{weight}\": {message}")]
    Weight { weight: String, message: String },

    /// Two manifest entries share a name (weights are matched to layers by name).
    #[error("weight \"{name}\" appears twice in the weights manifest (group {first_group} and group {second_group})")]
    DuplicateWeight {
        name: String,
        first_group: usize,
        second_group: usize,
    },

    /// The caller passed a number of shard lists different from the number of weight groups.
    #[error("weights manifest has {expected} group(s), but shard bytes were given for {actual}")]
    GroupCount { expected: usize, actual: usize },

    /// The caller passed a number of shards different from the group's `paths`.
    #[error("weight group {group} [{}]: expected {expected} shard(s), got {actual}", .paths.join(", "))]
    ShardCount {
        group: usize,
        paths: Vec<String>,
        expected: usize,
        actual: usize,
    },

    /// The shards of a group do not hold exactly the bytes the manifest describes.
    #[error("weight group {group} [{}]: the shards hold {actual} bytes, the manifest describes exactly {expected} ({})",
        .paths.join(", "), if .actual < .expected { "file truncated or wrong file?" } else { "extra bytes: wrong file or wrong manifest?" })]
    ShardLength {
        group: usize,
        paths: Vec<String>,
        expected: u64,
        actual: u64,
    },

    /// A [`StreamDecoder`](crate::StreamDecoder) was given bytes it cannot place:
    /// an unknown file, a gap or an overlap, bytes after the weights were taken.
    #[error("shard file {path}: {message}")]
    ShardFile { path: String, message: String },

    /// A shard file holds more or fewer bytes than its known length (its
    /// `Content-Length`, or the length it was first found to have).
    #[error("shard file {path}: {actual} bytes where {expected} were announced")]
    FileLength {
        path: String,
        expected: u64,
        actual: u64,
    },

    /// [`decode_weight`](crate::decode_weight) was given a byte slice of the wrong length.
    #[error("weight \"{weight}\": expected {expected} stored bytes, got {actual}")]
    WeightLength {
        weight: String,
        expected: u64,
        actual: u64,
    },

    /// A declared size or count exceeds a [`Limits`](crate::Limits) bound.
    #[error("{what}: {value} exceeds the limit of {limit}")]
    Limit {
        what: String,
        value: u64,
        limit: u64,
    },

    /// The layers-model topology is malformed. `path` locates the problem,
    /// e.g. `layer "conv1" (index 3): inbound_nodes[0][1]`.
    #[error("model topology: {path}: {message}")]
    Topology { path: String, message: String },

    /// A layer's `config` entry has the wrong type or value.
    #[error("layer \"{layer}\": config.{key}: {message}")]
    LayerConfig {
        layer: String,
        key: String,
        message: String,
    },
}

impl FormatError {
    pub(crate) fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        FormatError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn topology(path: impl Into<String>, message: impl Into<String>) -> Self {
        FormatError::Topology {
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn limit(what: impl Into<String>, value: u64, limit: u64) -> Self {
        FormatError::Limit {
            what: what.into(),
            value,
            limit,
        }
    }
}
