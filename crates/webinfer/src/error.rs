use thiserror::Error;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong loading or running a model.
#[derive(Debug, Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },

    #[error("{path}: {source}")]
    Format {
        path: String,
        source: webinfer_tfjs::FormatError,
    },

    #[error(transparent)]
    Core(#[from] webinfer_core::CoreError),

    #[error("{what}: {message}")]
    Npy { what: String, message: String },

    #[error("backend \"{requested}\" is not available: {reason}")]
    BackendUnavailable { requested: String, reason: String },

    #[error("{0}")]
    Unsupported(String),

    /// A graph-model, and this build has no graph-model support (the `graph-models` feature is off).
    #[error("{path}: a graph-model, and this build of webinfer loads layers-models only (built without its `graph-models` feature)")]
    GraphModelsNotBuilt { path: String },

    /// The GPU device was lost, and some of the model's weights lived in GPU memory only
    /// (streamed there while loading): the model must be loaded again to run on the CPU.
    #[error("{reason}, and this model's large weights were streamed to GPU memory only: load it again to run it on the CPU")]
    GpuWeightsLost { reason: String },
}

impl From<webinfer_tfjs::FormatError> for Error {
    fn from(source: webinfer_tfjs::FormatError) -> Self {
        Error::Format {
            path: "model.json".into(),
            source,
        }
    }
}
