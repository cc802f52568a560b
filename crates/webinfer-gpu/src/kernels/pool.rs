//! Pool2d (shaders/pool.wgsl).

use webinfer_core::ir::{resolve_window, Padding, PoolKind};

use super::{count, grid64, plain, Dispatch, KernelLimits, Params};
use crate::shaders::Shader;

pub(super) fn pool2d(
    kind: PoolKind,
    window: [usize; 2],
    stride: [usize; 2],
    padding: Padding,
    ins: &[&[usize]],
    out: &[usize],
    kl: &KernelLimits,
) -> Result<Vec<Dispatch>, String> {
    let x = ins[0];
    let total = count(out);
    if total == 0 {
        return Ok(vec![]);
    }
    let win = resolve_window(padding, [x[1], x[2]], window, stride, [1, 1])
        .ok_or("pool window does not fit the input")?;
    let params = Params::new()
        .u(x[0])
        .u(x[1])
        .u(x[2])
        .u(x[3])
        .u(out[1])
        .u(out[2])
        .u(window[0])
        .u(window[1])
        .u(stride[0])
        .u(stride[1])
        .i(win.pad_top as i64)
        .i(win.pad_left as i64)
        .u(total)
        .words();
    let k = match kind {
        PoolKind::Max => 0,
        PoolKind::Avg => 1,
    };
    Ok(vec![Dispatch {
        shader: Shader::Pool,
        entry: "pool2d",
        constants: vec![("KIND", k)],
        params,
        operands: vec![plain(0)],
        workgroups: grid64(total as u64, kl)?,
    }])
}
