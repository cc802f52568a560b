//! The Rust half of every kernel: for one IR op and its concrete shapes, which WGSL entry
//! point(s) to dispatch, with which uniform params, operands and workgroup counts.
//!
//! One module per kernel family (matching `shaders/<family>.wgsl`); [`lower`] routes an op to
//! its family. An `Err(reason)` from lowering sends the op to the CPU fallback path.

mod conv;
mod elementwise;
mod matmul;
mod movement;
mod pool;
mod reduce;
mod resize;
mod softmax;

use std::borrow::Cow;

use webinfer_core::ir::Activation;
use webinfer_core::{Op, Tensor};

use crate::shaders::Shader;

/// Most axes a strided kernel (binary, copy, reduce) handles after merging contiguous axes.
pub(crate) const MAX_RANK: usize = 8;

/// How a constant operand is laid out in its GPU buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Layout {
    /// The tensor's own row-major data.
    Plain,
    /// Conv2d kernel `[kh,kw,cin_g,cout]` → `[groups][kh*kw][cin_g][cout_g padded to 4]`.
    ConvWeights { groups: usize },
    /// Conv2dTranspose kernel `[kh,kw,cout,cin]` → flipped taps, `[kh*kw][cin][cout padded to 4]`.
    ConvTransposeWeights,
    /// Depthwise kernel `[kh,kw,c,mult]` → `[kh*kw][c*mult padded to 4]`.
    DepthwiseWeights,
    /// MatMul kernel `[k,n]` → `[k][n padded to 4]`.
    MatMulWeights,
}

impl Layout {
    /// The data to upload for `t` in this layout: the tensor's own data, borrowed, wherever
    /// the layout leaves it as it lies (plain, and kernels whose channels are already a
    /// multiple of 4 in one group), so that uploading a large weight needs no second copy of
    /// it in memory; a repacked copy otherwise.
    /// Whether a tensor of shape `s` lies in this layout as it is (so [`Layout::pack`]
    /// borrows it, and a weight streamed to the device as it lies can be bound directly).
    pub(crate) fn is_identity(self, s: &[usize]) -> bool {
        let pad4 = |n: usize| n % 4 == 0;
        match self {
            Layout::Plain => true,
            Layout::ConvWeights { groups } => {
                groups.max(1) == 1 && rank4(s).is_ok_and(|[_, _, _, cout]| pad4(cout))
            }
            Layout::ConvTransposeWeights => false,
            Layout::DepthwiseWeights => rank4(s).is_ok_and(|[_, _, c, m]| pad4(c * m)),
            Layout::MatMulWeights => s.len() == 2 && pad4(s[1]),
        }
    }

    pub(crate) fn pack(self, t: &Tensor) -> Result<Cow<'_, [f32]>, String> {
        let s = t.shape();
        let d = t.data();
        let pad4 = |n: usize| n.div_ceil(4) * 4;
        if self.is_identity(s) {
            return Ok(Cow::Borrowed(d));
        }
        match self {
            Layout::Plain => Ok(Cow::Borrowed(d)),
            Layout::ConvWeights { groups } => {
                let [kh, kw, cin_g, cout] = rank4(s)?;
                let g = groups.max(1);
                if cout % g != 0 {
                    return Err(format!(
                        "{cout} output channels do not split into {g} groups"
                    ));
                }
                let (taps, cout_g) = (kh * kw, cout / g);
                let cp = pad4(cout_g);
                let mut out = vec![0.0; g * taps * cin_g * cp];
                for gi in 0..g {
                    for tap in 0..taps {
                        for ci in 0..cin_g {
                            let src = (tap * cin_g + ci) * cout + gi * cout_g;
                            let dst = ((gi * taps + tap) * cin_g + ci) * cp;
                            out[dst..dst + cout_g].copy_from_slice(&d[src..src + cout_g]);
                        }
                    }
                }
                Ok(Cow::Owned(out))
            }
            Layout::ConvTransposeWeights => {
                let [kh, kw, cout, cin] = rank4(s)?;
                let cp = pad4(cout);
                let mut out = vec![0.0; kh * kw * cin * cp];
                for a in 0..kh {
                    for b in 0..kw {
                        let src_tap = (kh - 1 - a) * kw + (kw - 1 - b);
                        let dst_tap = a * kw + b;
                        for co in 0..cout {
                            for ci in 0..cin {
                                out[(dst_tap * cin + ci) * cp + co] =
                                    d[(src_tap * cout + co) * cin + ci];
                            }
                        }
                    }
                }
                Ok(Cow::Owned(out))
            }
            Layout::DepthwiseWeights => {
                let [kh, kw, c, m] = rank4(s)?;
                let cout = c * m;
                let cp = pad4(cout);
                let mut out = vec![0.0; kh * kw * cp];
                for tap in 0..kh * kw {
                    out[tap * cp..tap * cp + cout]
                        .copy_from_slice(&d[tap * cout..(tap + 1) * cout]);
                }
                Ok(Cow::Owned(out))
            }
            Layout::MatMulWeights => {
                if s.len() != 2 {
                    return Err(format!("matmul kernel must have rank 2, got {s:?}"));
                }
                let (k, n) = (s[0], s[1]);
                let np = pad4(n);
                let mut out = vec![0.0; k * np];
                for r in 0..k {
                    out[r * np..r * np + n].copy_from_slice(&d[r * n..(r + 1) * n]);
                }
                Ok(Cow::Owned(out))
            }
        }
    }
}

fn rank4(s: &[usize]) -> Result<[usize; 4], String> {
    s.try_into()
        .map_err(|_| format!("kernel must have rank 4, got {s:?}"))
}

/// The layout the GPU kernel of `op` needs for operand `i` (weights are repacked once, at
/// prepare time, so they must be constants).
pub(crate) fn operand_layout(op: &Op, i: usize) -> Layout {
    match (op, i) {
        (Op::Conv2d(c), 1) => Layout::ConvWeights {
            groups: c.groups.max(1),
        },
        (Op::Conv2dTranspose(_), 1) => Layout::ConvTransposeWeights,
        (Op::DepthwiseConv2d(_), 1) => Layout::DepthwiseWeights,
        (Op::MatMul { .. }, 1) => Layout::MatMulWeights,
        _ => Layout::Plain,
    }
}

/// An operand binding of a dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operand {
    /// The node's operand number `index`, in `layout`.
    Value { index: usize, layout: Layout },
    /// A declared binding the op does not have (an absent bias): a dummy buffer.
    Absent,
}

pub(crate) fn plain(index: usize) -> Operand {
    Operand::Value {
        index,
        layout: Layout::Plain,
    }
}

/// One compute dispatch writing (part of) the node's output.
#[derive(Debug, Clone)]
pub(crate) struct Dispatch {
    pub shader: Shader,
    pub entry: &'static str,
    pub constants: Vec<(&'static str, u32)>,
    pub params: Vec<u32>,
    pub operands: Vec<Operand>,
    pub workgroups: [u32; 3],
}

/// What an op becomes on the GPU.
#[derive(Debug)]
pub(crate) enum Lowered {
    /// The output is the input buffer itself (Reshape).
    Alias,
    /// Dispatches in order (none for an empty output).
    Dispatches(Vec<Dispatch>),
}

/// Device facts lowering needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KernelLimits {
    pub max_workgroups_per_dim: u32,
}

/// The GPU lowering of `op` for operands of shapes `ins` and output `out`, or why it has none.
pub(crate) fn lower(
    op: &Op,
    ins: &[&[usize]],
    out: &[usize],
    kl: &KernelLimits,
) -> Result<Lowered, String> {
    let d = match op {
        Op::Input { .. } | Op::Constant(_) | Op::Resident { .. } => {
            return Err("not an executable op".into())
        }
        Op::Reshape { .. } => return Ok(Lowered::Alias),
        Op::Conv2d(c) => conv::conv2d(c, ins, out, kl)?,
        Op::Conv2dTranspose(c) => conv::conv2d_transpose(c, ins, out, kl)?,
        Op::DepthwiseConv2d(c) => conv::depthwise(c, ins, out, kl)?,
        Op::MatMul { activation } => matmul::matmul(*activation, ins, out, kl)?,
        Op::Pool2d {
            kind,
            window,
            stride,
            padding,
        } => pool::pool2d(*kind, *window, *stride, *padding, ins, out, kl)?,
        Op::GlobalPool { kind } => reduce::global_pool(*kind, ins, out, kl)?,
        Op::Reduce { kind, axes, .. } => reduce::reduce(*kind, axes, ins, out, kl)?,
        Op::ChannelAffine => elementwise::channel_affine(ins, out, kl)?,
        Op::Unary(a) => elementwise::unary(*a, out, kl)?,
        Op::Prelu => elementwise::prelu(ins, out, kl)?,
        Op::Binary(b) => elementwise::binary(*b, ins, out, kl)?,
        Op::Concat { axis } => movement::concat(*axis, ins, out, kl)?,
        Op::Pad { pads, value } => movement::pad(pads, *value, ins, out, kl)?,
        Op::Slice { begin, .. } => movement::slice(begin, ins, out, kl)?,
        Op::Transpose { perm } => movement::transpose(perm, ins, out, kl)?,
        Op::Resize {
            mode,
            align_corners,
            half_pixel_centers,
            ..
        } => resize::resize(*mode, *align_corners, *half_pixel_centers, ins, out, kl)?,
        Op::Softmax { axis } => softmax::softmax(*axis, false, ins, out, kl)?,
        Op::LogSoftmax { axis } => softmax::softmax(*axis, true, ins, out, kl)?,
    };
    Ok(Lowered::Dispatches(d))
}

/// The `act` code and `alpha` of an activation, written into a kernel's params (codes match
/// `activate` in shaders/common.wgsl).
pub(crate) fn act_code(a: Activation) -> (u32, f32) {
    match a {
        Activation::Linear => (0, 0.0),
        Activation::Relu => (1, 0.0),
        Activation::Relu6 => (2, 0.0),
        Activation::ReluMax(m) => (3, m),
        Activation::LeakyRelu(al) => (4, al),
        Activation::Elu(al) => (5, al),
        Activation::Selu => (6, 0.0),
        Activation::Sigmoid => (7, 0.0),
        Activation::HardSigmoid => (8, 0.0),
        Activation::Tanh => (9, 0.0),
        Activation::Softplus => (10, 0.0),
        Activation::Softsign => (11, 0.0),
        Activation::Swish => (12, 0.0),
        Activation::Mish => (13, 0.0),
        Activation::Gelu => (14, 0.0),
        Activation::GeluTanh => (15, 0.0),
        Activation::Thresholded(t) => (16, t),
        Activation::Sqrt => (17, 0.0),
        Activation::Rsqrt => (18, 0.0),
        Activation::Square => (19, 0.0),
    }
}

/// Codes above this need common.wgsl's `FULL_ACT` pipeline constant.
const CHEAP_ACT_MAX: u32 = 4;

/// The pipeline constants of a kernel that ends in `activate`: `FULL_ACT` only when the
/// activation code needs it, so pipelines are shared across the cheap activations.
pub(crate) fn act_constants(act: u32) -> Vec<(&'static str, u32)> {
    vec![("FULL_ACT", u32::from(act > CHEAP_ACT_MAX))]
}

/// Workgroup counts covering `groups` workgroups, wrapped into y and z past the per-dimension
/// limit; kernels flatten them back with `flat_workgroup` and skip the excess.
pub(crate) fn grid(groups: u64, kl: &KernelLimits) -> Result<[u32; 3], String> {
    let max = kl.max_workgroups_per_dim.max(1) as u64;
    if groups == 0 {
        return Ok([0, 0, 0]);
    }
    let x = groups.min(max);
    let rest = groups.div_ceil(x);
    let y = rest.min(max);
    let z = rest.div_ceil(y);
    if z > max {
        return Err(format!(
            "{groups} workgroups exceed the device's dispatch limit"
        ));
    }
    Ok([x as u32, y as u32, z as u32])
}

/// Workgroups of 64 invocations covering `invocations`.
pub(crate) fn grid64(invocations: u64, kl: &KernelLimits) -> Result<[u32; 3], String> {
    grid(invocations.div_ceil(64), kl)
}

/// Uniform params, written field by field in the order of the WGSL `Params` struct:
/// 4-byte scalars, and `array<vec4<u32>, 2>` members (8 slots) at 16-byte offsets.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<u32>);

impl Params {
    pub(crate) fn new() -> Self {
        Params(Vec::with_capacity(64))
    }
    /// A `u32` field. Values come from tensor shapes bounded by the binding size (< 2^30 elements).
    pub(crate) fn u(mut self, v: usize) -> Self {
        self.0.push(u32::try_from(v).unwrap_or(u32::MAX));
        self
    }
    pub(crate) fn i(mut self, v: i64) -> Self {
        self.0.push(v as i32 as u32);
        self
    }
    pub(crate) fn f(mut self, v: f32) -> Self {
        self.0.push(v.to_bits());
        self
    }
    /// Pad to the next 16-byte boundary (before an array member, and at the end).
    pub(crate) fn align16(mut self) -> Self {
        while self.0.len() % 4 != 0 {
            self.0.push(0);
        }
        self
    }
    /// An `array<vec4<u32>, 2>` member holding up to 8 values.
    pub(crate) fn arr8(mut self, v: &[usize]) -> Self {
        debug_assert!(v.len() <= MAX_RANK);
        self = self.align16();
        for i in 0..MAX_RANK {
            self = self.u(v.get(i).copied().unwrap_or(0));
        }
        self
    }
    pub(crate) fn words(self) -> Vec<u32> {
        self.align16().0
    }
}

/// Row-major element strides of `shape`.
pub(crate) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

pub(crate) fn count(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Merge axes of a strided view where both sides are contiguous across them, and drop axes of
/// size 1. `dims[i] = (size, stride_a, stride_b)`.
pub(crate) fn collapse(dims: &[(usize, usize, usize)]) -> Vec<(usize, usize, usize)> {
    let mut out: Vec<(usize, usize, usize)> = Vec::with_capacity(dims.len());
    for &(n, a, b) in dims.iter().filter(|d| d.0 != 1) {
        if let Some(last) = out.last_mut() {
            if last.1 == a * n && last.2 == b * n {
                *last = (last.0 * n, a, b);
                continue;
            }
        }
        out.push((n, a, b));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapse_merges_contiguous_axes() {
        // Same shapes: one axis.
        assert_eq!(
            collapse(&[(2, 12, 12), (3, 4, 4), (4, 1, 1)]),
            vec![(24, 1, 1)]
        );
        // Bias broadcast on the last axis: b stride 0 on the leading axes.
        assert_eq!(
            collapse(&[(2, 12, 0), (3, 4, 0), (4, 1, 1)]),
            vec![(6, 4, 0), (4, 1, 1)]
        );
        assert_eq!(collapse(&[(1, 0, 0), (5, 1, 0)]), vec![(5, 1, 0)]);
    }

    #[test]
    fn grid_wraps_past_the_limit() {
        let kl = KernelLimits {
            max_workgroups_per_dim: 10,
        };
        assert_eq!(grid(7, &kl).unwrap(), [7, 1, 1]);
        assert_eq!(grid(25, &kl).unwrap(), [10, 3, 1]);
        assert_eq!(grid(250, &kl).unwrap(), [10, 10, 3]);
        assert!(grid(1001, &kl).is_err());
    }

    #[test]
    fn packing_pads_output_channels() {
        // Conv2d, 2 groups of 3 output channels, 1x1 kernel, cin_g 1.
        let w = Tensor::new(vec![1, 1, 1, 6], vec![1., 2., 3., 4., 5., 6.]).unwrap();
        let p = Layout::ConvWeights { groups: 2 }.pack(&w).unwrap();
        assert_eq!(*p, [1., 2., 3., 0., 4., 5., 6., 0.]);
        let m = Tensor::new(vec![2, 3], vec![1., 2., 3., 4., 5., 6.]).unwrap();
        assert_eq!(
            *Layout::MatMulWeights.pack(&m).unwrap(),
            [1., 2., 3., 0., 4., 5., 6., 0.]
        );
        // Transposed conv: 2x1 kernel, cout 1, cin 2: taps flipped, [tap][ci][co].
        let t = Tensor::new(vec![2, 1, 1, 2], vec![1., 2., 3., 4.]).unwrap();
        assert_eq!(
            *Layout::ConvTransposeWeights.pack(&t).unwrap(),
            [3., 0., 0., 0., 4., 0., 0., 0., 1., 0., 0., 0., 2., 0., 0., 0.]
        );
    }

    #[test]
    fn packing_borrows_what_needs_no_padding() {
        let data: Vec<f32> = (0..32).map(|i| i as f32).collect();
        let cases = [
            (vec![2, 2, 2, 4], Layout::ConvWeights { groups: 1 }),
            (vec![2, 2, 4, 2], Layout::DepthwiseWeights),
            (vec![4, 8], Layout::MatMulWeights),
            (vec![32], Layout::Plain),
        ];
        for (shape, layout) in cases {
            let t = Tensor::new(shape, data.clone()).unwrap();
            let p = layout.pack(&t).unwrap();
            assert!(matches!(p, Cow::Borrowed(_)), "{layout:?} copied");
            assert_eq!(*p, data[..]);
        }
        for (shape, layout) in [
            (vec![2, 2, 2, 4], Layout::ConvWeights { groups: 1 }),
            (vec![4, 8], Layout::MatMulWeights),
        ] {
            assert!(layout.is_identity(&shape), "{layout:?} {shape:?}");
        }
        for (shape, layout) in [
            (vec![2, 2, 2, 6], Layout::ConvWeights { groups: 1 }),
            (vec![1, 1, 4, 8], Layout::ConvWeights { groups: 2 }),
            (vec![4, 6], Layout::MatMulWeights),
            (vec![2, 2, 4, 4], Layout::ConvTransposeWeights),
        ] {
            assert!(!layout.is_identity(&shape), "{layout:?} {shape:?}");
        }
        // Two groups of 4: the groups are regrouped, so the data is copied.
        let t = Tensor::new(vec![1, 1, 4, 8], data.clone()).unwrap();
        let p = Layout::ConvWeights { groups: 2 }.pack(&t).unwrap();
        assert!(matches!(p, Cow::Owned(_)));
    }
}
