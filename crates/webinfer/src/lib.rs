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

mod error;
pub mod npy;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use error::{Error, Result};
pub use webinfer_core::{CoreError, Graph, Tensor};
pub use webinfer_tfjs::Limits;

use webinfer_core::ir::InputSpec;
use webinfer_core::Backend as _;
use webinfer_cpu::CpuBackend;
use webinfer_tfjs::{ModelFormat, ModelJson};

/// Which backend runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// A hardware GPU when one exists, else the CPU.
    #[default]
    Auto,
    Cpu,
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
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub backend: BackendChoice,
    /// Bounds on what a model.json may declare, checked before anything is allocated.
    pub limits: Limits,
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

enum Engine {
    Cpu(CpuBackend),
}

/// A loaded model, ready to predict.
pub struct Model {
    graph: Graph,
    engine: Engine,
    inputs: Vec<TensorInfo>,
    outputs: Vec<TensorInfo>,
    stats: ModelStats,
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

    /// Load `model.json` and its shards from files.
    pub async fn load_with(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Model> {
        let path = path.as_ref();
        let json = std::fs::read(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut read = |p: &str| -> Result<Vec<u8>> {
            let file: PathBuf = dir.join(p);
            std::fs::read(&file).map_err(|source| Error::Io {
                path: file.display().to_string(),
                source,
            })
        };
        Self::build(
            &json,
            &path.display().to_string(),
            &mut read,
            &dir.display().to_string(),
            options,
        )
    }

    /// Load from bytes already in memory: `shards` maps each manifest path to its bytes.
    pub fn from_memory(
        model_json: &[u8],
        shards: &HashMap<String, Vec<u8>>,
        options: &LoadOptions,
    ) -> Result<Model> {
        let mut get = |p: &str| -> Result<Vec<u8>> {
            shards.get(p).cloned().ok_or_else(|| Error::Io {
                path: p.to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such shard was given",
                ),
            })
        };
        Self::build(model_json, "model.json", &mut get, "", options)
    }

    fn build(
        json: &[u8],
        json_name: &str,
        read_shard: &mut dyn FnMut(&str) -> Result<Vec<u8>>,
        base: &str,
        options: &LoadOptions,
    ) -> Result<Model> {
        let fmt_err = |path: &str| {
            let path = path.to_string();
            move |source| Error::Format {
                path: path.clone(),
                source,
            }
        };
        let parsed: ModelJson =
            webinfer_tfjs::parse_model_json(json, &options.limits).map_err(fmt_err(json_name))?;
        if parsed.format == ModelFormat::GraphModel {
            return Err(Error::Unsupported(format!(
                "{json_name}: graph-model files are not supported yet (only layers-model)"
            )));
        }
        let topology = webinfer_tfjs::parse_layers_topology(&parsed.topology, &options.limits)
            .map_err(fmt_err(json_name))?;

        // Refuse unknown layers before reading any shard.
        let unknown: Vec<(String, String)> = topology
            .layers
            .iter()
            .filter(|l| {
                l.class_name != "InputLayer"
                    && webinfer_core::lower::find_layer(&l.class_name).is_none()
            })
            .map(|l| (l.class_name.clone(), l.name.clone()))
            .collect();
        if !unknown.is_empty() {
            return Err(CoreError::UnknownLayers(unknown).into());
        }

        let mut weights = Vec::new();
        for (gi, group) in parsed.weights_manifest.iter().enumerate() {
            let mut bytes = Vec::with_capacity(group.paths.len());
            for p in &group.paths {
                bytes.push(read_shard(p)?);
            }
            let slices: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
            let where_ = if base.is_empty() {
                group.paths.join(", ")
            } else {
                format!("{base}/{}", group.paths.join(", "))
            };
            weights
                .extend(webinfer_tfjs::decode_group(group, gi, &slices).map_err(fmt_err(&where_))?);
        }

        let mut dtypes: Vec<(String, usize)> = Vec::new();
        for w in parsed.weights_manifest.iter().flat_map(|g| &g.weights) {
            let name = match &w.quantization {
                Some(q) => format!("{:?}", q.dtype).to_lowercase(),
                None => format!("{:?}", w.dtype).to_lowercase(),
            };
            match dtypes.iter_mut().find(|(n, _)| *n == name) {
                Some((_, c)) => *c += 1,
                None => dtypes.push((name, 1)),
            }
        }
        let mut stats = ModelStats {
            format: "layers-model".into(),
            model_class: topology.class_name.clone(),
            keras_version: topology.keras_version.clone(),
            generated_by: parsed.generated_by.clone(),
            converted_by: parsed.converted_by.clone(),
            layers: topology
                .layers
                .iter()
                .map(|l| (l.name.clone(), l.class_name.clone()))
                .collect(),
            weight_count: weights.len(),
            weight_bytes: parsed.total_weight_bytes(),
            weight_dtypes: dtypes,
            shard_count: parsed.weights_manifest.iter().map(|g| g.paths.len()).sum(),
            ops: vec![],
        };

        let mut graph = webinfer_core::lower::lower_layers_model(&topology, weights)?;
        webinfer_core::passes::optimize(&mut graph);
        for n in &graph.nodes {
            let name = n.op.name().to_string();
            match stats.ops.iter_mut().find(|(o, _)| *o == name) {
                Some((_, c)) => *c += 1,
                None => stats.ops.push((name, 1)),
            }
        }

        let engine =
            match options.backend {
                BackendChoice::Cpu | BackendChoice::Auto => Engine::Cpu(CpuBackend::new()),
                BackendChoice::Gpu => return Err(Error::BackendUnavailable {
                    requested: "gpu".into(),
                    reason:
                        "this build of webinfer has no GPU backend yet; use --backend cpu or auto"
                            .into(),
                }),
            };
        let inputs = graph.inputs.iter().map(info_of).collect();
        let outputs = output_infos(&graph);
        Ok(Model {
            graph,
            engine,
            inputs,
            outputs,
            stats,
        })
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

    /// What the model really runs on: `"cpu"` or `"gpu"`.
    pub fn backend_name(&self) -> &'static str {
        match self.engine {
            Engine::Cpu(_) => "cpu",
        }
    }

    /// Run the model on `inputs` (in [`Model::inputs`] order); returns the outputs in order.
    /// Every known dimension of each input must match the model's.
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
        match &self.engine {
            Engine::Cpu(cpu) => Ok(cpu.run(&self.graph, inputs)?),
        }
    }
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
