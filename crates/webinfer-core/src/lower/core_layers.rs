//! Dense, the inference-time identities, Flatten, Reshape, Permute.

use super::{LayerCtx, LayerDef};
use crate::error::Result;
use crate::ir::{Op, ValueId};

pub const DENSE: LayerDef = LayerDef {
    classes: &["Dense"],
    lower: dense,
};
/// Layers that only act during training.
pub const IDENTITY: LayerDef = LayerDef {
    classes: &[
        "Dropout",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "GaussianNoise",
        "GaussianDropout",
        "AlphaDropout",
        "ActivityRegularization",
    ],
    lower: identity,
};
pub const FLATTEN: LayerDef = LayerDef {
    classes: &["Flatten"],
    lower: flatten,
};
pub const RESHAPE: LayerDef = LayerDef {
    classes: &["Reshape"],
    lower: reshape,
};
pub const PERMUTE: LayerDef = LayerDef {
    classes: &["Permute"],
    lower: permute,
};

/// `act(x · kernel + bias)`, contracting the last axis (also on rank > 2 inputs).
fn dense(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    let x = cx.one(inputs)?;
    let units = cx
        .layer
        .get_usize("units")?
        .ok_or_else(|| cx.err("config.units is required"))?;
    let (fused, rest) = super::conv::split(cx.activation()?);
    let kernel = cx.weight("kernel", &[None, Some(units)])?;
    super::conv::emit(
        cx,
        Op::MatMul { activation: fused },
        x,
        kernel,
        Some(units),
        rest,
    )
}

fn identity(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    Ok(vec![cx.one(inputs)?])
}

fn flatten(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    let x = cx.one(inputs)?;
    cx.channels_last()?;
    Ok(vec![cx.push(Op::Reshape { shape: vec![0, -1] }, vec![x])])
}

fn reshape(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    let x = cx.one(inputs)?;
    // tfjs writes the inferred dimension as null, Keras as -1.
    let target: Vec<i64> = match cx.layer.config.get("target_shape") {
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                serde_json::Value::Null => Some(-1),
                v => v.as_i64(),
            })
            .collect::<Option<Vec<i64>>>()
            .ok_or_else(|| cx.err("config.target_shape: expected a list of integers (or null / -1 for one inferred dimension)"))?,
        _ => return Err(cx.err("config.target_shape is required")),
    };
    let mut shape = vec![0i64];
    for &d in &target {
        if d == 0 || d < -1 {
            return Err(cx.err(format!(
                "config.target_shape {target:?} has an invalid dimension {d}"
            )));
        }
        shape.push(d);
    }
    if shape.iter().filter(|&&d| d == -1).count() > 1 {
        return Err(cx.err(format!(
            "config.target_shape {target:?} has more than one inferred dimension"
        )));
    }
    Ok(vec![cx.push(Op::Reshape { shape }, vec![x])])
}

/// Keras `dims` are 1-based and exclude the batch axis.
fn permute(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    let x = cx.one(inputs)?;
    let dims = cx
        .layer
        .get_int_list("dims")?
        .ok_or_else(|| cx.err("config.dims is required"))?;
    let rank = cx.rank(x);
    let mut perm = vec![0usize];
    for &d in &dims {
        if d < 1 || d as usize >= rank.max(1) {
            return Err(cx.err(format!(
                "config.dims {dims:?} is not a permutation of 1..{}",
                rank.saturating_sub(1)
            )));
        }
        perm.push(d as usize);
    }
    let mut sorted = perm.clone();
    webinfer_tfjs::order::sort(&mut sorted);
    if sorted != (0..rank).collect::<Vec<_>>() {
        return Err(cx.err(format!(
            "config.dims {dims:?} is not a permutation of 1..{}",
            rank.saturating_sub(1)
        )));
    }
    Ok(vec![cx.push(Op::Transpose { perm }, vec![x])])
}
