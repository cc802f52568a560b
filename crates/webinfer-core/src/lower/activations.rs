//! Activation, ReLU, LeakyReLU, ELU, PReLU, Softmax, and the activation names of configs.

use super::{Act, LayerCtx, LayerDef};
use crate::error::Result;
use crate::ir::{Activation, Op, ValueId};
use webinfer_tfjs::Num;

pub const ACTIVATION: LayerDef = LayerDef {
    classes: &["Activation"],
    lower: activation,
};
pub const RELU: LayerDef = LayerDef {
    classes: &["ReLU"],
    lower: relu,
};
pub const LEAKY_RELU: LayerDef = LayerDef {
    classes: &["LeakyReLU"],
    lower: leaky_relu,
};
pub const ELU: LayerDef = LayerDef {
    classes: &["ELU"],
    lower: elu,
};
pub const PRELU: LayerDef = LayerDef {
    classes: &["PReLU"],
    lower: prelu,
};
pub const SOFTMAX: LayerDef = LayerDef {
    classes: &["Softmax"],
    lower: softmax,
};
pub const THRESHOLDED_RELU: LayerDef = LayerDef {
    classes: &["ThresholdedReLU"],
    lower: thresholded_relu,
};

fn thresholded_relu(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    let x = cx.one(inputs)?;
    let theta = cx.f32_or("theta", 1.0)?;
    Ok(vec![
        cx.push(Op::Unary(Activation::Thresholded(theta)), vec![x])
    ])
}

/// An activation name as tfjs and Keras write it in configs (snake_case or camelCase).
pub fn parse_activation(name: &str) -> Option<Act> {
    use Activation::*;
    let a = match name {
        "linear" | "None" => Linear,
        "relu" => Relu,
        "relu6" => Relu6,
        "elu" => Elu(1.0),
        "selu" => Selu,
        "sigmoid" => Sigmoid,
        "hard_sigmoid" | "hardSigmoid" => HardSigmoid,
        "tanh" => Tanh,
        "softplus" => Softplus,
        "softsign" => Softsign,
        "swish" | "silu" => Swish,
        "mish" => Mish,
        "gelu" => Gelu,
        "gelu_new" | "geluNew" => GeluTanh,
        "softmax" => return Some(Act::Softmax),
        "log_softmax" | "logSoftmax" => return Some(Act::LogSoftmax),
        _ => return None,
    };
    Some(Act::Elementwise(a))
}

fn activation(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    let x = cx.one(inputs)?;
    let act = cx.activation()?;
    Ok(vec![cx.apply(x, act)])
}

/// Keras `ReLU(max_value, negative_slope, threshold)`.
fn relu(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    let x = cx.one(inputs)?;
    let max = cx.layer.get_f32("max_value")?;
    let slope = cx.f32_or("negative_slope", 0.0)?;
    let threshold = cx.f32_or("threshold", 0.0)?;
    if threshold != 0.0 {
        return Err(cx.err(format!(
            "threshold {} is not supported (only 0)",
            Num::F32(threshold)
        )));
    }
    let a = match (max, slope) {
        (None, 0.0) => Activation::Relu,
        (Some(6.0), 0.0) => Activation::Relu6,
        (Some(m), 0.0) => Activation::ReluMax(m),
        (None, s) => Activation::LeakyRelu(s),
        (Some(m), s) => {
            return Err(cx.err(format!(
                "max_value {} together with negative_slope {} is not supported",
                Num::F32(m),
                Num::F32(s)
            )))
        }
    };
    Ok(vec![cx.push(Op::Unary(a), vec![x])])
}

fn leaky_relu(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    let x = cx.one(inputs)?;
    // Keras 2 / tfjs say `alpha`, Keras 3 `negative_slope`; both default to 0.3.
    let alpha = match cx.layer.get_f32("alpha")? {
        Some(a) => a,
        None => cx.f32_or("negative_slope", 0.3)?,
    };
    Ok(vec![
        cx.push(Op::Unary(Activation::LeakyRelu(alpha)), vec![x])
    ])
}

fn elu(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    let x = cx.one(inputs)?;
    let alpha = cx.f32_or("alpha", 1.0)?;
    Ok(vec![cx.push(Op::Unary(Activation::Elu(alpha)), vec![x])])
}

/// `alpha` has the input's shape without the batch, with `shared_axes` (1-based) set to 1.
fn prelu(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    let x = cx.one(inputs)?;
    let rank = cx.rank(x);
    let shared = cx.layer.get_int_list("shared_axes")?.unwrap_or_default();
    let mut expected: Vec<Option<usize>> = vec![None; rank.saturating_sub(1)];
    for &a in &shared {
        if a < 1 || a as usize >= rank {
            return Err(cx.err(format!(
                "shared_axes {shared:?} out of range for a rank-{rank} input"
            )));
        }
        expected[a as usize - 1] = Some(1);
    }
    let alpha = cx.weight("alpha", &expected)?;
    Ok(vec![cx.push(Op::Prelu, vec![x, alpha])])
}

fn softmax(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    let x = cx.one(inputs)?;
    let axis = match cx.layer.config.get("axis") {
        Some(serde_json::Value::Array(a)) if a.len() == 1 => a[0].as_i64(),
        None | Some(serde_json::Value::Null) => Some(-1),
        Some(v) => v.as_i64(),
    }
    .ok_or_else(|| cx.err("config.axis: expected an integer"))?;
    let axis = cx.axis(axis, cx.rank(x))?;
    Ok(vec![cx.push(Op::Softmax { axis }, vec![x])])
}
