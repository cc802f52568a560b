//! MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D.

use super::{LayerCtx, LayerDef};
use crate::error::Result;
use crate::ir::{Op, PoolKind, ValueId};

pub const MAX_POOLING2D: LayerDef = LayerDef {
    classes: &["MaxPooling2D", "MaxPool2D"],
    lower: max_pool,
};
pub const AVERAGE_POOLING2D: LayerDef = LayerDef {
    classes: &["AveragePooling2D", "AvgPool2D"],
    lower: avg_pool,
};
pub const GLOBAL_AVERAGE_POOLING2D: LayerDef = LayerDef {
    classes: &["GlobalAveragePooling2D", "GlobalAvgPool2D"],
    lower: global_avg,
};
pub const GLOBAL_MAX_POOLING2D: LayerDef = LayerDef {
    classes: &["GlobalMaxPooling2D", "GlobalMaxPool2D"],
    lower: global_max,
};

fn pool(cx: &mut LayerCtx, inputs: &[ValueId], kind: PoolKind) -> Result<Vec<ValueId>> {
    let x = cx.one(inputs)?;
    cx.channels_last()?;
    let window = cx.pair_or("pool_size", [2, 2])?;
    // Keras: strides default to the pool size (null means the same).
    let stride = cx.pair_or("strides", window)?;
    if window.contains(&0) || stride.contains(&0) {
        return Err(cx.err(format!(
            "pool_size {window:?} and strides {stride:?} must be positive"
        )));
    }
    let padding = cx.padding()?;
    Ok(vec![cx.push(
        Op::Pool2d {
            kind,
            window,
            stride,
            padding,
        },
        vec![x],
    )])
}

fn max_pool(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    pool(cx, inputs, PoolKind::Max)
}

fn avg_pool(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    pool(cx, inputs, PoolKind::Avg)
}

fn global(cx: &mut LayerCtx, inputs: &[ValueId], kind: PoolKind) -> Result<Vec<ValueId>> {
    let x = cx.one(inputs)?;
    cx.channels_last()?;
    let y = cx.push(Op::GlobalPool { kind }, vec![x]);
    if cx.bool_or("keepdims", false)? {
        return Ok(vec![cx.push(
            Op::Reshape {
                shape: vec![0, 1, 1, -1],
            },
            vec![y],
        )]);
    }
    Ok(vec![y])
}

fn global_avg(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    global(cx, inputs, PoolKind::Avg)
}

fn global_max(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    global(cx, inputs, PoolKind::Max)
}
