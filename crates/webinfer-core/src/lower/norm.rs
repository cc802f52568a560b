//! BatchNormalization (inference form).

use super::{LayerCtx, LayerDef};
use crate::error::Result;
use crate::ir::{Op, ValueId};
use crate::tensor::Tensor;

pub const BATCH_NORMALIZATION: LayerDef = LayerDef {
    classes: &["BatchNormalization"],
    lower: batch_norm,
};

/// `(x - mean) / sqrt(var + eps) * gamma + beta` as one per-channel affine
/// `x * scale + shift`; the passes fold it into a preceding convolution.
fn batch_norm(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    let x = cx.one(inputs)?;
    let rank = cx.rank(x);
    let axis = match cx.layer.config.get("axis") {
        Some(serde_json::Value::Array(a)) if a.len() == 1 => a[0].as_i64(),
        None | Some(serde_json::Value::Null) => Some(-1),
        Some(v) => v.as_i64(),
    }
    .ok_or_else(|| cx.err("config.axis: expected one integer axis"))?;
    if cx.axis(axis, rank)? + 1 != rank {
        return Err(cx.err(format!("axis {axis} is not the last axis of a rank-{rank} input (only channels_last is supported)")));
    }
    let eps = cx.f32_or("epsilon", 1e-3)?;
    let mean = cx
        .weight_tensor("moving_mean", &[None])?
        .ok_or_else(|| missing(cx, "moving_mean"))?;
    let c = mean.len();
    let var = cx
        .weight_tensor("moving_variance", &[Some(c)])?
        .ok_or_else(|| missing(cx, "moving_variance"))?;
    let gamma = if cx.bool_or("scale", true)? {
        Some(
            cx.weight_tensor("gamma", &[Some(c)])?
                .ok_or_else(|| missing(cx, "gamma"))?,
        )
    } else {
        None
    };
    let beta = if cx.bool_or("center", true)? {
        Some(
            cx.weight_tensor("beta", &[Some(c)])?
                .ok_or_else(|| missing(cx, "beta"))?,
        )
    } else {
        None
    };

    let mut scale = Vec::with_capacity(c);
    let mut shift = Vec::with_capacity(c);
    for i in 0..c {
        let inv = 1.0 / (var.data()[i] + eps).sqrt();
        let s = inv * gamma.as_ref().map_or(1.0, |g| g.data()[i]);
        scale.push(s);
        shift.push(beta.as_ref().map_or(0.0, |b| b.data()[i]) - mean.data()[i] * s);
    }
    let scale = cx.constant(Tensor::new(vec![c], scale)?);
    let shift = cx.constant(Tensor::new(vec![c], shift)?);
    Ok(vec![cx.push(Op::ChannelAffine, vec![x, scale, shift])])
}

fn missing(cx: &LayerCtx, w: &str) -> crate::error::CoreError {
    crate::error::CoreError::MissingWeight {
        layer: cx.name().to_string(),
        weight: format!("{}/{w}", cx.name()),
    }
}
