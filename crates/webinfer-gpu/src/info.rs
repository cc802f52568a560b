//! What webinfer-gpu reports with or without its `device` feature: adapters, GPU memory held,
//! and what a plan does. Plain data, no wgpu.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use webinfer_core::ValueId;

/// Bytes of the GPU buffers webinfer holds now, over every device of the process.
pub(crate) static LIVE_BUFFER_BYTES: AtomicU64 = AtomicU64::new(0);
/// Devices webinfer holds now.
pub(crate) static LIVE_DEVICES: AtomicUsize = AtomicUsize::new(0);

/// What webinfer holds on GPUs right now, over the whole process (or page).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GpuMemory {
    /// Bytes of every GPU buffer webinfer created and has not released yet: weights,
    /// intermediates, inputs, uniforms, readback staging. Released buffers are destroyed
    /// explicitly (in a browser a dropped `GPUBuffer` would otherwise wait for the garbage
    /// collector), so this is memory the GPU really still holds for webinfer.
    pub buffer_bytes: u64,
    /// GPU devices webinfer holds (one per model on a GPU backend); a released one is destroyed.
    pub devices: usize,
}

/// What webinfer holds on GPUs right now (for leak checks and memory reports).
pub fn gpu_memory() -> GpuMemory {
    GpuMemory {
        buffer_bytes: LIVE_BUFFER_BYTES.load(Ordering::Relaxed),
        devices: LIVE_DEVICES.load(Ordering::Relaxed),
    }
}

/// What a caller needs to know about an adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterInfo {
    pub name: String,
    /// `"vulkan"`, `"metal"`, `"dx12"`, `"gl"`, `"webgpu"`.
    pub backend: String,
    /// `"discrete"`, `"integrated"`, `"virtual"`, `"cpu"`, `"other"`.
    pub device_type: String,
    /// A CPU emulation (lavapipe / llvmpipe, SwiftShader, WARP): correct but slow.
    pub is_software: bool,
}

/// A node that a plan runs on the CPU, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuNode {
    pub node: ValueId,
    pub origin: String,
    pub op: &'static str,
    pub reason: String,
}

/// What one execution plan (one set of input shapes) does.
#[derive(Debug, Clone, Default)]
pub struct PlanStats {
    /// Compute dispatches per run.
    pub dispatches: usize,
    /// Nodes run on the GPU (Reshape aliases included).
    pub gpu_nodes: usize,
    /// Nodes run on the CPU, with the reason.
    pub cpu_nodes: Vec<CpuNode>,
    /// Queue submissions per run (1 when everything runs on the GPU).
    pub submissions: usize,
    /// GPU bytes of intermediates, inputs and uniforms (weights not included).
    pub activation_bytes: u64,
    /// Intermediate buffers after lifetime-based reuse.
    pub slots: usize,
}
