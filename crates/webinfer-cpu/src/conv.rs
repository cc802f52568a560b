//! Convolutions (regular, depthwise, transposed) and MatMul, on NHWC `f32` tensors, each with
//! its bias + activation epilogue fused.
//!
//! - Conv2d: the direct implicit-GEMM kernel of `igemm.rs` (no im2col buffer). The previous
//!   path stays behind `WEBINFER_CPU_CONV=gemm`, for comparisons and as a second opinion in
//!   the tests: a 1x1 stride-1 unpadded convolution as one GEMM on the input as it lies
//!   (`[n*h*w, cin] x [cin, cout]`), anything else through im2col, chunked over output rows
//!   so that the patch buffer stays under [`SCRATCH_FLOATS`]. The weight
//!   `[kh, kw, cin/groups, cout]` is the GEMM's `B` as it lies (groups take column slices).
//! - DepthwiseConv2d: a direct kernel, output rows split over threads, channels innermost.
//! - Conv2dTranspose: `[n*h*w, cin] x W^T [cin, kh*kw*cout]`, then a col2im scatter-add.
//! - MatMul: the direct kernel from [`DENSE_DIRECT_ROWS`] rows on, matrixmultiply's GEMM
//!   below (a direct row-times-matrix loop for a few rows); in WebAssembly, which has no
//!   matrixmultiply, the direct kernel from [`DENSE_STREAM_ROWS`] + 1 rows on for weights of
//!   up to [`DENSE_KEEP_PACKED_BYTES`], larger ones streamed below [`DENSE_DIRECT_ROWS`].

use std::cell::RefCell;

use crate::activation::apply_activation;
use crate::buffers::buffer;
use crate::gemm::{bias_act, gemm, Mat};
use crate::gemv;
use crate::igemm;
use crate::packed::PackCache;
use crate::par::{for_rows, Ctx};
use crate::simd::{dispatch, madd};
use webinfer_core::ir::{resolve_window, Conv2d, Padding};
use webinfer_core::{Activation, Tensor};

/// The largest im2col / col2im buffer, in `f32`s (8 MiB); one output row may exceed it.
const SCRATCH_FLOATS: usize = 2 << 20;

thread_local! {
    /// A per-thread scratch buffer reused across calls: an 8 MiB allocation per convolution
    /// would otherwise cost its page faults every time.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Run `f` on a scratch slice of `len` floats (contents unspecified).
pub(crate) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut buf = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    let r = f(&mut buf[..len]);
    // Keep a buffer of ordinary size for the next call; let an oversized one go.
    if buf.len() <= 2 * SCRATCH_FLOATS {
        SCRATCH.with(|s| *s.borrow_mut() = buf);
    }
    r
}

/// The resolved geometry of a window op (convolution, pooling) on one NHWC input.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geo {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub oh: usize,
    pub ow: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    pub pt: usize,
    pub pl: usize,
}

impl Geo {
    pub fn of_conv(p: &Conv2d, x: &[usize], out_shape: &[usize]) -> Result<Geo, String> {
        Geo::new(p.padding, p.kernel, p.stride, p.dilation, x, out_shape)
    }

    pub fn new(
        padding: Padding,
        kernel: [usize; 2],
        stride: [usize; 2],
        dilation: [usize; 2],
        x: &[usize],
        out_shape: &[usize],
    ) -> Result<Geo, String> {
        if stride.contains(&0) || dilation.contains(&0) {
            return Err(format!(
                "strides {stride:?} and dilations {dilation:?} must be positive"
            ));
        }
        let win = resolve_window(padding, [x[1], x[2]], kernel, stride, dilation)
            .ok_or_else(|| format!("window {kernel:?} does not fit input {x:?}"))?;
        debug_assert_eq!([win.out_h, win.out_w], [out_shape[1], out_shape[2]]);
        Ok(Geo {
            n: x[0],
            h: x[1],
            w: x[2],
            c: x[3],
            oh: out_shape[1],
            ow: out_shape[2],
            kh: kernel[0],
            kw: kernel[1],
            sh: stride[0],
            sw: stride[1],
            dh: dilation[0],
            dw: dilation[1],
            pt: win.pad_top,
            pl: win.pad_left,
        })
    }

    /// The taps `lo..hi` of the kernel row (`vertical`) or column that land inside the input
    /// for output position `o`.
    pub fn taps(&self, vertical: bool, o: usize) -> (usize, usize) {
        let (s, d, pad, size, k) = if vertical {
            (self.sh, self.dh, self.pt, self.h, self.kh)
        } else {
            (self.sw, self.dw, self.pl, self.w, self.kw)
        };
        tap_range(o * s, d, pad, size, k)
    }
}

/// Taps `t` in `lo..hi` with `pad <= base + t*d < size + pad` (`d >= 1`).
pub(crate) fn tap_range(
    base: usize,
    d: usize,
    pad: usize,
    size: usize,
    k: usize,
) -> (usize, usize) {
    let lo = if base >= pad {
        0
    } else {
        (pad - base).div_ceil(d)
    };
    let hi = if size + pad > base {
        (size + pad - base).div_ceil(d).min(k)
    } else {
        0
    };
    (lo.min(hi), hi)
}

/// `Op::Conv2d`: operands `x [n,h,w,cin]`, `w [kh,kw,cin/groups,cout]`, optional `bias [cout]`.
///
/// Not inlined (nor are the other kernels of this file): inlined, they made `eval` one
/// ~60 KB wasm function, which V8 runs in its baseline tier until it has executed a budget of
/// code and then takes long to optimize; measured in Chromium, the first ~10 predicts of a
/// single-conv model ran 2-5x slower.
#[inline(never)]
pub(crate) fn conv2d(
    ctx: Ctx,
    packs: Option<&PackCache>,
    p: &Conv2d,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    out_shape: &[usize],
) -> Result<Tensor, String> {
    conv2d_with(ctx, packs, conv_path(), p, x, w, bias, out_shape)
}

/// [`conv2d`] on the given path.
#[allow(clippy::too_many_arguments)]
fn conv2d_with(
    ctx: Ctx,
    packs: Option<&PackCache>,
    path: ConvPath,
    p: &Conv2d,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    out_shape: &[usize],
) -> Result<Tensor, String> {
    let g = Geo::of_conv(p, x.shape(), out_shape)?;
    let (cin_g, cout) = (w.shape()[2], w.shape()[3]);
    let groups = p.groups.max(1);
    if cout % groups != 0 {
        return Err(format!(
            "{cout} output channels are not divisible into {groups} groups"
        ));
    }
    let cout_g = cout / groups;
    let (x, w, bias) = (x.data(), w.data(), bias.map(Tensor::data));
    let mut out = buffer(g.n * g.oh * g.ow * cout, 0.0);
    if out.is_empty() {
        return Tensor::new(out_shape.to_vec(), out).map_err(|e| e.to_string());
    }
    let pointwise = g.kh == 1
        && g.kw == 1
        && g.sh == 1
        && g.sw == 1
        && g.pt == 0
        && g.pl == 0
        && g.oh == g.h
        && g.ow == g.w;
    if path == ConvPath::Direct {
        let conv = igemm::Conv {
            g,
            x,
            w,
            bias,
            groups,
            cout,
            act: p.activation,
            packs,
        };
        igemm::conv(ctx, &conv, &mut out);
    } else if pointwise {
        // The input is the GEMM's A as it lies: [n*h*w, cin]. One GEMM over all rows: cutting
        // it into cache-sized pieces for the epilogue measured slower (matrixmultiply threads
        // each call on its own).
        let m = g.n * g.h * g.w;
        for gi in 0..groups {
            let a = Mat::rows(&x[gi * cin_g..], g.c);
            gemm(
                m,
                cin_g,
                cout_g,
                a,
                Mat::rows(&w[gi * cout_g..], cout),
                &mut out[gi * cout_g..],
                cout,
            );
        }
        bias_act(ctx, &mut out, cout, bias, p.activation);
    } else {
        let k_len = g.kh * g.kw * cin_g;
        let patch_row = g.ow.checked_mul(k_len).ok_or("im2col row too large")?;
        let rows_per_chunk = (SCRATCH_FLOATS / patch_row.max(1)).clamp(1, g.n * g.oh);
        let out_row = g.ow * cout;
        with_scratch(rows_per_chunk * patch_row, |patches| {
            for (ci, chunk) in out.chunks_mut(rows_per_chunk * out_row).enumerate() {
                let r0 = ci * rows_per_chunk;
                let rows = chunk.len() / out_row;
                let m = rows * g.ow;
                for gi in 0..groups {
                    let patches = &mut patches[..m * k_len];
                    im2col(&g, x, gi * cin_g, cin_g, r0, rows, patches);
                    gemm(
                        m,
                        k_len,
                        cout_g,
                        Mat::rows(patches, k_len),
                        Mat::rows(&w[gi * cout_g..], cout),
                        &mut chunk[gi * cout_g..],
                        cout,
                    );
                }
                bias_act(ctx, chunk, cout, bias, p.activation);
            }
        });
    }
    Tensor::new(out_shape.to_vec(), out).map_err(|e| e.to_string())
}

/// How a Conv2d runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConvPath {
    /// The direct kernel (`igemm.rs`): the default.
    Direct,
    /// matrixmultiply's GEMM on the input (pointwise) or on im2col patches: the previous
    /// path, kept to compare against (`WEBINFER_CPU_CONV=gemm`) and as the tests' second
    /// opinion.
    Gemm,
}

/// The path for a convolution: the direct kernel unless `WEBINFER_CPU_CONV=gemm`, read on
/// every call (so that a benchmark can switch between the two, `examples/conv_layers.rs`),
/// or else at build time (wasm32 has no environment: build the package with it set to get
/// the old path in a browser).
fn conv_path() -> ConvPath {
    let run_time = std::env::var("WEBINFER_CPU_CONV").ok();
    match run_time.as_deref().or(option_env!("WEBINFER_CPU_CONV")) {
        Some("gemm") => ConvPath::Gemm,
        _ => ConvPath::Direct,
    }
}

/// Patch matrix rows for output rows `r0 .. r0 + rows` (global over batch x out height):
/// one row per output pixel, laid out `[ky][kx][c]` over channels `c0 .. c0 + cg`.
fn im2col(g: &Geo, x: &[f32], c0: usize, cg: usize, r0: usize, rows: usize, out: &mut [f32]) {
    let k_len = g.kh * g.kw * cg;
    if k_len == 0 {
        return;
    }
    let mut dst = out.chunks_exact_mut(k_len);
    for r in r0..r0 + rows {
        let (b, oy) = (r / g.oh, r % g.oh);
        let (ky0, ky1) = g.taps(true, oy);
        for ox in 0..g.ow {
            let Some(patch) = dst.next() else { return };
            let (kx0, kx1) = g.taps(false, ox);
            if ky1 - ky0 < g.kh || kx1 - kx0 < g.kw {
                patch.fill(0.0);
            }
            for ky in ky0..ky1 {
                let iy = oy * g.sh + ky * g.dh - g.pt;
                for kx in kx0..kx1 {
                    let ix = ox * g.sw + kx * g.dw - g.pl;
                    let src = ((b * g.h + iy) * g.w + ix) * g.c + c0;
                    patch[(ky * g.kw + kx) * cg..][..cg].copy_from_slice(&x[src..src + cg]);
                }
            }
        }
    }
}

/// `Op::DepthwiseConv2d`: operands `x [n,h,w,c]`, `w [kh,kw,c,mult]`, optional
/// `bias [c*mult]`; output channel `c*mult + m`.
#[inline(never)]
pub(crate) fn depthwise(
    ctx: Ctx,
    p: &Conv2d,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    out_shape: &[usize],
) -> Result<Tensor, String> {
    let g = Geo::of_conv(p, x.shape(), out_shape)?;
    let mult = w.shape()[3];
    let cm = g.c * mult;
    let row_len = g.ow * cm;
    let mut out = buffer(g.n * g.oh * row_len, 0.0);
    let args = DwArgs {
        g,
        x: x.data(),
        w: w.data(),
        bias: bias.map(Tensor::data),
        mult,
        act: p.activation,
    };
    for_rows(ctx, &mut out, row_len, row_len * g.kh * g.kw, |r0, rows| {
        for (i, orow) in rows.chunks_exact_mut(row_len).enumerate() {
            depthwise_row(&args, r0 + i, orow);
        }
    });
    Tensor::new(out_shape.to_vec(), out).map_err(|e| e.to_string())
}

struct DwArgs<'a> {
    g: Geo,
    x: &'a [f32],
    w: &'a [f32],
    bias: Option<&'a [f32]>,
    mult: usize,
    act: Activation,
}

/// Channels per register block of the depthwise kernel.
const DW_BLOCK: usize = 16;
/// Output pixels computed together by the depthwise kernel's interior path (each weight
/// vector is loaded once for all of them).
const DW_PIXELS: usize = 4;

dispatch! {
    /// One output row `r` (global over batch x out height) of a depthwise convolution.
    fn depthwise_row<FMA>(a: &DwArgs, r: usize, orow: &mut [f32]) {
        let g = &a.g;
        let cm = g.c * a.mult;
        if cm == 0 {
            return;
        }
        let (b, oy) = (r / g.oh, r % g.oh);
        let row = DwRow { b, oy, ky: g.taps(true, oy) };
        if a.mult == 1 {
            // Interior runs of DW_PIXELS pixels whose taps all land inside the input take
            // the blocked path; the borders go pixel by pixel.
            let full = |ox: usize| g.taps(false, ox) == (0, g.kw);
            let mut ox = 0;
            while ox < g.ow {
                if ox + DW_PIXELS <= g.ow && full(ox) && full(ox + DW_PIXELS - 1) {
                    dw_pixels::<FMA>(a, &row, ox, &mut orow[ox * cm..(ox + DW_PIXELS) * cm]);
                    ox += DW_PIXELS;
                } else {
                    dw_pixel::<FMA>(a, &row, ox, &mut orow[ox * cm..(ox + 1) * cm]);
                    ox += 1;
                }
            }
        } else {
            for (ox, acc) in orow.chunks_exact_mut(cm).enumerate() {
                dw_pixel_mult::<FMA>(a, &row, ox, acc);
            }
        }
        apply_activation(a.act, orow);
    }
}

/// The output row a depthwise kernel works on: image `b`, row `oy`, valid kernel rows `ky`.
struct DwRow {
    b: usize,
    oy: usize,
    ky: (usize, usize),
}

impl DwArgs<'_> {
    /// Offset of input pixel `(iy, ix)` of image `b` (channel 0).
    #[inline(always)]
    fn pixel(&self, row: &DwRow, ky: usize, ox: usize, kx: usize) -> usize {
        let g = &self.g;
        let iy = row.oy * g.sh + ky * g.dh - g.pt;
        let ix = ox * g.sw + kx * g.dw - g.pl;
        ((row.b * g.h + iy) * g.w + ix) * g.c
    }

    /// The accumulator start for channels `c0 .. c0 + len`: the bias or zeros.
    #[inline(always)]
    fn init(&self, dst: &mut [f32], c0: usize) {
        match self.bias {
            Some(bias) => dst.copy_from_slice(&bias[c0..c0 + dst.len()]),
            None => dst.fill(0.0),
        }
    }
}

/// `DW_PIXELS` adjacent interior output pixels (every tap inside the input), `mult == 1`.
#[inline(always)]
fn dw_pixels<const FMA: bool>(a: &DwArgs, row: &DwRow, ox: usize, out: &mut [f32]) {
    let (g, c) = (&a.g, a.g.c);
    let mut c0 = 0;
    while c0 + DW_BLOCK <= c {
        let mut s = [[0.0f32; DW_BLOCK]; DW_PIXELS];
        for acc in s.iter_mut() {
            a.init(acc, c0);
        }
        for ky in row.ky.0..row.ky.1 {
            for kx in 0..g.kw {
                let wo = (ky * g.kw + kx) * c + c0;
                let ws: &[f32; DW_BLOCK] = a.w[wo..wo + DW_BLOCK].try_into().unwrap();
                for (p, acc) in s.iter_mut().enumerate() {
                    let xo = a.pixel(row, ky, ox + p, kx) + c0;
                    let xs: &[f32; DW_BLOCK] = a.x[xo..xo + DW_BLOCK].try_into().unwrap();
                    for j in 0..DW_BLOCK {
                        acc[j] = madd::<FMA>(xs[j], ws[j], acc[j]);
                    }
                }
            }
        }
        for (p, acc) in s.iter().enumerate() {
            out[p * c + c0..p * c + c0 + DW_BLOCK].copy_from_slice(acc);
        }
        c0 += DW_BLOCK;
    }
    if c0 < c {
        for p in 0..DW_PIXELS {
            dw_channels::<FMA>(
                a,
                row,
                ox + p,
                (0, g.kw),
                c0,
                &mut out[p * c + c0..(p + 1) * c],
            );
        }
    }
}

/// One output pixel, `mult == 1`, any taps.
#[inline(always)]
fn dw_pixel<const FMA: bool>(a: &DwArgs, row: &DwRow, ox: usize, out: &mut [f32]) {
    let kx = a.g.taps(false, ox);
    let c = a.g.c;
    let mut c0 = 0;
    while c0 + DW_BLOCK <= c {
        // DW_BLOCK accumulators live in registers across all taps.
        let mut s = [0.0f32; DW_BLOCK];
        a.init(&mut s, c0);
        for ky in row.ky.0..row.ky.1 {
            for kx in kx.0..kx.1 {
                let (xo, wo) = (a.pixel(row, ky, ox, kx) + c0, (ky * a.g.kw + kx) * c + c0);
                let xs: &[f32; DW_BLOCK] = a.x[xo..xo + DW_BLOCK].try_into().unwrap();
                let ws: &[f32; DW_BLOCK] = a.w[wo..wo + DW_BLOCK].try_into().unwrap();
                for j in 0..DW_BLOCK {
                    s[j] = madd::<FMA>(xs[j], ws[j], s[j]);
                }
            }
        }
        out[c0..c0 + DW_BLOCK].copy_from_slice(&s);
        c0 += DW_BLOCK;
    }
    if c0 < c {
        dw_channels::<FMA>(a, row, ox, kx, c0, &mut out[c0..]);
    }
}

/// Channels `c0 ..` of one output pixel (`mult == 1`) over taps `kx`, accumulating in `out`.
#[inline(always)]
fn dw_channels<const FMA: bool>(
    a: &DwArgs,
    row: &DwRow,
    ox: usize,
    kx: (usize, usize),
    c0: usize,
    out: &mut [f32],
) {
    let c = a.g.c;
    a.init(out, c0);
    for ky in row.ky.0..row.ky.1 {
        for kx in kx.0..kx.1 {
            let (xo, wo) = (a.pixel(row, ky, ox, kx), (ky * a.g.kw + kx) * c);
            let (xs, ws) = (&a.x[xo + c0..xo + c], &a.w[wo + c0..wo + c]);
            for ((s, &xv), &wv) in out.iter_mut().zip(xs).zip(ws) {
                *s = madd::<FMA>(xv, wv, *s);
            }
        }
    }
}

/// One output pixel with a channel multiplier: output channel `c * mult + m`.
#[inline(always)]
fn dw_pixel_mult<const FMA: bool>(a: &DwArgs, row: &DwRow, ox: usize, acc: &mut [f32]) {
    let (c, mult) = (a.g.c, a.mult);
    let cm = c * mult;
    let kx = a.g.taps(false, ox);
    a.init(acc, 0);
    for ky in row.ky.0..row.ky.1 {
        for kx in kx.0..kx.1 {
            let (xo, wo) = (a.pixel(row, ky, ox, kx), (ky * a.g.kw + kx) * cm);
            let (xs, ws) = (&a.x[xo..xo + c], &a.w[wo..wo + cm]);
            for ((s, w), &xv) in acc
                .chunks_exact_mut(mult)
                .zip(ws.chunks_exact(mult))
                .zip(xs)
            {
                for (s, &wv) in s.iter_mut().zip(w) {
                    *s = madd::<FMA>(xv, wv, *s);
                }
            }
        }
    }
}

/// `Op::Conv2dTranspose`: operands `x [n,h,w,cin]`, `w [kh,kw,cout,cin]`, optional `bias [cout]`.
#[inline(never)]
pub(crate) fn conv2d_transpose(
    ctx: Ctx,
    p: &Conv2d,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    out_shape: &[usize],
) -> Result<Tensor, String> {
    if p.dilation != [1, 1] {
        return Err(format!(
            "dilation {:?} is not supported by transposed convolution",
            p.dilation
        ));
    }
    if p.groups > 1 {
        return Err(format!(
            "{} groups are not supported by transposed convolution",
            p.groups
        ));
    }
    let [n, h, wd, cin] = x.shape().try_into().map_err(|_| "input must be rank 4")?;
    let [kh, kw, cout, _] = w.shape().try_into().map_err(|_| "kernel must be rank 4")?;
    let (oh, ow) = (out_shape[1], out_shape[2]);
    let [sh, sw] = p.stride;
    // Padding of the forward convolution that maps the output back onto the input (as TF).
    let pad = |i: usize, k: usize, s: usize, o: usize, explicit: usize| match p.padding {
        Padding::Valid => 0,
        Padding::Same => ((i.saturating_sub(1)) * s + k).saturating_sub(o) / 2,
        Padding::Explicit(_) => explicit,
    };
    let (ep_top, ep_left) = match p.padding {
        Padding::Explicit(e) => (e[0], e[2]),
        _ => (0, 0),
    };
    let pt = pad(h, kh, sh, oh, ep_top);
    let pl = pad(wd, kw, sw, ow, ep_left);
    let mut out = buffer(n * oh * ow * cout, 0.0);
    let kcols = kh * kw * cout;
    if out.is_empty() || kcols == 0 {
        return Tensor::new(out_shape.to_vec(), out).map_err(|e| e.to_string());
    }
    let (xd, wdat) = (x.data(), w.data());
    let cols_row = wd.checked_mul(kcols).ok_or("col2im row too large")?;
    let rows_per_chunk = (SCRATCH_FLOATS / cols_row.max(1)).clamp(1, (n * h).max(1));
    with_scratch(rows_per_chunk * cols_row, |cols| {
        let mut r0 = 0;
        while r0 < n * h {
            let rows = rows_per_chunk.min(n * h - r0);
            let m = rows * wd;
            let cols = &mut cols[..m * kcols];
            // cols[pixel, (ky, kx, co)] = sum_ci x[pixel, ci] * w[ky, kx, co, ci]
            gemm(
                m,
                cin,
                kcols,
                Mat::rows(&xd[r0 * wd * cin..], cin),
                Mat {
                    data: wdat,
                    rs: 1,
                    cs: cin,
                },
                cols,
                kcols,
            );
            // Scatter-add each input pixel's contributions into the output image.
            for (pi, col) in cols.chunks_exact(kcols).enumerate() {
                let r = r0 + pi / wd;
                let (b, iy, ix) = (r / h, r % h, pi % wd);
                for ky in 0..kh {
                    let Some(oy) = (iy * sh + ky).checked_sub(pt).filter(|&y| y < oh) else {
                        continue;
                    };
                    for kx in 0..kw {
                        let Some(ox) = (ix * sw + kx).checked_sub(pl).filter(|&x| x < ow) else {
                            continue;
                        };
                        let dst = &mut out[((b * oh + oy) * ow + ox) * cout..][..cout];
                        add_into(dst, &col[(ky * kw + kx) * cout..][..cout]);
                    }
                }
            }
            r0 += rows;
        }
    });
    bias_act(ctx, &mut out, cout, bias.map(Tensor::data), p.activation);
    Tensor::new(out_shape.to_vec(), out).map_err(|e| e.to_string())
}

dispatch! {
    /// `dst += src`.
    fn add_into<FMA>(dst: &mut [f32], src: &[f32]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d += s;
        }
    }
}

/// Rows of `x` from which MatMul runs on the direct kernel when its weights are packed per
/// call: the copy costs about as much as the product itself with 32 rows of 2048x2048
/// (measured). Below, matrixmultiply's [`gemm`].
const DENSE_DIRECT_ROWS: usize = 64;

/// Rows of `x` from which MatMul runs on the direct kernel when its packed weights are kept
/// between calls (a graph constant run by a `CpuBackend`). With fewer, most of its register
/// tile (6 rows natively, 4 on wasm32) would be wasted: streaming measured faster.
const DENSE_CACHED_ROWS: usize = 3;

/// Rows of `x` up to which MatMul streams the weights as they lie ([`gemv::small_rows`])
/// when they are not kept packed (below [`DENSE_CACHED_ROWS`] when they are).
const DENSE_STREAM_ROWS: usize = 8;

/// Dense weights are kept packed between runs only up to this size: a packed copy of a
/// large dense layer would double the model's memory (dense weights are most of a dense
/// model), for a product that streams the weights nearly as fast with up to
/// [`DENSE_STREAM_ROWS`] rows. Conv weights are always kept (they are small next to the
/// activations, and packing them per call is what costs).
const DENSE_KEEP_PACKED_BYTES: usize = 1 << 20;

/// `Op::MatMul`: operands `x [..., k]`, `w [k, n]`, optional `bias [n]`. `packs` is where
/// the weights' panels are kept when `w` is a graph constant.
#[inline(never)]
pub(crate) fn matmul(
    ctx: Ctx,
    packs: Option<&PackCache>,
    act: Activation,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    out_shape: &[usize],
) -> Result<Tensor, String> {
    let [k, n] = w.shape().try_into().map_err(|_| "kernel must be rank 2")?;
    let m: usize = x.shape()[..x.rank().saturating_sub(1)].iter().product();
    let mut out = buffer(m * n, 0.0);
    let packs = packs.filter(|_| w.data().len() * 4 <= DENSE_KEEP_PACKED_BYTES);
    let (stream_rows, direct_rows) = if packs.is_some() {
        (DENSE_CACHED_ROWS - 1, DENSE_CACHED_ROWS)
    } else if cfg!(target_arch = "wasm32") {
        // No matrixmultiply in WebAssembly (see `gemm`). Below DENSE_DIRECT_ROWS rows, weights
        // over DENSE_KEEP_PACKED_BYTES are streamed (16x1024x1024 1.6 -> 1.1 ms, 32x2048x2048
        // 10.4 -> 8.4 ms in node), smaller ones go to the direct kernel, whose packing then
        // stays in cache (9x256x256 80 -> 56 us, 63x256x512 461 -> 324 us).
        if w.data().len() * 4 > DENSE_KEEP_PACKED_BYTES {
            (DENSE_DIRECT_ROWS - 1, DENSE_DIRECT_ROWS)
        } else {
            (DENSE_STREAM_ROWS, DENSE_STREAM_ROWS + 1)
        }
    } else {
        (DENSE_STREAM_ROWS, DENSE_DIRECT_ROWS)
    };
    if m <= stream_rows {
        // Bound by the weights' memory traffic: read them once, as they lie.
        gemv::small_rows(ctx, m, k, n, x.data(), w.data(), &mut out);
    } else if m >= direct_rows && conv_path() == ConvPath::Direct {
        // The direct kernel as a 1x1 convolution over an `m x 1` image (one output row per
        // row of `x`, so that threads split the rows): as fast as matrixmultiply here, and
        // it keeps its speed when a thread is preempted (its rows are handed out in small
        // pieces, where matrixmultiply waits for a fixed half).
        let bias = bias.map(Tensor::data);
        igemm::matmul(ctx, m, k, n, x.data(), w.data(), bias, act, packs, &mut out);
        return Tensor::new(out_shape.to_vec(), out).map_err(|e| e.to_string());
    } else {
        gemm(
            m,
            k,
            n,
            Mat::rows(x.data(), k),
            Mat::rows(w.data(), n),
            &mut out,
            n,
        );
    }
    bias_act(ctx, &mut out, n, bias.map(Tensor::data), act);
    Tensor::new(out_shape.to_vec(), out).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::apply_activation;
    use crate::testutil::{assert_close, assert_close_tol, Rng};
    use crate::{eval_op, Op};

    /// Signed input coordinate of tap `k` for output `o`.
    fn coord(o: usize, k: usize, s: usize, d: usize, pad: usize) -> isize {
        (o * s + k * d) as isize - pad as isize
    }

    /// Conv2d from the definition (also depthwise when `depthwise`), in f64.
    fn naive_conv(
        p: &Conv2d,
        x: &Tensor,
        w: &Tensor,
        bias: Option<&Tensor>,
        depthwise: bool,
    ) -> (Vec<usize>, Vec<f32>) {
        let [n, h, wd, cin]: [usize; 4] = x.shape().try_into().unwrap();
        let [kh, kw, wc, wm]: [usize; 4] = w.shape().try_into().unwrap();
        let win = resolve_window(p.padding, [h, wd], p.kernel, p.stride, p.dilation).unwrap();
        let cout = if depthwise { wc * wm } else { wm };
        let groups = p.groups.max(1);
        let mut out = Vec::new();
        for b in 0..n {
            for oy in 0..win.out_h {
                for ox in 0..win.out_w {
                    for co in 0..cout {
                        let mut s = bias.map_or(0.0, |t| t.data()[co] as f64);
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = coord(oy, ky, p.stride[0], p.dilation[0], win.pad_top);
                                let ix = coord(ox, kx, p.stride[1], p.dilation[1], win.pad_left);
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                    continue;
                                }
                                let px = ((b * h + iy as usize) * wd + ix as usize) * cin;
                                if depthwise {
                                    let (c, m) = (co / wm, co % wm);
                                    s += x.data()[px + c] as f64
                                        * w.data()[((ky * kw + kx) * wc + c) * wm + m] as f64;
                                } else {
                                    let cin_g = wc;
                                    let g = co / (cout / groups);
                                    for ci in 0..cin_g {
                                        s += x.data()[px + g * cin_g + ci] as f64
                                            * w.data()[((ky * kw + kx) * cin_g + ci) * cout + co]
                                                as f64;
                                    }
                                }
                            }
                        }
                        out.push(s as f32);
                    }
                }
            }
        }
        apply_activation(p.activation, &mut out);
        (vec![n, win.out_h, win.out_w, cout], out)
    }

    /// Transposed convolution from its scatter definition: `y[i*s + a - pad] += x[i] * K[a]`.
    fn naive_transpose(
        p: &Conv2d,
        x: &Tensor,
        w: &Tensor,
        bias: Option<&Tensor>,
    ) -> (Vec<usize>, Vec<f32>) {
        let [n, h, wd, cin]: [usize; 4] = x.shape().try_into().unwrap();
        let [kh, kw, cout, _]: [usize; 4] = w.shape().try_into().unwrap();
        let [sh, sw] = p.stride;
        let size = |i: usize, k: usize, s: usize| {
            if p.padding == Padding::Same {
                i * s
            } else {
                i * s + k.saturating_sub(s)
            }
        };
        let (oh, ow) = (size(h, kh, sh), size(wd, kw, sw));
        let pad = |i: usize, k: usize, s: usize, o: usize| {
            if p.padding == Padding::Same {
                ((i - 1) * s + k).saturating_sub(o) / 2
            } else {
                0
            }
        };
        let (pt, pl) = (pad(h, kh, sh, oh), pad(wd, kw, sw, ow));
        let mut acc = vec![0.0f64; n * oh * ow * cout];
        for b in 0..n {
            for iy in 0..h {
                for ix in 0..wd {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let oy = (iy * sh + ky) as isize - pt as isize;
                            let ox = (ix * sw + kx) as isize - pl as isize;
                            if oy < 0 || ox < 0 || oy >= oh as isize || ox >= ow as isize {
                                continue;
                            }
                            for co in 0..cout {
                                for ci in 0..cin {
                                    acc[((b * oh + oy as usize) * ow + ox as usize) * cout + co] +=
                                        x.data()[((b * h + iy) * wd + ix) * cin + ci] as f64
                                            * w.data()[((ky * kw + kx) * cout + co) * cin + ci]
                                                as f64;
                                }
                            }
                        }
                    }
                }
            }
        }
        let mut out: Vec<f32> = acc
            .iter()
            .enumerate()
            .map(|(i, &v)| (v + bias.map_or(0.0, |t| t.data()[i % cout] as f64)) as f32)
            .collect();
        apply_activation(p.activation, &mut out);
        (vec![n, oh, ow, cout], out)
    }

    const ACTS: [Activation; 5] = [
        Activation::Linear,
        Activation::Relu,
        Activation::Relu6,
        Activation::Sigmoid,
        Activation::LeakyRelu(0.2),
    ];

    fn random_conv(rng: &mut Rng, case: usize) -> Conv2d {
        let kernel = [rng.int(1, 3), rng.int(1, 3)];
        let stride = [rng.int(1, 2), rng.int(1, 2)];
        let dilation = if case % 4 == 3 {
            [2, rng.int(1, 2)]
        } else {
            [1, 1]
        };
        let padding = match case % 3 {
            0 => Padding::Valid,
            1 => Padding::Same,
            _ => Padding::Explicit([rng.int(0, 2), rng.int(0, 2), rng.int(0, 2), rng.int(0, 2)]),
        };
        Conv2d {
            kernel,
            stride,
            dilation,
            padding,
            groups: 1,
            activation: ACTS[case % ACTS.len()],
        }
    }

    /// An input big enough for the window, with odd sizes mixed in.
    fn input_for(rng: &mut Rng, p: &Conv2d, c: usize) -> Tensor {
        let eff = |k: usize, d: usize| (k - 1) * d + 1;
        let h = rng.int(eff(p.kernel[0], p.dilation[0]), 9);
        let w = rng.int(eff(p.kernel[1], p.dilation[1]), 8);
        let n = rng.int(1, 2);
        rng.tensor(&[n, h, w, c])
    }

    #[test]
    fn conv2d_matches_naive() {
        let mut rng = Rng::new(61);
        for case in 0..150 {
            let mut p = random_conv(&mut rng, case);
            p.groups = rng.pick(&[1, 1, 2, 3]);
            let cin_g = rng.int(1, 4);
            let cout = p.groups * rng.int(1, 5);
            let x = input_for(&mut rng, &p, cin_g * p.groups);
            let w = rng.tensor(&[p.kernel[0], p.kernel[1], cin_g, cout]);
            let bias = rng.bool().then(|| rng.tensor(&[cout]));
            let (shape, want) = naive_conv(&p, &x, &w, bias.as_ref(), false);
            let mut ins = vec![&x, &w];
            ins.extend(bias.as_ref());
            let got = eval_op(&Op::Conv2d(p.clone()), &ins, &shape).unwrap();
            assert_close(
                &format!("conv2d case {case} {p:?} x{:?} w{:?}", x.shape(), w.shape()),
                &got,
                &shape,
                &want,
            );
            // The GEMM path (not the default any more) against the same reference.
            let got = conv2d_with(CTX, None, ConvPath::Gemm, &p, &x, &w, bias.as_ref(), &shape);
            assert_close(
                &format!(
                    "gemm path, case {case} {p:?} x{:?} w{:?}",
                    x.shape(),
                    w.shape()
                ),
                &got.unwrap(),
                &shape,
                &want,
            );
        }
    }

    const CTX: Ctx = Ctx { threads: 3 };

    /// Both paths on `x`, `w`, `bias` against the f64 reference, with tolerance `tol`.
    #[track_caller]
    fn check_paths(
        case: &str,
        p: &Conv2d,
        x: &Tensor,
        w: &Tensor,
        bias: Option<&Tensor>,
        tol: f32,
    ) {
        let (shape, want) = naive_conv(p, x, w, bias, false);
        for path in [ConvPath::Direct, ConvPath::Gemm] {
            let got = conv2d_with(CTX, None, path, p, x, w, bias, &shape).unwrap();
            let name = format!("{case} {path:?} {p:?} x{:?} w{:?}", x.shape(), w.shape());
            assert_close_tol(&name, &got, &shape, &want, tol);
        }
    }

    /// The direct kernel's edge cases: channel counts around its register tile (MR pixels x
    /// NR channels) and below it, one and several groups, strides, dilations, every padding,
    /// batch 2, taps in the padding on every side, tiles spanning output rows and images.
    #[test]
    fn direct_conv_odd_shapes() {
        let mut rng = Rng::new(66);
        let nr = igemm::NR;
        let couts = [1, 2, 5, nr - 1, nr, nr + 1, 2 * nr + 3];
        let mut case = 0;
        for cin in [1, 3, 5, 8, 17] {
            for &cout in &couts {
                for (kernel, stride, dilation) in [
                    ([3, 3], [1, 1], [1, 1]),
                    ([3, 3], [2, 2], [1, 1]),
                    ([3, 2], [1, 2], [2, 1]),
                    ([1, 3], [2, 1], [1, 2]),
                    ([1, 1], [1, 1], [1, 1]),
                    ([5, 5], [1, 1], [1, 1]),
                ] {
                    let padding = match case % 4 {
                        0 => Padding::Same,
                        1 => Padding::Valid,
                        2 => Padding::Explicit([2, 0, 1, 2]),
                        _ => Padding::Same,
                    };
                    let p = Conv2d {
                        kernel,
                        stride,
                        dilation,
                        padding,
                        groups: 1,
                        activation: ACTS[case % ACTS.len()],
                    };
                    let (h, w) = (rng.int(5, 11), rng.int(5, 13));
                    let x = rng.tensor(&[2, h, w, cin]);
                    let wt = rng.tensor(&[kernel[0], kernel[1], cin, cout]);
                    let b = (case % 3 != 0).then(|| rng.tensor(&[cout]));
                    check_paths(&format!("odd case {case}"), &p, &x, &wt, b.as_ref(), 1e-5);
                    case += 1;
                }
            }
        }
        // Groups: one segment per tap (a group's channels are not contiguous across taps).
        for (groups, cin_g, cout_g) in [(2, 3, 5), (3, 1, nr + 2), (4, 5, 1), (2, 8, nr)] {
            let p = Conv2d {
                kernel: [3, 3],
                stride: [1, 2],
                dilation: [1, 1],
                padding: Padding::Same,
                groups,
                activation: Activation::Relu6,
            };
            let x = rng.tensor(&[2, 7, 9, groups * cin_g]);
            let w = rng.tensor(&[3, 3, cin_g, groups * cout_g]);
            let b = rng.tensor(&[groups * cout_g]);
            check_paths(&format!("groups {groups}"), &p, &x, &w, Some(&b), 1e-5);
        }
    }

    /// Shapes big enough for the direct kernel's other loop order (weights over 256 KiB),
    /// several pixel blocks per thread chunk, and the work split over threads.
    #[test]
    fn direct_conv_large() {
        let mut rng = Rng::new(67);
        for (h, cin, cout, k, s) in [
            (12, 96, 80, 3, 1),  // k * cout = 69120 floats: channel blocks outermost
            (33, 3, 32, 3, 2),   // MobileNet's first layer, smaller
            (20, 24, 40, 1, 1),  // pointwise
            (16, 160, 48, 3, 2), // strided, channel tail
        ] {
            let p = Conv2d {
                kernel: [k, k],
                stride: [s, s],
                dilation: [1, 1],
                padding: Padding::Same,
                groups: 1,
                activation: Activation::Relu,
            };
            let x = rng.tensor(&[2, h, h + 1, cin]);
            let w = rng.tensor(&[k, k, cin, cout]);
            let b = rng.tensor(&[cout]);
            // Long f32 dot products: allow their rounding drift.
            check_paths(
                &format!("large {h}x{cin}->{cout}"),
                &p,
                &x,
                &w,
                Some(&b),
                1e-4,
            );
        }
    }

    /// The fused ReLU / ReLU6 / ReluMax keep NaN as the activation functions do (tfjs).
    #[test]
    fn direct_conv_fused_relu_keeps_nan() {
        for act in [
            Activation::Relu,
            Activation::Relu6,
            Activation::ReluMax(2.0),
        ] {
            let p = Conv2d {
                kernel: [1, 1],
                stride: [1, 1],
                dilation: [1, 1],
                padding: Padding::Valid,
                groups: 1,
                activation: act,
            };
            let x = Tensor::new(vec![1, 1, 3, 1], vec![f32::NAN, -1.0, 10.0]).unwrap();
            let w = Tensor::new(vec![1, 1, 1, 2], vec![1.0, 1.0]).unwrap();
            let got =
                conv2d_with(CTX, None, ConvPath::Direct, &p, &x, &w, None, &[1, 1, 3, 2]).unwrap();
            let mut want = vec![f32::NAN, f32::NAN, -1.0, -1.0, 10.0, 10.0];
            apply_activation(act, &mut want);
            assert_close(&format!("{act:?}"), &got, &[1, 1, 3, 2], &want);
        }
    }

    #[test]
    fn conv2d_pointwise_and_chunked_paths() {
        let mut rng = Rng::new(62);
        // Pointwise (plain GEMM) over more than one row chunk, with groups and without.
        for groups in [1, 2] {
            let p = Conv2d {
                kernel: [1, 1],
                stride: [1, 1],
                dilation: [1, 1],
                padding: Padding::Same,
                groups,
                activation: Activation::Relu,
            };
            let x = rng.tensor(&[2, 23, 31, 8]);
            let w = rng.tensor(&[1, 1, 8 / groups, 6]);
            let b = rng.tensor(&[6]);
            let (shape, want) = naive_conv(&p, &x, &w, Some(&b), false);
            let got = eval_op(&Op::Conv2d(p.clone()), &[&x, &w, &b], &shape).unwrap();
            assert_close(&format!("pointwise groups {groups}"), &got, &shape, &want);
        }
        // A 1x1 stride-2 conv goes through im2col.
        let p = Conv2d {
            kernel: [1, 1],
            stride: [2, 2],
            dilation: [1, 1],
            padding: Padding::Valid,
            groups: 1,
            activation: Activation::Linear,
        };
        let x = rng.tensor(&[1, 7, 6, 5]);
        let w = rng.tensor(&[1, 1, 5, 3]);
        let (shape, want) = naive_conv(&p, &x, &w, None, false);
        assert_close(
            "1x1 stride 2",
            &eval_op(&Op::Conv2d(p), &[&x, &w], &shape).unwrap(),
            &shape,
            &want,
        );
        // im2col chunked over output rows (one row of patches is 64*576 floats).
        let p = Conv2d {
            kernel: [3, 3],
            stride: [1, 1],
            dilation: [1, 1],
            padding: Padding::Same,
            groups: 1,
            activation: Activation::Relu6,
        };
        let x = rng.tensor(&[1, 64, 64, 64]);
        let w = rng.tensor(&[3, 3, 64, 8]);
        let (shape, want) = naive_conv(&p, &x, &w, None, false);
        const {
            assert!(
                SCRATCH_FLOATS / (64 * 576) < 64,
                "the case must span several chunks"
            )
        };
        // 576-term f32 dot products: allow their rounding drift.
        assert_close_tol(
            "chunked im2col",
            &eval_op(&Op::Conv2d(p), &[&x, &w], &shape).unwrap(),
            &shape,
            &want,
            1e-4,
        );
    }

    #[test]
    fn conv2d_rejects_bad_groups() {
        let p = Conv2d {
            kernel: [1, 1],
            stride: [1, 1],
            dilation: [1, 1],
            padding: Padding::Valid,
            groups: 2,
            activation: Activation::Linear,
        };
        let x = Tensor::zeros(vec![1, 2, 2, 4]);
        let w = Tensor::zeros(vec![1, 1, 2, 3]);
        let err = eval_op(&Op::Conv2d(p), &[&x, &w], &[1, 2, 2, 3]).unwrap_err();
        assert!(err.contains("groups"), "{err}");
    }

    #[test]
    fn depthwise_matches_naive() {
        let mut rng = Rng::new(63);
        for case in 0..150 {
            let p = random_conv(&mut rng, case);
            let mult = rng.pick(&[1, 1, 2, 3]);
            // Channel counts around the 16-wide register block.
            let c = rng.pick(&[1, 3, 5, 16, 17, 35]);
            let x = input_for(&mut rng, &p, c);
            let w = rng.tensor(&[p.kernel[0], p.kernel[1], c, mult]);
            let bias = rng.bool().then(|| rng.tensor(&[c * mult]));
            let (shape, want) = naive_conv(&p, &x, &w, bias.as_ref(), true);
            let mut ins = vec![&x, &w];
            ins.extend(bias.as_ref());
            let got = eval_op(&Op::DepthwiseConv2d(p.clone()), &ins, &shape).unwrap();
            assert_close(
                &format!(
                    "depthwise case {case} {p:?} x{:?} w{:?}",
                    x.shape(),
                    w.shape()
                ),
                &got,
                &shape,
                &want,
            );
        }
        // Big enough to split over threads.
        let p = Conv2d {
            kernel: [3, 3],
            stride: [1, 1],
            dilation: [1, 1],
            padding: Padding::Same,
            groups: 1,
            activation: Activation::Relu6,
        };
        let x = rng.tensor(&[2, 40, 40, 32]);
        let w = rng.tensor(&[3, 3, 32, 1]);
        let b = rng.tensor(&[32]);
        let (shape, want) = naive_conv(&p, &x, &w, Some(&b), true);
        assert_close(
            "threaded depthwise",
            &eval_op(&Op::DepthwiseConv2d(p), &[&x, &w, &b], &shape).unwrap(),
            &shape,
            &want,
        );
    }

    #[test]
    fn conv2d_transpose_matches_naive() {
        let mut rng = Rng::new(64);
        for case in 0..100 {
            let kernel = [rng.int(1, 4), rng.int(1, 4)];
            let stride = [rng.int(1, 3), rng.int(1, 2)];
            let padding = if case % 2 == 0 {
                Padding::Valid
            } else {
                Padding::Same
            };
            let p = Conv2d {
                kernel,
                stride,
                dilation: [1, 1],
                padding,
                groups: 1,
                activation: ACTS[case % ACTS.len()],
            };
            let (cin, cout) = (rng.int(1, 5), rng.int(1, 5));
            let shape = [rng.int(1, 2), rng.int(1, 6), rng.int(1, 5), cin];
            let x = rng.tensor(&shape);
            let w = rng.tensor(&[kernel[0], kernel[1], cout, cin]);
            let bias = rng.bool().then(|| rng.tensor(&[cout]));
            let (shape, want) = naive_transpose(&p, &x, &w, bias.as_ref());
            let mut ins = vec![&x, &w];
            ins.extend(bias.as_ref());
            let got = eval_op(&Op::Conv2dTranspose(p.clone()), &ins, &shape).unwrap();
            assert_close(
                &format!(
                    "transpose case {case} {p:?} x{:?} w{:?}",
                    x.shape(),
                    w.shape()
                ),
                &got,
                &shape,
                &want,
            );
        }
    }

    #[test]
    fn matmul_matches_naive() {
        let mut rng = Rng::new(65);
        for (xs, n) in [
            (vec![1, 7], 5),
            (vec![3, 16], 33),
            (vec![2, 3, 9], 4),
            (vec![40, 17], 19),
            (vec![5], 3),
            // From DENSE_DIRECT_ROWS rows on: the direct kernel.
            (vec![70, 13], 21),
            (vec![2, 40, 9], 35),
            (vec![64, 1], 1),
        ] {
            let k = *xs.last().unwrap();
            let x = rng.tensor(&xs);
            let w = rng.tensor(&[k, n]);
            let b = rng.tensor(&[n]);
            let m = x.len() / k;
            let mut want = Vec::new();
            for i in 0..m {
                for j in 0..n {
                    let s: f64 = (0..k)
                        .map(|kk| x.data()[i * k + kk] as f64 * w.data()[kk * n + j] as f64)
                        .sum();
                    want.push((s + b.data()[j] as f64) as f32);
                }
            }
            apply_activation(Activation::Tanh, &mut want);
            let mut shape = xs.clone();
            *shape.last_mut().unwrap() = n;
            let got = eval_op(
                &Op::MatMul {
                    activation: Activation::Tanh,
                },
                &[&x, &w, &b],
                &shape,
            )
            .unwrap();
            assert_close(&format!("matmul {xs:?} x [{k}, {n}]"), &got, &shape, &want);
        }
    }
}
