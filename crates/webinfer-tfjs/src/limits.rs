//! Size and count limits applied while parsing untrusted model files.
//!
//! Every limit is checked before the memory it guards is allocated, so a
//! hostile `model.json` (say a weight of shape `[1e12, 1e12]`) is rejected
//! with [`FormatError::Limit`](crate::FormatError::Limit) instead of
//! exhausting memory.

/// Upper bounds on what a model may declare.
///
/// The defaults admit every real TensorFlow.js model we know of (the largest
/// published ones are a few hundred MiB) while keeping a malicious file from
/// asking for more than a few GiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Sum of the stored bytes of every weight in the manifest. Default 4 GiB.
    pub max_total_weight_bytes: u64,
    /// Number of elements of any one weight. Default 2^31.
    pub max_tensor_elements: u64,
    /// Rank of any weight shape or input shape. Default 8.
    pub max_rank: usize,
    /// Number of shard files over all weight groups. Default 10 000.
    pub max_shards: usize,
    /// Number of weights over all weight groups. Default 100 000.
    pub max_weights: usize,
    /// Number of layers in a layers-model topology. Default 100 000.
    pub max_layers: usize,
    /// Size of the `model.json` text itself. Default 64 MiB.
    pub max_model_json_bytes: usize,
    /// Number of elements of any one activation: a model input, an intermediate value or an
    /// output (and any constant computed at load). Checked by the engine (`webinfer-core`)
    /// at load for the declared input shapes at batch 1 — a model declaring
    /// `[null, 100000, 100000, 3]` fails before anything is allocated — and at predict for
    /// the inputs given, so that too large a batch is refused instead of aborting on an
    /// allocation. Default 2^28 (1 GiB of `f32`).
    pub max_activation_elements: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_total_weight_bytes: 4 << 30,
            max_tensor_elements: 1 << 31,
            max_rank: 8,
            max_shards: 10_000,
            max_weights: 100_000,
            max_layers: 100_000,
            max_model_json_bytes: 64 << 20,
            max_activation_elements: 1 << 28,
        }
    }
}
