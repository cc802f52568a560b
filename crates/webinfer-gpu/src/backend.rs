//! The backend with a device (the `device` feature): [`GpuBackend`] and [`ResidentWeight`].

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use webinfer_core::{Graph, Tensor};

use crate::device::{Ctx, OwnedBuffer};
use crate::error::{GpuError, Result};
use crate::info::AdapterInfo;
use crate::plan::{GpuPlan, PlanConfig};
use crate::{exec, plan, shaders, CodeFormat, WeightCodes};

/// The GPU backend: a device, its queue and its pipeline cache.
pub struct GpuBackend {
    ctx: Arc<Ctx>,
    debug: Mutex<PlanConfig>,
}

impl std::fmt::Debug for GpuBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuBackend")
            .field("adapter", &self.ctx.info)
            .finish()
    }
}

impl GpuBackend {
    /// Open the best adapter. `allow_software`: accept a CPU emulation (lavapipe, SwiftShader,
    /// WARP). `Err(NoAdapter)` when there is none.
    pub async fn new(allow_software: bool) -> Result<GpuBackend> {
        let ctx = Ctx::new(allow_software).await?;
        let debug = Mutex::new(PlanConfig {
            max_binding: ctx.max_binding(),
            force_cpu: HashSet::new(),
        });
        Ok(GpuBackend {
            ctx: Arc::new(ctx),
            debug,
        })
    }

    pub fn adapter_info(&self) -> AdapterInfo {
        self.ctx.info.clone()
    }

    /// Whether the device is known to be lost (destroyed, driver reset, ...). In a browser the
    /// loss is reported asynchronously, so a run can fail before this turns true.
    pub fn is_lost(&self) -> bool {
        self.ctx.check_lost().is_err()
    }

    /// Test switch: destroy the device now (a lost GPU, as a driver reset would leave it).
    #[doc(hidden)]
    pub fn debug_lose_device(&self) {
        self.ctx.device.destroy();
    }

    /// The wgpu device (for interop, and for tests that destroy it).
    pub fn device(&self) -> &wgpu::Device {
        &self.ctx.device
    }

    /// The largest tensor, in bytes, a kernel may bind on this device; bigger ones run on the CPU.
    pub fn max_tensor_bytes(&self) -> u64 {
        self.config().max_binding
    }

    /// Number of compute pipelines created on this device so far.
    pub fn pipeline_count(&self) -> usize {
        self.ctx.pipelines.len()
    }

    fn config(&self) -> PlanConfig {
        self.debug.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Upload the weights of `graph` once. When all input dims are known (unknown ones are
    /// taken as 1), also build the execution plan for those shapes, creating its pipelines.
    pub fn prepare(&self, graph: &Graph) -> Result<GpuPlan> {
        self.prepare_with(graph, &[], &[])
    }

    /// [`GpuBackend::prepare`] for a graph with resident weights (`resident[key]` is the
    /// buffer of `Op::Resident { key, .. }`, made by [`GpuBackend::resident_weight`] and filled)
    /// and with the stored form of uint8-quantized and float16 weights (`codes`): a Conv2d,
    /// DepthwiseConv2d or MatMul kernel that some entry of its layer reproduces exactly (per
    /// output channel factors allowed, as a folded BatchNormalization leaves them) is kept on
    /// the device in that form, a quarter (uint8) or half (float16) of its float32 size, and
    /// decoded by the kernel as it reads it.
    pub fn prepare_with(
        &self,
        graph: &Graph,
        resident: &[ResidentWeight],
        codes: &[WeightCodes<'_>],
    ) -> Result<GpuPlan> {
        self.ctx.check_lost()?;
        let plan = GpuPlan::new(self.ctx.clone(), graph, self.config(), resident, codes)?;
        let shapes: Vec<Vec<usize>> = graph
            .inputs
            .iter()
            .map(|i| i.shape.iter().map(|d| d.unwrap_or(1)).collect())
            .collect();
        // Declared shapes that do not fit the graph are not an error here: runs with real
        // shapes will say what is wrong.
        if let Err(e @ (GpuError::DeviceLost(_) | GpuError::Internal(_))) =
            plan.exec_for(graph, &shapes)
        {
            return Err(e);
        }
        Ok(plan)
    }

    /// Run `graph` (the one `plan` was prepared for) on `inputs`, in graph input order.
    pub async fn run(
        &self,
        plan: &GpuPlan,
        graph: &Graph,
        inputs: &[Tensor],
    ) -> Result<Vec<Tensor>> {
        if !Arc::ptr_eq(&plan.ctx, &self.ctx) {
            return Err(GpuError::Unsupported(
                "this plan was prepared on another GpuBackend".into(),
            ));
        }
        plan.check_graph(graph)?;
        check_inputs(graph, inputs)?;
        // Let wgpu notice a destroyed / lost device before new work is recorded.
        #[cfg(not(target_arch = "wasm32"))]
        let _ = self.ctx.device.poll(wgpu::PollType::Poll);
        self.ctx.check_lost()?;
        let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape().to_vec()).collect();
        let exec = plan.exec_for(graph, &shapes)?;
        exec::run(&self.ctx, &exec, graph, inputs).await
    }

    /// [`GpuBackend::run`], blocking the calling thread (native only: a browser cannot block).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_blocking(
        &self,
        plan: &GpuPlan,
        graph: &Graph,
        inputs: &[Tensor],
    ) -> Result<Vec<Tensor>> {
        futures::executor::block_on(self.run(plan, graph, inputs))
    }

    /// A weight buffer of `elements` float32 values in GPU memory, to be filled with
    /// [`ResidentWeight::write`] while the weight's bytes arrive (so the host never holds the
    /// whole weight) and bound by plans as an `Op::Resident` weight.
    pub fn resident_weight(&self, label: &str, elements: usize) -> Result<ResidentWeight> {
        self.ctx.check_lost()?;
        let bytes = (elements as u64).saturating_mul(4);
        let max = self.max_tensor_bytes();
        if bytes > max {
            return Err(GpuError::Unsupported(format!(
                "weight \"{label}\" is {bytes} bytes, over the device's storage binding limit \
                 of {max} bytes"
            )));
        }
        let buffer = self.weight_buffer(label, bytes);
        self.ctx.take_errors()?;
        Ok(ResidentWeight {
            buffer: Arc::new(buffer),
            ctx: self.ctx.clone(),
            elements,
            stored: None,
        })
    }

    /// Like [`GpuBackend::resident_weight`], for a weight of `shape` (a Dense or Conv2D
    /// kernel: its output channels last) held in its stored form, uint8 codes or float16
    /// (a quarter or half of float32's memory), and decoded by the kernels as they read it:
    /// fill it with [`ResidentWeight::write_stored`].
    pub fn resident_stored_weight(
        &self,
        label: &str,
        shape: &[usize],
        format: CodeFormat<'_>,
    ) -> Result<ResidentWeight> {
        self.ctx.check_lost()?;
        let elements: usize = shape.iter().product();
        let channels = shape.last().copied().unwrap_or(1);
        let (per, weights, mut table, host) = match format {
            CodeFormat::U8 { lut } => (
                1,
                shaders::Weights::U8,
                lut.to_vec(),
                plan::HostDecode::U8(Box::new(*lut)),
            ),
            CodeFormat::F16 => (2, shaders::Weights::F16, Vec::new(), plan::HostDecode::F16),
        };
        table.resize(table.len() + channels, 1.0);
        let bytes = (elements as u64).saturating_mul(per);
        let max = self.max_tensor_bytes();
        if bytes > max || (elements as u64).saturating_mul(4) > max {
            return Err(GpuError::Unsupported(format!(
                "weight \"{label}\" is {} bytes as float32, over the device's storage binding \
                 limit of {max} bytes",
                elements as u64 * 4
            )));
        }
        let codes = self.weight_buffer(label, bytes);
        let table_buffer = self.weight_buffer(label, table.len() as u64 * 4);
        self.ctx
            .queue
            .write_buffer(&table_buffer, 0, bytemuck::cast_slice(&table));
        self.ctx.take_errors()?;
        Ok(ResidentWeight {
            buffer: Arc::new(codes),
            ctx: self.ctx.clone(),
            elements,
            stored: Some(Arc::new(ResidentStored {
                format: weights,
                table: Arc::new(table_buffer),
                host: Arc::new(host),
                bytes,
                partial: Mutex::default(),
            })),
        })
    }

    /// A buffer for `bytes` of a resident weight (rounded up to 16, at least 16).
    fn weight_buffer(&self, label: &str, bytes: u64) -> OwnedBuffer {
        OwnedBuffer::new(
            &self.ctx.device,
            &wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes.max(16).div_ceil(16) * 16,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            },
        )
    }

    /// Test switch: destroy the device during the next run, after its work was submitted and
    /// while its results are being read back (a device lost mid-predict). That run then
    /// returns [`GpuError::DeviceLost`].
    #[doc(hidden)]
    pub fn debug_lose_device_during_next_run(&self) {
        self.ctx
            .lose_in_next_readback
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Test switch: ops (by `Op::name()`) that plans prepared from now on run on the CPU.
    #[doc(hidden)]
    pub fn debug_force_cpu(&self, ops: &[&str]) {
        self.debug
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .force_cpu = ops.iter().map(|s| s.to_string()).collect();
    }

    /// Test switch: pretend the device's storage binding limit is `bytes` for plans prepared
    /// from now on (at most the real limit).
    #[doc(hidden)]
    pub fn debug_max_binding(&self, bytes: u64) {
        self.debug
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .max_binding = bytes.min(self.ctx.max_binding());
    }
}

/// A weight in GPU memory only ([`GpuBackend::resident_weight`],
/// [`GpuBackend::resident_stored_weight`]): written piece by piece as its bytes arrive, then
/// bound by the plans of graphs that name it in an `Op::Resident`. Clones share the buffer.
#[derive(Clone)]
pub struct ResidentWeight {
    pub(crate) buffer: Arc<OwnedBuffer>,
    pub(crate) ctx: Arc<Ctx>,
    pub(crate) elements: usize,
    /// Held in its stored form (uint8 codes or float16), decoded by the kernels.
    pub(crate) stored: Option<Arc<ResidentStored>>,
}

/// The stored form of a [`ResidentWeight`].
pub(crate) struct ResidentStored {
    pub format: shaders::Weights,
    /// A uint8 weight's 256 values, then a factor (1) per output channel.
    pub table: Arc<OwnedBuffer>,
    /// How the host decodes the stored bytes (for a node that runs on the CPU).
    pub host: Arc<plan::HostDecode>,
    /// Bytes of the stored form.
    pub bytes: u64,
    /// 4-byte words written in pieces so far (the device writes whole words): the bytes in,
    /// and which.
    partial: Mutex<std::collections::HashMap<u64, ([u8; 4], u8)>>,
}

impl std::fmt::Debug for ResidentWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResidentWeight")
            .field("elements", &self.elements)
            .finish()
    }
}

impl ResidentWeight {
    /// The number of values it holds.
    pub fn elements(&self) -> usize {
        self.elements
    }

    /// The GPU memory it takes: float32 values, or the stored form and its table.
    pub fn bytes(&self) -> u64 {
        self.buffer.size() + self.stored.as_ref().map_or(0, |s| s.table.size())
    }

    /// Writes `bytes` of the stored form, `offset` bytes into it (any pieces, each byte
    /// once; queued: visible to every later submission). Only for a weight made by
    /// [`GpuBackend::resident_stored_weight`].
    pub fn write_stored(&self, offset: usize, bytes: &[u8]) -> Result<()> {
        let Some(stored) = &self.stored else {
            return Err(GpuError::Shape(
                "stored bytes written into a float32 weight".into(),
            ));
        };
        let (start, end) = (offset as u64, offset as u64 + bytes.len() as u64);
        if end > stored.bytes {
            return Err(GpuError::Shape(format!(
                "{} bytes written at {offset} into a weight of {} stored bytes",
                bytes.len(),
                stored.bytes
            )));
        }
        // Whole words straight to the device; the bytes of a word cut between two pieces
        // wait for the rest of it.
        let (first_word, last_word) = (start.div_ceil(4) * 4, end / 4 * 4);
        if first_word < last_word {
            let run = &bytes[(first_word - start) as usize..(last_word - start) as usize];
            self.ctx.queue.write_buffer(&self.buffer, first_word, run);
        }
        let cut = if first_word < last_word {
            [start..first_word, last_word..end]
        } else {
            [start..end, end..end]
        };
        let mut partial = stored.partial.lock().unwrap_or_else(|e| e.into_inner());
        for at in cut.into_iter().flatten() {
            let b = bytes[(at - start) as usize];
            let word = partial.entry(at / 4).or_insert(([0; 4], 0));
            word.0[(at % 4) as usize] = b;
            word.1 |= 1 << (at % 4);
            if word.1 == 0b1111 {
                let w = word.0;
                partial.remove(&(at / 4));
                self.ctx.queue.write_buffer(&self.buffer, at / 4 * 4, &w);
            }
        }
        Ok(())
    }

    /// Writes `values` from element `first` on (queued: visible to every later submission).
    pub fn write(&self, first: usize, values: &[f32]) -> Result<()> {
        if self.stored.is_some() {
            return Err(GpuError::Shape(
                "float32 values written into a weight held in its stored form".into(),
            ));
        }
        let end = first.checked_add(values.len());
        if end.is_none_or(|end| end > self.elements) {
            return Err(GpuError::Shape(format!(
                "{} values written at {first} into a weight of {} values",
                values.len(),
                self.elements
            )));
        }
        if !values.is_empty() {
            self.ctx.queue.write_buffer(
                &self.buffer,
                first as u64 * 4,
                bytemuck::cast_slice(values),
            );
        }
        Ok(())
    }
}

fn check_inputs(graph: &Graph, inputs: &[Tensor]) -> Result<()> {
    if inputs.len() != graph.inputs.len() {
        return Err(GpuError::Shape(format!(
            "the model takes {} input(s), got {}",
            graph.inputs.len(),
            inputs.len()
        )));
    }
    for (i, (spec, t)) in graph.inputs.iter().zip(inputs).enumerate() {
        let fits = spec.shape.len() == t.rank()
            && spec
                .shape
                .iter()
                .zip(t.shape())
                .all(|(d, &a)| d.is_none_or(|d| d == a));
        if !fits {
            let expected: Vec<String> = spec
                .shape
                .iter()
                .map(|d| d.map_or("?".to_string(), |d| d.to_string()))
                .collect();
            return Err(GpuError::Shape(format!(
                "input {i} (\"{}\"): expected shape [{}], got {:?}",
                spec.name,
                expected.join(", "),
                t.shape()
            )));
        }
    }
    Ok(())
}
