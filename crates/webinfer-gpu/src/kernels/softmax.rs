//! Softmax / LogSoftmax along any axis (shaders/softmax.wgsl): one workgroup per row.

use super::{count, grid, plain, Dispatch, KernelLimits, Params};
use crate::shaders::Shader;

pub(super) fn softmax(
    axis: usize,
    log: bool,
    ins: &[&[usize]],
    out: &[usize],
    kl: &KernelLimits,
) -> Result<Vec<Dispatch>, String> {
    let x = ins[0];
    if count(out) == 0 {
        return Ok(vec![]);
    }
    let len = x[axis];
    let inner = count(&x[axis + 1..]);
    let rows = count(&x[..axis]) * inner;
    Ok(vec![Dispatch {
        shader: Shader::Softmax,
        entry: "softmax",
        constants: vec![("LOG", log as u32)],
        params: Params::new().u(rows).u(len).u(inner).words(),
        operands: vec![plain(0)],
        workgroups: grid(rows as u64, kl)?,
    }])
}
