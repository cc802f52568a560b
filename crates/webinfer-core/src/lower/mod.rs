//! Lowering Keras layers into the IR: a registry with one entry per layer class.
//!
//! Each layer family lives in its own module and registers its classes in [`REGISTRY`]. A
//! lowering reads the layer's config through [`LayerCtx`] (typed accessors whose errors name
//! the layer and key), takes its weights by name, and pushes IR ops. To add a layer: write a
//! `fn(&mut LayerCtx, &[ValueId]) -> Result<Vec<ValueId>>`, add a [`LayerDef`] line, add a
//! fixture in `tests/tfjs/generate-fixtures.mjs`.

mod activations;
mod conv;
mod core_layers;
pub mod graph;
mod merge;
mod norm;
mod pooling;
mod reshaping;

use std::collections::HashMap;

use webinfer_tfjs::{DecodedWeight, LayerSpec, LayersModel, TensorData, TensorRef};

use crate::error::{CoreError, Result};
use crate::ir::{Activation, Graph, InputSpec, Op, Padding, ValueId};
use crate::tensor::Tensor;

/// How a layer class lowers.
pub struct LayerDef {
    /// Keras class names (the first is the canonical one).
    pub classes: &'static [&'static str],
    pub lower: fn(&mut LayerCtx, &[ValueId]) -> Result<Vec<ValueId>>,
}

/// Every supported layer class. `InputLayer` is handled by the model walker itself.
pub static REGISTRY: &[LayerDef] = &[
    core_layers::DENSE,
    core_layers::IDENTITY,
    core_layers::FLATTEN,
    core_layers::RESHAPE,
    core_layers::PERMUTE,
    activations::ACTIVATION,
    activations::RELU,
    activations::LEAKY_RELU,
    activations::ELU,
    activations::PRELU,
    activations::SOFTMAX,
    activations::THRESHOLDED_RELU,
    conv::CONV2D,
    conv::DEPTHWISE_CONV2D,
    conv::SEPARABLE_CONV2D,
    conv::CONV2D_TRANSPOSE,
    pooling::MAX_POOLING2D,
    pooling::AVERAGE_POOLING2D,
    pooling::GLOBAL_AVERAGE_POOLING2D,
    pooling::GLOBAL_MAX_POOLING2D,
    norm::BATCH_NORMALIZATION,
    reshaping::ZERO_PADDING2D,
    reshaping::CROPPING2D,
    reshaping::UPSAMPLING2D,
    merge::ADD,
    merge::SUBTRACT,
    merge::MULTIPLY,
    merge::AVERAGE,
    merge::MAXIMUM,
    merge::MINIMUM,
    merge::CONCATENATE,
];

/// The lowering of a Keras class name, if webinfer supports it.
pub fn find_layer(class: &str) -> Option<&'static LayerDef> {
    REGISTRY.iter().find(|d| d.classes.contains(&class))
}

/// All supported Keras class names (for docs and `webinfer inspect`).
pub fn supported_layers() -> Vec<&'static str> {
    let mut v: Vec<&str> = std::iter::once("InputLayer")
        .chain(REGISTRY.iter().flat_map(|d| d.classes.iter().copied()))
        .collect();
    webinfer_tfjs::order::sort(&mut v);
    v
}

/// The manifest's weights by name (their shapes: lowering needs no values), tracking which
/// ones some layer used and what each placeholder node gets once the values are in.
pub struct WeightStore {
    /// Each weight's index in `shapes` (a map of names to indices, the engine's one hash-map
    /// type for names: a map to the shapes themselves was another ~0.7 KB of gzip).
    by_name: HashMap<String, usize>,
    shapes: Vec<Vec<usize>>,
    /// Names of the weights some layer used (repeats possible; sorted once, by [`Self::unused`]:
    /// a hash set of names here was one more hash-map type in the browser module).
    used: Vec<String>,
    /// Already-created weight nodes, so a shared layer does not duplicate its weights.
    nodes: HashMap<String, ValueId>,
    pending: Vec<Pending>,
}

/// The key of a placeholder [`Op::Resident`]: a weight node of a [`Lowered`] graph whose
/// values [`Lowered::fill`] puts in.
const PENDING: usize = usize::MAX;

/// What a placeholder node of a [`Lowered`] graph becomes.
enum Pending {
    /// The weight `name`: a constant, or an [`Op::Resident`] where a backend holds it.
    Weight { node: ValueId, name: String },
    /// A BatchNormalization's per-channel `x * scale + shift`, computed from its weights.
    BatchNorm {
        layer: String,
        scale: ValueId,
        shift: ValueId,
        params: BatchNormParams,
    },
}

/// The weights (manifest names) and epsilon of a BatchNormalization.
pub(crate) struct BatchNormParams {
    pub mean: String,
    pub var: String,
    pub gamma: Option<String>,
    pub beta: Option<String>,
    pub epsilon: f32,
}

impl WeightStore {
    pub fn new(shapes: impl IntoIterator<Item = (String, Vec<usize>)>) -> Self {
        let mut by_name = HashMap::new();
        let mut all = Vec::new();
        for (name, shape) in shapes {
            by_name.insert(name, all.len());
            all.push(shape);
        }
        WeightStore {
            by_name,
            shapes: all,
            used: Vec::new(),
            nodes: HashMap::new(),
            pending: Vec::new(),
        }
    }

    /// [`weight_name`] among this store's weights.
    fn resolve(&self, layer: &str, short: &str) -> Option<String> {
        // The exact name by hash (the common case); the scan only for scoped names.
        let exact = format!("{layer}/{short}");
        if self.by_name.contains_key(&exact) {
            return Some(exact);
        }
        weight_name(self.by_name.keys().map(String::as_str), layer, short)
    }

    fn unused(&mut self) -> Vec<String> {
        webinfer_tfjs::order::sort(&mut self.used);
        let used = &self.used;
        let mut v: Vec<String> = self
            .by_name
            .keys()
            .filter(|k| used.binary_search(k).is_err())
            .cloned()
            .collect();
        webinfer_tfjs::order::sort(&mut v);
        v
    }
}

/// The manifest name (among `names`) of weight `short` of layer `layer`: `layer/short`
/// exactly, else the one name ending in `/layer/short` (converters prefix names with a model
/// scope). What the lowering reads for a layer's `kernel`, `bias`, ...
pub fn weight_name<'a>(
    names: impl IntoIterator<Item = &'a str>,
    layer: &str,
    short: &str,
) -> Option<String> {
    let exact = format!("{layer}/{short}");
    let suffix = format!("/{exact}");
    let mut found = None;
    let mut count = 0;
    for name in names {
        if name == exact {
            return Some(exact);
        }
        if name.ends_with(&suffix) {
            count += 1;
            found = Some(name);
        }
    }
    (count == 1).then(|| found.map(str::to_string)).flatten()
}

pub(crate) fn to_tensor(w: &DecodedWeight) -> Result<Tensor> {
    let data: Vec<f32> = match &w.data {
        TensorData::F32(v) => v.clone(),
        TensorData::I32(v) => v.iter().map(|&x| x as f32).collect(),
        TensorData::Bool(v) => v.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect(),
    };
    Tensor::new(w.shape.clone(), data)
}

/// [`to_tensor`] without a copy of float weights: their buffer moves into the tensor and `w`
/// keeps its name and shape with no data (one copy of the weights in memory, not two).
pub(crate) fn take_tensor(w: &mut DecodedWeight) -> Result<Tensor> {
    match std::mem::replace(&mut w.data, TensorData::F32(Vec::new())) {
        TensorData::F32(v) => Tensor::new(w.shape.clone(), v),
        other => {
            w.data = other;
            to_tensor(w)
        }
    }
}

/// What a layer's lowering works with: its spec, the graph being built and the weights.
pub struct LayerCtx<'a> {
    pub layer: &'a LayerSpec,
    graph: &'a mut Graph,
    ranks: &'a mut Vec<usize>,
    weights: &'a mut WeightStore,
}

/// An activation as a layer config names it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    Elementwise(Activation),
    Softmax,
    LogSoftmax,
}

impl<'a> LayerCtx<'a> {
    pub fn name(&self) -> &str {
        &self.layer.name
    }

    /// An error about this layer.
    pub fn err(&self, message: impl Into<String>) -> CoreError {
        CoreError::layer(&self.layer.name, &self.layer.class_name, message)
    }

    pub fn push(&mut self, op: Op, inputs: Vec<ValueId>) -> ValueId {
        let ranks: Vec<usize> = inputs.iter().map(|&i| self.ranks[i]).collect();
        self.ranks.push(op.output_rank(&ranks));
        self.graph.push(op, inputs, &self.layer.name)
    }

    pub fn constant(&mut self, t: Tensor) -> ValueId {
        self.push(Op::Constant(t), vec![])
    }

    pub fn rank(&self, v: ValueId) -> usize {
        self.ranks[v]
    }

    /// The layer's single input.
    pub fn one(&self, inputs: &[ValueId]) -> Result<ValueId> {
        match inputs {
            [x] => Ok(*x),
            _ => Err(self.err(format!("expects 1 input, got {}", inputs.len()))),
        }
    }

    /// Resolve a Keras axis (negative counts from the end) against rank `rank`.
    pub fn axis(&self, axis: i64, rank: usize) -> Result<usize> {
        let a = if axis < 0 { axis + rank as i64 } else { axis };
        if a < 0 || a >= rank as i64 {
            return Err(self.err(format!(
                "axis {axis} is out of range for a rank-{rank} input"
            )));
        }
        Ok(a as usize)
    }

    // ---- config accessors (errors name the layer and key) ----

    pub fn usize_or(&self, key: &str, default: usize) -> Result<usize> {
        Ok(self.layer.get_usize(key)?.unwrap_or(default))
    }
    pub fn pair_or(&self, key: &str, default: [usize; 2]) -> Result<[usize; 2]> {
        Ok(self.layer.usize_pair(key)?.unwrap_or(default))
    }
    pub fn pair_required(&self, key: &str) -> Result<[usize; 2]> {
        self.layer
            .usize_pair(key)?
            .ok_or_else(|| self.err(format!("config.{key} is required")))
    }
    pub fn f32_or(&self, key: &str, default: f32) -> Result<f32> {
        Ok(self.layer.get_f32(key)?.unwrap_or(default))
    }
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        Ok(self.layer.get_bool(key)?.unwrap_or(default))
    }
    pub fn str_opt(&self, key: &str) -> Result<Option<String>> {
        Ok(self.layer.get_str(key)?.map(str::to_string))
    }

    /// Only `channels_last` is supported; `channels_first` is a clear error.
    pub fn channels_last(&self) -> Result<()> {
        match self.str_opt("data_format")?.as_deref() {
            None | Some("channels_last") => Ok(()),
            Some(other) => Err(self.err(format!(
                "data_format \"{other}\" is not supported (webinfer runs channels_last models)"
            ))),
        }
    }

    pub fn padding(&self) -> Result<Padding> {
        match self.str_opt("padding")?.as_deref() {
            None | Some("valid") => Ok(Padding::Valid),
            Some("same") => Ok(Padding::Same),
            Some(other) => Err(self.err(format!(
                "padding \"{other}\" is not supported (expected \"same\" or \"valid\")"
            ))),
        }
    }

    /// The layer's `activation` (absent = linear).
    pub fn activation(&self) -> Result<Act> {
        match self.layer.activation_name()? {
            None => Ok(Act::Elementwise(Activation::Linear)),
            Some(name) => activations::parse_activation(&name)
                .ok_or_else(|| self.err(format!("activation \"{name}\" is not supported"))),
        }
    }

    /// Apply an activation that could not be fused.
    pub fn apply(&mut self, x: ValueId, act: Act) -> ValueId {
        match act {
            Act::Elementwise(Activation::Linear) => x,
            Act::Elementwise(a) => self.push(Op::Unary(a), vec![x]),
            Act::Softmax => {
                let axis = self.rank(x).saturating_sub(1);
                self.push(Op::Softmax { axis }, vec![x])
            }
            Act::LogSoftmax => {
                let axis = self.rank(x).saturating_sub(1);
                self.push(Op::LogSoftmax { axis }, vec![x])
            }
        }
    }

    // ---- weights ----

    /// Weight `short` of this layer (`kernel`, `bias`, ...), checked against `expected`
    /// (`None` entries are not checked).
    pub fn weight(&mut self, short: &str, expected: &[Option<usize>]) -> Result<ValueId> {
        self.weight_opt(short, expected)?
            .ok_or_else(|| CoreError::MissingWeight {
                layer: self.layer.name.clone(),
                weight: format!("{}/{short}", self.layer.name),
            })
    }

    /// Like [`LayerCtx::weight`], but `None` when the manifest has no such weight.
    pub fn weight_opt(
        &mut self,
        short: &str,
        expected: &[Option<usize>],
    ) -> Result<Option<ValueId>> {
        let Some(full) = self.weights.resolve(&self.layer.name, short) else {
            return Ok(None);
        };
        if let Some(&v) = self.weights.nodes.get(&full) {
            return Ok(Some(v));
        }
        let Some((full, shape)) = self.weight_shape(short, expected)? else {
            return Ok(None);
        };
        let v = self.placeholder(shape);
        self.weights.pending.push(Pending::Weight {
            node: v,
            name: full.clone(),
        });
        self.weights.nodes.insert(full, v);
        Ok(Some(v))
    }

    /// A node of `shape` whose values [`Lowered::fill`] puts in.
    fn placeholder(&mut self, shape: Vec<usize>) -> ValueId {
        self.push(
            Op::Resident {
                shape,
                key: PENDING,
            },
            vec![],
        )
    }

    /// Placeholders for a BatchNormalization's `(scale, shift)` of `c` channels, computed
    /// from `params` at [`Lowered::fill`].
    fn batch_norm_params(&mut self, c: usize, params: BatchNormParams) -> (ValueId, ValueId) {
        let scale = self.placeholder(vec![c]);
        let shift = self.placeholder(vec![c]);
        self.weights.pending.push(Pending::BatchNorm {
            layer: self.layer.name.clone(),
            scale,
            shift,
            params,
        });
        (scale, shift)
    }

    /// The manifest name and shape of weight `short`, checked against `expected` and
    /// counted as used, for a lowering that reads its values at [`Lowered::fill`] rather than
    /// taking it as a node.
    fn weight_shape(
        &mut self,
        short: &str,
        expected: &[Option<usize>],
    ) -> Result<Option<(String, Vec<usize>)>> {
        let Some(full) = self.weights.resolve(&self.layer.name, short) else {
            return Ok(None);
        };
        let Some(shape) =
            (self.weights.by_name.get(&full)).and_then(|&i| self.weights.shapes.get(i))
        else {
            return Ok(None);
        };
        let fits = shape.len() == expected.len()
            && shape
                .iter()
                .zip(expected)
                .all(|(a, e)| e.is_none_or(|e| e == *a));
        if !fits {
            return Err(CoreError::WeightShape {
                layer: self.layer.name.clone(),
                weight: full,
                expected: expected.to_vec(),
                actual: shape.clone(),
            });
        }
        let shape = shape.clone();
        self.weights.used.push(full.clone());
        Ok(Some((full, shape)))
    }
}

/// A layers-model lowered before its weights' values are in: every weight is a placeholder
/// node with its shape, so the graph's structure, shapes and every check that needs no value
/// are done. A loader lowers the model as soon as `model.json` is read, while the shards
/// download, and fills in the values once the last byte is in.
pub struct Lowered {
    graph: Graph,
    pending: Vec<Pending>,
}

impl std::fmt::Debug for Lowered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lowered")
            .field("nodes", &self.graph.nodes.len())
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl Lowered {
    /// The graph with the decoded `weights` put in: a weight named in `resident` (its values
    /// live in a backend, streamed there while loading: manifest name -> key) becomes an
    /// [`Op::Resident`] node (its entry in `weights` has its shape and no data), every other
    /// one a constant, moved out of `weights` without a copy.
    pub fn fill(
        self,
        mut weights: Vec<DecodedWeight>,
        resident: &HashMap<String, usize>,
    ) -> Result<Graph> {
        let Lowered { mut graph, pending } = self;
        // Name -> index into `weights` (a map of the weights themselves was one more hash-map
        // type in the browser module; the last of a repeated name counts, as before).
        let index: HashMap<String, usize> = weights
            .iter()
            .enumerate()
            .map(|(i, w)| (w.name.clone(), i))
            .collect();
        // Values read in place first; then the weights taken as nodes.
        for p in &pending {
            if let Pending::BatchNorm {
                layer,
                scale,
                shift,
                params,
            } = p
            {
                let host = |name: &str| -> Result<Vec<f32>> {
                    if resident.contains_key(name) {
                        return Err(CoreError::layer(
                            layer,
                            "BatchNormalization",
                            format!(
                                "weight \"{name}\" is needed on the host, but its values were \
                                 streamed to the GPU"
                            ),
                        ));
                    }
                    let w = index
                        .get(name)
                        .and_then(|&i| weights.get(i))
                        .ok_or_else(|| missing(layer, name))?;
                    Ok(to_tensor(w)?.into_data())
                };
                let (mean, var) = (host(&params.mean)?, host(&params.var)?);
                let gamma = params.gamma.as_deref().map(host).transpose()?;
                let beta = params.beta.as_deref().map(host).transpose()?;
                let (s, t) = norm::affine(
                    &mean,
                    &var,
                    gamma.as_deref(),
                    beta.as_deref(),
                    params.epsilon,
                );
                graph.nodes[*scale].op = Op::Constant(Tensor::vector(s));
                graph.nodes[*shift].op = Op::Constant(Tensor::vector(t));
            }
        }
        for p in pending {
            let Pending::Weight { node, name } = p else {
                continue;
            };
            let w = match index.get(&name).and_then(|&i| weights.get_mut(i)) {
                Some(w) => w,
                None => return Err(missing(&graph.nodes[node].origin, &name)),
            };
            graph.nodes[node].op = match resident.get(&name) {
                Some(&key) => Op::Resident {
                    shape: w.shape.clone(),
                    key,
                },
                None => Op::Constant(take_tensor(w)?),
            };
        }
        Ok(graph)
    }
}

fn missing(layer: &str, weight: &str) -> CoreError {
    CoreError::MissingWeight {
        layer: layer.to_string(),
        weight: weight.to_string(),
    }
}

/// Parse the `batch_input_shape` of an InputLayer.
fn input_spec(layer: &LayerSpec) -> Result<InputSpec> {
    let shape = match layer.get_shape("batch_input_shape")? {
        Some(s) => s,
        None => layer.get_shape("batch_shape")?.ok_or_else(|| {
            CoreError::layer(
                &layer.name,
                &layer.class_name,
                "config.batch_input_shape is required",
            )
        })?,
    };
    let dtype = layer.get_str("dtype")?.unwrap_or("float32").to_string();
    Ok(InputSpec {
        name: layer.name.clone(),
        shape,
        dtype,
    })
}

/// Every layer of the model whose class webinfer does not know: `(class, layer name)`.
pub fn unsupported_layers(model: &LayersModel) -> Vec<(String, String)> {
    model
        .layers
        .iter()
        .filter(|l| l.class_name != "InputLayer" && find_layer(&l.class_name).is_none())
        .map(|l| (l.class_name.clone(), l.name.clone()))
        .collect()
}

/// Lower a parsed layers-model and its decoded weights into a [`Graph`].
///
/// Fails up front, naming every unsupported layer class at once; then checks every weight
/// against its layer's config, rejects weights no layer uses, and infers every shape when the
/// input shapes are known (so shape mismatches between layers surface at load).
pub fn lower_layers_model(model: &LayersModel, weights: Vec<DecodedWeight>) -> Result<Graph> {
    lower_layers_model_with(model, weights, HashMap::new())
}

/// [`lower_layers_model`] where some weights live in a backend already (streamed there while
/// loading): `resident` maps their manifest names to their keys, and each becomes an
/// [`Op::Resident`] node (its entry in `weights` has its shape and no data).
pub fn lower_layers_model_with(
    model: &LayersModel,
    weights: Vec<DecodedWeight>,
    resident: HashMap<String, usize>,
) -> Result<Graph> {
    let shapes = weights.iter().map(|w| (w.name.clone(), w.shape.clone()));
    lower_layers_structure(model, shapes)?.fill(weights, &resident)
}

/// Lower a parsed layers-model knowing only its weights' names and shapes (the manifest's):
/// every check of [`lower_layers_model`] but the values'. [`Lowered::fill`] puts the values in.
pub fn lower_layers_structure(
    model: &LayersModel,
    weights: impl IntoIterator<Item = (String, Vec<usize>)>,
) -> Result<Lowered> {
    let unknown = unsupported_layers(model);
    if !unknown.is_empty() {
        return Err(CoreError::UnknownLayers(unknown));
    }

    let mut graph = Graph::default();
    let mut ranks = Vec::new();
    let mut store = WeightStore::new(weights);
    // The output values of each call: [layer index][node index], once lowered.
    let mut values = Values {
        by_layer: model
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| (l.name.clone(), i))
            .collect(),
        outputs: model
            .layers
            .iter()
            .map(|l| vec![None; l.inbound_nodes.len().max(1)])
            .collect(),
    };

    for (index, r) in model.inputs.iter().enumerate() {
        let layer = model
            .layers
            .iter()
            .find(|l| l.name == r.layer)
            .ok_or_else(|| {
                CoreError::Graph(format!("model input \"{}\" is not a layer", r.layer))
            })?;
        if layer.class_name != "InputLayer" {
            return Err(CoreError::Graph(format!(
                "model input \"{}\" is a {}, not an InputLayer",
                r.layer, layer.class_name
            )));
        }
        let spec = input_spec(layer)?;
        ranks.push(spec.shape.len());
        let v = graph.push(Op::Input { index }, vec![], &layer.name);
        graph.inputs.push(spec);
        values.set(&layer.name, 0, vec![v]);
    }

    // Walk the calls (layer, node) until all are lowered; Keras lists layers in topological
    // order, but shared layers and odd converters need a fixed-point loop.
    let mut pending: Vec<(usize, usize)> = model
        .layers
        .iter()
        .enumerate()
        .filter(|(_, l)| l.class_name != "InputLayer")
        .flat_map(|(i, l)| (0..l.inbound_nodes.len()).map(move |n| (i, n)))
        .collect();
    for l in &model.layers {
        if l.class_name == "InputLayer" && values.get(&l.name, 0).is_none() {
            return Err(CoreError::Graph(format!(
                "InputLayer \"{}\" is not among the model's inputs",
                l.name
            )));
        }
    }
    while !pending.is_empty() {
        let before = pending.len();
        let mut rest = Vec::new();
        for (li, ni) in pending {
            let layer = &model.layers[li];
            let refs = &layer.inbound_nodes[ni];
            let resolved: Option<Vec<ValueId>> = refs.iter().map(|r| values.lookup(r)).collect();
            let Some(inputs) = resolved else {
                rest.push((li, ni));
                continue;
            };
            let def = find_layer(&layer.class_name).expect("checked above");
            let mut ctx = LayerCtx {
                layer,
                graph: &mut graph,
                ranks: &mut ranks,
                weights: &mut store,
            };
            let outs = (def.lower)(&mut ctx, &inputs)?;
            values.set(&layer.name, ni, outs);
        }
        if rest.len() == before {
            let names: Vec<String> = rest
                .iter()
                .map(|&(li, _)| format!("\"{}\"", model.layers[li].name))
                .collect();
            return Err(CoreError::Graph(format!(
                "layers {} have inputs that are never produced (a cycle, or a reference to a missing layer)",
                names.join(", ")
            )));
        }
        pending = rest;
    }

    for r in &model.outputs {
        let v = values.lookup(r).ok_or_else(|| {
            CoreError::Graph(format!("model output \"{}\" is never produced", r.layer))
        })?;
        graph.outputs.push(v);
        graph.output_names.push(r.layer.clone());
    }

    let unused = store.unused();
    if !unused.is_empty() {
        return Err(CoreError::SurplusWeights(unused));
    }

    // Check every shape now when the inputs are static but for the batch.
    if let Some(shapes) = static_input_shapes(&graph.inputs, 1) {
        graph.infer_shapes(&shapes)?;
    }
    Ok(Lowered {
        graph,
        pending: store.pending,
    })
}

/// The values each layer call produced, while a layers-model is lowered. (One map by layer
/// name, the values by index: a map keyed by (name, node) was one more hash-map type in the
/// browser module, ~1.3 KB of code, and cloned the name for every lookup.)
struct Values {
    /// Keyed by `String` like the engine's other name maps: one hash-map type, not two.
    by_layer: HashMap<String, usize>,
    /// `[layer][node]`: that call's outputs once lowered.
    outputs: Vec<Vec<Option<Vec<ValueId>>>>,
}

impl Values {
    fn get(&self, layer: &str, node: usize) -> Option<&Vec<ValueId>> {
        let &li = self.by_layer.get(layer)?;
        self.outputs.get(li)?.get(node)?.as_ref()
    }

    fn set(&mut self, layer: &str, node: usize, outs: Vec<ValueId>) {
        let slot = self
            .by_layer
            .get(layer)
            .and_then(|&li| self.outputs.get_mut(li))
            .and_then(|calls| calls.get_mut(node));
        if let Some(slot) = slot {
            *slot = Some(outs);
        }
    }

    fn lookup(&self, r: &TensorRef) -> Option<ValueId> {
        self.get(&r.layer, r.node_index)?
            .get(r.tensor_index)
            .copied()
    }
}

/// The input shapes with the batch set to `batch`, when every other dim is known.
pub fn static_input_shapes(inputs: &[InputSpec], batch: usize) -> Option<Vec<Vec<usize>>> {
    inputs
        .iter()
        .map(|i| {
            i.shape
                .iter()
                .enumerate()
                .map(|(k, d)| d.or(if k == 0 { Some(batch) } else { None }))
                .collect::<Option<Vec<usize>>>()
        })
        .collect()
}
