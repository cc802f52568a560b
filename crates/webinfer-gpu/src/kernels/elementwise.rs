//! Unary, Binary (numpy broadcasting), PReLU and ChannelAffine (shaders/elementwise.wgsl).

use webinfer_core::ir::{Activation, BinaryOp};

use super::{
    act_code, act_constants, collapse, count, grid64, plain, strides, Dispatch, KernelLimits,
    Params, MAX_RANK,
};
use crate::shaders::Shader;

pub(super) fn unary(
    a: Activation,
    out: &[usize],
    kl: &KernelLimits,
) -> Result<Vec<Dispatch>, String> {
    let total = count(out);
    if total == 0 {
        return Ok(vec![]);
    }
    let (act, alpha) = act_code(a);
    Ok(vec![Dispatch {
        shader: Shader::Elementwise,
        entry: "unary",
        constants: act_constants(act),
        params: Params::new()
            .u(total)
            .u(0)
            .u(0)
            .f(alpha)
            .u(act as usize)
            .words(),
        operands: vec![plain(0)],
        workgroups: grid64(total as u64, kl)?,
    }])
}

/// Per output axis: (size, stride in a, stride in b), 0 on broadcast axes, merged where both
/// operands are contiguous.
fn broadcast_view(
    a: &[usize],
    b: &[usize],
    out: &[usize],
) -> Result<Vec<(usize, usize, usize)>, String> {
    let r = out.len();
    let pad = |s: &[usize]| -> Vec<usize> {
        std::iter::repeat_n(1, r - s.len())
            .chain(s.iter().copied())
            .collect()
    };
    let (pa, pb) = (pad(a), pad(b));
    let (sa, sb) = (strides(&pa), strides(&pb));
    let dims: Vec<(usize, usize, usize)> = (0..r)
        .map(|i| {
            let st = |p: &[usize], s: &[usize]| if p[i] == 1 { 0 } else { s[i] };
            (out[i], st(&pa, &sa), st(&pb, &sb))
        })
        .collect();
    let view = collapse(&dims);
    if view.len() > MAX_RANK {
        return Err(format!(
            "broadcast of {a:?} and {b:?} needs {} axes (the kernel takes {MAX_RANK})",
            view.len()
        ));
    }
    Ok(view)
}

fn broadcast_dispatch(
    op: u32,
    ins: &[&[usize]],
    out: &[usize],
    kl: &KernelLimits,
) -> Result<Vec<Dispatch>, String> {
    let total = count(out);
    if total == 0 {
        return Ok(vec![]);
    }
    let view = broadcast_view(ins[0], ins[1], out)?;
    let sizes: Vec<usize> = view.iter().map(|d| d.0).collect();
    let sa: Vec<usize> = view.iter().map(|d| d.1).collect();
    let sb: Vec<usize> = view.iter().map(|d| d.2).collect();
    Ok(vec![Dispatch {
        shader: Shader::Elementwise,
        entry: "binary",
        constants: vec![("OP", op)],
        params: Params::new()
            .u(total)
            .u(view.len())
            .u(0)
            .f(0.0)
            .u(0)
            .arr8(&sizes)
            .arr8(&sa)
            .arr8(&sb)
            .words(),
        operands: vec![plain(0), plain(1)],
        workgroups: grid64(total as u64, kl)?,
    }])
}

pub(super) fn binary(
    b: BinaryOp,
    ins: &[&[usize]],
    out: &[usize],
    kl: &KernelLimits,
) -> Result<Vec<Dispatch>, String> {
    let op = match b {
        BinaryOp::Add => 0,
        BinaryOp::Sub => 1,
        BinaryOp::Mul => 2,
        BinaryOp::Div => 3,
        BinaryOp::Max => 4,
        BinaryOp::Min => 5,
    };
    broadcast_dispatch(op, ins, out, kl)
}

pub(super) fn prelu(
    ins: &[&[usize]],
    out: &[usize],
    kl: &KernelLimits,
) -> Result<Vec<Dispatch>, String> {
    broadcast_dispatch(6, ins, out, kl)
}

pub(super) fn channel_affine(
    ins: &[&[usize]],
    out: &[usize],
    kl: &KernelLimits,
) -> Result<Vec<Dispatch>, String> {
    let total = count(out);
    if total == 0 {
        return Ok(vec![]);
    }
    let c = *ins[0]
        .last()
        .ok_or("channel_affine input must have rank >= 1")?;
    Ok(vec![Dispatch {
        shader: Shader::Elementwise,
        entry: "channel_affine",
        constants: vec![],
        params: Params::new().u(total).u(0).u(c).f(0.0).words(),
        operands: vec![plain(0), plain(1), plain(2)],
        workgroups: grid64(total as u64, kl)?,
    }])
}
