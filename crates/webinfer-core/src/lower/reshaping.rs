//! ZeroPadding2D, Cropping2D, UpSampling2D.

use super::{LayerCtx, LayerDef};
use crate::error::Result;
use crate::ir::{Op, ResizeMode, ResizeSize, ValueId};

pub const ZERO_PADDING2D: LayerDef = LayerDef {
    classes: &["ZeroPadding2D"],
    lower: zero_padding,
};
pub const CROPPING2D: LayerDef = LayerDef {
    classes: &["Cropping2D"],
    lower: cropping,
};
pub const UPSAMPLING2D: LayerDef = LayerDef {
    classes: &["UpSampling2D"],
    lower: upsampling,
};

/// `[[top, bottom], [left, right]]` from an int, `[h, w]` or `[[t, b], [l, r]]`.
fn four_sides(cx: &LayerCtx, key: &str, default: usize) -> Result<[usize; 4]> {
    use serde_json::Value;
    let bad = || {
        cx.err(format!(
            "config.{key}: expected an integer, [h, w] or [[top, bottom], [left, right]]"
        ))
    };
    let n = |v: &Value| v.as_u64().map(|x| x as usize).ok_or_else(bad);
    match cx.layer.config.get(key) {
        None | Some(Value::Null) => Ok([default; 4]),
        Some(Value::Number(num)) => {
            let p = num.as_u64().ok_or_else(bad)? as usize;
            Ok([p; 4])
        }
        Some(Value::Array(a)) if a.len() == 2 => match (&a[0], &a[1]) {
            (Value::Array(h), Value::Array(w)) if h.len() == 2 && w.len() == 2 => {
                Ok([n(&h[0])?, n(&h[1])?, n(&w[0])?, n(&w[1])?])
            }
            (h, w) => {
                let (h, w) = (n(h)?, n(w)?);
                Ok([h, h, w, w])
            }
        },
        Some(_) => Err(bad()),
    }
}

fn zero_padding(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    let x = cx.one(inputs)?;
    cx.channels_last()?;
    let [t, b, l, r] = four_sides(cx, "padding", 1)?;
    Ok(vec![cx.push(
        Op::Pad {
            pads: vec![[0, 0], [t, b], [l, r], [0, 0]],
            value: 0.0,
        },
        vec![x],
    )])
}

fn cropping(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    let x = cx.one(inputs)?;
    cx.channels_last()?;
    let [t, b, l, r] = four_sides(cx, "cropping", 0)?;
    // A crop past i64::MAX cannot fit any input: i64::MIN makes the slice out of bounds.
    let end = |c: usize| match i64::try_from(c) {
        Ok(0) => i64::MAX,
        Ok(c) => -c,
        Err(_) => i64::MIN,
    };
    Ok(vec![cx.push(
        Op::Slice {
            begin: vec![0, t, l, 0],
            end: vec![i64::MAX, end(b), end(r), i64::MAX],
        },
        vec![x],
    )])
}

/// tfjs UpSampling2D resizes to `[h * sh, w * sw]` with `alignCorners = false` and no half-pixel centers.
fn upsampling(cx: &mut LayerCtx, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
    let x = cx.one(inputs)?;
    cx.channels_last()?;
    let size = cx.pair_or("size", [2, 2])?;
    if size.contains(&0) {
        return Err(cx.err(format!("size {size:?} must be positive")));
    }
    let mode = match cx.str_opt("interpolation")?.as_deref() {
        None | Some("nearest") => ResizeMode::Nearest,
        Some("bilinear") => ResizeMode::Bilinear,
        Some(other) => {
            return Err(cx.err(format!(
                "interpolation \"{other}\" is not supported (nearest or bilinear)"
            )))
        }
    };
    Ok(vec![cx.push(
        Op::Resize {
            mode,
            size: ResizeSize::Scale(size),
            align_corners: false,
            half_pixel_centers: false,
        },
        vec![x],
    )])
}
