//! MatMul with a fused bias + activation (shaders/matmul.wgsl).

use webinfer_core::ir::Activation;

use super::{
    act_code, act_constants, count, grid, plain, Dispatch, KernelLimits, Layout, Operand, Params,
};
use crate::shaders::Shader;

/// Below this many rows the 64-row tiled kernel would idle: use the row kernel.
const TILED_MIN_ROWS: usize = 32;

pub(super) fn matmul(
    activation: Activation,
    ins: &[&[usize]],
    out: &[usize],
    kl: &KernelLimits,
) -> Result<Vec<Dispatch>, String> {
    let x = ins[0];
    let k = *x.last().ok_or("matmul input must have rank >= 1")?;
    let n = ins[1][1];
    let m = count(&x[..x.len() - 1]);
    if count(out) == 0 {
        return Ok(vec![]);
    }
    let n4 = n.div_ceil(4);
    let (act, alpha) = act_code(activation);
    let (bias, has_bias) = if ins.len() > 2 {
        (plain(2), 1)
    } else {
        (Operand::Absent, 0)
    };
    let operands = vec![
        plain(0),
        Operand::Value {
            index: 1,
            layout: Layout::MatMulWeights,
        },
        bias,
    ];
    let d = if m >= TILED_MIN_ROWS {
        let (row_tiles, col_tiles) = (m.div_ceil(64), n4.div_ceil(16));
        Dispatch {
            shader: Shader::MatMul,
            entry: "matmul_tiled",
            constants: act_constants(act),
            params: Params::new()
                .u(m)
                .u(k)
                .u(n)
                .u(n4)
                .u(row_tiles)
                .u(col_tiles)
                .f(alpha)
                .u(act as usize)
                .u(has_bias)
                .words(),
            operands,
            workgroups: grid(row_tiles as u64 * col_tiles as u64, kl)?,
        }
    } else {
        // Here `row_tiles` counts groups of 4 rows, `col_tiles` blocks of 16 column quads.
        let (row_groups, col_blocks) = (m.div_ceil(4), n4.div_ceil(16));
        Dispatch {
            shader: Shader::MatMul,
            entry: "matmul_rows",
            constants: act_constants(act),
            params: Params::new()
                .u(m)
                .u(k)
                .u(n)
                .u(n4)
                .u(row_groups)
                .u(col_blocks)
                .f(alpha)
                .u(act as usize)
                .u(has_bias)
                .words(),
            operands,
            workgroups: grid(row_groups as u64 * col_blocks as u64, kl)?,
        }
    };
    Ok(vec![d])
}
