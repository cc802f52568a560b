//! BatchNormalization (inference form).

use super::{BatchNormParams, LayerCtx, LayerDef};
use crate::error::Result;
use crate::ir::{Op, ValueId};

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
    let epsilon = cx.f32_or("epsilon", 1e-3)?;
    let (mean, shape) = cx
        .weight_shape("moving_mean", &[None])?
        .ok_or_else(|| missing(cx, "moving_mean"))?;
    let c = shape[0];
    let (var, _) = cx
        .weight_shape("moving_variance", &[Some(c)])?
        .ok_or_else(|| missing(cx, "moving_variance"))?;
    let gamma = if cx.bool_or("scale", true)? {
        let (g, _) = cx
            .weight_shape("gamma", &[Some(c)])?
            .ok_or_else(|| missing(cx, "gamma"))?;
        Some(g)
    } else {
        None
    };
    let beta = if cx.bool_or("center", true)? {
        let (b, _) = cx
            .weight_shape("beta", &[Some(c)])?
            .ok_or_else(|| missing(cx, "beta"))?;
        Some(b)
    } else {
        None
    };
    // Computed from the values once they are in (`Lowered::fill`, with `affine`).
    let params = BatchNormParams {
        mean,
        var,
        gamma,
        beta,
        epsilon,
    };
    let (scale, shift) = cx.batch_norm_params(c, params);
    Ok(vec![cx.push(Op::ChannelAffine, vec![x, scale, shift])])
}

/// `(x - mean) / sqrt(var + epsilon) * gamma + beta` as `x * scale + shift`: `(scale, shift)`.
pub(super) fn affine(
    mean: &[f32],
    var: &[f32],
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    epsilon: f32,
) -> (Vec<f32>, Vec<f32>) {
    let c = mean.len();
    let mut scale = Vec::with_capacity(c);
    let mut shift = Vec::with_capacity(c);
    for i in 0..c {
        let inv = 1.0 / (var[i] + epsilon).sqrt();
        let s = inv * gamma.map_or(1.0, |g| g[i]);
        scale.push(s);
        shift.push(beta.map_or(0.0, |b| b[i]) - mean[i] * s);
    }
    (scale, shift)
}

fn missing(cx: &LayerCtx, w: &str) -> crate::error::CoreError {
    crate::error::CoreError::MissingWeight {
        layer: cx.name().to_string(),
        weight: format!("{}/{w}", cx.name()),
    }
}
