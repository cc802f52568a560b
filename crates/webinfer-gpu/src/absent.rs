//! webinfer-gpu without its `device` feature (the browser's CPU-only module, which links no
//! wgpu): the same API, with a backend that never opens. Every type here is uninhabited: the
//! one way to get one, [`GpuBackend::new`], fails, so the methods can never run.

use webinfer_core::{Graph, Tensor};

use crate::{AdapterInfo, CodeFormat, GpuError, PlanStats, Result, WeightCodes};

/// The GPU backend of a build without GPU support: [`GpuBackend::new`] always fails.
pub enum GpuBackend {}

impl std::fmt::Debug for GpuBackend {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {}
    }
}

impl GpuBackend {
    /// Always `Err(NoAdapter)`: this build has no GPU support.
    pub async fn new(_allow_software: bool) -> Result<GpuBackend> {
        Err(GpuError::NoAdapter(
            "this build of webinfer has no GPU support (in a browser: webinfer's CPU-only \
             module, which init() loads where the page has no WebGPU or asks for the CPU \
             with init({backend: 'cpu'}))"
                .into(),
        ))
    }
    pub fn adapter_info(&self) -> AdapterInfo {
        match *self {}
    }
    pub fn is_lost(&self) -> bool {
        match *self {}
    }
    pub fn debug_lose_device(&self) {
        match *self {}
    }
    pub fn max_tensor_bytes(&self) -> u64 {
        match *self {}
    }
    pub fn pipeline_count(&self) -> usize {
        match *self {}
    }
    pub fn prepare(&self, _: &Graph) -> Result<GpuPlan> {
        match *self {}
    }
    pub fn prepare_with(
        &self,
        _: &Graph,
        _: &[ResidentWeight],
        _: &[WeightCodes<'_>],
    ) -> Result<GpuPlan> {
        match *self {}
    }
    pub async fn run(&self, _: &GpuPlan, _: &Graph, _: &[Tensor]) -> Result<Vec<Tensor>> {
        match *self {}
    }
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_blocking(&self, _: &GpuPlan, _: &Graph, _: &[Tensor]) -> Result<Vec<Tensor>> {
        match *self {}
    }
    pub fn resident_weight(&self, _: &str, _: usize) -> Result<ResidentWeight> {
        match *self {}
    }
    pub fn resident_stored_weight(
        &self,
        _: &str,
        _: &[usize],
        _: CodeFormat<'_>,
    ) -> Result<ResidentWeight> {
        match *self {}
    }
    pub fn debug_lose_device_during_next_run(&self) {
        match *self {}
    }
    pub fn debug_force_cpu(&self, _: &[&str]) {
        match *self {}
    }
    pub fn debug_max_binding(&self, _: u64) {
        match *self {}
    }
}

/// A plan of a build without GPU support (never made).
pub enum GpuPlan {}

impl std::fmt::Debug for GpuPlan {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {}
    }
}

impl GpuPlan {
    pub fn weight_bytes(&self) -> u64 {
        match *self {}
    }
    pub fn peak_bytes(&self) -> u64 {
        match *self {}
    }
    pub fn stats(&self, _: &[Vec<usize>]) -> Option<PlanStats> {
        match *self {}
    }
}

/// A resident weight of a build without GPU support (never made).
#[derive(Clone)]
pub enum ResidentWeight {}

impl std::fmt::Debug for ResidentWeight {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {}
    }
}

impl ResidentWeight {
    pub fn elements(&self) -> usize {
        match *self {}
    }
    pub fn bytes(&self) -> u64 {
        match *self {}
    }
    pub fn write(&self, _: usize, _: &[f32]) -> Result<()> {
        match *self {}
    }
    pub fn write_stored(&self, _: usize, _: &[u8]) -> Result<()> {
        match *self {}
    }
}

/// No adapters: this build has no GPU support.
pub async fn list_adapters_async() -> Vec<AdapterInfo> {
    Vec::new()
}

/// No adapters: this build has no GPU support.
#[cfg(not(target_arch = "wasm32"))]
pub fn list_adapters() -> Vec<AdapterInfo> {
    Vec::new()
}
