//! Concat, Pad, Slice and Transpose as strided copies (shaders/copy.wgsl). Reshape needs no
//! kernel: its output aliases the input buffer.

use super::{collapse, count, grid64, plain, strides, Dispatch, KernelLimits, Params, MAX_RANK};
use crate::shaders::Shader;

/// One strided-copy dispatch over a view of `dims[i] = (size, in_stride, out_stride)`.
fn copy(
    dims: &[(usize, usize, usize)],
    in_base: usize,
    out_base: usize,
    operand: usize,
    kl: &KernelLimits,
) -> Result<Dispatch, String> {
    let view = collapse(dims);
    if view.len() > MAX_RANK {
        return Err(format!(
            "a copy over {} axes (the kernel takes {MAX_RANK})",
            view.len()
        ));
    }
    let n = view.len();
    copy_dispatch(
        &view.iter().map(|d| d.0).collect::<Vec<_>>(),
        &view.iter().map(|d| d.1).collect::<Vec<_>>(),
        &view.iter().map(|d| d.2).collect::<Vec<_>>(),
        &vec![0; n],
        &vec![u32::MAX as usize; n],
        (in_base, out_base, 0.0),
        operand,
        kl,
    )
}

#[allow(clippy::too_many_arguments)]
fn copy_dispatch(
    shape: &[usize],
    in_strides: &[usize],
    out_strides: &[usize],
    offs: &[usize],
    in_dims: &[usize],
    (in_base, out_base, value): (usize, usize, f32),
    operand: usize,
    kl: &KernelLimits,
) -> Result<Dispatch, String> {
    let total = count(shape);
    Ok(Dispatch {
        shader: Shader::Copy,
        entry: "strided_copy",
        constants: vec![],
        params: Params::new()
            .u(total)
            .u(shape.len())
            .u(in_base)
            .u(out_base)
            .f(value)
            .arr8(shape)
            .arr8(in_strides)
            .arr8(out_strides)
            .arr8(offs)
            .arr8(in_dims)
            .words(),
        operands: vec![plain(operand)],
        workgroups: grid64(total as u64, kl)?,
    })
}

pub(super) fn slice(
    begin: &[usize],
    ins: &[&[usize]],
    out: &[usize],
    kl: &KernelLimits,
) -> Result<Vec<Dispatch>, String> {
    if count(out) == 0 {
        return Ok(vec![]);
    }
    let (si, so) = (strides(ins[0]), strides(out));
    let base = begin.iter().zip(&si).map(|(b, s)| b * s).sum();
    let dims: Vec<_> = (0..out.len()).map(|i| (out[i], si[i], so[i])).collect();
    Ok(vec![copy(&dims, base, 0, 0, kl)?])
}

pub(super) fn transpose(
    perm: &[usize],
    ins: &[&[usize]],
    out: &[usize],
    kl: &KernelLimits,
) -> Result<Vec<Dispatch>, String> {
    if count(out) == 0 {
        return Ok(vec![]);
    }
    let (si, so) = (strides(ins[0]), strides(out));
    let dims: Vec<_> = (0..out.len())
        .map(|i| (out[i], si[perm[i]], so[i]))
        .collect();
    Ok(vec![copy(&dims, 0, 0, 0, kl)?])
}

pub(super) fn concat(
    axis: usize,
    ins: &[&[usize]],
    out: &[usize],
    kl: &KernelLimits,
) -> Result<Vec<Dispatch>, String> {
    let so = strides(out);
    let mut offset = 0;
    let mut ds = Vec::with_capacity(ins.len());
    for (j, s) in ins.iter().enumerate() {
        if count(s) > 0 {
            let si = strides(s);
            let dims: Vec<_> = (0..s.len()).map(|i| (s[i], si[i], so[i])).collect();
            ds.push(copy(&dims, 0, offset * so[axis], j, kl)?);
        }
        offset += s[axis];
    }
    Ok(ds)
}

pub(super) fn pad(
    pads: &[[usize; 2]],
    value: f32,
    ins: &[&[usize]],
    out: &[usize],
    kl: &KernelLimits,
) -> Result<Vec<Dispatch>, String> {
    if count(out) == 0 {
        return Ok(vec![]);
    }
    let x = ins[0];
    // Axes without padding and of size 1 carry nothing: drop them (keeps most pads <= 8 axes).
    let keep: Vec<usize> = (0..out.len())
        .filter(|&i| out[i] != 1 || pads[i] != [0, 0])
        .collect();
    if keep.len() > MAX_RANK {
        return Err(format!(
            "a pad over {} axes (the kernel takes {MAX_RANK})",
            keep.len()
        ));
    }
    let (si, so) = (strides(x), strides(out));
    let pick = |v: &[usize]| -> Vec<usize> { keep.iter().map(|&i| v[i]).collect() };
    let befores: Vec<usize> = pads.iter().map(|p| p[0]).collect();
    Ok(vec![copy_dispatch(
        &pick(out),
        &pick(&si),
        &pick(&so),
        &pick(&befores),
        &pick(x),
        (0, 0, value),
        0,
        kl,
    )?])
}
