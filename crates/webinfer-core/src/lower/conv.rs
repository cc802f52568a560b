//! Conv2D, DepthwiseConv2D, SeparableConv2D, Conv2DTranspose.

use super::{Act, LayerCtx, LayerDef};
use crate::error::Result;
use crate::ir::{Activation, Conv2d, Op, ValueId};

pub const CONV2D: LayerDef = LayerDef {
    classes: &["Conv2D", "Convolution2D"],
    lower: conv2d,
};
pub const DEPTHWISE_CONV2D: LayerDef = LayerDef {
    classes: &["DepthwiseConv2D"],
    lower: depthwise_conv2d,
};
pub const SEPARABLE_CONV2D: LayerDef = LayerDef {
    classes: &["SeparableConv2D", "SeparableConvolution2D"],
    lower: separable_conv2d,
};
pub const CONV2D_TRANSPOSE: LayerDef = LayerDef {
    classes: &["Conv2DTranspose", "Convolution2DTranspose"],
    lower: conv2d_transpose,
};

/// The geometry every 2-D convolution layer shares.
fn geometry(cx: &LayerCtx, activation: Activation) -> Result<Conv2d> {
    cx.channels_last()?;
    let kernel = cx.pair_required("kernel_size")?;
    let stride = cx.pair_or("strides", [1, 1])?;
    let dilation = cx.pair_or("dilation_rate", [1, 1])?;
    if kernel.contains(&0) || stride.contains(&0) || dilation.contains(&0) {
        return Err(cx.err(format!("kernel_size {kernel:?}, strides {stride:?} and dilation_rate {dilation:?} must be positive")));
    }
    Ok(Conv2d {
        kernel,
        stride,
        dilation,
        padding: cx.padding()?,
        groups: 1,
        activation,
    })
}

/// Split a config activation into the part a conv epilogue fuses and the rest.
pub(super) fn split(act: Act) -> (Activation, Option<Act>) {
    match act {
        Act::Elementwise(a) => (a, None),
        other => (Activation::Linear, Some(other)),
    }
}

/// Push `op(x, kernel[, bias])` (a bias of `units` values when `use_bias`, the default),
/// then whatever part of the activation the op could not fuse.
pub(super) fn emit(
    cx: &mut LayerCtx,
    op: Op,
    x: ValueId,
    kernel: ValueId,
    units: Option<usize>,
    rest: Option<Act>,
) -> Result<Vec<ValueId>> {
    let mut operands = vec![x, kernel];
    if cx.bool_or("use_bias", true)? {
        operands.push(cx.weight("bias", &[units])?);
    }
    let y = cx.push(op, operands);
    Ok(vec![match rest {
        Some(a) => cx.apply(y, a),
        None => y,
    }])
}

/// `config.filters`, required.
fn filters(cx: &LayerCtx) -> Result<usize> {
    cx.layer
        .get_usize("filters")?
        .ok_or_else(|| cx.err("config.filters is required"))
}

fn conv2d(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    let x = cx.one(inputs)?;
    let filters = filters(cx)?;
    let (fused, rest) = split(cx.activation()?);
    let mut g = geometry(cx, fused)?;
    g.groups = cx.usize_or("groups", 1)?.max(1);
    if filters % g.groups != 0 {
        return Err(cx.err(format!(
            "filters {filters} is not divisible by groups {}",
            g.groups
        )));
    }
    let kernel = cx.weight(
        "kernel",
        &[Some(g.kernel[0]), Some(g.kernel[1]), None, Some(filters)],
    )?;
    emit(cx, Op::Conv2d(g), x, kernel, Some(filters), rest)
}

fn depthwise_conv2d(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    let x = cx.one(inputs)?;
    let mult = cx.usize_or("depth_multiplier", 1)?;
    let (fused, rest) = split(cx.activation()?);
    let g = geometry(cx, fused)?;
    let kernel = cx.weight(
        "depthwise_kernel",
        &[Some(g.kernel[0]), Some(g.kernel[1]), None, Some(mult)],
    )?;
    emit(cx, Op::DepthwiseConv2d(g), x, kernel, None, rest)
}

/// A depthwise convolution (strides, dilation, padding) followed by a 1x1 pointwise one
/// that carries the bias and activation.
fn separable_conv2d(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    let x = cx.one(inputs)?;
    let filters = filters(cx)?;
    // tfjs drops depth_multiplier when it saves a SeparableConv2D: the weight's shape is the truth.
    let mult = cx.layer.get_usize("depth_multiplier")?;
    let (fused, rest) = split(cx.activation()?);
    let g = geometry(cx, Activation::Linear)?;
    let dw = cx.weight(
        "depthwise_kernel",
        &[Some(g.kernel[0]), Some(g.kernel[1]), None, mult],
    )?;
    let pw = cx.weight("pointwise_kernel", &[Some(1), Some(1), None, Some(filters)])?;
    let mid = cx.push(Op::DepthwiseConv2d(g), vec![x, dw]);
    let point = Conv2d {
        kernel: [1, 1],
        stride: [1, 1],
        dilation: [1, 1],
        padding: crate::ir::Padding::Valid,
        groups: 1,
        activation: fused,
    };
    emit(cx, Op::Conv2d(point), mid, pw, Some(filters), rest)
}

fn conv2d_transpose(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    let x = cx.one(inputs)?;
    let filters = filters(cx)?;
    let (fused, rest) = split(cx.activation()?);
    let g = geometry(cx, fused)?;
    if g.dilation != [1, 1] {
        return Err(cx.err("dilation_rate other than 1 is not supported for Conv2DTranspose"));
    }
    if !matches!(
        cx.layer.config.get("output_padding"),
        None | Some(serde_json::Value::Null)
    ) {
        return Err(cx.err("output_padding is not supported"));
    }
    let kernel = cx.weight(
        "kernel",
        &[Some(g.kernel[0]), Some(g.kernel[1]), Some(filters), None],
    )?;
    emit(cx, Op::Conv2dTranspose(g), x, kernel, Some(filters), rest)
}
