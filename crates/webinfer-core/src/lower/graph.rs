//! Lowering tfjs graph-models (the converter's GraphDef) into the IR: one small function per
//! TensorFlow op, listed in [`GRAPH_OPS`]. Ops outside the list fail up front, all named at
//! once. Shapes are tracked while lowering (inputs with the batch set to 1), so ops whose
//! parameters depend on shapes (Squeeze, negative axes) lower to batch-independent IR.

use std::collections::HashMap;

use webinfer_tfjs::{DecodedWeight, GraphModel, GraphNode};

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
    ("Prelu", prelu),
    ("AddN", add_n),
    ("Shape", shape),
    ("StridedSlice", strided_slice),
    ("Pack", pack),
];

/// Ops that read integer values computed from shapes (which may hold the open batch size).
const SHAPE_AWARE_OPS: &[&str] = &[
    "Identity",
    "StopGradient",
    "Snapshot",
    "Cast",
    "StridedSlice",
    "Pack",
    "ConcatV2",
];

fn find(op: &str) -> Option<Lower> {
    GRAPH_OPS.iter().find(|(n, _)| *n == op).map(|(_, f)| *f)
}

/// One entry of an integer value computed from shapes (`Shape`, `StridedSlice`, `Pack`, ...):
/// known at load time, or the batch size, which stays open until predict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dim {
    Known(i64),
    Batch,
}

impl Dim {
    /// The value the graph's placeholder constant holds: the batch probed as 1.
    fn at_batch_one(self) -> i64 {
        match self {
            Dim::Known(v) => v,
            Dim::Batch => 1,
        }
    }
}

/// The graph being built, with every value's shape (batch = 1).
pub struct GraphCtx {
    graph: Graph,
    shapes: Vec<Vec<usize>>,
    /// Whether axis 0 of the value is the model's (open) batch axis.
    batched: Vec<bool>,
    /// Integer scalars and vectors known at load: int constants and values derived from
    /// shapes, which may contain the batch size. Their graph value is a constant with the batch
    /// set to 1 (so shapes can be tracked); one holding the batch may be read only by the
    /// shape-aware lowerings: any other op reading it fails at load (see
    /// [`lower_graph_model`]) rather than silently computing with batch 1.
    sym: HashMap<ValueId, Vec<Dim>>,
}

impl GraphCtx {
    fn push(&mut self, node: &GraphNode, op: Op, inputs: Vec<ValueId>) -> Result<ValueId> {
        let ins: Vec<&[usize]> = inputs.iter().map(|&i| self.shapes[i].as_slice()).collect();
        let shape = op.output_shape(&ins).map_err(|m| err(node, m))?;
        let batched = inputs.iter().any(|&i| self.batched[i]) && !shape.is_empty();
        self.shapes.push(shape);
        self.batched.push(batched);
        Ok(self.graph.push(op, inputs, &node.name))
    }
    fn constant(&mut self, node: &GraphNode, t: Tensor) -> ValueId {
        self.shapes.push(t.shape().to_vec());
        self.batched.push(false);
        self.graph.constant(t, &node.name)
    }
    /// An integer vector (`scalar` = rank 0, one entry) that may contain the batch size.
    fn dims_value(&mut self, node: &GraphNode, dims: Vec<Dim>, scalar: bool) -> Result<ValueId> {
        let data = dims
            .iter()
            .map(|d| d.at_batch_one() as f32)
            .collect::<Vec<f32>>();
        let shape = if scalar { vec![] } else { vec![data.len()] };
        let v = self.constant(node, Tensor::new(shape, data)?);
        self.sym.insert(v, dims);
        Ok(v)
    }
    /// The entries of an integer vector or scalar known at load time or derived from shapes.
    fn dims_of(&self, v: ValueId) -> Option<Vec<Dim>> {
        self.sym.get(&v).cloned()
    }
    fn depends_on_batch(&self, v: ValueId) -> bool {
        self.sym.get(&v).is_some_and(|d| d.contains(&Dim::Batch))
    }
    fn const_of(&self, v: ValueId) -> Option<&Tensor> {
        self.graph.as_constant(v)
    }
    /// A constant operand's values as integers (axes, shapes, paddings).
    fn ints(&self, node: &GraphNode, v: ValueId, what: &str) -> Result<Vec<i64>> {
        if self.depends_on_batch(v) {
            return Err(err(
                node,
                format!("{what} depends on the batch size, which webinfer keeps open here"),
            ));
        }
        if let Some(dims) = self.sym.get(&v) {
            return Ok(dims.iter().map(|d| d.at_batch_one()).collect());
        }
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

/// The fused epilogue of `_Fused*` ops: `(has bias, activation, Prelu follows)`. A Prelu
/// reads its alphas from the operand after the bias.
fn fused(node: &GraphNode) -> Result<(bool, Activation, bool)> {
    let ops = node.attr_strs("fused_ops")?;
    let mut bias = false;
    let mut act = Activation::Linear;
    let mut prelu = false;
    for (i, op) in ops.iter().enumerate() {
        match (i, op.as_str()) {
            (0, "BiasAdd") => bias = true,
            (1, "Prelu") if bias => prelu = true,
            (_, "BiasAdd") | (_, "FusedBatchNorm") | (_, "Prelu") => {
                return Err(err(node, format!("fused op {op} is not supported here")))
            }
            (_, a) => act = activation(node, a)?,
        }
    }
    Ok((bias, act, prelu))
}

/// The Prelu of a fused op: operand 3 holds the alphas.
fn fused_prelu(
    cx: &mut GraphCtx,
    node: &GraphNode,
    inputs: &[ValueId],
    y: ValueId,
) -> Result<ValueId> {
    let alpha = arg(node, inputs, 3)?;
    cx.push(node, Op::Prelu, vec![y, alpha])
}

fn prelu(cx: &mut GraphCtx, node: &GraphNode, inputs: &[ValueId]) -> Result<ValueId> {
    cx.push(
        node,
        Op::Prelu,
        vec![arg(node, inputs, 0)?, arg(node, inputs, 1)?],
    )
}

/// `AddN`: a chain of additions.
fn add_n(cx: &mut GraphCtx, node: &GraphNode, inputs: &[ValueId]) -> Result<ValueId> {
    let mut acc = arg(node, inputs, 0)?;
    for &v in inputs.iter().skip(1) {
        acc = cx.push(node, Op::Binary(BinaryOp::Add), vec![acc, v])?;
    }
    Ok(acc)
}

fn conv_like(
    cx: &mut GraphCtx,
    node: &GraphNode,
    inputs: &[ValueId],
    depthwise: bool,
) -> Result<ValueId> {
    let (x, w) = (arg(node, inputs, 0)?, arg(node, inputs, 1)?);
    let (bias, activation, prelu) = fused(node)?;
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
    let y = cx.push(node, op, operands)?;
    if prelu {
        return fused_prelu(cx, node, inputs, y);
    }
    Ok(y)
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
    let (bias, activation, prelu) = if node.op == "_FusedMatMul" {
        fused(node)?
    } else {
        (false, Activation::Linear, false)
    };
    let mut operands = vec![x, w];
    if bias {
        operands.push(arg(node, inputs, 2)?);
    }
    let y = cx.push(node, Op::MatMul { activation }, operands)?;
    if prelu {
        return fused_prelu(cx, node, inputs, y);
    }
    Ok(y)
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
        "DT_INT32" | "DT_INT64" if cx.depends_on_batch(x) => Ok(x),
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
    webinfer_tfjs::order::sort(&mut axes);
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
    let t = arg(node, inputs, 1)?;
    if let Some(dims) = cx.sym.get(&t).cloned() {
        // A target computed from shapes: the batch may only stay where it is (axis 0 of a
        // batched input), which the IR's reshape says with 0 ("copy this dim").
        let target = dims
            .iter()
            .enumerate()
            .map(|(i, d)| match d {
                Dim::Known(v) if *v == 0 => Err(err(
                    node,
                    format!("a reshape to a zero-sized dim {dims:?} is not supported"),
                )),
                Dim::Known(v) => Ok(*v),
                Dim::Batch if i == 0 && cx.batched[x] => Ok(0),
                Dim::Batch => Err(err(
                    node,
                    format!(
                        "the batch size moves to axis {i} of the target, which is not supported"
                    ),
                )),
            })
            .collect::<Result<Vec<i64>>>()?;
        return cx.push(node, Op::Reshape { shape: target }, vec![x]);
    }
    let target = cx.ints(node, t, "shape")?;
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
    // Integer vectors known at load (or holding the batch size): concatenated here, so a
    // reshape reading the result sees its entries.
    if values
        .iter()
        .all(|&v| cx.rank(v) == 1 && cx.dims_of(v).is_some())
        && values.iter().any(|&v| cx.depends_on_batch(v))
    {
        let mut dims = vec![];
        for &v in values {
            dims.extend(cx.dims_of(v).unwrap_or_default());
        }
        return cx.dims_value(node, dims, false);
    }
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

/// `Shape`: known at load, except the batch size, which stays open.
fn shape(cx: &mut GraphCtx, node: &GraphNode, inputs: &[ValueId]) -> Result<ValueId> {
    let x = arg(node, inputs, 0)?;
    let dims = cx.shapes[x]
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            if i == 0 && cx.batched[x] {
                Dim::Batch
            } else {
                Dim::Known(d as i64)
            }
        })
        .collect();
    cx.dims_value(node, dims, false)
}

/// One axis of a `StridedSlice`, resolved against the axis's size.
#[derive(Debug, Clone, Copy)]
struct AxisSlice {
    start: i64,
    stop: i64,
    step: i64,
    shrink: bool,
    /// The whole axis whatever its size (needed for the open batch axis).
    full: bool,
}

impl AxisSlice {
    fn indices(&self) -> Vec<i64> {
        let mut out = vec![];
        let mut i = self.start;
        while (self.step > 0 && i < self.stop) || (self.step < 0 && i > self.stop) {
            out.push(i);
            i += self.step;
        }
        out
    }
}

/// TensorFlow's `StridedSlice` rules (begin/end/shrink/ellipsis masks) on a shape.
fn strided_axes(
    node: &GraphNode,
    shape: &[usize],
    begin: &[i64],
    end: &[i64],
    strides: &[i64],
) -> Result<Vec<AxisSlice>> {
    let mask = |k: &str| -> Result<i64> { Ok(node.attr_int(k)?.unwrap_or(0)) };
    let (bm, em, sm, elm, nm) = (
        mask("begin_mask")?,
        mask("end_mask")?,
        mask("shrink_axis_mask")?,
        mask("ellipsis_mask")?,
        mask("new_axis_mask")?,
    );
    if nm != 0 {
        return Err(err(node, "new_axis_mask is not supported"));
    }
    let n = begin.len();
    if end.len() != n || strides.len() != n || n > 63 {
        return Err(err(
            node,
            format!("begin {begin:?}, end {end:?} and strides {strides:?} differ in length"),
        ));
    }
    let rank = shape.len();
    let whole = |d: usize| AxisSlice {
        start: 0,
        stop: d as i64,
        step: 1,
        shrink: false,
        full: true,
    };
    let mut out: Vec<AxisSlice> = shape.iter().map(|&d| whole(d)).collect();
    let mut axis = 0usize;
    for i in 0..n {
        let bit = |m: i64| m >> i & 1 == 1;
        if bit(elm) {
            // The ellipsis covers every axis the remaining entries do not.
            axis = rank
                .checked_sub(n - i - 1)
                .ok_or_else(|| err(node, format!("{n} slice entries do not fit rank {rank}")))?;
            continue;
        }
        let Some(&d) = shape.get(axis) else {
            return Err(err(
                node,
                format!("{n} slice entries do not fit rank {rank}"),
            ));
        };
        let d = d as i64;
        let step = strides[i];
        if step == 0 {
            return Err(err(node, "a stride of 0"));
        }
        let wrap = |v: i64| if v < 0 { v + d } else { v };
        let s = if bit(sm) {
            let b = wrap(begin[i]);
            if !(0..d).contains(&b) {
                return Err(err(
                    node,
                    format!(
                        "index {} is out of range for axis {axis} of size {d}",
                        begin[i]
                    ),
                ));
            }
            AxisSlice {
                start: b,
                stop: b + 1,
                step: 1,
                shrink: true,
                full: false,
            }
        } else {
            let (lo, hi) = if step > 0 { (0, d) } else { (-1, d - 1) };
            let start = if bit(bm) {
                if step > 0 {
                    0
                } else {
                    d - 1
                }
            } else {
                wrap(begin[i]).clamp(lo, hi)
            };
            let stop = if bit(em) {
                if step > 0 {
                    d
                } else {
                    -1
                }
            } else {
                wrap(end[i]).clamp(lo, hi)
            };
            let open_end = bit(em) || (step > 0 && end[i] >= i64::from(i32::MAX));
            AxisSlice {
                start,
                stop,
                step,
                shrink: false,
                full: step == 1 && start == 0 && open_end,
            }
        };
        out[axis] = s;
        axis += 1;
    }
    Ok(out)
}

fn strided_slice(cx: &mut GraphCtx, node: &GraphNode, inputs: &[ValueId]) -> Result<ValueId> {
    let x = arg(node, inputs, 0)?;
    let begin = cx.ints(node, arg(node, inputs, 1)?, "begin")?;
    let end = cx.ints(node, arg(node, inputs, 2)?, "end")?;
    let strides = match inputs.get(3) {
        Some(&s) => cx.ints(node, s, "strides")?,
        None => vec![1; begin.len()],
    };
    let shape = cx.shapes[x].clone();
    let axes = strided_axes(node, &shape, &begin, &end, &strides)?;

    // A vector of integers (a shape, say): sliced here, at load.
    if let (Some(dims), 1) = (cx.dims_of(x), shape.len()) {
        let a = axes[0];
        let picked: Vec<Dim> = a.indices().into_iter().map(|i| dims[i as usize]).collect();
        return cx.dims_value(node, picked, a.shrink);
    }

    // A computed tensor: a unit-stride slice, then a reshape dropping the shrunk axes.
    if let Some((i, _)) = axes.iter().enumerate().find(|(_, a)| a.step != 1) {
        return Err(err(
            node,
            format!(
                "stride {} on axis {i} of a computed tensor is not supported",
                strides[i.min(strides.len() - 1)]
            ),
        ));
    }
    let batched = cx.batched[x];
    if batched && !axes[0].full {
        return Err(err(
            node,
            "slicing the batch axis (axis 0) is not supported: webinfer keeps the batch open",
        ));
    }
    let mut v = x;
    if axes.iter().any(|a| !a.full) {
        let begin = axes.iter().map(|a| a.start as usize).collect();
        let end = axes
            .iter()
            .map(|a| if a.full { i64::MAX } else { a.stop })
            .collect();
        v = cx.push(node, Op::Slice { begin, end }, vec![v])?;
    }
    if axes.iter().any(|a| a.shrink) {
        let kept: Vec<i64> = axes
            .iter()
            .enumerate()
            .filter(|(_, a)| !a.shrink)
            .map(|(i, a)| {
                if i == 0 && batched {
                    0
                } else {
                    a.indices().len() as i64
                }
            })
            .collect();
        v = cx.push(node, Op::Reshape { shape: kept }, vec![v])?;
    }
    Ok(v)
}

/// `Pack` (tf.stack): integer scalars become a vector at load (shape arithmetic); tensors are
/// each given a unit axis and concatenated.
fn pack(cx: &mut GraphCtx, node: &GraphNode, inputs: &[ValueId]) -> Result<ValueId> {
    let first = *inputs
        .first()
        .ok_or_else(|| err(node, "nothing to stack"))?;
    let rank = cx.rank(first);
    let a = node.attr_int("axis")?.unwrap_or(0);
    let axis = cx.axis(node, a, rank + 1)?;
    if rank == 0 && inputs.iter().all(|&v| cx.dims_of(v).is_some()) {
        let mut dims = vec![];
        for &v in inputs {
            dims.extend(cx.dims_of(v).unwrap_or_default());
        }
        return cx.dims_value(node, dims, false);
    }
    if axis == 0 && inputs.iter().any(|&v| cx.batched[v]) {
        return Err(err(node, "stacking along the batch axis is not supported"));
    }
    let mut parts = vec![];
    for &v in inputs {
        let mut s = cx.shapes[v].clone();
        s.insert(axis, 1);
        let target = if cx.batched[v] {
            keep_batch(&s)
        } else {
            s.iter().map(|&d| d as i64).collect()
        };
        parts.push(cx.push(node, Op::Reshape { shape: target }, vec![v])?);
    }
    if parts.len() == 1 {
        return Ok(parts[0]);
    }
    cx.push(node, Op::Concat { axis }, parts)
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
        batched: vec![],
        sym: HashMap::new(),
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
        cx.batched.push(matches!(shape.first(), Some(None)));
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
                let mut w = weights
                    .remove(&node.name)
                    .ok_or_else(|| CoreError::MissingWeight {
                        layer: node.name.clone(),
                        weight: node.name.clone(),
                    })?;
                // Integer scalars and vectors (axes, shapes, slice bounds) keep their exact
                // values for the shape-aware lowerings; the f32 copy rounds above 2^24.
                let v = match &w.data {
                    webinfer_tfjs::TensorData::I32(ints) if w.shape.len() <= 1 => {
                        let dims = ints.iter().map(|&x| Dim::Known(i64::from(x))).collect();
                        cx.dims_value(node, dims, w.shape.is_empty())?
                    }
                    _ => cx.constant(node, super::take_tensor(&mut w)?),
                };
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
            // Values holding the batch size are placeholders (batch = 1) that only the
            // shape-aware ops understand; anything else would silently compute with batch 1.
            let shape_aware = SHAPE_AWARE_OPS.contains(&node.op.as_str());
            if let Some((i, _)) = ins.iter().enumerate().find(|(i, &v)| {
                cx.depends_on_batch(v) && !(shape_aware || (node.op == "Reshape" && *i == 1))
            }) {
                return Err(err(
                    node,
                    format!(
                        "input {i} (\"{}\") is computed from the batch size, which this op cannot use",
                        node.inputs[i].0
                    ),
                ));
            }
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
        webinfer_tfjs::order::sort(&mut names);
        return Err(CoreError::SurplusWeights(names));
    }
    Ok(cx.graph)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use webinfer_tfjs::{Limits, TensorData};

    /// A graph-model with input `x` of shape `[null, 4, 6]`, the given nodes, output `out`.
    fn model(nodes: Value) -> GraphModel {
        let j = json!({
            "format": "graph-model",
            "modelTopology": {"node": nodes},
            "signature": {
                "inputs": {"x": {"name": "x:0", "dtype": "DT_FLOAT",
                    "tensorShape": {"dim": [{"size": "-1"}, {"size": "4"}, {"size": "6"}]}}},
                "outputs": {"out": {"name": "out:0", "dtype": "DT_FLOAT"}}
            },
            "weightsManifest": []
        });
        let mj =
            webinfer_tfjs::parse_model_json(j.to_string().as_bytes(), &Limits::default()).unwrap();
        webinfer_tfjs::parse_graph_model(&mj, &Limits::default()).unwrap()
    }

    fn node(name: &str, op: &str, inputs: &[&str], attr: Value) -> Value {
        json!({"name": name, "op": op, "input": inputs, "attr": attr})
    }

    fn int_const(name: &str, v: &[i32]) -> (Value, DecodedWeight) {
        let shape = if v.len() == 1 { vec![] } else { vec![v.len()] };
        (
            node(name, "Const", &[], json!({"dtype": {"type": "DT_INT32"}})),
            DecodedWeight {
                name: name.into(),
                shape,
                data: TensorData::I32(v.to_vec()),
            },
        )
    }

    fn mask(m: i64) -> Value {
        json!({"i": m.to_string()})
    }

    /// `out = Reshape(x, Pack(StridedSlice(Shape(x), [0], [1], [1]) , <rest>))`.
    fn reshape_by_shape(rest: &[i32], batch_last: bool) -> Result<Graph> {
        let mut nodes = vec![node("x", "Placeholder", &[], json!({}))];
        let mut weights = vec![];
        for (n, v) in [("b", [0]), ("e", [1]), ("s", [1])] {
            let (nd, w) = int_const(n, &v);
            let nd =
                json!({"name": nd["name"], "op": "Const", "attr": {"dtype": {"type": "DT_INT32"}}});
            nodes.push(nd);
            weights.push(DecodedWeight {
                shape: vec![1],
                ..w
            });
        }
        nodes.push(node("shape", "Shape", &["x"], json!({})));
        nodes.push(node(
            "batch",
            "StridedSlice",
            &["shape", "b", "e", "s"],
            json!({"shrink_axis_mask": mask(1)}),
        ));
        let mut pack_in = vec![];
        for (i, &r) in rest.iter().enumerate() {
            let (nd, w) = int_const(&format!("r{i}"), &[r]);
            nodes.push(nd);
            weights.push(w);
            pack_in.push(format!("r{i}"));
        }
        if batch_last {
            pack_in.push("batch".into());
        } else {
            pack_in.insert(0, "batch".into());
        }
        let refs: Vec<&str> = pack_in.iter().map(String::as_str).collect();
        nodes.push(node("target", "Pack", &refs, json!({"axis": mask(0)})));
        nodes.push(node("out", "Reshape", &["x", "target"], json!({})));
        lower_graph_model(&model(Value::Array(nodes)), weights)
    }

    #[test]
    fn shape_computed_reshape_keeps_the_batch_open() {
        let g = reshape_by_shape(&[-1], false).unwrap();
        let out = &g.nodes[g.outputs[0]];
        assert_eq!(out.op, Op::Reshape { shape: vec![0, -1] });
        // Batch 3 flows through: [3, 4, 6] -> [3, 24].
        assert_eq!(out.op.output_shape(&[&[3, 4, 6]]).unwrap(), vec![3, 24]);
    }

    #[test]
    fn batch_moved_by_a_computed_reshape_is_refused() {
        let e = reshape_by_shape(&[24], true).unwrap_err().to_string();
        assert!(e.contains("batch size moves to axis 1"), "{e}");
        assert!(e.contains("\"out\""), "{e}");
    }

    #[test]
    fn batch_size_used_as_a_number_is_refused() {
        let nodes = json!([
            {"name": "x", "op": "Placeholder"},
            {"name": "shape", "op": "Shape", "input": ["x"]},
            {"name": "out", "op": "Mul", "input": ["x", "shape"]}
        ]);
        let e = lower_graph_model(&model(nodes), vec![])
            .unwrap_err()
            .to_string();
        assert!(e.contains("computed from the batch size"), "{e}");
        assert!(e.contains("\"out\""), "{e}");
    }

    #[test]
    fn strided_slice_of_a_tensor_shrinks_and_keeps_the_batch() {
        // x[:, 1:3, 2] with begin_mask/end_mask on axis 0 and shrink on axis 2.
        let (b, wb) = int_const("b", &[0, 1, 2]);
        let (e, we) = int_const("e", &[0, 3, 3]);
        let (s, ws) = int_const("s", &[1, 1, 1]);
        let nodes = json!([
            {"name": "x", "op": "Placeholder"}, b, e, s,
            {"name": "out", "op": "StridedSlice", "input": ["x", "b", "e", "s"],
             "attr": {"begin_mask": mask(1), "end_mask": mask(1), "shrink_axis_mask": mask(4)}}
        ]);
        let g = lower_graph_model(&model(nodes), vec![wb, we, ws]).unwrap();
        let out = &g.nodes[g.outputs[0]];
        assert_eq!(out.op, Op::Reshape { shape: vec![0, 2] });
        let slice = &g.nodes[out.inputs[0]];
        assert_eq!(
            slice.op,
            Op::Slice {
                begin: vec![0, 1, 2],
                end: vec![i64::MAX, 3, 3]
            }
        );
    }

    #[test]
    fn strided_slice_of_the_batch_axis_is_refused() {
        let (b, wb) = int_const("b", &[0]);
        let (e, we) = int_const("e", &[1]);
        let (s, ws) = int_const("s", &[1]);
        let nodes = json!([
            {"name": "x", "op": "Placeholder"}, b, e, s,
            {"name": "out", "op": "StridedSlice", "input": ["x", "b", "e", "s"]}
        ]);
        let (wb, we, ws) = (
            DecodedWeight {
                shape: vec![1],
                ..wb
            },
            DecodedWeight {
                shape: vec![1],
                ..we
            },
            DecodedWeight {
                shape: vec![1],
                ..ws
            },
        );
        let e = lower_graph_model(&model(nodes), vec![wb, we, ws])
            .unwrap_err()
            .to_string();
        assert!(e.contains("slicing the batch axis"), "{e}");
    }
}
