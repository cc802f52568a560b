//! Run TensorFlow.js models from Rust.
//!
//! `webinfer` loads a tfjs `model.json` and its binary weight shards (every weight dtype and
//! quantization tfjs writes), lowers the network into a small IR, and runs it on a backend.
//!
//! ```
//! # fn main() -> Result<(), webinfer::Error> { futures::executor::block_on(async {
//! use webinfer::{Model, Tensor};
//! // A model from the conformance fixtures (made by TensorFlow.js itself).
//! let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/dense_sequential");
//! let model = Model::load(format!("{dir}/model.json")).await?;
//! for input in model.inputs() {
//!     println!("input {} {:?}", input.name, input.shape);
//! }
//! let shape: Vec<usize> = model.inputs()[0].shape.iter().map(|d| d.unwrap_or(1)).collect();
//! let n = shape.iter().product();
//! let x = Tensor::new(shape, vec![0.5; n])?;
//! let outputs = model.predict(&[x]).await?;
//! println!("output {:?}", outputs[0].shape());
//! # Ok(()) }) }
//! ```
//!
//! Errors never panic: bad JSON, missing or truncated shards, unknown layers (all named at
//! once), weights that do not fit their layer and wrong input shapes all return [`Error`].

// Without the `gpu` feature the GPU types are uninhabited (webinfer-gpu without `device`):
// the code that would use one is unreachable, as the compiler sees.
#![cfg_attr(
    not(feature = "gpu"),
    allow(unreachable_code, unused_variables, unused_mut)
)]

mod error;
mod graph_models;
pub mod npy;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use error::{Error, Result};
pub use webinfer_core::{CoreError, Graph, Tensor};
pub use webinfer_tfjs::Limits;

use std::sync::{Arc, Mutex};

use webinfer_core::ir::InputSpec;
use webinfer_core::Backend as _;
use webinfer_cpu::CpuBackend;
use webinfer_gpu::{GpuBackend, GpuError, GpuPlan};
use webinfer_tfjs::{ModelFormat, ModelJson};

pub use webinfer_gpu::{gpu_memory, AdapterInfo, GpuMemory};

/// Which backend runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// A hardware GPU when one exists, else the CPU. A software adapter (lavapipe,
    /// SwiftShader, WARP) is not used: the CPU backend is faster than a GPU emulated on it.
    #[default]
    Auto,
    /// Always the CPU.
    Cpu,
    /// Any GPU adapter, a software one included; an error when there is none.
    Gpu,
}

impl std::str::FromStr for BackendChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(BackendChoice::Auto),
            "cpu" => Ok(BackendChoice::Cpu),
            "gpu" | "webgpu" => Ok(BackendChoice::Gpu),
            other => Err(Error::Unsupported(format!(
                "unknown backend \"{other}\" (expected auto, cpu or gpu)"
            ))),
        }
    }
}

/// How to load a model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub backend: BackendChoice,
    /// Bounds on what a model.json may declare, checked before anything is allocated.
    pub limits: Limits,
    /// On the GPU, when the backend is chosen before the weights arrive
    /// ([`ModelBuilder::use_backend`]): Dense and Conv2D kernels of at least this many bytes
    /// (decoded, float32) are streamed straight into GPU memory as their bytes arrive, so the host
    /// never holds them (the peak host memory of a load is then the other weights plus
    /// a 64 KiB scratch, not the whole model); uint8-quantized and float16 kernels stay in
    /// that form there. Default 64 KiB: a kernel streams through a decoding scratch of up to
    /// 64 KiB, so a smaller one would save nothing. `u64::MAX` turns it off.
    pub gpu_stream_min_bytes: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            backend: BackendChoice::default(),
            limits: Limits::default(),
            gpu_stream_min_bytes: 64 << 10,
        }
    }
}

/// A model input or output.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// `None` where the model leaves the size open (the batch, usually).
    pub shape: Vec<Option<usize>>,
    pub dtype: String,
}

/// Facts about a loaded model, for `webinfer inspect`.
#[derive(Debug, Clone, Default)]
pub struct ModelStats {
    pub format: String,
    pub model_class: String,
    pub keras_version: Option<String>,
    pub generated_by: Option<String>,
    pub converted_by: Option<String>,
    /// `(layer name, class name)` in file order.
    pub layers: Vec<(String, String)>,
    pub weight_count: usize,
    /// Bytes as stored in the shards.
    pub weight_bytes: u64,
    /// Weight dtypes as stored (`float32`, `uint8`, ...) with their tensor counts.
    pub weight_dtypes: Vec<(String, usize)>,
    pub shard_count: usize,
    /// IR op names with their counts after the load-time passes.
    pub ops: Vec<(String, usize)>,
}

/// The GPU side of a model: the backend and the plan prepared for this graph.
struct GpuEngine {
    backend: Arc<GpuBackend>,
    plan: GpuPlan,
    /// Bytes of weights streamed to the device at load (`Op::Resident`): the host has no copy.
    resident_bytes: u64,
}

/// A backend chosen for a model ([`Backend::choose`]), possibly before its weights arrive,
/// so that they can be streamed to it ([`ModelBuilder::use_backend`]). Clones share the
/// GPU device.
#[derive(Debug, Clone)]
pub struct Backend {
    gpu: Option<Arc<GpuBackend>>,
    selection: String,
}

impl Backend {
    /// Picks the backend for `choice`, as loading a model does: for `Gpu`, an error when no
    /// adapter is usable; for `Auto`, a hardware GPU, else the CPU.
    pub async fn choose(choice: BackendChoice) -> Result<Backend> {
        let (gpu, selection) = choose_backend(choice).await?;
        Ok(Backend {
            gpu: gpu.map(Arc::new),
            selection,
        })
    }

    /// `"gpu"` or `"cpu"`.
    pub fn name(&self) -> &'static str {
        if self.gpu.is_some() {
            "gpu"
        } else {
            "cpu"
        }
    }

    /// Why it was chosen (see [`Model::backend_selection`]).
    pub fn selection(&self) -> &str {
        &self.selection
    }
}

/// A diverted weight's destination: its GPU buffer.
struct GpuSink(webinfer_gpu::ResidentWeight);

impl webinfer_tfjs::ValueSink for GpuSink {
    fn write(&mut self, first: usize, values: &[f32]) -> std::result::Result<(), String> {
        self.0
            .write(first, values)
            .map_err(|e| format!("streaming it to the GPU: {e}"))
    }
}

impl webinfer_tfjs::StoredSink for GpuSink {
    fn write(&mut self, offset: usize, bytes: &[u8]) -> std::result::Result<(), String> {
        self.0
            .write_stored(offset, bytes)
            .map_err(|e| format!("streaming it to the GPU: {e}"))
    }
}

/// The GPU's name for a stored form the decoder reports.
fn gpu_format(format: &webinfer_tfjs::CodeFormat) -> webinfer_gpu::CodeFormat<'_> {
    match format {
        webinfer_tfjs::CodeFormat::U8 { lut } => webinfer_gpu::CodeFormat::U8 { lut },
        webinfer_tfjs::CodeFormat::F16 => webinfer_gpu::CodeFormat::F16,
    }
}

/// A loaded model, ready to predict.
pub struct Model {
    graph: Graph,
    gpu: Option<GpuEngine>,
    cpu: CpuBackend,
    /// Why this backend was chosen (for `webinfer inspect` and the JS API).
    selection: String,
    /// Set when the GPU device was lost: the model runs on the CPU from then on.
    gpu_lost: Mutex<Option<String>>,
    inputs: Vec<TensorInfo>,
    outputs: Vec<TensorInfo>,
    stats: ModelStats,
    /// `Limits::max_activation_elements`, checked again at every predict.
    max_activation_elements: u64,
    /// For a model whose weights were streamed to the GPU from files: where they are, to read
    /// them again if the device is lost; and the host graph once read.
    reload: Option<(PathBuf, LoadOptions)>,
    host_graph: Mutex<Option<Arc<Graph>>>,
}

/// `adapter "NVIDIA H200" (vulkan, discrete)`; browsers hide the name, so then
/// `an unnamed adapter (webgpu, cpu)`.
fn describe_adapter(a: &AdapterInfo) -> String {
    let kind = if a.is_software { ", software" } else { "" };
    if a.name.is_empty() {
        format!(
            "an unnamed adapter ({}, {}{kind})",
            a.backend, a.device_type
        )
    } else {
        format!(
            "adapter \"{}\" ({}, {}{kind})",
            a.name, a.backend, a.device_type
        )
    }
}

/// Pick the backend for `choice`: the GPU backend (if any) and why.
async fn choose_backend(choice: BackendChoice) -> Result<(Option<GpuBackend>, String)> {
    match choice {
        BackendChoice::Cpu => Ok((None, "cpu: requested".into())),
        BackendChoice::Gpu => match GpuBackend::new(true).await {
            Ok(g) => {
                let a = g.adapter_info();
                Ok((Some(g), format!("gpu: requested; {}", describe_adapter(&a))))
            }
            Err(e) => Err(Error::BackendUnavailable {
                requested: "gpu".into(),
                reason: e.to_string(),
            }),
        },
        BackendChoice::Auto => match GpuBackend::new(false).await {
            Ok(g) => {
                let a = g.adapter_info();
                Ok((
                    Some(g),
                    format!("auto: hardware GPU, {}", describe_adapter(&a)),
                ))
            }
            Err(e) => {
                let adapters = webinfer_gpu::list_adapters_async().await;
                let why = if adapters.is_empty() {
                    format!("no GPU adapter was found ({e})")
                } else {
                    let names: Vec<String> = adapters.iter().map(describe_adapter).collect();
                    format!(
                        "the only GPU adapters are software ones ({}), which run slower than the CPU backend; ask for backend gpu to use one anyway",
                        names.join(", ")
                    )
                };
                Ok((None, format!("auto: cpu, because {why}")))
            }
        },
    }
}

/// The adapters wgpu sees on this machine (natively).
#[cfg(not(target_arch = "wasm32"))]
pub fn list_adapters() -> Vec<AdapterInfo> {
    webinfer_gpu::list_adapters()
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("backend", &self.backend_name())
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .finish()
    }
}

impl Model {
    /// Load `model.json` and its shards (resolved next to it) with default options.
    pub async fn load(path: impl AsRef<Path>) -> Result<Model> {
        Self::load_with(path, &LoadOptions::default()).await
    }

    /// Load `model.json` and its shards from files. On a GPU, the large kernels stream from
    /// the files straight into GPU memory ([`LoadOptions::gpu_stream_min_bytes`]); if the
    /// device is lost, they are read again from the files for the CPU.
    pub async fn load_with(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Model> {
        let path = path.as_ref();
        let (mut builder, dir) = Self::open_files(path, options)?;
        // model.json is checked (unknown layers, limits) before a backend is chosen.
        builder.use_backend(Backend::choose(options.backend).await?)?;
        Self::read_shards(&mut builder, &mut |p| read_file(&dir.join(p)))?;
        let mut model = builder.finish().await?;
        if model.graph.has_resident() {
            model.reload = Some((path.to_path_buf(), options.clone()));
        }
        Ok(model)
    }

    /// A builder for the model.json at `path`, and the folder its shards are read from.
    fn open_files(path: &Path, options: &LoadOptions) -> Result<(ModelBuilder, PathBuf)> {
        let json = read_file(path)?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let builder = ModelBuilder::with_names(
            &json,
            &path.display().to_string(),
            &dir.display().to_string(),
            options,
        )?;
        Ok((builder, dir))
    }

    /// Load from bytes already in memory: `shards` maps each manifest path to its bytes.
    /// The shards are consumed (each is dropped once decoded), so peak memory holds one
    /// copy of the weights, not two.
    pub async fn from_memory(
        model_json: &[u8],
        mut shards: HashMap<String, Vec<u8>>,
        options: &LoadOptions,
    ) -> Result<Model> {
        let mut get = |p: &str| -> Result<Vec<u8>> {
            shards.remove(p).ok_or_else(|| Error::Io {
                path: p.to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such shard was given (or it is listed twice in the manifest)",
                ),
            })
        };
        let (graph, stats) = Self::build(model_json, "model.json", &mut get, "", options)?;
        Self::with_backend(graph, stats, options).await
    }

    /// Choose the backend and prepare the graph on it (weights uploaded, pipelines created).
    async fn with_backend(graph: Graph, stats: ModelStats, options: &LoadOptions) -> Result<Model> {
        let backend = Backend::choose(options.backend).await?;
        Self::on_backend(graph, stats, backend, &[], &[], options)
    }

    /// Prepare the graph on `backend`; `resident` holds the GPU buffers of its
    /// `Op::Resident` weights, `codes` the stored forms (uint8 codes, float16) a GPU may keep
    /// kernels in.
    fn on_backend(
        graph: Graph,
        stats: ModelStats,
        backend: Backend,
        resident: &[webinfer_gpu::ResidentWeight],
        codes: &[webinfer_gpu::WeightCodes<'_>],
        options: &LoadOptions,
    ) -> Result<Model> {
        let Backend { gpu, selection } = backend;
        let gpu = match gpu {
            Some(backend) => {
                let plan = backend
                    .prepare_with(&graph, resident, codes)
                    .map_err(CoreError::from)?;
                let resident_bytes = resident.iter().map(|w| w.bytes()).sum();
                Some(GpuEngine {
                    backend,
                    plan,
                    resident_bytes,
                })
            }
            None if graph.has_resident() => {
                return Err(Error::Unsupported(
                    "weights were streamed to a GPU, but the model is prepared on the CPU".into(),
                ))
            }
            None => None,
        };
        let inputs = graph.inputs.iter().map(info_of).collect();
        let outputs = output_infos(&graph);
        Ok(Model {
            graph,
            gpu,
            cpu: CpuBackend::new(),
            selection,
            gpu_lost: Mutex::new(None),
            inputs,
            outputs,
            stats,
            max_activation_elements: options.limits.max_activation_elements,
            reload: None,
            host_graph: Mutex::new(None),
        })
    }

    /// Parse, decode and lower: everything that does not depend on the backend. Each
    /// shard is decoded as soon as it is read and dropped before the next is read.
    fn build(
        json: &[u8],
        json_name: &str,
        read_shard: &mut dyn FnMut(&str) -> Result<Vec<u8>>,
        base: &str,
        options: &LoadOptions,
    ) -> Result<(Graph, ModelStats)> {
        let mut builder = ModelBuilder::with_names(json, json_name, base, options)?;
        Self::read_shards(&mut builder, read_shard)?;
        builder.build_graph()
    }

    /// Gives `builder` every shard, read with `read_shard`, group by group: the group's shards
    /// are read, their lengths checked against the manifest (so only bytes that are really
    /// there are ever decoded into), decoded, and dropped before the next group is read.
    fn read_shards(
        builder: &mut ModelBuilder,
        read_shard: &mut dyn FnMut(&str) -> Result<Vec<u8>>,
    ) -> Result<()> {
        let groups: Vec<(usize, Vec<String>, u64)> = builder
            .parsed
            .weights_manifest
            .iter()
            .enumerate()
            .map(|(g, group)| (g, group.paths.clone(), group.byte_len()))
            .collect();
        let mut file = 0usize;
        for (g, paths, expected) in groups {
            let where_ = builder.group_where(g);
            let mut shards = Vec::with_capacity(paths.len());
            for p in &paths {
                shards.push(read_shard(p)?);
            }
            let actual = shards.iter().map(|b| b.len() as u64).sum::<u64>();
            if actual != expected {
                return Err(Error::Format {
                    path: where_,
                    source: webinfer_tfjs::FormatError::ShardLength {
                        group: g,
                        paths,
                        expected,
                        actual,
                    },
                });
            }
            for bytes in shards {
                builder
                    .decoder
                    .write(file, 0, &bytes)
                    .and_then(|()| builder.decoder.set_file_length(file, bytes.len() as u64))
                    .map_err(|source| Error::Format {
                        path: where_.clone(),
                        source,
                    })?;
                file += 1;
            }
        }
        Ok(())
    }

    pub fn inputs(&self) -> &[TensorInfo] {
        &self.inputs
    }
    pub fn outputs(&self) -> &[TensorInfo] {
        &self.outputs
    }
    pub fn stats(&self) -> &ModelStats {
        &self.stats
    }
    /// The lowered graph (after the load-time passes).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// What the model really runs on now: `"gpu"` or `"cpu"` (also after a lost GPU device).
    pub fn backend_name(&self) -> &'static str {
        if self.active_gpu().is_some() {
            "gpu"
        } else {
            "cpu"
        }
    }

    /// Why the backend was chosen, e.g. `auto: cpu, because no hardware GPU adapter ...`.
    pub fn backend_selection(&self) -> &str {
        &self.selection
    }

    /// The GPU adapter in use, if the model runs on a GPU.
    pub fn adapter(&self) -> Option<AdapterInfo> {
        self.active_gpu().map(|g| g.backend.adapter_info())
    }

    /// Set when the GPU device was lost and the model fell back to the CPU: what happened.
    pub fn gpu_fallback(&self) -> Option<String> {
        self.gpu_lost
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Peak GPU memory of the plan for the declared input shapes (weights + intermediates).
    pub fn gpu_bytes(&self) -> Option<(u64, u64)> {
        self.active_gpu()
            .map(|g| (g.plan.weight_bytes(), g.plan.peak_bytes()))
    }

    /// Bytes of weights that live in GPU memory only (streamed there while loading, see
    /// [`LoadOptions::gpu_stream_min_bytes`]); 0 when the host holds every weight.
    pub fn gpu_resident_bytes(&self) -> u64 {
        self.gpu.as_ref().map_or(0, |g| g.resident_bytes)
    }

    fn active_gpu(&self) -> Option<&GpuEngine> {
        if self.gpu_fallback().is_some() {
            return None;
        }
        self.gpu.as_ref()
    }

    /// Destroy the GPU device, as a driver reset would (for tests of the fallback path).
    #[doc(hidden)]
    pub fn debug_lose_gpu_device(&self) {
        if let Some(g) = &self.gpu {
            g.backend.debug_lose_device();
        }
    }

    /// Destroy the GPU device during the next predict, after its work was submitted and while
    /// its results are read back: a device lost mid-predict (for tests of the fallback path).
    /// That predict still returns its results, computed again on the CPU.
    #[doc(hidden)]
    pub fn debug_lose_gpu_device_during_next_predict(&self) {
        if let Some(g) = &self.gpu {
            g.backend.debug_lose_device_during_next_run();
        }
    }

    /// Run the model on `inputs` (in [`Model::inputs`] order); returns the outputs in order.
    /// Every known dimension of each input must match the model's, and no value the inputs
    /// imply may exceed `Limits::max_activation_elements` (an error, before allocating).
    pub async fn predict(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        if inputs.len() != self.inputs.len() {
            return Err(CoreError::InputCount {
                expected: self.inputs.len(),
                actual: inputs.len(),
            }
            .into());
        }
        for (index, (t, info)) in inputs.iter().zip(&self.inputs).enumerate() {
            let fits = t.rank() == info.shape.len()
                && t.shape()
                    .iter()
                    .zip(&info.shape)
                    .all(|(a, e)| e.is_none_or(|e| e == *a));
            if !fits {
                return Err(CoreError::InputShape {
                    index,
                    name: info.name.clone(),
                    expected: shape_text(&info.shape),
                    actual: t.shape().to_vec(),
                }
                .into());
            }
        }
        // Refuse inputs (a batch, an open dim) whose intermediates would exceed the limit,
        // before the backend allocates them.
        let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape().to_vec()).collect();
        webinfer_core::bounds::check_run(&self.graph, &shapes, self.max_activation_elements)?;
        if let Some(g) = self.active_gpu() {
            match g.backend.run(&g.plan, &self.graph, inputs).await {
                Ok(out) => return Ok(out),
                // A device lost before or during this run (its readback failed), or any error
                // once the device is known to be lost: keep the page working, this call and
                // every later one run on the CPU.
                Err(e) => {
                    let why = match e {
                        GpuError::DeviceLost(why) => why,
                        other if g.backend.is_lost() => other.to_string(),
                        other => return Err(CoreError::from(other).into()),
                    };
                    let mut lost = self.gpu_lost.lock().unwrap_or_else(|e| e.into_inner());
                    // Overlapping predicts can all see the loss: keep the first account.
                    if lost.is_none() {
                        *lost = Some(if self.graph.has_resident() {
                            format!("the GPU device was lost ({why})")
                        } else {
                            format!(
                                "the GPU device was lost ({why}); running on the CPU from now on"
                            )
                        });
                    }
                }
            }
        }
        if self.graph.has_resident() {
            let graph = self.host_graph()?;
            return Ok(self.cpu.run(&graph, inputs)?);
        }
        Ok(self.cpu.run(&self.graph, inputs)?)
    }
}

impl Model {
    /// The graph with every weight on the host, for the CPU after a lost GPU: read again from
    /// the files a streamed model was loaded from (once), else an error asking for a reload.
    fn host_graph(&self) -> Result<Arc<Graph>> {
        let mut host = self.host_graph.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(g) = host.as_ref() {
            return Ok(g.clone());
        }
        let reason = self.gpu_fallback().unwrap_or_default();
        // In the browser the files are the page's to fetch again (webinfer-web reloads the
        // model); left out of the module.
        let reload = if cfg!(target_arch = "wasm32") {
            None
        } else {
            self.reload.as_ref()
        };
        let Some((path, options)) = reload else {
            return Err(Error::GpuWeightsLost { reason });
        };
        let (mut builder, dir) = Self::open_files(path, options)?;
        Self::read_shards(&mut builder, &mut |p| read_file(&dir.join(p)))?;
        let graph = Arc::new(builder.build_graph()?.0);
        *host = Some(graph.clone());
        let mut lost = self.gpu_lost.lock().unwrap_or_else(|e| e.into_inner());
        *lost = Some(format!(
            "{reason}; its weights, which lived in GPU memory only, were read again from {}; \
             running on the CPU from now on",
            path.display()
        ));
        Ok(graph)
    }
}

/// A whole file, or an error naming it.
fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })
}

fn info_of(spec: &InputSpec) -> TensorInfo {
    TensorInfo {
        name: spec.name.clone(),
        shape: spec.shape.clone(),
        dtype: spec.dtype.clone(),
    }
}

/// Output shapes inferred for batch 1 when the inputs are static (batch left open).
fn output_infos(graph: &Graph) -> Vec<TensorInfo> {
    let shapes = webinfer_core::lower::static_input_shapes(&graph.inputs, 1)
        .and_then(|s| graph.infer_shapes(&s).ok());
    graph
        .outputs
        .iter()
        .zip(&graph.output_names)
        .map(|(&v, name)| TensorInfo {
            name: name.clone(),
            shape: match &shapes {
                Some(s) => s[v]
                    .iter()
                    .enumerate()
                    .map(|(i, &d)| if i == 0 { None } else { Some(d) })
                    .collect(),
                None => vec![],
            },
            dtype: "float32".into(),
        })
        .collect()
}

/// `[null,224,224,3]`-style text for a partially known shape.
pub fn shape_text(shape: &[Option<usize>]) -> String {
    format!(
        "[{}]",
        shape
            .iter()
            .map(|d| d.map_or("null".to_string(), |d| d.to_string()))
            .collect::<Vec<_>>()
            .join(",")
    )
}

enum Topology {
    Layers(webinfer_tfjs::LayersModel),
    Graph(graph_models::Model),
}

/// A model being loaded from bytes that arrive piece by piece (the browser's streaming
/// download): [`ModelBuilder::new`] parses `model.json` and refuses unknown layers and
/// oversized models before any shard is read; the shard bytes then go to
/// [`ModelBuilder::decoder`] as they arrive (decoded straight into the weights, so no
/// shard is held whole); [`ModelBuilder::finish`] lowers the graph and prepares the backend.
pub struct ModelBuilder {
    /// Set by [`ModelBuilder::build_now`]: the graph built before `finish`.
    built: Option<Result<(Graph, ModelStats)>>,
    /// A layers-model's graph, lowered from `model.json` alone while the shards download;
    /// the values go in once every byte is in.
    lowered: Option<webinfer_core::lower::Lowered>,
    parsed: ModelJson,
    topology: Topology,
    decoder: webinfer_tfjs::StreamDecoder,
    base: String,
    options: LoadOptions,
    /// Set by [`ModelBuilder::use_backend`].
    backend: Option<Backend>,
    /// Weights streamed to the GPU: manifest name -> key, and the buffers by key.
    resident_names: HashMap<String, usize>,
    resident: Vec<webinfer_gpu::ResidentWeight>,
    /// uint8 / float16 kernels whose stored bytes the decoder keeps for the GPU:
    /// (layer, weight name).
    coded: Vec<(String, String)>,
}

impl std::fmt::Debug for ModelBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelBuilder").finish_non_exhaustive()
    }
}

impl ModelBuilder {
    /// Parses `model_json` and prepares the weights' decoder.
    pub fn new(model_json: &[u8], options: &LoadOptions) -> Result<ModelBuilder> {
        Self::with_names(model_json, "model.json", "", options)
    }

    /// [`ModelBuilder::new`] for a `model.json` already parsed (with
    /// `webinfer_tfjs::parse_model_json` and the same limits), as a loader has it.
    pub fn from_model_json(parsed: ModelJson, options: &LoadOptions) -> Result<ModelBuilder> {
        Self::from_parsed(parsed, "model.json", "", options)
    }

    fn with_names(
        json: &[u8],
        json_name: &str,
        base: &str,
        options: &LoadOptions,
    ) -> Result<ModelBuilder> {
        let parsed: ModelJson =
            webinfer_tfjs::parse_model_json(json, &options.limits).map_err(|source| {
                Error::Format {
                    path: json_name.to_string(),
                    source,
                }
            })?;
        Self::from_parsed(parsed, json_name, base, options)
    }

    fn from_parsed(
        parsed: ModelJson,
        json_name: &str,
        base: &str,
        options: &LoadOptions,
    ) -> Result<ModelBuilder> {
        let fmt_err = |source| Error::Format {
            path: json_name.to_string(),
            source,
        };
        // Parse the topology and refuse unknown layers / ops before reading any shard.
        let topology = match parsed.format {
            ModelFormat::LayersModel => Topology::Layers(
                webinfer_tfjs::parse_layers_topology(&parsed.topology, &options.limits)
                    .map_err(fmt_err)?,
            ),
            ModelFormat::GraphModel => {
                Topology::Graph(graph_models::parse(&parsed, json_name, &options.limits)?)
            }
        };
        let unknown = match &topology {
            Topology::Layers(m) => webinfer_core::lower::unsupported_layers(m),
            Topology::Graph(m) => graph_models::unsupported_ops(m),
        };
        if !unknown.is_empty() {
            return Err(CoreError::UnknownLayers(unknown).into());
        }
        let decoder =
            webinfer_tfjs::StreamDecoder::new(&parsed.weights_manifest).map_err(fmt_err)?;
        // Lowered now (what fails to lower is refused before any shard is read), so that
        // once the last byte is in only the values are left to put in. A graph-model's
        // lowering reads constants' values throughout: it waits for them.
        let lowered = match &topology {
            Topology::Layers(m) => {
                let shapes = parsed
                    .weights_manifest
                    .iter()
                    .flat_map(|g| &g.weights)
                    .map(|w| (w.name.clone(), w.shape.clone()));
                Some(webinfer_core::lower::lower_layers_structure(m, shapes)?)
            }
            Topology::Graph(_) => None,
        };
        Ok(ModelBuilder {
            built: None,
            lowered,
            parsed,
            topology,
            decoder,
            base: base.to_string(),
            options: options.clone(),
            backend: None,
            resident_names: HashMap::new(),
            resident: Vec::new(),
            coded: Vec::new(),
        })
    }

    /// Prepares the model on `backend` (instead of choosing one in
    /// [`ModelBuilder::finish`]). Call it before any shard byte is written: on a GPU, the
    /// large Dense and Conv2D kernels ([`LoadOptions::gpu_stream_min_bytes`]) that the GPU
    /// binds as they lie and that no BatchNormalization follows (it is folded into them, on
    /// the host) are then streamed into GPU memory as they arrive (uint8-quantized and float16
    /// ones in that form, decoded by the kernels), and the host never holds them. Returns
    /// the GPU memory the streamed kernels take, in bytes.
    pub fn use_backend(&mut self, backend: Backend) -> Result<u64> {
        let mut streamed = 0u64;
        if let (Some(gpu), Topology::Layers(model)) = (&backend.gpu, &self.topology) {
            let entries: Vec<&webinfer_tfjs::WeightEntry> = self
                .parsed
                .weights_manifest
                .iter()
                .flat_map(|g| &g.weights)
                .collect();
            let names = || entries.iter().map(|e| e.name.as_str());
            // A BatchNormalization after the layer is folded into its kernel at load, which
            // needs the kernel's values on the host.
            let feeds_batch_norm = |name: &str| {
                model.layers.iter().any(|l| {
                    l.class_name == "BatchNormalization"
                        && l.inbound_nodes.iter().flatten().any(|r| r.layer == name)
                })
            };
            let candidates = model.layers.iter().filter(|l| {
                matches!(l.class_name.as_str(), "Dense" | "Conv2D") && !feeds_batch_norm(&l.name)
            });
            for layer in candidates {
                let Some(name) = webinfer_core::lower::weight_name(names(), &layer.name, "kernel")
                else {
                    continue;
                };
                if self.resident_names.contains_key(&name) {
                    continue;
                }
                let Some(entry) = entries.iter().find(|e| e.name == name) else {
                    continue;
                };
                let bytes = entry.element_count().saturating_mul(4);
                // Only kernels the GPU binds as they lie: repacking needs the values on the host.
                let operand = match layer.class_name.as_str() {
                    "Dense" => webinfer_gpu::WeightOperand::MatMul,
                    _ => webinfer_gpu::WeightOperand::Conv2d {
                        groups: layer.get_usize("groups").ok().flatten().unwrap_or(1).max(1),
                    },
                };
                let fits = entry.dtype == webinfer_tfjs::DType::Float32
                    && webinfer_gpu::binds_as_is(operand, &entry.shape)
                    && bytes >= self.options.gpu_stream_min_bytes
                    && bytes <= gpu.max_tensor_bytes();
                if !fits {
                    continue;
                }
                let Ok(elements) = usize::try_from(entry.element_count()) else {
                    continue;
                };
                // A uint8-quantized or float16 kernel streams in that form (a quarter or half
                // of float32's memory), which the kernels decode as they read it.
                let format = self.decoder.stored_format(&name);
                let weight = match &format {
                    Some(f) => gpu.resident_stored_weight(&name, &entry.shape, gpu_format(f)),
                    None => gpu.resident_weight(&name, elements),
                }
                .map_err(CoreError::from)?;
                let sink = Box::new(GpuSink(weight.clone()));
                match format {
                    Some(_) => self.decoder.divert_stored(&name, sink),
                    None => self.decoder.divert(&name, sink),
                }
                .map_err(|source| Error::Format {
                    path: "model.json".into(),
                    source,
                })?;
                let key = self.resident.len();
                self.resident_names.insert(name, key);
                streamed += weight.bytes();
                self.resident.push(weight);
            }
            // The uint8-quantized and float16 kernels of convolutions and Dense layers not
            // streamed: their stored bytes are kept too, and the GPU holds such a kernel in
            // that form (a quarter or half of its float32 size) where that reproduces it
            // exactly, a folded BatchNormalization included.
            for layer in &model.layers {
                let shorts: &[&str] = match layer.class_name.as_str() {
                    "Dense" | "Conv2D" => &["kernel"],
                    "DepthwiseConv2D" => &["depthwise_kernel"],
                    "SeparableConv2D" => &["depthwise_kernel", "pointwise_kernel"],
                    _ => &[],
                };
                for short in shorts {
                    let Some(name) = webinfer_core::lower::weight_name(names(), &layer.name, short)
                    else {
                        continue;
                    };
                    if self.resident_names.contains_key(&name) {
                        continue;
                    }
                    let kept = self
                        .decoder
                        .keep_codes(&name)
                        .map_err(|source| Error::Format {
                            path: "model.json".into(),
                            source,
                        })?;
                    if kept {
                        self.coded.push((layer.name.clone(), name));
                    }
                }
            }
        }
        self.backend = Some(backend);
        Ok(streamed)
    }

    /// Where the shard bytes go: file `i` is the `i`-th path of the manifest, group by
    /// group ([`StreamDecoder::file_paths`](webinfer_tfjs::StreamDecoder::file_paths)).
    pub fn decoder(&mut self) -> &mut webinfer_tfjs::StreamDecoder {
        &mut self.decoder
    }

    /// The parsed `model.json`.
    pub fn model_json(&self) -> &ModelJson {
        &self.parsed
    }

    /// Lowers the graph and prepares it on the chosen backend, once every shard byte
    /// has been given to the decoder.
    pub async fn finish(mut self) -> Result<Model> {
        let options = self.options.clone();
        let backend = self.backend.take();
        let resident = std::mem::take(&mut self.resident);
        let (graph, stats) = self.build_graph()?;
        // The stored bytes of the uint8 / float16 kernels kept for the GPU (`use_backend`).
        let kept = self.decoder.take_codes();
        let codes: Vec<webinfer_gpu::WeightCodes<'_>> = kept
            .iter()
            .filter_map(|c| {
                let layer = self.coded.iter().find(|(_, name)| *name == c.name)?;
                Some(webinfer_gpu::WeightCodes {
                    layer: &layer.0,
                    codes: &c.codes,
                    format: gpu_format(&c.format),
                })
            })
            .collect();
        match backend {
            Some(backend) => Model::on_backend(graph, stats, backend, &resident, &codes, &options),
            None => Model::with_backend(graph, stats, &options).await,
        }
    }

    /// Once every shard byte has arrived, decodes and lowers the graph right away
    /// (what [`ModelBuilder::finish`] would do first), e.g. while the last bytes are
    /// still being written to a cache. Returns whether it did; `finish` reports
    /// any error.
    pub fn build_now(&mut self) -> bool {
        if self.built.is_some() || !self.decoder.is_complete() {
            return false;
        }
        // The decoder keeps its file table: downloads still closing may confirm lengths.
        let weights = self.decoder.take_weights();
        let resident = std::mem::take(&mut self.resident_names);
        self.built = Some(self.build_graph_from(weights, resident));
        true
    }

    fn group_where(&self, group: usize) -> String {
        let paths = self
            .parsed
            .weights_manifest
            .get(group)
            .map(|g| g.paths.join(", "))
            .unwrap_or_default();
        if self.base.is_empty() {
            paths
        } else {
            format!("{}/{paths}", self.base)
        }
    }

    fn build_graph(&mut self) -> Result<(Graph, ModelStats)> {
        if let Some(built) = self.built.take() {
            return built;
        }
        let weights = self.decoder.take_weights();
        let resident = std::mem::take(&mut self.resident_names);
        self.build_graph_from(weights, resident)
    }

    fn build_graph_from(
        &mut self,
        weights: std::result::Result<Vec<webinfer_tfjs::DecodedWeight>, webinfer_tfjs::FormatError>,
        resident: HashMap<String, usize>,
    ) -> Result<(Graph, ModelStats)> {
        let where_ = match &self.parsed.weights_manifest[..] {
            [] => self.base.clone(),
            _ => self.group_where(0),
        };
        let lowered = self.lowered.take();
        let ModelBuilder {
            parsed,
            topology,
            base,
            options,
            ..
        } = self;
        let weights = weights.map_err(|source| {
            let path = match &source {
                webinfer_tfjs::FormatError::ShardLength { paths, .. } if base.is_empty() => {
                    paths.join(", ")
                }
                webinfer_tfjs::FormatError::ShardLength { paths, .. } => {
                    format!("{base}/{}", paths.join(", "))
                }
                _ => where_,
            };
            Error::Format { path, source }
        })?;
        let mut dtypes: Vec<(String, usize)> = Vec::new();
        for w in parsed.weights_manifest.iter().flat_map(|g| &g.weights) {
            let name = match &w.quantization {
                Some(q) => format!("{:?}", q.dtype).to_ascii_lowercase(),
                None => format!("{:?}", w.dtype).to_ascii_lowercase(),
            };
            match dtypes.iter_mut().find(|(n, _)| *n == name) {
                Some((_, c)) => *c += 1,
                None => dtypes.push((name, 1)),
            }
        }
        let (format, model_class, keras_version, layers) = match &topology {
            Topology::Layers(t) => (
                "layers-model",
                t.class_name.clone(),
                t.keras_version.clone(),
                t.layers
                    .iter()
                    .map(|l| (l.name.clone(), l.class_name.clone()))
                    .collect(),
            ),
            Topology::Graph(g) => (
                "graph-model",
                "GraphDef".to_string(),
                None,
                graph_models::nodes(g),
            ),
        };
        let mut stats = ModelStats {
            format: format.into(),
            model_class,
            keras_version,
            generated_by: parsed.generated_by.clone(),
            converted_by: parsed.converted_by.clone(),
            layers,
            weight_count: weights.len(),
            weight_bytes: parsed.total_weight_bytes(),
            weight_dtypes: dtypes,
            shard_count: parsed.weights_manifest.iter().map(|g| g.paths.len()).sum(),
            ops: vec![],
        };

        let mut graph = match &topology {
            // Lowered by `from_parsed`; taken once (a builder builds one graph).
            Topology::Layers(_) => lowered
                .ok_or_else(|| Error::Unsupported("this model was built already".into()))?
                .fill(weights, &resident)?,
            Topology::Graph(g) => graph_models::lower(g, weights)?,
        };
        // Every value the declared inputs (batch 1) and the constants imply must fit the
        // limit before constants are folded or a backend allocates anything.
        webinfer_core::bounds::check_graph(&graph, options.limits.max_activation_elements)?;
        webinfer_core::passes::fold_constants(&mut graph, &webinfer_cpu::eval_op);
        webinfer_core::passes::optimize(&mut graph);
        for n in &graph.nodes {
            let name = n.op.name().to_string();
            match stats.ops.iter_mut().find(|(o, _)| *o == name) {
                Some((_, c)) => *c += 1,
                None => stats.ops.push((name, 1)),
            }
        }

        Ok((graph, stats))
    }
}
