//! The Keras topology of a layers-model, normalized to one functional form.
//!
//! Accepted inputs:
//! - both topology shapes: `{class_name, config, keras_version, backend}`
//!   (tfjs `model.save`) and `{keras_version, backend, model_config:
//!   {class_name, config}, training_config}` (Python converter, Keras 2);
//! - model classes `Sequential`, `Model` and `Functional`;
//! - Sequential configs as `{name, layers}` or as a bare list of layers;
//! - inbound nodes in Keras 2 form (`[[name, node, tensor, kwargs], ...]`) and
//!   Keras 3 form (`{"args": [keras tensors...], "kwargs": {...}}`);
//! - `input_layers` / `output_layers` as a list of triples, one bare triple,
//!   or (Keras 3 dict inputs) an object of triples, taken in key order.
//!
//! Output guarantees, checked here so that lowering does not have to:
//! - every model input is an `InputLayer`, and a Sequential model gets one
//!   (`<first layer>_input`, as Keras and tfjs name it) when it has none;
//! - every `InputLayer` config has `batch_input_shape` (derived from
//!   `batch_shape`, or from `input_shape` and `batch_size`, when missing);
//! - layer names are unique, and every [`TensorRef`] names an existing layer
//!   and an existing node of it (an `InputLayer` has exactly node 0 with
//!   tensor 0; another layer has one node per `inbound_nodes` entry).
//!
//! Not checked here: cycles, layer classes, and whether a layer really has
//! `tensor_index + 1` outputs. Those belong to lowering in the core crate.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::error::{FormatError, Result};
use crate::json::{as_int, as_usize, get_non_null, preview, type_name};
use crate::limits::Limits;

/// One tensor in the graph: output `tensor_index` of call `node_index` of `layer`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TensorRef {
    pub layer: String,
    pub node_index: usize,
    pub tensor_index: usize,
}

impl TensorRef {
    pub fn new(layer: impl Into<String>, node_index: usize, tensor_index: usize) -> Self {
        TensorRef {
            layer: layer.into(),
            node_index,
            tensor_index,
        }
    }
}

/// One layer: its class, its config as written (snake_case keys), and its
/// calls. `inbound_nodes[n]` lists the input tensors of node (call) `n`.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSpec {
    pub class_name: String,
    pub name: String,
    pub config: Map<String, Value>,
    pub inbound_nodes: Vec<Vec<TensorRef>>,
}

/// A layers-model in functional form.
#[derive(Debug, Clone, PartialEq)]
pub struct LayersModel {
    /// `Sequential`, `Model` or `Functional`, as written in the file.
    pub class_name: String,
    pub name: String,
    pub keras_version: Option<String>,
    pub backend: Option<String>,
    /// In file order; for a Sequential model the synthesized input comes first.
    pub layers: Vec<LayerSpec>,
    pub inputs: Vec<TensorRef>,
    pub outputs: Vec<TensorRef>,
}

impl LayersModel {
    /// The layer called `name`.
    pub fn layer(&self, name: &str) -> Option<&LayerSpec> {
        self.layers.iter().find(|l| l.name == name)
    }
}

const INPUT_LAYER: &str = "InputLayer";

/// Parses and normalizes a layers-model `modelTopology`.
pub fn parse_layers_topology(topology: &Value, limits: &Limits) -> Result<LayersModel> {
    let root = topology.as_object().ok_or_else(|| {
        FormatError::topology(
            "modelTopology",
            format!("expected an object, got {}", type_name(topology)),
        )
    })?;
    let (model, model_path) = match get_non_null(root, "model_config") {
        Some(mc) => {
            let obj = mc.as_object().ok_or_else(|| {
                FormatError::topology(
                    "model_config",
                    format!("expected an object, got {}", type_name(mc)),
                )
            })?;
            (obj, "model_config.")
        }
        None => (root, ""),
    };
    let string_field = |key: &str| {
        root.get(key)
            .or_else(|| model.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let keras_version = string_field("keras_version");
    let backend = string_field("backend");

    let class_name = match model.get("class_name") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => {
            return Err(FormatError::topology(
                format!("{model_path}class_name"),
                format!("expected a string, got {}", type_name(v)),
            ))
        }
        None => {
            return Err(FormatError::topology(
                format!("{model_path}class_name"),
                "missing (is this a graph-model? it has no Keras model class)",
            ))
        }
    };
    let config = get_non_null(model, "config")
        .ok_or_else(|| FormatError::topology(format!("{model_path}config"), "missing"))?;

    let mut parsed = match class_name.as_str() {
        "Sequential" => parse_sequential(config, &format!("{model_path}config"), limits)?,
        "Model" | "Functional" => parse_functional(config, &format!("{model_path}config"), limits)?,
        other => {
            return Err(FormatError::topology(
                format!("{model_path}class_name"),
                format!(
                "unsupported model class \"{other}\" (expected Sequential, Model or Functional)"
            ),
            ))
        }
    };
    parsed.class_name = class_name;
    parsed.keras_version = keras_version;
    parsed.backend = backend;
    validate(&parsed)?;
    Ok(parsed)
}

// ---------------------------------------------------------------------------
// Sequential

fn parse_sequential(config: &Value, path: &str, limits: &Limits) -> Result<LayersModel> {
    let (name, layers_v, build_input_shape) = match config {
        Value::Array(layers) => ("sequential".to_owned(), layers, None),
        Value::Object(obj) => {
            let name = obj
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("sequential")
                .to_owned();
            let layers = match obj.get("layers") {
                Some(Value::Array(a)) => a,
                Some(v) => {
                    return Err(FormatError::topology(
                        format!("{path}.layers"),
                        format!("expected an array of layers, got {}", type_name(v)),
                    ))
                }
                None => return Err(FormatError::topology(format!("{path}.layers"), "missing")),
            };
            (name, layers, get_non_null(obj, "build_input_shape"))
        }
        other => {
            return Err(FormatError::topology(
                path,
                format!(
                    "expected an object with `layers` or an array of layers, got {}",
                    type_name(other)
                ),
            ))
        }
    };
    check_layer_count(layers_v.len().saturating_add(1), limits)?;

    let mut specs = Vec::with_capacity(layers_v.len().saturating_add(1));
    for (i, lv) in layers_v.iter().enumerate() {
        let (class_name, lname, config) = parse_layer_head(lv, &format!("{path}.layers[{i}]"))?;
        if class_name == INPUT_LAYER && i != 0 {
            return Err(FormatError::topology(
                layer_path(&lname, i),
                "an InputLayer may only be the first layer of a Sequential model",
            ));
        }
        specs.push(LayerSpec {
            class_name,
            name: lname,
            config,
            inbound_nodes: Vec::new(),
        });
    }

    let first = specs.first_mut().ok_or_else(|| {
        FormatError::topology(
            format!("{path}.layers"),
            "a Sequential model needs at least one layer",
        )
    })?;
    if first.class_name == INPUT_LAYER {
        normalize_input_config(first, limits)?;
    } else {
        let batch_input_shape =
            sequential_input_shape(first, build_input_shape)?.ok_or_else(|| {
                FormatError::topology(
                layer_path(&first.name, 0),
                "the first layer of a Sequential model needs `batch_input_shape`, `batch_shape` or \
                 `input_shape` in its config (or an InputLayer before it)",
            )
            })?;
        let input_name = format!("{}_input", first.name);
        let mut config = Map::new();
        config.insert("batch_input_shape".into(), batch_input_shape);
        // tfjs: `dtype`, else Keras 1's `input_dtype`, else float32.
        let dtype = get_non_null(&first.config, "dtype")
            .or_else(|| get_non_null(&first.config, "input_dtype"));
        config.insert("dtype".into(), Value::String(dtype_name(dtype)));
        config.insert("name".into(), Value::String(input_name.clone()));
        let mut input = LayerSpec {
            class_name: INPUT_LAYER.into(),
            name: input_name,
            config,
            inbound_nodes: vec![],
        };
        normalize_input_config(&mut input, limits)?;
        specs.insert(0, input);
    }

    // Chain: each layer is called once, on the previous layer's output.
    let mut prev: Option<String> = None;
    for spec in &mut specs {
        if let Some(p) = prev.take() {
            spec.inbound_nodes = vec![vec![TensorRef::new(p, 0, 0)]];
        }
        prev = Some(spec.name.clone());
    }
    let inputs = specs
        .first()
        .map(|l| vec![TensorRef::new(l.name.clone(), 0, 0)])
        .unwrap_or_default();
    let outputs = specs
        .last()
        .map(|l| vec![TensorRef::new(l.name.clone(), 0, 0)])
        .unwrap_or_default();
    Ok(LayersModel {
        class_name: String::new(),
        name,
        keras_version: None,
        backend: None,
        layers: specs,
        inputs,
        outputs,
    })
}

/// The batch input shape a Sequential model's first (non-input) layer
/// declares, as a JSON array with the batch dimension first.
fn sequential_input_shape(
    first: &LayerSpec,
    build_input_shape: Option<&Value>,
) -> Result<Option<Value>> {
    if let Some(v) = shape_from_config(&first.config) {
        return Ok(Some(v));
    }
    // Keras >= 2.4 and Keras 3 record the shape a model was built with.
    match build_input_shape {
        Some(v @ Value::Array(_)) => Ok(Some(v.clone())),
        _ => Ok(None),
    }
}

/// `batch_input_shape`, `batch_shape`, or `[batch_size] + input_shape`, as tfjs
/// and Keras derive an input shape from a layer config.
fn shape_from_config(config: &Map<String, Value>) -> Option<Value> {
    if let Some(v) = get_non_null(config, "batch_input_shape") {
        return Some(v.clone());
    }
    if let Some(v) = get_non_null(config, "batch_shape") {
        return Some(v.clone());
    }
    let input_shape =
        get_non_null(config, "input_shape").or_else(|| get_non_null(config, "shape"))?;
    let dims = input_shape.as_array()?;
    let batch = get_non_null(config, "batch_size")
        .cloned()
        .unwrap_or(Value::Null);
    let mut out = Vec::with_capacity(dims.len().saturating_add(1));
    out.push(batch);
    out.extend(dims.iter().cloned());
    Some(Value::Array(out))
}

/// A dtype as a plain string, reading Keras 3 `DTypePolicy` objects.
fn dtype_name(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(o)) => o
            .get("config")
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("float32")
            .to_owned(),
        _ => "float32".to_owned(),
    }
}

/// Makes sure an InputLayer's config has a valid `batch_input_shape`.
fn normalize_input_config(layer: &mut LayerSpec, limits: &Limits) -> Result<()> {
    let shape = shape_from_config(&layer.config).ok_or_else(|| FormatError::LayerConfig {
        layer: layer.name.clone(),
        key: "batch_input_shape".into(),
        message: "an InputLayer needs `batch_input_shape`, `batch_shape` or `input_shape`".into(),
    })?;
    layer.config.insert("batch_input_shape".into(), shape);
    let dims = layer.get_shape("batch_input_shape")?.unwrap_or_default();
    if dims.len() > limits.max_rank {
        return Err(FormatError::limit(
            format!("layer \"{}\": rank of batch_input_shape", layer.name),
            dims.len() as u64,
            limits.max_rank as u64,
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Functional

fn parse_functional(config: &Value, path: &str, limits: &Limits) -> Result<LayersModel> {
    let obj = config.as_object().ok_or_else(|| {
        FormatError::topology(
            path,
            format!("expected an object, got {}", type_name(config)),
        )
    })?;
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("model")
        .to_owned();
    let layers_v = match obj.get("layers") {
        Some(Value::Array(a)) => a,
        Some(v) => {
            return Err(FormatError::topology(
                format!("{path}.layers"),
                format!("expected an array of layers, got {}", type_name(v)),
            ))
        }
        None => return Err(FormatError::topology(format!("{path}.layers"), "missing")),
    };
    check_layer_count(layers_v.len(), limits)?;

    let mut layers = Vec::with_capacity(layers_v.len());
    for (i, lv) in layers_v.iter().enumerate() {
        let (class_name, lname, config) = parse_layer_head(lv, &format!("{path}.layers[{i}]"))?;
        let here = layer_path(&lname, i);
        let inbound_nodes = match lv.get("inbound_nodes") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => parse_inbound_nodes(v, &here)?,
        };
        let mut spec = LayerSpec {
            class_name,
            name: lname,
            config,
            inbound_nodes,
        };
        if spec.class_name == INPUT_LAYER {
            if !spec.inbound_nodes.is_empty() {
                return Err(FormatError::topology(
                    format!("{here}: inbound_nodes"),
                    "an InputLayer cannot have inbound nodes",
                ));
            }
            normalize_input_config(&mut spec, limits)?;
        }
        layers.push(spec);
    }

    let inputs = parse_ref_list(obj.get("input_layers"), &format!("{path}.input_layers"))?;
    let outputs = parse_ref_list(obj.get("output_layers"), &format!("{path}.output_layers"))?;
    Ok(LayersModel {
        class_name: String::new(),
        name,
        keras_version: None,
        backend: None,
        layers,
        inputs,
        outputs,
    })
}

fn parse_inbound_nodes(v: &Value, here: &str) -> Result<Vec<Vec<TensorRef>>> {
    let nodes = v.as_array().ok_or_else(|| {
        FormatError::topology(
            format!("{here}: inbound_nodes"),
            format!("expected an array, got {}", type_name(v)),
        )
    })?;
    // Loops rather than `collect::<Result<Vec<_>>>()`: each of those is its own copy of the
    // iterator adapters in the browser module (so throughout this file's parsing).
    let mut out = Vec::with_capacity(nodes.len());
    for (n, node) in nodes.iter().enumerate() {
        let npath = format!("{here}: inbound_nodes[{n}]");
        let mut refs = Vec::new();
        match node {
            // Keras 2 / tfjs: [[name, node, tensor, kwargs?], ...]
            Value::Array(entries) => {
                for (k, e) in entries.iter().enumerate() {
                    refs.push(parse_triple(e, &format!("{npath}[{k}]"))?);
                }
            }
            // Keras 3: {"args": [...keras tensors, possibly nested in lists...], "kwargs": {...}}
            Value::Object(call) => {
                if let Some(args) = call.get("args") {
                    collect_keras_tensors(args, &format!("{npath}.args"), &mut refs)?;
                }
            }
            other => {
                return Err(FormatError::topology(
                    npath,
                    format!(
                    "expected an array of [layer, node, tensor] or a Keras 3 call object, got {}",
                    type_name(other)
                ),
                ))
            }
        }
        if refs.is_empty() {
            return Err(FormatError::topology(npath, "a node without input tensors"));
        }
        out.push(refs);
    }
    Ok(out)
}

/// Finds every `__keras_tensor__` in a Keras 3 `args` tree, depth first.
fn collect_keras_tensors(v: &Value, path: &str, out: &mut Vec<TensorRef>) -> Result<()> {
    match v {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_keras_tensors(item, &format!("{path}[{i}]"), out)?;
            }
        }
        Value::Object(obj)
            if obj.get("class_name").and_then(Value::as_str) == Some("__keras_tensor__") =>
        {
            let history = obj
                .get("config")
                .and_then(|c| c.get("keras_history"))
                .ok_or_else(|| {
                    FormatError::topology(path, "a __keras_tensor__ without config.keras_history")
                })?;
            out.push(parse_triple(
                history,
                &format!("{path}.config.keras_history"),
            )?);
        }
        // Constants passed as call arguments carry no graph edge.
        _ => {}
    }
    Ok(())
}

/// `[layer_name, node_index, tensor_index, ...]`.
fn parse_triple(v: &Value, path: &str) -> Result<TensorRef> {
    let bad = || {
        FormatError::topology(
            path,
            format!(
                "expected [layer name, node index, tensor index], got {}",
                preview(v)
            ),
        )
    };
    let a = v.as_array().ok_or_else(bad)?;
    match (a.first(), a.get(1), a.get(2)) {
        (Some(Value::String(layer)), Some(n), Some(t)) => Ok(TensorRef {
            layer: layer.clone(),
            node_index: as_usize(n).ok_or_else(bad)?,
            tensor_index: as_usize(t).ok_or_else(bad)?,
        }),
        _ => Err(bad()),
    }
}

/// `input_layers` / `output_layers`: a list of triples, a single triple, or an
/// object whose values are triples (Keras 3 dict inputs; keys in sorted order,
/// as Keras flattens dicts).
fn parse_ref_list(v: Option<&Value>, path: &str) -> Result<Vec<TensorRef>> {
    let mut refs = Vec::new();
    match v {
        None | Some(Value::Null) => return Err(FormatError::topology(path, "missing")),
        Some(single @ Value::Array(a)) if matches!(a.first(), Some(Value::String(_))) => {
            refs.push(parse_triple(single, path)?);
        }
        Some(Value::Array(a)) => {
            for (i, t) in a.iter().enumerate() {
                refs.push(parse_triple(t, &format!("{path}[{i}]"))?);
            }
        }
        // Keras 3's dict form: Keras flattens a dict in sorted key order.
        Some(Value::Object(o)) => {
            let mut entries: Vec<(&String, &Value)> = o.iter().collect();
            crate::order::sort_by(&mut entries, |a, b| a.0.cmp(b.0));
            for (k, t) in entries {
                refs.push(parse_triple(t, &format!("{path}.{k}"))?);
            }
        }
        Some(other) => {
            return Err(FormatError::topology(
                path,
                format!(
                    "expected a list of [layer name, node index, tensor index], got {}",
                    type_name(other)
                ),
            ))
        }
    }
    if refs.is_empty() {
        return Err(FormatError::topology(
            path,
            "empty: a model needs at least one",
        ));
    }
    Ok(refs)
}

// ---------------------------------------------------------------------------
// Shared

fn check_layer_count(n: usize, limits: &Limits) -> Result<()> {
    if n > limits.max_layers {
        return Err(FormatError::limit(
            "model topology: number of layers",
            n as u64,
            limits.max_layers as u64,
        ));
    }
    Ok(())
}

fn layer_path(name: &str, index: usize) -> String {
    format!("layer \"{name}\" (index {index})")
}

/// `class_name`, name and `config` of one layer entry.
fn parse_layer_head(v: &Value, path: &str) -> Result<(String, String, Map<String, Value>)> {
    let obj = v.as_object().ok_or_else(|| {
        FormatError::topology(
            path,
            format!("expected a layer object, got {}", type_name(v)),
        )
    })?;
    let config = match obj.get("config") {
        Some(Value::Object(c)) => c.clone(),
        None | Some(Value::Null) => Map::new(),
        Some(other) => {
            return Err(FormatError::topology(
                format!("{path}.config"),
                format!("expected an object, got {}", type_name(other)),
            ))
        }
    };
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .or_else(|| config.get("name").and_then(Value::as_str))
        .ok_or_else(|| {
            FormatError::topology(
                path,
                "layer without a name (neither `name` nor `config.name`)",
            )
        })?
        .to_owned();
    let class_name = match obj.get("class_name") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(FormatError::topology(
                format!("{path}.class_name"),
                format!(
                    "layer \"{name}\": expected a string, got {}",
                    type_name(other)
                ),
            ))
        }
        None => {
            return Err(FormatError::topology(
                format!("{path}.class_name"),
                format!("layer \"{name}\": missing"),
            ))
        }
    };
    Ok((class_name, name, config))
}

fn validate(model: &LayersModel) -> Result<()> {
    // String keys, like the engine's other name maps: one map type in the module, not two.
    let mut by_name: HashMap<String, usize> = HashMap::with_capacity(model.layers.len());
    for (i, l) in model.layers.iter().enumerate() {
        if let Some(first) = by_name.insert(l.name.clone(), i) {
            return Err(FormatError::topology(
                layer_path(&l.name, i),
                format!("duplicate layer name (also used by the layer at index {first})"),
            ));
        }
    }
    let check_ref = |r: &TensorRef, at: &str| -> Result<&LayerSpec> {
        let target = by_name
            .get(r.layer.as_str())
            .and_then(|&i| model.layers.get(i))
            .ok_or_else(|| {
                FormatError::topology(
                    at,
                    format!("refers to layer \"{}\", which does not exist", r.layer),
                )
            })?;
        let nodes = if target.class_name == INPUT_LAYER {
            1
        } else {
            target.inbound_nodes.len()
        };
        if r.node_index >= nodes {
            return Err(FormatError::topology(
                at,
                format!(
                    "refers to node {} of layer \"{}\", which has {nodes} node{}",
                    r.node_index,
                    r.layer,
                    if nodes == 1 { "" } else { "s" }
                ),
            ));
        }
        if target.class_name == INPUT_LAYER && r.tensor_index != 0 {
            return Err(FormatError::topology(
                at,
                format!(
                    "refers to tensor {} of InputLayer \"{}\", which has one output",
                    r.tensor_index, r.layer
                ),
            ));
        }
        Ok(target)
    };
    for (i, l) in model.layers.iter().enumerate() {
        for (n, node) in l.inbound_nodes.iter().enumerate() {
            for (k, r) in node.iter().enumerate() {
                check_ref(
                    r,
                    &format!("{}: inbound_nodes[{n}][{k}]", layer_path(&l.name, i)),
                )?;
            }
        }
    }
    for (i, r) in model.inputs.iter().enumerate() {
        let target = check_ref(r, &format!("model input {i}"))?;
        if target.class_name != INPUT_LAYER {
            return Err(FormatError::topology(
                format!("model input {i}"),
                format!(
                    "layer \"{}\" is a {}, not an InputLayer",
                    r.layer, target.class_name
                ),
            ));
        }
    }
    for (i, r) in model.outputs.iter().enumerate() {
        check_ref(r, &format!("model output {i}"))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Typed config accessors

impl LayerSpec {
    /// `config[key]`, with `null` read as absent.
    pub fn get(&self, key: &str) -> Option<&Value> {
        get_non_null(&self.config, key)
    }

    /// Whether this is an `InputLayer`.
    pub fn is_input_layer(&self) -> bool {
        self.class_name == INPUT_LAYER
    }

    fn config_error(&self, key: &str, message: impl Into<String>) -> FormatError {
        FormatError::LayerConfig {
            layer: self.name.clone(),
            key: key.to_owned(),
            message: message.into(),
        }
    }

    fn expected(&self, key: &str, what: &str, got: &Value) -> FormatError {
        self.config_error(key, format!("expected {what}, got {}", preview(got)))
    }

    /// A non-negative integer.
    pub fn get_usize(&self, key: &str) -> Result<Option<usize>> {
        self.get(key)
            .map(|v| as_usize(v).ok_or_else(|| self.expected(key, "a non-negative integer", v)))
            .transpose()
    }

    /// An integer, possibly negative (axes).
    pub fn get_i64(&self, key: &str) -> Result<Option<i64>> {
        self.get(key)
            .map(|v| as_int(v).ok_or_else(|| self.expected(key, "an integer", v)))
            .transpose()
    }

    /// A pair such as `kernel_size` or `strides`: an integer `n` (read as
    /// `[n, n]`), `[n]` (likewise) or `[a, b]`.
    pub fn usize_pair(&self, key: &str) -> Result<Option<[usize; 2]>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let what = "an integer or an array of 2 integers";
        if let Some(n) = as_usize(v) {
            return Ok(Some([n, n]));
        }
        let a = v.as_array().ok_or_else(|| self.expected(key, what, v))?;
        let ints = a
            .iter()
            .map(as_usize)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| self.expected(key, what, v))?;
        match ints.as_slice() {
            [n] => Ok(Some([*n, *n])),
            [a, b] => Ok(Some([*a, *b])),
            _ => Err(self.expected(key, what, v)),
        }
    }

    /// A number, read as f32 (`null` is `None`).
    pub fn get_f32(&self, key: &str) -> Result<Option<f32>> {
        Ok(self.get_f64(key)?.map(|f| f as f32))
    }

    /// A number, at full precision (`null` is `None`).
    pub fn get_f64(&self, key: &str) -> Result<Option<f64>> {
        self.get(key)
            .map(|v| {
                v.as_number()
                    .and_then(crate::json::number_f64)
                    .ok_or_else(|| self.expected(key, "a number", v))
            })
            .transpose()
    }

    /// A string.
    pub fn get_str(&self, key: &str) -> Result<Option<&str>> {
        self.get(key)
            .map(|v| v.as_str().ok_or_else(|| self.expected(key, "a string", v)))
            .transpose()
    }

    /// A boolean.
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>> {
        self.get(key)
            .map(|v| {
                v.as_bool()
                    .ok_or_else(|| self.expected(key, "a boolean", v))
            })
            .transpose()
    }

    /// A shape such as `batch_input_shape`: `null` entries (unknown
    /// dimensions, usually the batch) are `None`.
    pub fn get_shape(&self, key: &str) -> Result<Option<Vec<Option<usize>>>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let what = "an array of non-negative integers or nulls";
        let a = v.as_array().ok_or_else(|| self.expected(key, what, v))?;
        a.iter()
            .map(|d| match d {
                Value::Null => Ok(None),
                d => as_usize(d)
                    .map(Some)
                    .ok_or_else(|| self.expected(key, what, v)),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// A list of integers, possibly negative (`target_shape` with -1, `dims`,
    /// `axis`). A single integer is read as a one-element list.
    pub fn get_int_list(&self, key: &str) -> Result<Option<Vec<i64>>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        if let Some(n) = as_int(v) {
            return Ok(Some(vec![n]));
        }
        let what = "an integer or an array of integers";
        let a = v.as_array().ok_or_else(|| self.expected(key, what, v))?;
        a.iter()
            .map(as_int)
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| self.expected(key, what, v))
    }

    /// The `activation` key as a name (`"relu"`). Reads a plain string, or a
    /// Keras 3 serialized object: `{"class_name": "function", "config": "relu"}`,
    /// `{..., "config": {"name": "relu"}}`, or else its `class_name`.
    /// `None` when absent or `null`.
    pub fn activation_name(&self) -> Result<Option<String>> {
        const KEY: &str = "activation";
        let Some(v) = self.get(KEY) else {
            return Ok(None);
        };
        match v {
            Value::String(s) => Ok(Some(s.clone())),
            Value::Object(o) => {
                let from_config = match o.get("config") {
                    Some(Value::String(s)) => Some(s.as_str()),
                    Some(Value::Object(c)) => c.get("name").and_then(Value::as_str),
                    _ => None,
                };
                from_config
                    .or_else(|| o.get("class_name").and_then(Value::as_str))
                    .map(|s| Some(s.to_owned()))
                    .ok_or_else(|| {
                        self.expected(KEY, "an activation name or a serialized activation", v)
                    })
            }
            other => Err(self.expected(KEY, "an activation name", other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<LayersModel> {
        parse_layers_topology(&v, &Limits::default())
    }

    fn dense(name: &str, extra: Value) -> Value {
        let mut config =
            json!({"name": name, "units": 2, "activation": "linear", "use_bias": true});
        if let (Some(c), Value::Object(e)) = (config.as_object_mut(), extra) {
            c.extend(e);
        }
        json!({"class_name": "Dense", "config": config})
    }

    fn names(m: &LayersModel) -> Vec<&str> {
        m.layers.iter().map(|l| l.name.as_str()).collect()
    }

    #[test]
    fn tfjs_sequential_with_batch_input_shape() {
        let m = parse(json!({
            "class_name": "Sequential",
            "config": {"name": "seq", "layers": [
                dense("d1", json!({"batch_input_shape": [null, 4], "dtype": "float32"})),
                dense("d2", json!({}))]},
            "keras_version": "tfjs-layers 4.22.0",
            "backend": "tensor_flow.js"
        }))
        .unwrap();
        assert_eq!(m.class_name, "Sequential");
        assert_eq!(m.name, "seq");
        assert_eq!(m.keras_version.as_deref(), Some("tfjs-layers 4.22.0"));
        assert_eq!(m.backend.as_deref(), Some("tensor_flow.js"));
        assert_eq!(names(&m), ["d1_input", "d1", "d2"]);
        let input = &m.layers[0];
        assert!(input.is_input_layer());
        assert_eq!(
            input.get_shape("batch_input_shape").unwrap(),
            Some(vec![None, Some(4)])
        );
        assert_eq!(input.get_str("dtype").unwrap(), Some("float32"));
        assert_eq!(
            m.layers[1].inbound_nodes,
            vec![vec![TensorRef::new("d1_input", 0, 0)]]
        );
        assert_eq!(
            m.layers[2].inbound_nodes,
            vec![vec![TensorRef::new("d1", 0, 0)]]
        );
        assert_eq!(m.inputs, vec![TensorRef::new("d1_input", 0, 0)]);
        assert_eq!(m.outputs, vec![TensorRef::new("d2", 0, 0)]);
    }

    #[test]
    fn converter_sequential_with_input_layer_in_model_config() {
        let m = parse(json!({
            "keras_version": "2.4.0",
            "backend": "tensorflow",
            "model_config": {"class_name": "Sequential", "config": {"name": "s", "layers": [
                {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 3], "dtype": "float32", "name": "in"}},
                dense("d", json!({}))]}},
            "training_config": {"loss": "mse"}
        }))
        .unwrap();
        assert_eq!(names(&m), ["in", "d"]);
        assert_eq!(m.keras_version.as_deref(), Some("2.4.0"));
        assert_eq!(m.inputs, vec![TensorRef::new("in", 0, 0)]);
        assert!(m.layers[0].inbound_nodes.is_empty());
        assert_eq!(
            m.layers[1].inbound_nodes,
            vec![vec![TensorRef::new("in", 0, 0)]]
        );
    }

    #[test]
    fn sequential_input_shape_variants() {
        // Old Keras: config is a bare list; input_shape + batch_size.
        let m = parse(json!({"class_name": "Sequential", "config": [
            dense("d", json!({"input_shape": [5], "batch_size": 2}))]}))
        .unwrap();
        assert_eq!(
            m.layers[0].get_shape("batch_input_shape").unwrap(),
            Some(vec![Some(2), Some(5)])
        );
        assert_eq!(m.name, "sequential");
        // Keras 3: InputLayer with batch_shape gets batch_input_shape too.
        let m = parse(json!({"class_name": "Sequential", "config": {"name": "k3", "layers": [
            {"module": "keras.layers", "class_name": "InputLayer",
             "config": {"batch_shape": [null, 7], "dtype": "float32", "name": "input_layer"}},
            dense("d", json!({"dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}}}))]}}))
        .unwrap();
        assert_eq!(
            m.layers[0].get_shape("batch_input_shape").unwrap(),
            Some(vec![None, Some(7)])
        );
        // Keras 3 DTypePolicy on the first layer: the synthesized input gets the plain name.
        let m = parse(json!({"class_name": "Sequential", "config": {"layers": [
            dense("d", json!({"batch_shape": [null, 1], "dtype": {"class_name": "DTypePolicy", "config": {"name": "int32"}}}))]}}))
        .unwrap();
        assert_eq!(m.layers[0].get_str("dtype").unwrap(), Some("int32"));
        // Keras 1's input_dtype.
        let m = parse(json!({"class_name": "Sequential", "config": [
            dense("d", json!({"input_shape": [1], "input_dtype": "int32"}))]}))
        .unwrap();
        assert_eq!(m.layers[0].get_str("dtype").unwrap(), Some("int32"));
        // build_input_shape as the last resort.
        let m = parse(json!({"class_name": "Sequential", "config": {"name": "b", "layers": [dense("d", json!({}))],
            "build_input_shape": [null, 9]}}))
        .unwrap();
        assert_eq!(
            m.layers[0].get_shape("batch_input_shape").unwrap(),
            Some(vec![None, Some(9)])
        );
    }

    #[test]
    fn sequential_without_input_shape_is_a_clear_error() {
        let e = parse(
            json!({"class_name": "Sequential", "config": {"layers": [dense("d", json!({}))]}}),
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("layer \"d\" (index 0)") && msg.contains("input_shape"),
            "{msg}"
        );
        let e = parse(json!({"class_name": "Sequential", "config": {"layers": []}})).unwrap_err();
        assert!(e.to_string().contains("at least one layer"), "{e}");
        let e = parse(json!({"class_name": "Sequential", "config": {"layers": [
            dense("d", json!({"input_shape": [2]})),
            {"class_name": "InputLayer", "config": {"name": "late", "batch_input_shape": [null, 2]}}]}}))
        .unwrap_err();
        assert!(e.to_string().contains("late"), "{e}");
    }

    fn two_in_two_out(input_layers: Value, output_layers: Value) -> Value {
        json!({"class_name": "Model", "config": {
            "name": "m2",
            "layers": [
                {"class_name": "InputLayer", "name": "a", "config": {"batch_input_shape": [null, 2], "dtype": "float32", "name": "a"}, "inbound_nodes": []},
                {"class_name": "InputLayer", "name": "b", "config": {"batch_input_shape": [null, 2], "dtype": "float32", "name": "b"}, "inbound_nodes": []},
                {"class_name": "Add", "name": "sum", "config": {"name": "sum"}, "inbound_nodes": [[["a", 0, 0, {}], ["b", 0, 0, {}]]]},
                {"class_name": "Dense", "name": "shared", "config": {"name": "shared", "units": 2},
                 "inbound_nodes": [[["sum", 0, 0, {}]], [["a", 0, 0]]]}
            ],
            "input_layers": input_layers,
            "output_layers": output_layers
        }, "keras_version": "2.2.4", "backend": "tensorflow"})
    }

    #[test]
    fn functional_two_inputs_two_outputs() {
        let m = parse(two_in_two_out(
            json!([["a", 0, 0], ["b", 0, 0]]),
            json!([["shared", 0, 0], ["shared", 1, 0]]),
        ))
        .unwrap();
        assert_eq!(m.class_name, "Model");
        assert_eq!(m.name, "m2");
        assert_eq!(
            m.inputs,
            vec![TensorRef::new("a", 0, 0), TensorRef::new("b", 0, 0)]
        );
        assert_eq!(
            m.outputs,
            vec![
                TensorRef::new("shared", 0, 0),
                TensorRef::new("shared", 1, 0)
            ]
        );
        assert_eq!(
            m.layers[2].inbound_nodes,
            vec![vec![TensorRef::new("a", 0, 0), TensorRef::new("b", 0, 0)]]
        );
        assert_eq!(m.layers[3].inbound_nodes.len(), 2);
        assert_eq!(m.layer("sum").map(|l| l.class_name.as_str()), Some("Add"));
    }

    #[test]
    fn functional_single_triple_form() {
        let m = parse(two_in_two_out(json!(["a", 0, 0]), json!(["shared", 1, 0]))).unwrap();
        assert_eq!(m.inputs, vec![TensorRef::new("a", 0, 0)]);
        assert_eq!(m.outputs, vec![TensorRef::new("shared", 1, 0)]);
        // Dict form (Keras 3), keys in sorted order.
        let m = parse(two_in_two_out(
            json!({"y": ["b", 0, 0], "x": ["a", 0, 0]}),
            json!([["sum", 0, 0]]),
        ))
        .unwrap();
        assert_eq!(
            m.inputs,
            vec![TensorRef::new("a", 0, 0), TensorRef::new("b", 0, 0)]
        );
    }

    #[test]
    fn functional_class_name_and_model_config_shape() {
        let mut t = two_in_two_out(json!([["a", 0, 0], ["b", 0, 0]]), json!([["sum", 0, 0]]));
        t["class_name"] = json!("Functional");
        let wrapped = json!({"keras_version": "2.9.0", "backend": "tensorflow", "model_config": t});
        let m = parse(wrapped).unwrap();
        assert_eq!(m.class_name, "Functional");
        assert_eq!(m.keras_version.as_deref(), Some("2.9.0"));
    }

    #[test]
    fn keras3_inbound_nodes() {
        let kt = |name: &str| json!({"class_name": "__keras_tensor__", "config": {"shape": [null, 2], "dtype": "float32", "keras_history": [name, 0, 0]}});
        let m = parse(json!({"class_name": "Functional", "config": {
            "name": "k3",
            "layers": [
                {"module": "keras.layers", "class_name": "InputLayer", "name": "x",
                 "config": {"batch_shape": [null, 2], "dtype": "float32", "sparse": false, "name": "x"}, "inbound_nodes": []},
                {"module": "keras.layers", "class_name": "InputLayer", "name": "y",
                 "config": {"batch_shape": [null, 2], "dtype": "float32", "sparse": false, "name": "y"}, "inbound_nodes": []},
                {"module": "keras.layers", "class_name": "Dense", "name": "d",
                 "config": {"name": "d", "units": 2, "activation": {"module": "keras.activations", "class_name": "function", "config": "relu", "registered_name": "function"}},
                 "build_config": {"input_shape": [null, 2]},
                 "inbound_nodes": [{"args": [kt("x")], "kwargs": {}}]},
                {"module": "keras.layers", "class_name": "Add", "name": "add", "config": {"name": "add"},
                 "inbound_nodes": [{"args": [[kt("d"), kt("y")]], "kwargs": {}}]}
            ],
            "input_layers": [["x", 0, 0], ["y", 0, 0]],
            "output_layers": ["add", 0, 0]
        }}))
        .unwrap();
        assert_eq!(
            m.layers[0].get_shape("batch_input_shape").unwrap(),
            Some(vec![None, Some(2)])
        );
        assert_eq!(
            m.layers[2].inbound_nodes,
            vec![vec![TensorRef::new("x", 0, 0)]]
        );
        assert_eq!(
            m.layers[3].inbound_nodes,
            vec![vec![TensorRef::new("d", 0, 0), TensorRef::new("y", 0, 0)]]
        );
        assert_eq!(
            m.layers[2].activation_name().unwrap().as_deref(),
            Some("relu")
        );
        assert_eq!(m.outputs, vec![TensorRef::new("add", 0, 0)]);
    }

    #[test]
    fn reference_validation() {
        let base = |inbound: Value, outputs: Value| {
            json!({"class_name": "Model", "config": {"name": "m", "layers": [
                {"class_name": "InputLayer", "name": "in", "config": {"batch_input_shape": [null, 2], "name": "in"}, "inbound_nodes": []},
                {"class_name": "Dense", "name": "d", "config": {"name": "d"}, "inbound_nodes": inbound}],
                "input_layers": [["in", 0, 0]], "output_layers": outputs}})
        };
        let err = |inbound, outputs| parse(base(inbound, outputs)).unwrap_err().to_string();
        let e = err(json!([[["nope", 0, 0, {}]]]), json!([["d", 0, 0]]));
        assert!(
            e.contains("layer \"d\" (index 1): inbound_nodes[0][0]") && e.contains("\"nope\""),
            "{e}"
        );
        let e = err(json!([[["in", 1, 0, {}]]]), json!([["d", 0, 0]]));
        assert!(e.contains("node 1") && e.contains("1 node"), "{e}");
        let e = err(json!([[["in", 0, 1, {}]]]), json!([["d", 0, 0]]));
        assert!(e.contains("tensor 1"), "{e}");
        let e = err(json!([[["in", 0, 0, {}]]]), json!([["d", 1, 0]]));
        assert!(e.contains("model output 0"), "{e}");
        let e = err(json!([[["in", 0]]]), json!([["d", 0, 0]]));
        assert!(
            e.contains("expected [layer name, node index, tensor index]"),
            "{e}"
        );
        let e = err(json!([[]]), json!([["d", 0, 0]]));
        assert!(e.contains("without input tensors"), "{e}");
        let e = err(json!([[["in", -1, 0]]]), json!([["d", 0, 0]]));
        assert!(e.contains("inbound_nodes[0][0]"), "{e}");
        let e = err(json!([[["in", 0, 0]]]), json!([]));
        assert!(e.contains("output_layers"), "{e}");
        // Inputs must be InputLayers.
        let mut t = base(json!([[["in", 0, 0]]]), json!([["d", 0, 0]]));
        t["config"]["input_layers"] = json!([["d", 0, 0]]);
        let e = parse(t).unwrap_err().to_string();
        assert!(e.contains("not an InputLayer"), "{e}");
        // Duplicate names.
        let mut t = base(json!([[["in", 0, 0]]]), json!([["d", 0, 0]]));
        t["config"]["layers"][1]["name"] = json!("in");
        let e = parse(t).unwrap_err().to_string();
        assert!(e.contains("duplicate layer name"), "{e}");
    }

    #[test]
    fn model_level_errors() {
        assert!(parse(json!([])).is_err());
        assert!(parse(json!({"class_name": "Sequential"})).is_err());
        let e = parse(json!({"class_name": "Graph", "config": {}}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unsupported model class \"Graph\""), "{e}");
        let e = parse(json!({"node": [], "versions": {}}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("graph-model"), "{e}");
        let limits = Limits {
            max_layers: 1,
            ..Limits::default()
        };
        let e = parse_layers_topology(
            &json!({"class_name": "Sequential", "config": [dense("d", json!({"input_shape": [1]}))]}),
            &limits,
        )
        .unwrap_err();
        assert!(matches!(e, FormatError::Limit { .. }), "{e}");
        let limits = Limits {
            max_rank: 2,
            ..Limits::default()
        };
        let e = parse_layers_topology(
            &json!({"class_name": "Sequential", "config": [dense("d", json!({"input_shape": [1, 2]}))]}),
            &limits,
        )
        .unwrap_err();
        assert!(matches!(e, FormatError::Limit { .. }), "{e}");
    }

    #[test]
    fn accessors() {
        let l = LayerSpec {
            class_name: "Conv2D".into(),
            name: "conv1".into(),
            config: json!({
                "filters": 8, "kernel_size": [3, 5], "strides": 2, "dilation_rate": [1],
                "epsilon": 0.001, "momentum": null, "padding": "same", "use_bias": false,
                "batch_input_shape": [null, 28, 28, 1], "target_shape": [-1, 4], "axis": -1,
                "bad_pair": [1, 2, 3], "neg": -3, "activation": null
            })
            .as_object()
            .cloned()
            .unwrap(),
            inbound_nodes: vec![],
        };
        assert_eq!(l.get_usize("filters").unwrap(), Some(8));
        assert_eq!(l.get_usize("missing").unwrap(), None);
        assert_eq!(l.usize_pair("kernel_size").unwrap(), Some([3, 5]));
        assert_eq!(l.usize_pair("strides").unwrap(), Some([2, 2]));
        assert_eq!(l.usize_pair("dilation_rate").unwrap(), Some([1, 1]));
        assert_eq!(l.get_f32("epsilon").unwrap(), Some(0.001));
        assert_eq!(l.get_f32("momentum").unwrap(), None);
        assert_eq!(l.get_str("padding").unwrap(), Some("same"));
        assert_eq!(l.get_bool("use_bias").unwrap(), Some(false));
        assert_eq!(
            l.get_shape("batch_input_shape").unwrap(),
            Some(vec![None, Some(28), Some(28), Some(1)])
        );
        assert_eq!(l.get_int_list("target_shape").unwrap(), Some(vec![-1, 4]));
        assert_eq!(l.get_int_list("axis").unwrap(), Some(vec![-1]));
        assert_eq!(l.get_i64("axis").unwrap(), Some(-1));
        assert_eq!(l.activation_name().unwrap(), None);

        let e = l.usize_pair("bad_pair").unwrap_err();
        assert_eq!(e.to_string(), "layer \"conv1\": config.bad_pair: expected an integer or an array of 2 integers, got [1,2,3]");
        assert!(
            matches!(e, FormatError::LayerConfig { ref layer, ref key, .. } if layer == "conv1" && key == "bad_pair")
        );
        assert!(l.get_usize("neg").is_err());
        assert!(l.get_usize("padding").is_err());
        assert!(l.get_str("filters").is_err());
        assert!(l.get_bool("filters").is_err());
        assert!(l.get_f32("padding").is_err());
        assert!(l.get_shape("target_shape").is_err());
        assert!(l.get_int_list("padding").is_err());
    }

    #[test]
    fn activation_forms() {
        let with = |a: Value| LayerSpec {
            class_name: "Dense".into(),
            name: "d".into(),
            config: json!({ "activation": a }).as_object().cloned().unwrap(),
            inbound_nodes: vec![],
        };
        assert_eq!(
            with(json!("relu")).activation_name().unwrap().as_deref(),
            Some("relu")
        );
        assert_eq!(
            with(json!({"class_name": "Activation", "config": {"name": "sigmoid"}}))
                .activation_name()
                .unwrap()
                .as_deref(),
            Some("sigmoid")
        );
        assert_eq!(
            with(json!({"class_name": "softmax"}))
                .activation_name()
                .unwrap()
                .as_deref(),
            Some("softmax")
        );
        assert!(with(json!(3)).activation_name().is_err());
        assert!(with(json!({"config": {}})).activation_name().is_err());
    }
}
