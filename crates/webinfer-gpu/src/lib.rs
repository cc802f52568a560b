//! webinfer-gpu: the wgpu backend. It runs a lowered [`Graph`] with the WGSL kernels in
//! `shaders/` (one file per kernel family), natively (Vulkan / Metal / DX12 / GL) and in the
//! browser (WebGPU).
//!
//! - [`GpuBackend::new`] picks an adapter (real GPUs first; a software one only when allowed).
//! - [`GpuBackend::prepare`] uploads the weights once, in the layout each kernel reads.
//! - [`GpuBackend::run`] executes a [`GpuPlan`]: the first run with a set of input shapes
//!   builds and caches its execution plan (placement, buffers reused by lifetime, uniform
//!   params, bind groups, pipelines cached per device by kernel + constants); every run is then
//!   one command submission plus an async readback of the outputs.
//! - Every IR op has a GPU kernel. A node still runs on the CPU (`webinfer_cpu::eval_op`, with
//!   explicit transfers) when a tensor it touches exceeds the device's storage binding limit or
//!   its shapes have no GPU form; [`PlanStats::cpu_nodes`] says which and why.
//! - Errors are values ([`GpuError`]); a lost device is [`GpuError::DeviceLost`], never a panic.
//!
//! # Crate map
//! - `device.rs`: adapters, device, loss and error reporting. `pipelines.rs`: the caches.
//! - `shaders.rs`: the WGSL sources (validated with naga in `cargo test`).
//! - `kernels/`: per family, the op → dispatch lowering (params, operands, workgroups).
//! - `plan.rs`: weights, placement, buffer planning. `exec.rs`: running a plan.
//!
//! # Adding a kernel
//! 1. WGSL in `shaders/<family>.wgsl` (bindings: 0 params uniform, 1 output, 2.. operands;
//!    shapes only through the `Params` uniform or `override` constants); list its entry points
//!    in `Shader::entries` (a new file also needs a `Shader` variant). `cargo test` validates it.
//! 2. The lowering in `kernels/<family>.rs`: params in the WGSL struct's field order, the
//!    operands (with the weight `Layout` they need), the workgroup grid.
//! 3. Route the op to it in `kernels::lower`.
//! 4. A case in `tests/gpu_ops.rs` against `webinfer_cpu::eval_op`.

// Natively the backend is Send + Sync (tested); on wasm32 wgpu's handles are neither, and the
// `Arc`s are only ever used on the one thread.
#![cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
// Without the `device` feature (the browser's CPU-only module) the crate has no wgpu: the
// same API, whose backend never opens (`absent.rs`), and the plain data types.
#![cfg_attr(not(feature = "device"), allow(dead_code))]

#[cfg(not(feature = "device"))]
mod absent;
#[cfg(feature = "device")]
mod backend;
#[cfg(feature = "device")]
mod device;
mod error;
#[cfg(feature = "device")]
mod exec;
#[cfg(feature = "device")]
mod fallback;
mod info;
mod kernels;
#[cfg(feature = "device")]
mod pipelines;
#[cfg(feature = "device")]
mod plan;
mod shaders;

#[cfg(all(not(feature = "device"), not(target_arch = "wasm32")))]
pub use absent::list_adapters;
#[cfg(not(feature = "device"))]
pub use absent::{list_adapters_async, GpuBackend, GpuPlan, ResidentWeight};
#[cfg(feature = "device")]
pub use backend::{GpuBackend, ResidentWeight};
#[cfg(all(feature = "device", not(target_arch = "wasm32")))]
pub use device::list_adapters;
#[cfg(feature = "device")]
pub use device::list_adapters_async;
pub use error::{GpuError, Result};
pub use info::{gpu_memory, AdapterInfo, CpuNode, GpuMemory, PlanStats};
#[cfg(feature = "device")]
pub use plan::GpuPlan;

/// The stored form of one weight of layer `layer` (node origin), for
/// [`GpuBackend::prepare_with`].
#[derive(Debug, Clone, Copy)]
pub struct WeightCodes<'a> {
    pub layer: &'a str,
    /// One byte per element (uint8) or two, little-endian (float16).
    pub codes: &'a [u8],
    pub format: CodeFormat<'a>,
}

/// How [`WeightCodes`] decode.
#[derive(Debug, Clone, Copy)]
pub enum CodeFormat<'a> {
    /// uint8 codes: `lut[code]` is the float32 value a code stands for (as the model's
    /// de-quantization gives it).
    U8 { lut: &'a [f32; 256] },
    /// IEEE half precision.
    F16,
}

/// The weight operand of a GPU kernel, for [`binds_as_is`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightOperand {
    /// `Op::MatMul`'s `[k, n]` kernel.
    MatMul,
    /// `Op::Conv2d`'s `[kh, kw, cin / groups, cout]` kernel.
    Conv2d { groups: usize },
}

/// Whether the kernel binds a weight of `shape` as it lies, with no repacking (which needs the
/// values on the host): the weights that can be streamed to the device as resident weights.
pub fn binds_as_is(operand: WeightOperand, shape: &[usize]) -> bool {
    let layout = match operand {
        WeightOperand::MatMul => kernels::Layout::MatMulWeights,
        WeightOperand::Conv2d { groups } => kernels::Layout::ConvWeights { groups },
    };
    layout.is_identity(shape)
}
