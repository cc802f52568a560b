//! The GPU backend's errors. Messages name the layer (`node.origin`) and the op where one is
//! involved, so that a user can tell which part of the model failed.

use thiserror::Error;

pub type Result<T, E = GpuError> = std::result::Result<T, E>;

#[derive(Debug, Error)]
pub enum GpuError {
    /// No usable adapter (or only a software one when software was not allowed).
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),

    /// The adapter refused to create a device.
    #[error("could not create a GPU device: {0}")]
    Device(String),

    /// The device was lost (driver reset, `destroy()`, tab backgrounded for too long, ...).
    /// The backend is unusable afterwards: make a new one or fall back to the CPU.
    #[error("GPU device lost: {0}")]
    DeviceLost(String),

    /// Something this backend cannot run, e.g. a tensor larger than a device limit that
    /// cannot be moved to the CPU path either.
    #[error("unsupported on the GPU: {0}")]
    Unsupported(String),

    /// Shapes do not fit the graph (wrong input shape or count, a plan used with another graph).
    #[error("shape error: {0}")]
    Shape(String),

    /// An op that ran on the CPU fallback path failed.
    #[error("CPU fallback: {0}")]
    Cpu(String),

    /// wgpu reported a validation / out-of-memory / internal error. This is a bug in this crate
    /// or a driver problem; the message is wgpu's.
    #[error("GPU error: {0}")]
    Internal(String),
}

impl From<webinfer_core::CoreError> for GpuError {
    fn from(e: webinfer_core::CoreError) -> Self {
        GpuError::Shape(e.to_string())
    }
}

/// For callers that report every backend through [`webinfer_core::CoreError`].
impl From<GpuError> for webinfer_core::CoreError {
    fn from(e: GpuError) -> Self {
        webinfer_core::CoreError::Backend {
            backend: "gpu".into(),
            message: e.to_string(),
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    fn send_sync<T: Send + Sync>() {}

    /// Natively the backend and its plans can be shared across threads.
    #[test]
    fn backend_and_plan_are_send_and_sync() {
        send_sync::<crate::GpuBackend>();
        send_sync::<crate::GpuPlan>();
        send_sync::<super::GpuError>();
    }
}
