//! Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate.

use super::{LayerCtx, LayerDef};
use crate::error::Result;
use crate::ir::{BinaryOp, Op, ValueId};
use crate::tensor::Tensor;

pub const ADD: LayerDef = LayerDef {
    classes: &["Add"],
    lower: add,
};
pub const SUBTRACT: LayerDef = LayerDef {
    classes: &["Subtract"],
    lower: subtract,
};
pub const MULTIPLY: LayerDef = LayerDef {
    classes: &["Multiply"],
    lower: multiply,
};
pub const AVERAGE: LayerDef = LayerDef {
    classes: &["Average"],
    lower: average,
};
pub const MAXIMUM: LayerDef = LayerDef {
    classes: &["Maximum"],
    lower: maximum,
};
pub const MINIMUM: LayerDef = LayerDef {
    classes: &["Minimum"],
    lower: minimum,
};
pub const CONCATENATE: LayerDef = LayerDef {
    classes: &["Concatenate"],
    lower: concatenate,
};

/// Fold `op` over two or more inputs, left to right.
fn fold(cx: &mut LayerCtx, inputs: &[ValueId], op: BinaryOp) -> Result<ValueId> {
    if inputs.len() < 2 {
        return Err(cx.err(format!("expects at least 2 inputs, got {}", inputs.len())));
    }
    let mut acc = inputs[0];
    for &x in &inputs[1..] {
        acc = cx.push(Op::Binary(op), vec![acc, x]);
    }
    Ok(acc)
}

fn add(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    Ok(vec![fold(cx, inputs, BinaryOp::Add)?])
}

fn subtract(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    if inputs.len() != 2 {
        return Err(cx.err(format!("expects exactly 2 inputs, got {}", inputs.len())));
    }
    Ok(vec![fold(cx, inputs, BinaryOp::Sub)?])
}

fn multiply(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    Ok(vec![fold(cx, inputs, BinaryOp::Mul)?])
}

/// tfjs: the sum times `1 / n`.
fn average(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    let sum = fold(cx, inputs, BinaryOp::Add)?;
    let k = cx.constant(Tensor::scalar(1.0 / inputs.len() as f32));
    Ok(vec![cx.push(Op::Binary(BinaryOp::Mul), vec![sum, k])])
}

fn maximum(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    Ok(vec![fold(cx, inputs, BinaryOp::Max)?])
}

fn minimum(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    Ok(vec![fold(cx, inputs, BinaryOp::Min)?])
}

fn concatenate(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    let first = *inputs
        .first()
        .ok_or_else(|| cx.err("expects at least 1 input"))?;
    let rank = cx.rank(first);
    if inputs.iter().any(|&x| cx.rank(x) != rank) {
        return Err(cx.err("inputs have different ranks"));
    }
    let axis = match cx.layer.config.get("axis") {
        None | Some(serde_json::Value::Null) => -1,
        Some(v) => v
            .as_i64()
            .ok_or_else(|| cx.err("config.axis: expected an integer"))?,
    };
    let axis = cx.axis(axis, rank)?;
    Ok(vec![cx.push(Op::Concat { axis }, inputs.to_vec())])
}
