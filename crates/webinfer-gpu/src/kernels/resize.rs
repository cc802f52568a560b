//! Resize (shaders/resize.wgsl) with tfjs's formulas (tests/tfjs/SEMANTICS.md).

use webinfer_core::ir::ResizeMode;

use super::{count, grid64, plain, Dispatch, KernelLimits, Params};
use crate::shaders::Shader;

/// tfjs's effective (input, output) sizes of one axis: `align_corners` maps corner to corner.
fn effective(input: usize, output: usize, align_corners: bool) -> (usize, usize) {
    if align_corners && output > 1 {
        (input - 1, output - 1)
    } else {
        (input, output)
    }
}

/// Nearest source index as `(mul * o + add) / den` in integers: tfjs computes
/// `floor(ratio * o)` (`round` with align_corners), with `o + 0.5` for half-pixel centres.
fn nearest_terms(
    input: usize,
    output: usize,
    align_corners: bool,
    half_pixel: bool,
) -> (usize, usize, usize) {
    let (i, o) = effective(input, output, align_corners);
    match (align_corners, half_pixel) {
        (false, false) => (i, 0, o),
        (true, false) => (2 * i, o, 2 * o),
        (false, true) => (2 * i, i, 2 * o),
        (true, true) => (2 * i, i + o, 2 * o),
    }
}

pub(super) fn resize(
    mode: ResizeMode,
    align_corners: bool,
    half_pixel: bool,
    ins: &[&[usize]],
    out: &[usize],
    kl: &KernelLimits,
) -> Result<Vec<Dispatch>, String> {
    let x = ins[0];
    let total = count(out);
    if total == 0 {
        return Ok(vec![]);
    }
    if x[1] == 0 || x[2] == 0 {
        return Err("resize of an empty image".into());
    }
    let (oh, ow) = (out[1], out[2]);
    let ratio = |i: usize, o: usize| {
        let (ei, eo) = effective(i, o, align_corners);
        (ei as f64 / eo as f64) as f32
    };
    let ny = nearest_terms(x[1], oh, align_corners, half_pixel);
    let nx = nearest_terms(x[2], ow, align_corners, half_pixel);
    if [ny, nx]
        .iter()
        .any(|t| (t.0 as u64) * (t.2.max(oh).max(ow) as u64) + t.1 as u64 >= u32::MAX as u64)
    {
        return Err("resize sizes too large for 32-bit index arithmetic".into());
    }
    let params = Params::new()
        .u(x[0])
        .u(x[1])
        .u(x[2])
        .u(x[3])
        .u(oh)
        .u(ow)
        .u(total)
        .u(half_pixel as usize)
        .f(ratio(x[1], oh))
        .f(ratio(x[2], ow))
        .align16()
        .u(ny.0)
        .u(ny.1)
        .u(ny.2)
        .align16()
        .u(nx.0)
        .u(nx.1)
        .u(nx.2)
        .words();
    let entry = match mode {
        ResizeMode::Nearest => "resize_nearest",
        ResizeMode::Bilinear => "resize_bilinear",
    };
    Ok(vec![Dispatch {
        shader: Shader::Resize,
        entry,
        constants: vec![],
        params,
        operands: vec![plain(0)],
        workgroups: grid64(total as u64, kl)?,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The integer form equals tfjs's float formula (computed here in f64, as tfjs does).
    #[test]
    fn nearest_terms_match_tfjs_formula() {
        for (i, o) in [
            (3, 7),
            (7, 3),
            (5, 10),
            (4, 4),
            (2, 9),
            (9, 2),
            (1, 5),
            (6, 1),
        ] {
            for ac in [false, true] {
                for hp in [false, true] {
                    let (ei, eo) = effective(i, o, ac);
                    let ratio = ei as f64 / eo as f64;
                    let (m, a, d) = nearest_terms(i, o, ac, hp);
                    for r in 0..o {
                        let src = if hp {
                            ratio * (r as f64 + 0.5)
                        } else {
                            ratio * r as f64
                        };
                        let mut want = (if ac { (src + 0.5).floor() } else { src.floor() })
                            .min(i as f64 - 1.0);
                        if hp {
                            want = want.max(0.0);
                        }
                        let got = ((m * r + a) / d).min(i - 1);
                        assert_eq!(
                            got as f64, want,
                            "in {i} out {o} align {ac} half {hp} r {r}"
                        );
                    }
                }
            }
        }
    }
}
