//! Lowering tfjs graph-models (the converter's GraphDef) into the IR: one small function per
//! TensorFlow op, listed in [`GRAPH_OPS`]. Ops outside the list fail up front, all named at
//! once. Shapes are tracked while lowering (inputs with the batch set to 1), so ops whose
//! parameters depend on shapes (Squeeze, negative axes) lower to batch-independent IR.

use std::collections::HashMap;

use webinfer_tfjs::{DecodedWeight, GraphModel, GraphNode};

use super::to_tensor;
use crate::error::{CoreError, Result};
use crate::ir::{
    Activation, BinaryOp, Conv2d, Graph, InputSpec, Op, Padding, PoolKind, ReduceKind, ResizeMode,
    ResizeSize, ValueId,
};
use crate::tensor::Tensor;

type Lower = fn(&mut GraphCtx, &GraphNode, &[ValueId]) -> Result<ValueId>;

/// Every supported op and its lowering.
pub static GRAPH_OPS: &[(&str, Lower)] = &[
    ("Identity", identity),
    ("StopGradient", identity),
    ("Snapshot", identity),
    ("Conv2D", conv2d),
    ("_FusedConv2D", conv2d),
    ("DepthwiseConv2dNative", depthwise),
    ("FusedDepthwiseConv2dNative", depthwise),
    ("MatMul", matmul),
    ("_FusedMatMul", matmul),
    ("BiasAdd", bias_add),
    ("Add", binary),
    ("AddV2", binary),
    ("Sub", binary),
    ("Mul", binary),
    ("RealDiv", binary),
    ("Div", binary),
    ("Maximum", binary),
    ("Minimum", binary),
    ("Relu", unary),
    ("Relu6", unary),
    ("Elu", unary),
    ("Selu", unary),
    ("Sigmoid", unary),
    ("Tanh", unary),
    ("Softplus", unary),
    ("LeakyRelu", unary),
    ("Sqrt", unary),
    ("Rsqrt", unary),
    ("Square", unary),
    ("Cast", cast),
    ("Softmax", softmax),
    ("LogSoftmax", softmax),
    ("MaxPool", pool),
    ("AvgPool", pool),
    ("Mean", reduce),
    ("Sum", reduce),
    ("Max", reduce),
    ("Min", reduce),
    ("Reshape", reshape),
    ("Squeeze", squeeze),
    ("ExpandDims", expand_dims),
    ("ConcatV2", concat),
    ("Pad", pad),
    ("PadV2", pad),
    ("Transpose", transpose),
    ("ResizeBilinear", resize),
    ("ResizeNearestNeighbor", resize),
    ("FusedBatchNorm", batch_norm),
    ("FusedBatchNormV3", batch_norm),
];

fn find(op: &str) -> Option<Lower> {
    GRAPH_OPS.iter().find(|(n, _)| *n == op).map(|(_, f)| *f)
}

/// The graph being built, with every value's shape (batch = 1).
pub struct GraphCtx {
    graph: Graph,
    shapes: Vec<Vec<usize>>,
}

impl GraphCtx {
    fn push(&mut self, node: &GraphNode, op: Op, inputs: Vec<ValueId>) -> Result<ValueId> {
        let ins: Vec<&[usize]> = inputs.iter().map(|&i| self.shapes[i].as_slice()).collect();
        let shape = op.output_shape(&ins).map_err(|m| err(node, m))?;
        self.shapes.push(shape);
        Ok(self.graph.push(op, inputs, &node.name))
    }
    fn constant(&mut self, node: &GraphNode, t: Tensor) -> ValueId {
        self.shapes.push(t.shape().to_vec());
        self.graph.constant(t, &node.name)
    }
    fn const_of(&self, v: ValueId) -> Option<&Tensor> {
        self.graph.as_constant(v)
    }
    /// A constant operand's values as integers (axes, shapes, paddings).
    fn ints(&self, node: &GraphNode, v: ValueId, what: &str) -> Result<Vec<i64>> {
        let t = self
            .const_of(v)
            .ok_or_else(|| err(node, format!("{what} must be a constant")))?;
        Ok(t.data().iter().map(|&x| x as i64).collect())
    }
    fn rank(&self, v: ValueId) -> usize {
        self.shapes[v].len()
    }
    fn axis(&self, node: &GraphNode, a: i64, rank: usize) -> Result<usize> {
        let r = rank as i64;
        let a = if a < 0 { a + r } else { a };
        if !(0..r).contains(&a) {
            return Err(err(node, format!("axis {a} out of range for rank {rank}")));
        }
        Ok(a as usize)
    }
}

fn err(node: &GraphNode, message: impl Into<String>) -> CoreError {
    CoreError::layer(&node.name, &node.op, message)
}

fn arg(node: &GraphNode, inputs: &[ValueId], i: usize) -> Result<ValueId> {
    inputs.get(i).copied().ok_or_else(|| {
        err(
            node,
            format!("needs at least {} inputs, has {}", i + 1, inputs.len()),
        )
    })
}

fn activation(node: &GraphNode, name: &str) -> Result<Activation> {
    Ok(match name {
        "Relu" => Activation::Relu,
        "Relu6" => Activation::Relu6,
        "Elu" => Activation::Elu(1.0),
        "Selu" => Activation::Selu,
        "Sigmoid" => Activation::Sigmoid,
        "Tanh" => Activation::Tanh,
        "Softplus" => Activation::Softplus,
        "Sqrt" => Activation::Sqrt,
        "Rsqrt" => Activation::Rsqrt,
        "Square" => Activation::Square,
        "LeakyRelu" => Activation::LeakyRelu(
            node.attr_f32("alpha")?
                .or(node.attr_f32("leakyrelu_alpha")?)
                .unwrap_or(0.2),
        ),
        other => return Err(err(node, format!("activation {other} is not supported"))),
    })
}

fn identity(_: &mut GraphCtx, node: &GraphNode, inputs: &[ValueId]) -> Result<ValueId> {
    arg(node, inputs, 0)
}

/// `[1, a, b, 1]` attributes (NHWC) as `[a, b]`.
fn hw(node: &GraphNode, key: &str) -> Result<[usize; 2]> {
    match node.attr_ints(key)?.as_deref() {
        None => Ok([1, 1]),
        Some([1, a, b, 1]) if *a > 0 && *b > 0 => Ok([*a as usize, *b as usize]),
        Some(v) => Err(err(
            node,
            format!("{key} {v:?} is not supported (expected [1, h, w, 1], NHWC)"),
        )),
    }
}

fn padding(node: &GraphNode) -> Result<Padding> {
    if let Some(f) = node.attr_str("data_format")? {
        if f != "NHWC" {
            return Err(err(
                node,
                format!("data_format {f} is not supported (NHWC only)"),
            ));
        }
    }
    match node.attr_str("padding")?.as_deref() {
        Some("SAME") => Ok(Padding::Same),
        Some("VALID") | None => Ok(Padding::Valid),
        Some("EXPLICIT") => match node.attr_ints("explicit_paddings")?.as_deref() {
            Some([0, 0, t, b, l, r, 0, 0]) if [t, b, l, r].iter().all(|&&x| x >= 0) => {
                Ok(Padding::Explicit([
                    *t as usize,
                    *b as usize,
                    *l as usize,
                    *r as usize,
                ]))
            }
            v => Err(err(
                node,
                format!("explicit_paddings {v:?} are not supported"),
            )),
        },
        Some(p) => Err(err(node, format!("padding {p} is not supported"))),
    }
}

/// The fused epilogue of `_Fused*` ops: `(has bias, activation)`.
fn fused(node: &GraphNode) -> Result<(bool, Activation)> {
    let ops = node.attr_strs("fused_ops")?;
    let mut bias = false;
    let mut act = Activation::Linear;
    for (i, op) in ops.iter().enumerate() {
        match (i, op.as_str()) {
            (0, "BiasAdd") => bias = true,
            (_, "BiasAdd") | (_, "FusedBatchNorm") | (_, "Prelu") => {
                return Err(err(node, format!("fused op {op} is not supported here")))
            }
            (_, a) => act = activation(node, a)?,
        }
    }
    Ok((bias, act))
}

fn conv_like(
    cx: &mut GraphCtx,
    node: &GraphNode,
    inputs: &[ValueId],
    depthwise: bool,
) -> Result<ValueId> {
    let (x, w) = (arg(node, inputs, 0)?, arg(node, inputs, 1)?);
    let (bias, activation) = fused(node)?;
    let ws = cx.shapes[w].clone();
    if ws.len() != 4 {
        return Err(err(node, format!("filter must have rank 4, got {ws:?}")));
    }
    let params = Conv2d {
        kernel: [ws[0], ws[1]],
        stride: hw(node, "strides")?,
        dilation: hw(node, "dilations")?,
        padding: padding(node)?,
        groups: 1,
        activation,
    };
    let mut operands = vec![x, w];
    if bias {
        operands.push(arg(node, inputs, 2)?);
    }
    let op = if depthwise {
        Op::DepthwiseConv2d(params)
    } else {
        Op::Conv2d(params)
    };
    cx.push(node, op, operands)
}

fn conv2d(cx: &mut GraphCtx, node: &GraphNode, inputs: &[ValueId]) -> Result<ValueId> {
    conv_like(cx, node, inputs, false)
}

fn depthwise(cx: &mut GraphCtx, node: &GraphNode, inputs: &[ValueId]) -> Result<ValueId> {
    conv_like(cx, node, inputs, true)
}

fn matmul(cx: &mut GraphCtx, node: &GraphNode, inputs: &[ValueId]) -> Result<ValueId> {
    let (x, mut w) = (arg(node, inputs, 0)?, arg(node, inputs, 1)?);
    if node.attr_bool("transpose_a")? == Some(true) {
        return Err(err(node, "transpose_a is not supported"));
    }
    if node.attr_bool("transpose_b")? == Some(true) {
        let t = cx
            .const_of(w)
            .ok_or_else(|| err(node, "transpose_b needs a constant weight"))?;
        let s = t.shape().to_vec();
        if s.len() != 2 {
            return Err(err(node, format!("weight must have rank 2, got {s:?}")));
        }
        let mut data = vec![0.0; t.len()];
        for i in 0..s[0] {
            for j in 0..s[1] {
                data[j * s[0] + i] = t.data()[i * s[1] + j];
            }
        }
        w = cx.constant(node, Tensor::new(vec![s[1], s[0]], data)?);
    }
    let (bias, activation) = if node.op == "_FusedMatMul" {
        fused(node)?
    } else {
        (false, Activation::Linear)
    };
    let mut operands = vec![x, w];
    if bias {
        operands.push(arg(node, inputs, 2)?);
    }
    cx.push(node, Op::MatMul { activation }, operands)
}

/// Every value is f32 inside webinfer: a cast to float is the identity; a cast to an integer
/// type is exact only for values that already are integers, which holds for constants.
fn cast(cx: &mut GraphCtx, node: &GraphNode, inputs: &[ValueId]) -> Result<ValueId> {
    let x = arg(node, inputs, 0)?;
    let dst = node
        .attrs
        .get("DstT")
        .and_then(|v| v.get("type"))
        .and_then(|v| v.as_str())
        .unwrap_or("DT_FLOAT");
    match dst {
        "DT_FLOAT" => Ok(x),
        "DT_INT32" | "DT_INT64" => match cx.const_of(x) {
            Some(t) => {
                let t = Tensor::new(
                    t.shape().to_vec(),
                    t.data().iter().map(|v| v.trunc()).collect(),
                )?;
                Ok(cx.constant(node, t))
            }
            None => Err(err(
                node,
                format!("a cast of a computed value to {dst} is not supported"),
            )),
        },
        other => Err(err(node, format!("a cast to {other} is not supported"))),
    }
}

fn bias_add(cx: &mut GraphCtx, node: &GraphNode, inputs: &[ValueId]) -> Result<ValueId> {
    cx.push(
        node,
        Op::Binary(BinaryOp::Add),
        vec![arg(node, inputs, 0)?, arg(node, inputs, 1)?],
    )
}

fn binary(cx: &mut GraphCtx, node: &GraphNode, inputs: &[ValueId]) -> Result<ValueId> {
    let op = match node.op.as_str() {
        "Add" | "AddV2" => BinaryOp::Add,
        "Sub" => BinaryOp::Sub,
        "Mul" => BinaryOp::Mul,
        "RealDiv" | "Div" => BinaryOp::Div,
        "Maximum" => BinaryOp::Max,
        _ => BinaryOp::Min,
    };
    cx.push(
        node,
        Op::Binary(op),
        vec![arg(node, inputs, 0)?, arg(node, inputs, 1)?],
    )
}

fn unary(cx: &mut GraphCtx, node: &GraphNode, inputs: &[ValueId]) -> Result<ValueId> {
    let a = activation(node, &node.op)?;
    cx.push(node, Op::Unary(a), vec![arg(node, inputs, 0)?])
}

fn softmax(cx: &mut GraphCtx, node: &GraphNode, inputs: &[ValueId]) -> Result<ValueId> {
    let x = arg(node, inputs, 0)?;
    let axis = cx.rank(x).saturating_sub(1);
    let op = if node.op == "Softmax" {
        Op::Softmax { axis }
    } else {
        Op::LogSoftmax { axis }
    };
    cx.push(node, op, vec![x])
}

fn pool(cx: &mut GraphCtx, node: &GraphNode, inputs: &[ValueId]) -> Result<ValueId> {
    let kind = if node.op == "MaxPool" {
        PoolKind::Max
    } else {
        PoolKind::Avg
    };
    let op = Op::Pool2d {
        kind,
        window: hw(node, "ksize")?,
        stride: hw(node, "strides")?,
        padding: padding(node)?,
    };
    cx.push(node, op, vec![arg(node, inputs, 0)?])
}

fn reduce(cx: &mut GraphCtx, node: &GraphNode, inputs: &[ValueId]) -> Result<ValueId> {
    let x = arg(node, inputs, 0)?;
    let rank = cx.rank(x);
    let mut axes: Vec<usize> = cx
        .ints(node, arg(node, inputs, 1)?, "axes")?
        .into_iter()
        .map(|a| cx.axis(node, a, rank))
        .collect::<Result<_>>()?;
    axes.sort_unstable();
    axes.dedup();
    let kind = match node.op.as_str() {
        "Mean" => ReduceKind::Mean,
        "Sum" => ReduceKind::Sum,
        "Max" => ReduceKind::Max,
        _ => ReduceKind::Min,
    };
    let keep_dims = node.attr_bool("keep_dims")?.unwrap_or(false);
    cx.push(
        node,
        Op::Reduce {
            kind,
            axes,
            keep_dims,
        },
        vec![x],
    )
}

/// The target of a reshape whose input dim 0 is the batch: keep it open (0 = copy).
fn reshape_to(
    cx: &mut GraphCtx,
    node: &GraphNode,
    x: ValueId,
    mut target: Vec<i64>,
) -> Result<ValueId> {
    if target.contains(&0) {
        return Err(err(
            node,
            format!("a reshape to a zero-sized dim {target:?} is not supported"),
        ));
    }
    if cx.shapes[x].first() == Some(&1) && target.first() == Some(&1) && !target.contains(&-1) {
        target[0] = 0;
    }
    cx.push(node, Op::Reshape { shape: target }, vec![x])
}

fn reshape(cx: &mut GraphCtx, node: &GraphNode, inputs: &[ValueId]) -> Result<ValueId> {
    let x = arg(node, inputs, 0)?;
    let target = cx.ints(node, arg(node, inputs, 1)?, "shape")?;
    reshape_to(cx, node, x, target)
}

/// Squeeze / ExpandDims become a reshape that keeps the batch open (`0`) and fixes the rest.
fn keep_batch(shape: &[usize]) -> Vec<i64> {
    shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if i == 0 { 0 } else { d as i64 })
        .collect()
}

fn squeeze(cx: &mut GraphCtx, node: &GraphNode, inputs: &[ValueId]) -> Result<ValueId> {
    let x = arg(node, inputs, 0)?;
    let s = cx.shapes[x].clone();
    let dims: Vec<usize> = match node.attr_ints("squeeze_dims")?.filter(|d| !d.is_empty()) {
        Some(d) => d
            .into_iter()
            .map(|a| cx.axis(node, a, s.len()))
            .collect::<Result<_>>()?,
        None => (1..s.len()).filter(|&i| s[i] == 1).collect(),
    };
    if dims.contains(&0) {
        return Err(err(node, "squeezing the batch axis is not supported"));
    }
    let out: Vec<usize> = s
        .iter()
        .enumerate()
        .filter(|(i, _)| !dims.contains(i))
        .map(|(_, &d)| d)
        .collect();
    cx.push(
        node,
        Op::Reshape {
            shape: keep_batch(&out),
        },
        vec![x],
    )
}

fn expand_dims(cx: &mut GraphCtx, node: &GraphNode, inputs: &[ValueId]) -> Result<ValueId> {
    let x = arg(node, inputs, 0)?;
    let mut s = cx.shapes[x].clone();
    let a = cx
        .ints(node, arg(node, inputs, 1)?, "axis")?
        .first()
        .copied()
        .unwrap_or(0);
    let a = cx.axis(node, a, s.len() + 1)?;
    if a == 0 {
        return Err(err(
            node,
            "adding a new leading (batch) axis is not supported",
        ));
    }
    s.insert(a, 1);
    cx.push(
        node,
        Op::Reshape {
            shape: keep_batch(&s),
        },
        vec![x],
    )
}

fn concat(cx: &mut GraphCtx, node: &GraphNode, inputs: &[ValueId]) -> Result<ValueId> {
    let (&axis_v, values) = inputs.split_last().ok_or_else(|| err(node, "no inputs"))?;
    let first = *values
        .first()
        .ok_or_else(|| err(node, "nothing to concatenate"))?;
    let a = cx.ints(node, axis_v, "axis")?.first().copied().unwrap_or(0);
    let axis = cx.axis(node, a, cx.rank(first))?;
    cx.push(node, Op::Concat { axis }, values.to_vec())
}

fn pad(cx: &mut GraphCtx, node: &GraphNode, inputs: &[ValueId]) -> Result<ValueId> {
    let x = arg(node, inputs, 0)?;
    let p = cx.ints(node, arg(node, inputs, 1)?, "paddings")?;
    if p.len() != 2 * cx.rank(x) || p.iter().any(|&v| v < 0) {
        return Err(err(
            node,
            format!("paddings {p:?} do not fit a rank-{} input", cx.rank(x)),
        ));
    }
    let value = match inputs.get(2) {
        Some(&v) => cx
            .const_of(v)
            .and_then(|t| t.data().first().copied())
            .ok_or_else(|| err(node, "the pad value must be a constant"))?,
        None => 0.0,
    };
    let pads = p
        .chunks(2)
        .map(|c| [c[0] as usize, c[1] as usize])
        .collect();
    cx.push(node, Op::Pad { pads, value }, vec![x])
}

fn transpose(cx: &mut GraphCtx, node: &GraphNode, inputs: &[ValueId]) -> Result<ValueId> {
    let x = arg(node, inputs, 0)?;
    let perm = cx.ints(node, arg(node, inputs, 1)?, "perm")?;
    if perm.first() != Some(&0) {
        return Err(err(
            node,
            format!("permutation {perm:?} moves the batch axis"),
        ));
    }
    cx.push(
        node,
        Op::Transpose {
            perm: perm.into_iter().map(|p| p as usize).collect(),
        },
        vec![x],
    )
}

fn resize(cx: &mut GraphCtx, node: &GraphNode, inputs: &[ValueId]) -> Result<ValueId> {
    let x = arg(node, inputs, 0)?;
    let size = cx.ints(node, arg(node, inputs, 1)?, "size")?;
    let [h, w] = match size.as_slice() {
        [h, w] if *h > 0 && *w > 0 => [*h as usize, *w as usize],
        _ => {
            return Err(err(
                node,
                format!("size {size:?} must be two positive integers"),
            ))
        }
    };
    let mode = if node.op == "ResizeBilinear" {
        ResizeMode::Bilinear
    } else {
        ResizeMode::Nearest
    };
    let op = Op::Resize {
        mode,
        size: ResizeSize::Fixed([h, w]),
        align_corners: node.attr_bool("align_corners")?.unwrap_or(false),
        half_pixel_centers: node.attr_bool("half_pixel_centers")?.unwrap_or(false),
    };
    cx.push(node, op, vec![x])
}

/// `(x - mean) / sqrt(var + eps) * scale + offset` with constant statistics.
fn batch_norm(cx: &mut GraphCtx, node: &GraphNode, inputs: &[ValueId]) -> Result<ValueId> {
    let x = arg(node, inputs, 0)?;
    let get = |i: usize, what: &str| -> Result<Vec<f32>> {
        let v = arg(node, inputs, i)?;
        cx.const_of(v)
            .map(|t| t.data().to_vec())
            .ok_or_else(|| err(node, format!("{what} must be a constant")))
    };
    let (g, b, m, v) = (
        get(1, "scale")?,
        get(2, "offset")?,
        get(3, "mean")?,
        get(4, "variance")?,
    );
    let eps = node.attr_f32("epsilon")?.unwrap_or(1e-3);
    let c = g.len();
    if [b.len(), m.len(), v.len()] != [c, c, c] {
        return Err(err(
            node,
            "scale, offset, mean and variance differ in length",
        ));
    }
    let scale: Vec<f32> = (0..c).map(|i| g[i] / (v[i] + eps).sqrt()).collect();
    let shift: Vec<f32> = (0..c).map(|i| b[i] - m[i] * scale[i]).collect();
    let s = cx.constant(node, Tensor::new(vec![c], scale)?);
    let t = cx.constant(node, Tensor::new(vec![c], shift)?);
    cx.push(node, Op::ChannelAffine, vec![x, s, t])
}

/// Every op of the model webinfer cannot run, once each, with the first node using it.
pub fn unsupported_ops(model: &GraphModel) -> Vec<(String, String)> {
    let mut seen = std::collections::HashSet::new();
    model
        .nodes
        .iter()
        .filter(|n| {
            !matches!(n.op.as_str(), "Placeholder" | "Const" | "NoOp") && find(&n.op).is_none()
        })
        .filter(|n| seen.insert(n.op.clone()))
        .map(|n| (n.op.clone(), n.name.clone()))
        .collect()
}

/// Lower a parsed graph-model and its weights (Const nodes are matched by name).
pub fn lower_graph_model(model: &GraphModel, weights: Vec<DecodedWeight>) -> Result<Graph> {
    let unknown = unsupported_ops(model);
    if !unknown.is_empty() {
        return Err(CoreError::UnknownLayers(unknown));
    }
    let mut weights: HashMap<String, DecodedWeight> =
        weights.into_iter().map(|w| (w.name.clone(), w)).collect();
    let mut cx = GraphCtx {
        graph: Graph::default(),
        shapes: vec![],
    };
    let mut values: HashMap<&str, ValueId> = HashMap::new();

    for (index, t) in model.inputs.iter().enumerate() {
        let shape = t
            .shape
            .clone()
            .ok_or_else(|| CoreError::Graph(format!("input \"{}\" has no known rank", t.name)))?;
        let probe: Vec<usize> = shape
            .iter()
            .enumerate()
            .map(|(i, d)| d.or(if i == 0 { Some(1) } else { None }))
            .collect::<Option<_>>()
            .ok_or_else(|| CoreError::Graph(format!("input \"{}\" has open dims other than the batch: {shape:?} (not supported yet)", t.name)))?;
        cx.shapes.push(probe);
        let v = cx.graph.push(Op::Input { index }, vec![], &t.node);
        cx.graph.inputs.push(InputSpec {
            name: t.name.clone(),
            shape,
            dtype: t.dtype.clone(),
        });
        values.insert(t.node.as_str(), v);
    }

    // GraphDef lists nodes in any order: lower each once its inputs exist.
    let mut pending: Vec<&GraphNode> = model
        .nodes
        .iter()
        .filter(|n| !values.contains_key(n.name.as_str()))
        .collect();
    while !pending.is_empty() {
        let before = pending.len();
        let mut rest = Vec::new();
        for node in pending {
            if node.op == "NoOp" {
                continue;
            }
            if node.op == "Placeholder" {
                return Err(CoreError::Graph(format!(
                    "Placeholder \"{}\" is not among the signature's inputs",
                    node.name
                )));
            }
            if node.op == "Const" {
                let w = weights
                    .remove(&node.name)
                    .ok_or_else(|| CoreError::MissingWeight {
                        layer: node.name.clone(),
                        weight: node.name.clone(),
                    })?;
                let v = cx.constant(node, to_tensor(&w)?);
                values.insert(node.name.as_str(), v);
                continue;
            }
            let ins: Option<Vec<ValueId>> = node
                .inputs
                .iter()
                .map(|(n, i)| {
                    if *i == 0 {
                        values.get(n.as_str()).copied()
                    } else {
                        None
                    }
                })
                .collect();
            let Some(ins) = ins else {
                if node.inputs.iter().any(|(_, i)| *i != 0) {
                    return Err(err(
                        node,
                        "reads output > 0 of another node, which no supported op produces",
                    ));
                }
                rest.push(node);
                continue;
            };
            let f = find(&node.op).expect("checked above");
            let v = f(&mut cx, node, &ins)?;
            values.insert(node.name.as_str(), v);
        }
        if rest.len() == before {
            let names: Vec<String> = rest
                .iter()
                .take(5)
                .map(|n| format!("\"{}\"", n.name))
                .collect();
            return Err(CoreError::Graph(format!(
                "nodes {} read values that are never produced",
                names.join(", ")
            )));
        }
        pending = rest;
    }
    for t in &model.outputs {
        let v = values
            .get(t.node.as_str())
            .copied()
            .ok_or_else(|| CoreError::Graph(format!("output \"{}\" is never produced", t.name)))?;
        cx.graph.outputs.push(v);
        cx.graph.output_names.push(t.name.clone());
    }
    if !weights.is_empty() {
        let mut names: Vec<String> = weights.into_keys().collect();
        names.sort();
        return Err(CoreError::SurplusWeights(names));
    }
    Ok(cx.graph)
}
