//! Adapter selection, the device and queue, and what the device reports back (loss, errors).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{GpuError, Result};
use crate::info::{AdapterInfo, LIVE_BUFFER_BYTES, LIVE_DEVICES};
use crate::pipelines::PipelineCache;

/// Counts `bytes` as live GPU buffer memory until dropped.
#[derive(Debug)]
pub(crate) struct Tracked(u64);

impl Tracked {
    pub(crate) fn new(bytes: u64) -> Tracked {
        LIVE_BUFFER_BYTES.fetch_add(bytes, Ordering::Relaxed);
        Tracked(bytes)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        LIVE_BUFFER_BYTES.fetch_sub(self.0, Ordering::Relaxed);
    }
}

/// A buffer owned by webinfer: counted in [`gpu_memory`], destroyed when dropped.
#[derive(Debug)]
pub(crate) struct OwnedBuffer {
    pub buffer: wgpu::Buffer,
    _bytes: Tracked,
}

impl OwnedBuffer {
    pub(crate) fn new(device: &wgpu::Device, desc: &wgpu::BufferDescriptor<'_>) -> OwnedBuffer {
        let buffer = device.create_buffer(desc);
        OwnedBuffer {
            _bytes: Tracked::new(buffer.size()),
            buffer,
        }
    }
}

impl std::ops::Deref for OwnedBuffer {
    type Target = wgpu::Buffer;
    fn deref(&self) -> &wgpu::Buffer {
        &self.buffer
    }
}

impl Drop for OwnedBuffer {
    fn drop(&mut self) {
        // Work already submitted that uses the buffer still completes (WebGPU semantics).
        self.buffer.destroy();
    }
}

impl AdapterInfo {
    fn from_wgpu(i: &wgpu::AdapterInfo) -> Self {
        let device_type = match i.device_type {
            wgpu::DeviceType::DiscreteGpu => "discrete",
            wgpu::DeviceType::IntegratedGpu => "integrated",
            wgpu::DeviceType::VirtualGpu => "virtual",
            wgpu::DeviceType::Cpu => "cpu",
            wgpu::DeviceType::Other => "other",
        };
        let lower = i.name.to_ascii_lowercase();
        let software_name = [
            "llvmpipe",
            "lavapipe",
            "swiftshader",
            "microsoft basic render",
            "warp",
        ]
        .iter()
        .any(|s| lower.contains(s));
        AdapterInfo {
            name: i.name.clone(),
            backend: i.backend.to_str().to_string(),
            device_type: device_type.to_string(),
            is_software: i.device_type == wgpu::DeviceType::Cpu || software_name,
        }
    }
}

fn instance() -> wgpu::Instance {
    // `*_from_env`: WGPU_BACKEND etc. still let a user pick a backend.
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

/// Preference order: real GPUs first, then native APIs over GL.
fn preference(a: &wgpu::Adapter) -> (u32, u32) {
    let i = a.get_info();
    let kind = match i.device_type {
        wgpu::DeviceType::DiscreteGpu => 4,
        wgpu::DeviceType::IntegratedGpu => 3,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 1,
        wgpu::DeviceType::Cpu => 0,
    };
    let soft = AdapterInfo::from_wgpu(&i).is_software;
    let api = match i.backend {
        wgpu::Backend::Gl => 0,
        _ => 1,
    };
    (if soft { 0 } else { kind }, api)
}

/// Every adapter wgpu can see, best first (async: works in the browser too).
pub async fn list_adapters_async() -> Vec<AdapterInfo> {
    let mut adapters = instance().enumerate_adapters(wgpu::Backends::all()).await;
    webinfer_core::order::sort_by_key(&mut adapters, |a| std::cmp::Reverse(preference(a)));
    adapters
        .iter()
        .map(|a| AdapterInfo::from_wgpu(&a.get_info()))
        .collect()
}

/// Every adapter wgpu can see, best first.
#[cfg(not(target_arch = "wasm32"))]
pub fn list_adapters() -> Vec<AdapterInfo> {
    futures::executor::block_on(list_adapters_async())
}

/// The device and everything shared by plans made on it.
pub(crate) struct Ctx {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: AdapterInfo,
    pub limits: wgpu::Limits,
    pub pipelines: PipelineCache,
    /// Bound where a kernel declares an operand that the op does not have (an absent bias).
    pub dummy: OwnedBuffer,
    lost: Arc<Mutex<Option<String>>>,
    errors: Arc<Mutex<Vec<String>>>,
    /// Test switch: destroy the device in the next readback, after its work was submitted
    /// and its mapping requested (a device lost mid-predict).
    pub(crate) lose_in_next_readback: AtomicBool,
}

impl Drop for Ctx {
    fn drop(&mut self) {
        // Release the device's memory now: in a browser a dropped GPUDevice would otherwise
        // live until the garbage collector finds it.
        self.device.destroy();
        LIVE_DEVICES.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Ctx {
    pub(crate) async fn new(allow_software: bool) -> Result<Ctx> {
        let inst = instance();
        let mut adapters = inst.enumerate_adapters(wgpu::Backends::all()).await;
        if adapters.is_empty() {
            // The browser's WebGPU does not enumerate: ask for one.
            let opts = wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            };
            if let Ok(a) = inst.request_adapter(&opts).await {
                adapters.push(a);
            }
        }
        webinfer_core::order::sort_by_key(&mut adapters, |a| std::cmp::Reverse(preference(a)));
        let Some(adapter) = adapters.into_iter().next() else {
            return Err(GpuError::NoAdapter(
                "wgpu found no adapter (no Vulkan / Metal / DX12 / GL / WebGPU driver)".into(),
            ));
        };
        let info = AdapterInfo::from_wgpu(&adapter.get_info());
        if info.is_software && !allow_software {
            return Err(GpuError::NoAdapter(format!(
                "only a software adapter was found ({}, {}); pass allow_software to use it",
                info.name, info.backend
            )));
        }
        // Ask for everything the adapter offers: the storage binding size bounds the largest
        // tensor a kernel can touch.
        let limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("webinfer"),
                required_features: wgpu::Features::empty(),
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::Device(format!("{} ({}): {e}", info.name, info.backend)))?;

        let lost = Arc::new(Mutex::new(None));
        let l = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            let text = match reason {
                wgpu::DeviceLostReason::Destroyed => format!(
                    "the device was destroyed{}",
                    if msg.is_empty() {
                        String::new()
                    } else {
                        format!(": {msg}")
                    }
                ),
                _ => format!("{msg} ({reason:?})"),
            };
            *l.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
        });
        // wgpu panics on an uncaptured error by default: keep them and report them from `run`.
        let errors = Arc::new(Mutex::new(Vec::new()));
        let e = errors.clone();
        device.on_uncaptured_error(Arc::new(move |err: wgpu::Error| {
            e.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(err.to_string());
        }));

        let dummy = OwnedBuffer::new(
            &device,
            &wgpu::BufferDescriptor {
                label: Some("webinfer absent operand"),
                size: 16,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            },
        );
        LIVE_DEVICES.fetch_add(1, Ordering::Relaxed);
        Ok(Ctx {
            device,
            queue,
            info,
            limits,
            pipelines: PipelineCache::default(),
            dummy,
            lost,
            errors,
            lose_in_next_readback: AtomicBool::new(false),
        })
    }

    /// `Err(DeviceLost)` once the device is gone.
    pub(crate) fn check_lost(&self) -> Result<()> {
        match &*self.lost.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(m) => Err(GpuError::DeviceLost(m.clone())),
            None => Ok(()),
        }
    }

    /// Turn errors wgpu reported since the last call into one `GpuError`.
    pub(crate) fn take_errors(&self) -> Result<()> {
        self.check_lost()?;
        let errs = std::mem::take(&mut *self.errors.lock().unwrap_or_else(|e| e.into_inner()));
        if errs.is_empty() {
            return Ok(());
        }
        let all = errs.join("; ");
        // A destroyed or lost device shows up as validation errors on everything after it.
        if all.contains("lost")
            || all.contains("destroyed")
            || all.contains("Lost")
            || all.contains("Destroyed")
        {
            return Err(GpuError::DeviceLost(all));
        }
        Err(GpuError::Internal(all))
    }

    /// The largest tensor (in bytes) a kernel may bind.
    pub(crate) fn max_binding(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }

    /// Block until the GPU is idle (native); the browser drives mapping itself.
    pub(crate) fn wait(&self) -> Result<()> {
        #[cfg(not(target_arch = "wasm32"))]
        if let Err(e) = self.device.poll(wgpu::PollType::wait_indefinitely()) {
            self.check_lost()?;
            return Err(GpuError::Internal(format!("poll: {e}")));
        }
        Ok(())
    }
}
