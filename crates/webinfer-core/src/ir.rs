//! The graph IR: a small set of primitive ops that Keras layers and graph-model ops lower to,
//! so that each backend implements every primitive once.
//!
//! Conventions:
//! - Every value is an `f32` tensor; images are NHWC.
//! - Weights are [`Op::Constant`] nodes, so passes (BatchNorm folding, say) work on the graph.
//! - Op parameters never depend on the batch size; shapes are inferred by [`Op::output_shape`]
//!   from the actual input shapes, so one graph serves any batch.
//! - Nodes are stored in topological order: a node only reads values of earlier nodes.

use crate::error::{CoreError, Result};
use crate::tensor::{element_count, Tensor};

/// Index of a node (and of the single value it produces) in [`Graph::nodes`].
pub type ValueId = usize;

/// Element-wise activation, fused into Conv / MatMul epilogues or run as [`Op::Unary`].
/// Formulas follow tfjs 4.22 (see `tests/tfjs/SEMANTICS.md`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    Linear,
    Relu,
    Relu6,
    /// `min(max(x, 0), max)`: the Keras `ReLU` layer with `max_value`.
    ReluMax(f32),
    /// `x >= 0 ? x : alpha * x`
    LeakyRelu(f32),
    /// `x >= 0 ? x : alpha * (exp(x) - 1)`
    Elu(f32),
    Selu,
    Sigmoid,
    /// `clamp(0.2 * x + 0.5, 0, 1)`
    HardSigmoid,
    Tanh,
    Softplus,
    Softsign,
    /// `x * sigmoid(x)`
    Swish,
    /// `x * tanh(softplus(x))`
    Mish,
    /// exact: `0.5 * x * (1 + erf(x / sqrt(2)))`
    Gelu,
    /// tanh approximation of gelu
    GeluTanh,
    /// `x > theta ? x : 0`: the Keras `ThresholdedReLU` layer.
    Thresholded(f32),
    /// `sqrt(x)` (graph-model `Sqrt`).
    Sqrt,
    /// `1 / sqrt(x)` (graph-model `Rsqrt`).
    Rsqrt,
    /// `x * x` (graph-model `Square`).
    Square,
}

impl Activation {
    pub fn is_linear(self) -> bool {
        self == Activation::Linear
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    /// Average over the cells inside the input (padding is not counted), as tfjs does.
    Avg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceKind {
    Sum,
    Mean,
    Max,
    Min,
}

/// The largest window extent (dilated kernel), stride, dilation or explicit padding a window
/// op may have.
pub const MAX_EXTENT: usize = 1 << 31;

/// Spatial padding of a window op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    Valid,
    /// tfjs/TF 'same': `out = ceil(in / stride)`, the odd extra cell goes bottom / right.
    Same,
    /// Explicit `[top, bottom, left, right]`.
    Explicit([usize; 4]),
}

impl Padding {
    /// Output size and `(before, after)` padding for one spatial axis.
    pub fn resolve(
        self,
        axis: usize,
        input: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
    ) -> Option<(usize, usize, usize)> {
        let eff = dilation
            .checked_mul(kernel.checked_sub(1)?)?
            .checked_add(1)?;
        // No real model has a window, stride or padding near 2^31 cells, and beyond that the
        // backends' signed index arithmetic could overflow: refuse such geometry here (the
        // op's shape check then says the window does not fit).
        let bad = |v: usize| v == 0 || v > MAX_EXTENT;
        if bad(stride) || bad(dilation) || eff > MAX_EXTENT {
            return None;
        }
        match self {
            Padding::Valid => {
                if input < eff {
                    return None;
                }
                Some(((input - eff) / stride + 1, 0, 0))
            }
            Padding::Same => {
                let out = input.div_ceil(stride);
                let need = out
                    .checked_sub(1)?
                    .checked_mul(stride)?
                    .checked_add(eff)?
                    .saturating_sub(input);
                Some((out, need / 2, need - need / 2))
            }
            Padding::Explicit(p) => {
                let (b, a) = if axis == 0 {
                    (p[0], p[1])
                } else {
                    (p[2], p[3])
                };
                if b > MAX_EXTENT || a > MAX_EXTENT {
                    return None;
                }
                let padded = input.checked_add(b)?.checked_add(a)?;
                if padded < eff {
                    return None;
                }
                Some(((padded - eff) / stride + 1, b, a))
            }
        }
    }
}

/// Parameters of a 2-D convolution (NHWC input).
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2d {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    pub padding: Padding,
    /// Channel groups (1 for a plain convolution).
    pub groups: usize,
    /// Fused epilogue: `act(conv + bias)`.
    pub activation: Activation,
}

/// Spatial geometry of a window op resolved against an input: sizes and paddings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub out_h: usize,
    pub out_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
}

/// Resolve a window op's geometry for an `[h, w]` input.
pub fn resolve_window(
    padding: Padding,
    input: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
) -> Option<Window> {
    let (out_h, pad_top, _) = padding.resolve(0, input[0], kernel[0], stride[0], dilation[0])?;
    let (out_w, pad_left, _) = padding.resolve(1, input[1], kernel[1], stride[1], dilation[1])?;
    Some(Window {
        out_h,
        out_w,
        pad_top,
        pad_left,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeMode {
    Nearest,
    Bilinear,
}

/// The output size of [`Op::Resize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeSize {
    /// A fixed `[H, W]`.
    Fixed([usize; 2]),
    /// The input's `[h, w]` times these factors (Keras `UpSampling2D`).
    Scale([usize; 2]),
}

impl ResizeSize {
    pub fn resolve(self, h: usize, w: usize) -> [usize; 2] {
        match self {
            ResizeSize::Fixed(s) => s,
            // Saturates: `Op::output_shape` refuses factors that overflow before this is used.
            ResizeSize::Scale([a, b]) => [h.saturating_mul(a), w.saturating_mul(b)],
        }
    }
}

/// Resolve a [`Op::Slice`] range on an axis of size `dim`: `(start, stop)`, or `None` if empty/out of range.
pub fn slice_range(begin: usize, end: i64, dim: usize) -> Option<(usize, usize)> {
    let stop = if end < 0 {
        (dim as i64).checked_add(end)?
    } else {
        end.min(dim as i64)
    };
    if stop < 0 || (stop as usize) < begin {
        return None;
    }
    Some((begin, stop as usize))
}

/// The primitive ops. Operand order is given on each variant.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// The model's input number `index`. No operands.
    Input { index: usize },
    /// A weight or other constant. No operands.
    Constant(Tensor),
    /// A weight whose values live in a backend's memory only (streamed to the GPU while the
    /// shards downloaded, never held by the host): its shape, and the key under which the
    /// backend holds it. No operands. Passes cannot read it (it is not [`Graph::as_constant`]),
    /// and the CPU backend cannot run a graph that has one.
    Resident { shape: Vec<usize>, key: usize },
    /// Operands: `x [n,h,w,cin]`, `w [kh,kw,cin/groups,cout]`, optional `bias [cout]`.
    Conv2d(Conv2d),
    /// Operands: `x [n,h,w,c]`, `w [kh,kw,c,mult]`, optional `bias [c*mult]`.
    /// Output channel `c * mult + m`. `groups` is ignored.
    DepthwiseConv2d(Conv2d),
    /// Transposed convolution (the gradient of Conv2d), Keras `Conv2DTranspose`.
    /// Operands: `x [n,h,w,cin]`, `w [kh,kw,cout,cin]`, optional `bias [cout]`.
    /// Output size: valid `in*s + max(k-s, 0)`, same `in*s` (tfjs); `padding` is the forward conv's.
    Conv2dTranspose(Conv2d),
    /// Operands: `x [..., k]`, `w [k, n]`, optional `bias [n]`; contracts the last axis.
    MatMul { activation: Activation },
    /// Operand: `x [n,h,w,c]`.
    Pool2d {
        kind: PoolKind,
        window: [usize; 2],
        stride: [usize; 2],
        padding: Padding,
    },
    /// Operand: `x [n,h,w,c]` → `[n,c]`.
    GlobalPool { kind: PoolKind },
    /// Operands: `x [..., c]`, `scale [c]`, `shift [c]`: `x * scale + shift` on the last axis.
    ChannelAffine,
    /// Operand: `x`.
    Unary(Activation),
    /// Operands: `x`, `alpha` (broadcast against x's trailing axes): `x >= 0 ? x : alpha * x`.
    Prelu,
    /// Operands: `a`, `b`, numpy-style broadcasting.
    Binary(BinaryOp),
    /// Operands: any number ≥ 1 of the same rank.
    Concat { axis: usize },
    /// Operand: `x`. `pads[axis] = [before, after]`.
    Pad { pads: Vec<[usize; 2]>, value: f32 },
    /// Operand: `x`. Keeps `begin[i] .. end'` on each axis, where `end' = dim + end[i]` when
    /// `end[i] < 0` and `min(end[i], dim)` otherwise (so `i64::MAX` means "to the end").
    Slice { begin: Vec<usize>, end: Vec<i64> },
    /// Operand: `x`. `0` copies the input's dim at that position, `-1` is inferred.
    Reshape { shape: Vec<i64> },
    /// Operand: `x`. Output axis `i` is input axis `perm[i]`.
    Transpose { perm: Vec<usize> },
    /// Operand: `x [n,h,w,c]` → `[n, H, W, c]`, tfjs `resizeBilinear` / `resizeNearestNeighbor`
    /// semantics, with `[H, W]` given by `size`.
    Resize {
        mode: ResizeMode,
        size: ResizeSize,
        align_corners: bool,
        half_pixel_centers: bool,
    },
    /// Operand: `x`. Softmax along `axis`.
    Softmax { axis: usize },
    /// Operand: `x`. `log(softmax(x))` along `axis`, computed as `x - max - log(sum(exp(x - max)))`.
    LogSoftmax { axis: usize },
    /// Operand: `x`. Reduces `axes` (sorted, unique).
    Reduce {
        kind: ReduceKind,
        axes: Vec<usize>,
        keep_dims: bool,
    },
}

impl Op {
    /// A short lower-case name for messages and statistics.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input { .. } => "input",
            Op::Constant(_) => "constant",
            Op::Resident { .. } => "resident",
            Op::Conv2d(_) => "conv2d",
            Op::DepthwiseConv2d(_) => "depthwise_conv2d",
            Op::Conv2dTranspose(_) => "conv2d_transpose",
            Op::MatMul { .. } => "matmul",
            Op::Pool2d { .. } => "pool2d",
            Op::GlobalPool { .. } => "global_pool",
            Op::ChannelAffine => "channel_affine",
            Op::Unary(_) => "unary",
            Op::Prelu => "prelu",
            Op::Binary(_) => "binary",
            Op::Concat { .. } => "concat",
            Op::Pad { .. } => "pad",
            Op::Slice { .. } => "slice",
            Op::Reshape { .. } => "reshape",
            Op::Transpose { .. } => "transpose",
            Op::Resize { .. } => "resize",
            Op::Softmax { .. } => "softmax",
            Op::LogSoftmax { .. } => "log_softmax",
            Op::Reduce { .. } => "reduce",
        }
    }

    /// The output rank for operands of the given ranks (no checks: [`Op::output_shape`] checks).
    pub fn output_rank(&self, inputs: &[usize]) -> usize {
        let first = inputs.first().copied().unwrap_or(0);
        match self {
            Op::Input { .. } => 0,
            Op::Constant(t) => t.rank(),
            Op::Resident { shape, .. } => shape.len(),
            Op::Conv2d(_)
            | Op::DepthwiseConv2d(_)
            | Op::Conv2dTranspose(_)
            | Op::Pool2d { .. }
            | Op::Resize { .. } => 4,
            Op::GlobalPool { .. } => 2,
            Op::Binary(_) => inputs.iter().copied().max().unwrap_or(0),
            Op::Reshape { shape } => shape.len(),
            Op::Reduce {
                axes, keep_dims, ..
            } => {
                if *keep_dims {
                    first
                } else {
                    first.saturating_sub(axes.len())
                }
            }
            _ => first,
        }
    }

    /// The output shape for operands of the given shapes, or why they do not fit.
    pub fn output_shape(&self, inputs: &[&[usize]]) -> std::result::Result<Vec<usize>, String> {
        let arity = |n: usize| -> std::result::Result<(), String> {
            if inputs.len() == n {
                Ok(())
            } else {
                Err(format!(
                    "{} takes {n} operands, got {}",
                    self.name(),
                    inputs.len()
                ))
            }
        };
        let rank = |s: &[usize], r: usize, what: &str| -> std::result::Result<(), String> {
            if s.len() == r {
                Ok(())
            } else {
                Err(format!("{what} must have rank {r}, got shape {s:?}"))
            }
        };
        match self {
            Op::Input { .. } => Err("input shapes come from the caller".into()),
            Op::Constant(t) => Ok(t.shape().to_vec()),
            Op::Resident { shape, .. } => Ok(shape.clone()),
            Op::Conv2d(c) | Op::DepthwiseConv2d(c) | Op::Conv2dTranspose(c) => {
                if inputs.len() != 2 && inputs.len() != 3 {
                    return Err(format!(
                        "{} takes 2 or 3 operands, got {}",
                        self.name(),
                        inputs.len()
                    ));
                }
                let (x, w) = (inputs[0], inputs[1]);
                rank(x, 4, "input")?;
                rank(w, 4, "kernel")?;
                if let Op::Conv2d(c) = self {
                    if c.groups == 0 || w[3] % c.groups != 0 {
                        return Err(format!(
                            "{} output channels are not divisible into {} groups",
                            w[3], c.groups
                        ));
                    }
                }
                if let Op::Conv2dTranspose(c) = self {
                    if c.dilation != [1, 1] || c.groups > 1 {
                        return Err(
                            "transposed convolution supports neither dilation nor groups".into(),
                        );
                    }
                }
                if [w[0], w[1]] != c.kernel {
                    return Err(format!(
                        "kernel shape {w:?} does not match kernel size {:?}",
                        c.kernel
                    ));
                }
                let overflow = || format!("kernel {w:?} with {} groups overflows", c.groups);
                let (cin_w, cout) = match self {
                    Op::Conv2d(c) => (
                        w[2].checked_mul(c.groups.max(1)).ok_or_else(overflow)?,
                        w[3],
                    ),
                    Op::DepthwiseConv2d(_) => (w[2], w[2].checked_mul(w[3]).ok_or_else(overflow)?),
                    _ => (w[3], w[2]),
                };
                if x[3] != cin_w {
                    return Err(format!(
                        "input has {} channels, the kernel {w:?} expects {cin_w}",
                        x[3]
                    ));
                }
                if let Some(b) = inputs.get(2) {
                    if b.len() != 1 || b[0] != cout {
                        return Err(format!(
                            "bias shape {b:?} does not match {cout} output channels"
                        ));
                    }
                }
                if let Op::Conv2dTranspose(_) = self {
                    // tfjs: same -> in*s; valid -> in*s + max(k - s, 0) (when k < s the
                    // tail cells get the bias only).
                    let out = |i: usize, k: usize, s: usize| {
                        let size = match c.padding {
                            Padding::Same => i.checked_mul(s),
                            _ => i
                                .checked_mul(s)
                                .and_then(|v| v.checked_add(k.saturating_sub(s))),
                        };
                        size.ok_or_else(|| {
                            format!("output size {i} x stride {s} (kernel {k}) overflows")
                        })
                    };
                    if x[1] == 0 || x[2] == 0 {
                        return Err("empty spatial input".into());
                    }
                    return Ok(vec![
                        x[0],
                        out(x[1], c.kernel[0], c.stride[0])?,
                        out(x[2], c.kernel[1], c.stride[1])?,
                        cout,
                    ]);
                }
                let win = resolve_window(c.padding, [x[1], x[2]], c.kernel, c.stride, c.dilation)
                    .ok_or_else(|| {
                    format!(
                        "window {:?} (dilation {:?}) does not fit input {x:?}",
                        c.kernel, c.dilation
                    )
                })?;
                Ok(vec![x[0], win.out_h, win.out_w, cout])
            }
            Op::MatMul { .. } => {
                if inputs.len() != 2 && inputs.len() != 3 {
                    return Err(format!(
                        "matmul takes 2 or 3 operands, got {}",
                        inputs.len()
                    ));
                }
                let (x, w) = (inputs[0], inputs[1]);
                rank(w, 2, "kernel")?;
                if x.is_empty() || x[x.len() - 1] != w[0] {
                    return Err(format!(
                        "input shape {x:?} does not match kernel {w:?}: last axis must be {}",
                        w[0]
                    ));
                }
                if let Some(b) = inputs.get(2) {
                    if b != &[w[1]] {
                        return Err(format!("bias shape {b:?} does not match {} units", w[1]));
                    }
                }
                let mut out = x.to_vec();
                *out.last_mut().unwrap() = w[1];
                Ok(out)
            }
            Op::Pool2d {
                window,
                stride,
                padding,
                ..
            } => {
                arity(1)?;
                let x = inputs[0];
                rank(x, 4, "input")?;
                let win = resolve_window(*padding, [x[1], x[2]], *window, *stride, [1, 1])
                    .ok_or_else(|| format!("pool window {window:?} does not fit input {x:?}"))?;
                Ok(vec![x[0], win.out_h, win.out_w, x[3]])
            }
            Op::GlobalPool { .. } => {
                arity(1)?;
                rank(inputs[0], 4, "input")?;
                Ok(vec![inputs[0][0], inputs[0][3]])
            }
            Op::ChannelAffine => {
                arity(3)?;
                let x = inputs[0];
                let c = *x.last().ok_or("input must have rank >= 1")?;
                if inputs[1] != [c] || inputs[2] != [c] {
                    return Err(format!(
                        "scale {:?} / shift {:?} must both be [{c}]",
                        inputs[1], inputs[2]
                    ));
                }
                Ok(x.to_vec())
            }
            Op::Unary(_) => {
                arity(1)?;
                Ok(inputs[0].to_vec())
            }
            Op::Prelu => {
                arity(2)?;
                let (x, a) = (inputs[0], inputs[1]);
                let out = broadcast_shapes(x, a)?;
                if out != x {
                    return Err(format!("alpha {a:?} does not broadcast to input {x:?}"));
                }
                Ok(out)
            }
            Op::Binary(_) => {
                arity(2)?;
                broadcast_shapes(inputs[0], inputs[1])
            }
            Op::Concat { axis } => {
                let first = *inputs.first().ok_or("concat needs at least one operand")?;
                if *axis >= first.len() {
                    return Err(format!("axis {axis} out of range for shape {first:?}"));
                }
                let mut out = first.to_vec();
                for s in &inputs[1..] {
                    if s.len() != first.len()
                        || s.iter()
                            .zip(first)
                            .enumerate()
                            .any(|(i, (a, b))| i != *axis && a != b)
                    {
                        return Err(format!(
                            "cannot concatenate {first:?} and {s:?} on axis {axis}"
                        ));
                    }
                    out[*axis] = out[*axis]
                        .checked_add(s[*axis])
                        .ok_or_else(|| format!("concatenating {s:?} on axis {axis} overflows"))?;
                }
                Ok(out)
            }
            Op::Pad { pads, .. } => {
                arity(1)?;
                let x = inputs[0];
                if pads.len() != x.len() {
                    return Err(format!(
                        "{} paddings for rank {} input",
                        pads.len(),
                        x.len()
                    ));
                }
                x.iter()
                    .zip(pads)
                    .map(|(d, p)| d.checked_add(p[0])?.checked_add(p[1]))
                    .collect::<Option<Vec<usize>>>()
                    .ok_or_else(|| format!("padding {x:?} by {pads:?} overflows"))
            }
            Op::Slice { begin, end } => {
                arity(1)?;
                let x = inputs[0];
                if begin.len() != x.len() || end.len() != x.len() {
                    return Err(format!("slice rank does not match input {x:?}"));
                }
                (0..x.len())
                    .map(|i| slice_range(begin[i], end[i], x[i]).map(|(a, b)| b - a))
                    .collect::<Option<Vec<usize>>>()
                    .ok_or_else(|| format!("slice {begin:?}..{end:?} is out of bounds of {x:?}"))
            }
            Op::Reshape { shape } => {
                arity(1)?;
                reshape_shape(inputs[0], shape)
            }
            Op::Transpose { perm } => {
                arity(1)?;
                let x = inputs[0];
                let mut seen = vec![false; x.len()];
                if perm.len() != x.len()
                    || perm
                        .iter()
                        .any(|&p| p >= x.len() || std::mem::replace(&mut seen[p], true))
                {
                    return Err(format!(
                        "permutation {perm:?} does not fit rank {}",
                        x.len()
                    ));
                }
                Ok(perm.iter().map(|&p| x[p]).collect())
            }
            Op::Resize { size, .. } => {
                arity(1)?;
                let x = inputs[0];
                rank(x, 4, "input")?;
                if x[1] == 0 || x[2] == 0 {
                    return Err(format!("cannot resize an empty image {x:?}"));
                }
                if let ResizeSize::Scale([a, b]) = size {
                    if x[1].checked_mul(*a).is_none() || x[2].checked_mul(*b).is_none() {
                        return Err(format!("resizing {x:?} by [{a}, {b}] overflows"));
                    }
                }
                let [h, w] = size.resolve(x[1], x[2]);
                Ok(vec![x[0], h, w, x[3]])
            }
            Op::Softmax { axis } | Op::LogSoftmax { axis } => {
                arity(1)?;
                if *axis >= inputs[0].len() {
                    return Err(format!(
                        "softmax axis {axis} out of range for {:?}",
                        inputs[0]
                    ));
                }
                Ok(inputs[0].to_vec())
            }
            Op::Reduce {
                axes, keep_dims, ..
            } => {
                arity(1)?;
                let x = inputs[0];
                if axes.iter().any(|&a| a >= x.len()) {
                    return Err(format!("reduce axes {axes:?} out of range for {x:?}"));
                }
                Ok(x.iter()
                    .enumerate()
                    .filter_map(|(i, &d)| match (axes.contains(&i), keep_dims) {
                        (true, true) => Some(1),
                        (true, false) => None,
                        _ => Some(d),
                    })
                    .collect())
            }
        }
    }
}

/// numpy broadcasting of two shapes.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> std::result::Result<Vec<usize>, String> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(format!("shapes {a:?} and {b:?} do not broadcast")),
        };
    }
    Ok(out)
}

/// Resolve a reshape target (`0` = copy, `-1` = infer) against an input shape.
pub fn reshape_shape(x: &[usize], target: &[i64]) -> std::result::Result<Vec<usize>, String> {
    let total = element_count(x).ok_or("input too large")?;
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 => out.push(
                *x.get(i)
                    .ok_or_else(|| format!("reshape {target:?}: no input dim {i} to copy"))?,
            ),
            t if t > 0 => out.push(t as usize),
            _ => return Err(format!("invalid reshape target {target:?}")),
        }
    }
    let known = element_count(&out).ok_or("reshape target too large")?;
    if let Some(i) = infer {
        if known == 0 || total % known != 0 {
            return Err(format!("cannot reshape {x:?} into {target:?}"));
        }
        out[i] = total / known;
    } else if known != total {
        return Err(format!(
            "cannot reshape {x:?} ({total} elements) into {out:?}"
        ));
    }
    Ok(out)
}

/// One node: an op, its operands and, for messages, the layer it came from.
#[derive(Debug, Clone)]
pub struct Node {
    pub op: Op,
    pub inputs: Vec<ValueId>,
    /// The layer (or graph node) this op was lowered from.
    pub origin: String,
}

/// A model input as the graph sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSpec {
    pub name: String,
    /// `None` for dimensions that the model leaves open (the batch, usually).
    pub shape: Vec<Option<usize>>,
    pub dtype: String,
}

/// A lowered model.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub inputs: Vec<InputSpec>,
    pub outputs: Vec<ValueId>,
    pub output_names: Vec<String>,
}

impl Graph {
    pub fn push(&mut self, op: Op, inputs: Vec<ValueId>, origin: &str) -> ValueId {
        self.nodes.push(Node {
            op,
            inputs,
            origin: origin.to_string(),
        });
        self.nodes.len() - 1
    }

    pub fn constant(&mut self, t: Tensor, origin: &str) -> ValueId {
        self.push(Op::Constant(t), vec![], origin)
    }

    /// The constant held by `v`, if `v` is a constant node.
    pub fn as_constant(&self, v: ValueId) -> Option<&Tensor> {
        match &self.nodes.get(v)?.op {
            Op::Constant(t) => Some(t),
            _ => None,
        }
    }

    /// Whether some weight lives in a backend only ([`Op::Resident`]).
    pub fn has_resident(&self) -> bool {
        self.nodes
            .iter()
            .any(|n| matches!(n.op, Op::Resident { .. }))
    }

    /// Shapes of every value for the given input shapes, checking every op.
    pub fn infer_shapes(&self, input_shapes: &[Vec<usize>]) -> Result<Vec<Vec<usize>>> {
        let mut shapes: Vec<Vec<usize>> = Vec::with_capacity(self.nodes.len());
        for (id, node) in self.nodes.iter().enumerate() {
            let shape = match &node.op {
                Op::Input { index } => {
                    input_shapes
                        .get(*index)
                        .cloned()
                        .ok_or_else(|| CoreError::InputCount {
                            expected: index + 1,
                            actual: input_shapes.len(),
                        })?
                }
                op => {
                    let ins: Vec<&[usize]> = node
                        .inputs
                        .iter()
                        .map(|&i| {
                            if i < id {
                                Ok(shapes[i].as_slice())
                            } else {
                                Err(CoreError::Graph(format!(
                                    "node {id} reads a later value {i}"
                                )))
                            }
                        })
                        .collect::<Result<_>>()?;
                    op.output_shape(&ins).map_err(|m| {
                        CoreError::shape(&format!("layer \"{}\" ({})", node.origin, op.name()), m)
                    })?
                }
            };
            if element_count(&shape).is_none() {
                return Err(CoreError::shape(
                    &node.origin,
                    format!("shape {shape:?} overflows"),
                ));
            }
            shapes.push(shape);
        }
        Ok(shapes)
    }

    /// For each value, the index of the last node that reads it (graph outputs live to the end).
    pub fn last_uses(&self) -> Vec<usize> {
        let mut last: Vec<usize> = (0..self.nodes.len()).collect();
        for (id, node) in self.nodes.iter().enumerate() {
            for &i in &node.inputs {
                last[i] = last[i].max(id);
            }
        }
        for &o in &self.outputs {
            if let Some(l) = last.get_mut(o) {
                *l = usize::MAX;
            }
        }
        last
    }
}
