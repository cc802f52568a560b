//! Conv2d, Conv2dTranspose (shaders/conv2d.wgsl) and DepthwiseConv2d (shaders/depthwise.wgsl).

use webinfer_core::ir::{resolve_window, Conv2d};

use super::{
    act_code, act_constants, grid64, plain, Dispatch, KernelLimits, Layout, Operand, Params,
};
use crate::shaders::Shader;

fn bias_operand(ins: &[&[usize]]) -> (Operand, u32) {
    if ins.len() > 2 {
        (plain(2), 1)
    } else {
        (Operand::Absent, 0)
    }
}

/// Everything conv2d.wgsl's `Params` holds, for both the forward and the transposed conv.
struct ConvGeometry {
    x: [usize; 4],
    out: [usize; 4],
    groups: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    pad: [i64; 2],
    in_dilation: [usize; 2],
    cin_g: usize,
    cout_g: usize,
}

fn dims4(s: &[usize], what: &str) -> Result<[usize; 4], String> {
    s.try_into()
        .map_err(|_| format!("{what} must have rank 4, got {s:?}"))
}

fn conv_dispatch(
    g: ConvGeometry,
    c: &Conv2d,
    ins: &[&[usize]],
    layout: Layout,
    kl: &KernelLimits,
) -> Result<Vec<Dispatch>, String> {
    let [n, h, w, cin] = g.x;
    let [_, oh, ow, cout] = g.out;
    let pixels = n * oh * ow;
    if pixels == 0 || cout == 0 {
        return Ok(vec![]);
    }
    let quads_g = g.cout_g.div_ceil(4);
    let quads = g.groups * quads_g;
    let tiles = pixels.div_ceil(4);
    let (act, alpha) = act_code(c.activation);
    let (bias, has_bias) = bias_operand(ins);
    let params = Params::new()
        .u(n)
        .u(h)
        .u(w)
        .u(cin)
        .u(oh)
        .u(ow)
        .u(cout)
        .u(g.groups)
        .u(g.kernel[0])
        .u(g.kernel[1])
        .u(g.stride[0])
        .u(g.stride[1])
        .u(g.dilation[0])
        .u(g.dilation[1])
        .i(g.pad[0])
        .i(g.pad[1])
        .u(g.in_dilation[0])
        .u(g.in_dilation[1])
        .u(g.cin_g)
        .u(g.cout_g)
        .u(quads_g)
        .u(quads)
        .u(tiles)
        .u(pixels)
        .f(alpha)
        .u(act as usize)
        .u(has_bias as usize)
        .words();
    let entry = if g.cin_g % 4 == 0 {
        "conv2d_vec4"
    } else {
        "conv2d_scalar"
    };
    Ok(vec![Dispatch {
        shader: Shader::Conv2d,
        entry,
        constants: act_constants(act),
        params,
        operands: vec![plain(0), Operand::Value { index: 1, layout }, bias],
        workgroups: grid64(quads as u64 * tiles as u64, kl)?,
    }])
}

pub(super) fn conv2d(
    c: &Conv2d,
    ins: &[&[usize]],
    out: &[usize],
    kl: &KernelLimits,
) -> Result<Vec<Dispatch>, String> {
    let x = dims4(ins[0], "input")?;
    let wt = dims4(ins[1], "kernel")?;
    let groups = c.groups.max(1);
    let cout = wt[3];
    if cout % groups != 0 || x[3] % groups != 0 {
        return Err(format!(
            "channels {} -> {cout} do not split into {groups} groups",
            x[3]
        ));
    }
    let win = resolve_window(c.padding, [x[1], x[2]], c.kernel, c.stride, c.dilation)
        .ok_or("window does not fit the input")?;
    let g = ConvGeometry {
        x,
        out: dims4(out, "output")?,
        groups,
        kernel: c.kernel,
        stride: c.stride,
        dilation: c.dilation,
        pad: [win.pad_top as i64, win.pad_left as i64],
        in_dilation: [1, 1],
        cin_g: wt[2],
        cout_g: cout / groups,
    };
    conv_dispatch(g, c, ins, Layout::ConvWeights { groups }, kl)
}

/// The transposed conv as a stride-1 conv over the input dilated by the stride, with the kernel
/// flipped (done by [`Layout::ConvTransposeWeights`]) and padding `k - 1 - pad_before`, where
/// tfjs's `pad_before = floor(max(0, (in - 1) * s + k - out) / 2)`.
pub(super) fn conv2d_transpose(
    c: &Conv2d,
    ins: &[&[usize]],
    out: &[usize],
    kl: &KernelLimits,
) -> Result<Vec<Dispatch>, String> {
    if c.dilation != [1, 1] {
        return Err("dilated transposed convolution".into());
    }
    let x = dims4(ins[0], "input")?;
    let wt = dims4(ins[1], "kernel")?;
    let o = dims4(out, "output")?;
    let pad_before = |i: usize, k: usize, s: usize, out: usize| {
        ((i.saturating_sub(1) * s + k).saturating_sub(out) / 2) as i64
    };
    let ph = pad_before(x[1], c.kernel[0], c.stride[0], o[1]);
    let pw = pad_before(x[2], c.kernel[1], c.stride[1], o[2]);
    let g = ConvGeometry {
        x,
        out: o,
        groups: 1,
        kernel: c.kernel,
        stride: [1, 1],
        dilation: [1, 1],
        pad: [c.kernel[0] as i64 - 1 - ph, c.kernel[1] as i64 - 1 - pw],
        in_dilation: c.stride,
        cin_g: wt[3],
        cout_g: wt[2],
    };
    conv_dispatch(g, c, ins, Layout::ConvTransposeWeights, kl)
}

pub(super) fn depthwise(
    c: &Conv2d,
    ins: &[&[usize]],
    out: &[usize],
    kl: &KernelLimits,
) -> Result<Vec<Dispatch>, String> {
    let [n, h, w, ch] = dims4(ins[0], "input")?;
    let wt = dims4(ins[1], "kernel")?;
    let [_, oh, ow, cout] = dims4(out, "output")?;
    let mult = wt[3];
    let pixels = n * oh * ow;
    if pixels == 0 || cout == 0 {
        return Ok(vec![]);
    }
    let win = resolve_window(c.padding, [h, w], c.kernel, c.stride, c.dilation)
        .ok_or("window does not fit the input")?;
    let quads = cout.div_ceil(4);
    let tiles = pixels.div_ceil(4);
    let (act, alpha) = act_code(c.activation);
    let (bias, has_bias) = bias_operand(ins);
    let params = Params::new()
        .u(n)
        .u(h)
        .u(w)
        .u(ch)
        .u(oh)
        .u(ow)
        .u(cout)
        .u(mult)
        .u(c.kernel[0])
        .u(c.kernel[1])
        .u(c.stride[0])
        .u(c.stride[1])
        .u(c.dilation[0])
        .u(c.dilation[1])
        .i(win.pad_top as i64)
        .i(win.pad_left as i64)
        .u(quads)
        .u(tiles)
        .u(pixels)
        .f(alpha)
        .u(act as usize)
        .u(has_bias as usize)
        .words();
    let entry = if mult == 1 && ch % 4 == 0 {
        "depthwise_vec4"
    } else {
        "depthwise_scalar"
    };
    Ok(vec![Dispatch {
        shader: Shader::Depthwise,
        entry,
        constants: act_constants(act),
        params,
        operands: vec![
            plain(0),
            Operand::Value {
                index: 1,
                layout: Layout::DepthwiseWeights,
            },
            bias,
        ],
        workgroups: grid64(quads as u64 * tiles as u64, kl)?,
    }])
}
