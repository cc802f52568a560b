//! Reduce and GlobalPool (shaders/reduce.wgsl): one workgroup per output element.

use webinfer_core::ir::{PoolKind, ReduceKind};

use super::{collapse, count, grid, plain, strides, Dispatch, KernelLimits, Params, MAX_RANK};
use crate::shaders::Shader;

fn reduce_dispatch(
    kind: u32,
    x: &[usize],
    axes: &[usize],
    kl: &KernelLimits,
) -> Result<Vec<Dispatch>, String> {
    let sx = strides(x);
    let kept: Vec<usize> = (0..x.len()).filter(|i| !axes.contains(i)).collect();
    let total: usize = kept.iter().map(|&i| x[i]).product();
    if total == 0 {
        return Ok(vec![]);
    }
    // Kept axes: input stride and (row-major) output stride, merged where both are contiguous.
    let kept_sizes: Vec<usize> = kept.iter().map(|&i| x[i]).collect();
    let so = strides(&kept_sizes);
    let kv = collapse(
        &kept
            .iter()
            .enumerate()
            .map(|(j, &i)| (x[i], sx[i], so[j]))
            .collect::<Vec<_>>(),
    );
    // Reduced axes: input stride only (the second stride is a copy so that merging follows it).
    let rv = collapse(
        &axes
            .iter()
            .map(|&i| (x[i], sx[i], sx[i]))
            .collect::<Vec<_>>(),
    );
    if kv.len() > MAX_RANK || rv.len() > MAX_RANK {
        return Err(format!(
            "reduce of {x:?} over {axes:?} needs more than {MAX_RANK} axes"
        ));
    }
    let red_count: usize = axes.iter().map(|&i| x[i]).product();
    let col = |v: &[(usize, usize, usize)], f: fn(&(usize, usize, usize)) -> usize| {
        v.iter().map(f).collect::<Vec<_>>()
    };
    let params = Params::new()
        .u(total)
        .u(kv.len())
        .u(rv.len())
        .u(red_count)
        .arr8(&col(&kv, |d| d.0))
        .arr8(&col(&kv, |d| d.1))
        .arr8(&col(&rv, |d| d.0))
        .arr8(&col(&rv, |d| d.1))
        .words();
    Ok(vec![Dispatch {
        shader: Shader::Reduce,
        entry: "reduce",
        constants: vec![("KIND", kind)],
        params,
        operands: vec![plain(0)],
        workgroups: grid(total as u64, kl)?,
    }])
}

pub(super) fn reduce(
    kind: ReduceKind,
    axes: &[usize],
    ins: &[&[usize]],
    out: &[usize],
    kl: &KernelLimits,
) -> Result<Vec<Dispatch>, String> {
    if count(out) == 0 {
        return Ok(vec![]);
    }
    let k = match kind {
        ReduceKind::Sum => 0,
        ReduceKind::Mean => 1,
        ReduceKind::Max => 2,
        ReduceKind::Min => 3,
    };
    reduce_dispatch(k, ins[0], axes, kl)
}

pub(super) fn global_pool(
    kind: PoolKind,
    ins: &[&[usize]],
    out: &[usize],
    kl: &KernelLimits,
) -> Result<Vec<Dispatch>, String> {
    if count(out) == 0 {
        return Ok(vec![]);
    }
    let k = match kind {
        PoolKind::Max => 2,
        PoolKind::Avg => 1,
    };
    reduce_dispatch(k, ins[0], &[1, 2], kl)
}
