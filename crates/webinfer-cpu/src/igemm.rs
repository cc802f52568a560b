//! Direct (implicit-GEMM) convolution on NHWC tensors: the convolution as the GEMM
//! `[pixels, kh*kw*cin] x [kh*kw*cin, cout]` whose left-hand rows are read straight from the
//! input, never copied into an im2col buffer or packed.
//!
//! The output is cut into tiles of [`MR`] pixels x [`NR`] output channels whose `MR * NR`
//! accumulators stay in registers for the whole reduction. The reduction runs over
//! *segments*: runs of the patch that are contiguous both in the input and in the kernel
//! `[kh, kw, cin, cout]`. When a tile's pixels see every kernel column (and `dilation_w == 1`,
//! one group), a kernel row `ky` is one segment of `kw * cin` floats, so a 3-channel input
//! (MobileNet's first layer) still runs 9-long inner loops; otherwise each tap `(ky, kx)` is a
//! segment of `cin` floats. A pixel whose tap falls into the padding reads a run of zeros
//! instead, so border tiles run the same kernel as interior ones. Tiles run along the
//! flattened output pixels, across row and image boundaries. Most tiles (every tap of each
//! pixel inside the input, the pixels evenly spaced in it) skip listing their segments: the
//! kernel finds them at fixed offsets from the first pixel ([`Src::Strided`]).
//!
//! The weights are copied into panels of `NR` channels (`[k, NR]`, contiguous, the last one
//! zero-padded) so that the kernel's loads walk memory in order: once per call, or, for a
//! graph constant run by a [`CpuBackend`](crate::CpuBackend), once (kept in its
//! [`PackCache`]); a single full block (`cout == NR`, one group) is its own panel. The bias is
//! added after the sum (as tfjs does), then ReLU / ReLU6 / ReluMax are applied to the
//! registers before the store; other activations run over each block of pixels while it is
//! in cache. Output rows are split over threads ([`for_rows`]).
//!
//! Natively the tile kernel is a plain loop for the auto-vectorizer, compiled for AVX2+FMA
//! too (`dispatch!`); on wasm32 with `simd128` it is written with `core::arch::wasm32`
//! intrinsics, shaped after what V8 compiles well: 4 x 8 (8 accumulators: V8 keeps 16 vector
//! registers, larger tiles spill), and the tile kernel in its own function (inlined into the
//! tile loop, LLVM unrolls its inner loop and V8 spills accumulators).

use crate::activation::{apply_activation, relu, relu_max};
use crate::conv::{with_scratch, Geo};
use crate::packed::{Key, PackCache};
use crate::par::{for_rows, Ctx};
use crate::simd::{dispatch, madd};
use webinfer_core::Activation;

/// Output pixels per register tile.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) const MR: usize = 6;
#[cfg(target_arch = "wasm32")]
pub(crate) const MR: usize = 4;
/// Output channels per register tile: two AVX2 vectors natively, two `v128`s on wasm32.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) const NR: usize = 16;
#[cfg(target_arch = "wasm32")]
pub(crate) const NR: usize = 8;

/// Largest group weight (`k * cout_g` floats, 256 KiB) read for every tile.
const TILE_OUTER_MAX: usize = 64 << 10;

/// Fewest output pixels a thread's piece gets when the weights are read once per piece.
const CHUNK_PIXELS: usize = 48;

/// One convolution's operands and geometry.
pub(crate) struct Conv<'a> {
    pub g: Geo,
    pub x: &'a [f32],
    /// `[kh, kw, cin_g, cout]`.
    pub w: &'a [f32],
    pub bias: Option<&'a [f32]>,
    pub groups: usize,
    pub cout: usize,
    pub act: Activation,
    /// Where the panels of `w` are kept between calls, when `w` is a graph constant.
    pub packs: Option<&'a PackCache>,
}

/// Read-only state shared by the threads of one call.
struct Plan<'a> {
    c: &'a Conv<'a>,
    cin_g: usize,
    cout_g: usize,
    /// Reduction length `kh * kw * cin_g`.
    k: usize,
    /// Full blocks of `NR` channels per group, and whether a partial one follows.
    full_blocks: usize,
    tail: usize,
    /// Blocks of `NR` channels per group (`full_blocks` + 1 if `tail > 0`).
    blocks: usize,
    /// Loop order: each tile over all channel blocks (weights small enough to stay in
    /// cache), or each channel block over all tiles of a block of pixels.
    tile_outer: bool,
    /// The weights as panels `[group][block][k][NR]` (the last block of a group zero-padded).
    panels: &'a [f32],
    /// Per group, the bias of each block of `NR` channels, zero-padded.
    bias: Vec<f32>,
    /// A run of zeros as long as the longest segment (read by taps in the padding).
    zeros: Vec<f32>,
    /// Whether a tile that sees every kernel column reads whole kernel rows as one segment.
    row_segments: bool,
    /// The segments of a tile whose pixels see every tap and lie `px_step` apart in the input
    /// (most tiles): `(k0, input offset from the first pixel's tap (0, 0))`, each
    /// `strided_len` floats long, in group 0 (a group adds its first channel).
    strided: Vec<(usize, usize)>,
    strided_len: usize,
    px_step: isize,
    /// Valid kernel rows per output row, valid kernel columns per output column.
    ky_taps: Vec<(usize, usize)>,
    kx_taps: Vec<(usize, usize)>,
    /// Pixels per block (a multiple of `MR`): the unit of the channel-block loop and of the
    /// activation pass.
    block: usize,
}

/// Runs the convolution into `out` (`[n, oh, ow, cout]`, fully overwritten).
#[inline(never)]
pub(crate) fn conv(ctx: Ctx, c: &Conv, out: &mut [f32]) {
    let g = &c.g;
    let groups = c.groups.max(1);
    let cin_g = g.c / groups;
    let cout_g = c.cout / groups;
    let k = g.kh * g.kw * cin_g;
    let pixels = g.n * g.oh * g.ow;
    debug_assert_eq!(out.len(), pixels * c.cout);
    if out.is_empty() {
        return;
    }
    if k == 0 {
        // No taps: the output is the bias, activated.
        for px in out.chunks_exact_mut(c.cout) {
            match c.bias {
                Some(b) => px.copy_from_slice(&b[..c.cout]),
                None => px.fill(0.0),
            }
        }
        apply_activation(c.act, out);
        return;
    }
    let blocks = cout_g.div_ceil(NR);
    let mut bias = vec![0.0; groups * blocks * NR];
    if let Some(b) = c.bias {
        for gi in 0..groups {
            bias[gi * blocks * NR..][..cout_g].copy_from_slice(&b[gi * cout_g..][..cout_g]);
        }
    }
    let len = groups * blocks * k * NR;
    let pack = |panels: &mut [f32]| {
        // Panels `[group][block][k][NR]`: each block's weights contiguous (its loads then
        // walk memory in order), the last block of a group zero-padded. Split over threads:
        // with large weights and few pixels the copy is a good part of the call.
        for_rows(ctx, panels, k * NR, k * NR, |first, part| {
            for (i, panel) in part.chunks_exact_mut(k * NR).enumerate() {
                let (gi, nb) = ((first + i) / blocks, (first + i) % blocks);
                pack_panel(
                    c.w,
                    c.cout,
                    gi * cout_g + nb * NR,
                    NR.min(cout_g - nb * NR),
                    panel,
                );
            }
        });
    };
    let run = |panels: &[f32]| run_plan(ctx, c, panels, bias, k, cin_g, out);
    if groups == 1 && c.cout == NR {
        // One full block: the weights `[k, NR]` are its panel as they lie.
        run(&c.w[..len]);
    } else if let Some(panels) = c
        .packs
        .and_then(|cache| cache.get_or_pack(Key::new(c.w, c.cout, groups), c.w, len, pack))
    {
        run(&panels);
    } else {
        with_scratch(len, |panels| {
            pack(panels);
            run(panels);
        });
    }
}

/// `out = act(x · w + bias)` for a row-major `x` (`m x k`) and `w` (`k x n`): [`conv`] as a
/// 1x1 convolution over an `m x 1` image (one output row per row of `x`, so that threads
/// split the rows).
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    ctx: Ctx,
    m: usize,
    k: usize,
    n: usize,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    act: Activation,
    packs: Option<&PackCache>,
    out: &mut [f32],
) {
    let g = Geo {
        n: 1,
        h: m,
        w: 1,
        c: k,
        oh: m,
        ow: 1,
        kh: 1,
        kw: 1,
        sh: 1,
        sw: 1,
        dh: 1,
        dw: 1,
        pt: 0,
        pl: 0,
    };
    let conv = Conv {
        g,
        x,
        w,
        bias,
        groups: 1,
        cout: n,
        act,
        packs,
    };
    self::conv(ctx, &conv, out);
}

/// [`conv`] once the weights are in panels.
fn run_plan(
    ctx: Ctx,
    c: &Conv,
    panels: &[f32],
    bias: Vec<f32>,
    k: usize,
    cin_g: usize,
    out: &mut [f32],
) {
    let g = &c.g;
    let groups = c.groups.max(1);
    let cout_g = c.cout / groups;
    let (full_blocks, tail) = (cout_g / NR, cout_g % NR);
    let blocks = cout_g.div_ceil(NR);
    let row_segments = groups == 1 && g.dw == 1;
    let seg_max = if row_segments { g.kw * cin_g } else { cin_g };
    // Keep a block's patches (about `block * k` floats) within the L1 / L2 cache, and give
    // each pass over the weights at least a few tiles.
    let block = ((8192 / k) / MR).clamp(4, 32) * MR;
    let plan = Plan {
        c,
        cin_g,
        cout_g,
        k,
        full_blocks,
        tail,
        blocks,
        tile_outer: k * cout_g <= TILE_OUTER_MAX,
        panels,
        bias,
        zeros: vec![0.0; seg_max],
        row_segments,
        strided: if row_segments {
            (0..g.kh)
                .map(|ky| (ky * seg_max, ky * g.dh * g.w * g.c))
                .collect()
        } else {
            (0..g.kh * g.kw)
                .map(|t| {
                    let (ky, kx) = (t / g.kw, t % g.kw);
                    (t * seg_max, (ky * g.dh * g.w + kx * g.dw) * g.c)
                })
                .collect()
        },
        strided_len: seg_max,
        px_step: (g.sw * g.c) as isize,
        ky_taps: (0..g.oh).map(|oy| g.taps(true, oy)).collect(),
        kx_taps: (0..g.ow).map(|ox| g.taps(false, ox)).collect(),
        block,
    };
    // Threads take whole output rows; with the channel blocks outermost each piece reads
    // all the weights again, so give each piece at least CHUNK_PIXELS pixels (as long
    // as every thread still gets one).
    let rows = g.n * g.oh;
    let group = if plan.tile_outer {
        1
    } else {
        CHUNK_PIXELS
            .div_ceil(g.ow)
            .min(rows.div_ceil(ctx.threads.max(1)))
            .max(1)
    };
    let row_len = group * g.ow * c.cout;
    for_rows(ctx, out, row_len, row_len * k, |r0, part| {
        conv_rows(&plan, r0 * group * g.ow, part);
    });
}

/// Columns `col0 .. col0 + width` of the weights `w` (`[k, cout]`) into `panel` (`[k, NR]`,
/// the columns from `width` on zero).
fn pack_panel(w: &[f32], cout: usize, col0: usize, width: usize, panel: &mut [f32]) {
    for (kk, row) in panel.chunks_exact_mut(NR).enumerate() {
        let src = &w[kk * cout + col0..];
        if width == NR {
            // A fixed-size copy: a few vector moves, not a `memcpy` call per row.
            let row: &mut [f32; NR] = row.try_into().unwrap();
            *row = src[..NR].try_into().unwrap();
        } else {
            row[..width].copy_from_slice(&src[..width]);
            row[width..].fill(0.0);
        }
    }
}

/// Where one output pixel reads: the input offset of its tap `(0, 0)` (negative or out of
/// range when that tap is in the padding) and its valid kernel rows and columns.
#[derive(Clone, Copy, Default)]
struct Px {
    base: isize,
    ky: (usize, usize),
    kx: (usize, usize),
}

dispatch! {
    /// Output pixels `m0 ..` (global over batch x out height x out width) into `out`, which
    /// holds whole pixels of `cout` channels.
    #[inline(never)]
    fn conv_rows<FMA>(p: &Plan, m0: usize, out: &mut [f32]) {
        let c = p.c;
        let g = &c.g;
        let pixels = out.len() / c.cout;
        let mut table = vec![Px::default(); p.block];
        // Position of the next pixel to describe.
        let (r, mut ox) = (m0 / g.ow, m0 % g.ow);
        let (mut b, mut oy) = (r / g.oh, r % g.oh);
        let (ch, cw) = (g.h as isize, g.w as isize);
        let cc = g.c as isize;
        let fused = Fused::of(c.act);
        let mut segs = Vec::with_capacity(g.kh * g.kw * p.block.div_ceil(MR));
        let mut spans = Vec::with_capacity(p.block.div_ceil(MR));
        let mut b0 = 0;
        while b0 < pixels {
            let n = p.block.min(pixels - b0);
            for px in table[..n].iter_mut() {
                let iy = (oy * g.sh) as isize - g.pt as isize;
                let ix = (ox * g.sw) as isize - g.pl as isize;
                *px = Px {
                    base: (((b as isize) * ch + iy) * cw + ix) * cc,
                    ky: p.ky_taps[oy],
                    kx: p.kx_taps[ox],
                };
                ox += 1;
                if ox == g.ow {
                    ox = 0;
                    oy += 1;
                    if oy == g.oh {
                        oy = 0;
                        b += 1;
                    }
                }
            }
            let block_out = &mut out[b0 * c.cout..(b0 + n) * c.cout];
            for gi in 0..c.groups.max(1) {
                // Every tile's segments once per block: `segs[spans[t].0]` for tile `t`, unless
                // it reads them strided from `spans[t].1`.
                segs.clear();
                spans.clear();
                for t0 in (0..n).step_by(MR) {
                    let start = segs.len();
                    let tile = &table[t0..n.min(t0 + MR)];
                    let base = strided(p, tile).map(|b| b + gi * p.cin_g);
                    if base.is_none() {
                        tile_segments(p, gi, tile, &mut segs);
                    }
                    spans.push((start..segs.len(), base));
                }
                // Loop order: each tile over all its channel blocks (weights small enough to
                // stay in cache), or channel blocks outermost (a block's weights stay in cache
                // for all tiles). No closure here: it would lose the AVX2 / FMA target features.
                let tiles = spans.len();
                let (outer, inner) = if p.tile_outer { (tiles, p.blocks) } else { (p.blocks, tiles) };
                for a in 0..outer {
                    for b in 0..inner {
                        let (t, nb) = if p.tile_outer { (a, b) } else { (b, a) };
                        let t0 = t * MR;
                        let out = &mut block_out[t0 * c.cout..];
                        let valid = MR.min(n - t0);
                        let src = match spans[t] {
                            (_, Some(base)) => Src::Strided(base),
                            (ref span, None) => Src::Segs(&segs[span.clone()]),
                        };
                        run_tile::<FMA>(p, fused, gi, nb, src, valid, out);
                    }
                }
            }
            if !fused.handles(c.act) {
                apply_activation(c.act, block_out);
            }
            b0 += n;
        }
    }
}

/// Where a tile reads its patches.
#[derive(Clone, Copy)]
enum Src<'a> {
    /// Its segments, listed.
    Segs(&'a [Seg<'a>]),
    /// Pixel `i`'s patch from input offset `base + i * px_step` on: segments [`Plan::strided`].
    Strided(usize),
}

/// The input offset of the first pixel's tap `(0, 0)` when the tile reads [`Src::Strided`]:
/// `MR` pixels, every tap of each inside the input, each `px_step` after the one before.
#[inline(always)]
fn strided(p: &Plan, tile: &[Px]) -> Option<usize> {
    let g = &p.c.g;
    let base = tile[0].base;
    let regular = tile.len() == MR
        && tile.iter().enumerate().all(|(i, t)| {
            t.ky == (0, g.kh) && t.kx == (0, g.kw) && t.base == base + i as isize * p.px_step
        });
    regular.then_some(base as usize)
}

/// A run of a tile's patches that is contiguous in the input and in the kernel: kernel
/// rows `k0 .. k0 + len` and, for each pixel of the tile, its `len` input values (zeros for
/// taps in the padding).
struct Seg<'a> {
    k0: usize,
    xs: [&'a [f32]; MR],
}

/// Appends the segments of a tile (`tile` holds 1 ..= MR pixels; missing ones repeat the
/// first and their results are ignored) for group `gi` to `segs`.
// On wasm32 the per-tile functions stay separate: V8 runs a function in its baseline tier
// (Liftoff, several times slower) until it has executed a budget of code, so the per-tile
// work lives in small functions that get hot within the first predict or two.
#[cfg_attr(target_arch = "wasm32", inline(never))]
#[cfg_attr(not(target_arch = "wasm32"), inline(always))]
fn tile_segments<'a>(p: &'a Plan<'_>, gi: usize, tile: &[Px], segs: &mut Vec<Seg<'a>>) {
    let c = p.c;
    let g = &c.g;
    let px = |i: usize| tile.get(i).unwrap_or(&tile[0]);
    let c0 = (gi * p.cin_g) as isize;
    let row_step = (g.dh * g.w * g.c) as isize;
    let col_step = (g.dw * g.c) as isize;
    let all_cols = tile.iter().all(|t| t.kx == (0, g.kw));
    if p.row_segments && all_cols {
        // One segment per kernel row: `kw * cin` floats, contiguous in input and kernel.
        let len = g.kw * p.cin_g;
        for ky in 0..g.kh {
            let mut any = false;
            let mut xs: [&[f32]; MR] = [&p.zeros[..len]; MR];
            for (i, s) in xs.iter_mut().enumerate() {
                let t = px(i);
                if (t.ky.0..t.ky.1).contains(&ky) {
                    any = true;
                    let off = (t.base + ky as isize * row_step + c0) as usize;
                    *s = &c.x[off..off + len];
                }
            }
            if any {
                segs.push(Seg { k0: ky * len, xs });
            }
        }
    } else {
        // One segment per tap: `cin_g` floats.
        let len = p.cin_g;
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let mut any = false;
                let mut xs: [&[f32]; MR] = [&p.zeros[..len]; MR];
                for (i, s) in xs.iter_mut().enumerate() {
                    let t = px(i);
                    if (t.ky.0..t.ky.1).contains(&ky) && (t.kx.0..t.kx.1).contains(&kx) {
                        any = true;
                        let off = (t.base + ky as isize * row_step + kx as isize * col_step + c0)
                            as usize;
                        *s = &c.x[off..off + len];
                    }
                }
                if any {
                    segs.push(Seg {
                        k0: (ky * g.kw + kx) * len,
                        xs,
                    });
                }
            }
        }
    }
}

/// One tile, channel block `nb` of group `gi`: accumulates its segments, applies the fused
/// activation and stores its `valid` pixels into `out` (which starts at its first pixel).
#[inline(always)]
fn run_tile<const FMA: bool>(
    p: &Plan,
    fused: Fused,
    gi: usize,
    nb: usize,
    src: Src,
    valid: usize,
    out: &mut [f32],
) {
    let i = gi * p.blocks + nb;
    let wts = &p.panels[i * p.k * NR..][..p.k * NR];
    let bias: &[f32; NR] = p.bias[i * NR..][..NR].try_into().unwrap();
    let cout = p.c.cout;
    let dst = &mut out[gi * p.cout_g + nb * NR..];
    let width = if nb < p.full_blocks { NR } else { p.tail };
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    wasm::tile(p, bias, src, wts, fused, dst, cout, valid, width);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    tile::<FMA>(p, bias, src, wts, fused, dst, cout, valid, width);
}

/// [`run_tile`]'s kernel, written for the auto-vectorizer: `dst` starts at the tile's first
/// pixel and channel, pixels are `cout` apart, `width` channels are stored.
#[allow(clippy::too_many_arguments, dead_code)]
#[inline(always)]
fn tile<const FMA: bool>(
    p: &Plan,
    bias: &[f32; NR],
    src: Src,
    wts: &[f32],
    fused: Fused,
    dst: &mut [f32],
    cout: usize,
    valid: usize,
    width: usize,
) {
    let mut acc = [[0.0; NR]; MR];
    match src {
        Src::Segs(segs) => {
            for s in segs {
                segment::<FMA>(&mut acc, &s.xs, &wts[s.k0 * NR..]);
            }
        }
        Src::Strided(base) => {
            let (x, len, step) = (p.c.x, p.strided_len, p.px_step as usize);
            for &(k0, off) in &p.strided {
                let xs = core::array::from_fn(|i| &x[base + off + i * step..][..len]);
                segment::<FMA>(&mut acc, &xs, &wts[k0 * NR..]);
            }
        }
    }
    // The bias after the sum, as tfjs adds it.
    for row in acc.iter_mut() {
        for j in 0..NR {
            row[j] += bias[j];
        }
    }
    fused.apply(&mut acc);
    // Constant indices into `acc` only, or it would live in memory in the loops above.
    for (i, a) in acc.iter().enumerate() {
        if width == NR && i < valid {
            let d: &mut [f32; NR] = (&mut dst[i * cout..][..NR]).try_into().unwrap();
            *d = *a;
        } else if i < valid {
            let a: [f32; NR] = *a;
            dst[i * cout..][..width].copy_from_slice(&a[..width]);
        }
    }
}

/// The tile kernel written with `simd128` intrinsics: the accumulators stay `v128`s from the
/// first product to the store, the clamp activations are `pmax` / `pmin`.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm {
    use super::{Fused, Plan, Src, MR, NR};
    use core::arch::wasm32::*;

    const V: usize = NR / 4;

    /// `acc + a * w`. The relaxed-SIMD build (the browser's second module) uses one
    /// `f32x4.relaxed_madd`: a fused multiply-add where the hardware has one (rounded once,
    /// well within the conformance tolerance), a multiply and an add where it has not.
    #[inline(always)]
    fn madd(a: v128, w: v128, acc: v128) -> v128 {
        #[cfg(target_feature = "relaxed-simd")]
        {
            f32x4_relaxed_madd(a, w, acc)
        }
        #[cfg(not(target_feature = "relaxed-simd"))]
        {
            f32x4_add(acc, f32x4_mul(a, w))
        }
    }

    /// See [`super::tile`].
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    pub(super) fn tile(
        p: &Plan,
        bias: &[f32; NR],
        src: Src,
        wts: &[f32],
        fused: Fused,
        dst: &mut [f32],
        cout: usize,
        valid: usize,
        width: usize,
    ) {
        // SAFETY (every `v128_load` / `v128_store` below): the pointer addresses 4 floats
        // inside a slice whose length was checked before; wasm accesses need no alignment.
        let load = |s: &[f32]| unsafe { v128_load(s[..4].as_ptr() as *const v128) };
        let mut acc = [[f32x4_splat(0.0); V]; MR];
        let mut segment = |xs: &[&[f32]; MR], k0: usize| {
            let len = xs[0].len();
            let mut x = [&[][..]; MR];
            for (d, src) in x.iter_mut().zip(xs) {
                *d = &src[..len];
            }
            for (t, row) in wts[k0 * NR..][..len * NR].chunks_exact(NR).enumerate() {
                let mut w = [f32x4_splat(0.0); V];
                for (v, wv) in w.iter_mut().enumerate() {
                    *wv = load(&row[v * 4..]);
                }
                for i in 0..MR {
                    let a = f32x4_splat(x[i][t]);
                    for v in 0..V {
                        acc[i][v] = madd(a, w[v], acc[i][v]);
                    }
                }
            }
        };
        match src {
            Src::Segs(segs) => {
                for s in segs {
                    segment(&s.xs, s.k0);
                }
            }
            Src::Strided(base) => {
                let (x, len, step) = (p.c.x, p.strided_len, p.px_step as usize);
                for &(k0, off) in &p.strided {
                    segment(
                        &core::array::from_fn(|i| &x[base + off + i * step..][..len]),
                        k0,
                    );
                }
            }
        }
        // Constant indices into `acc` only below, or it would live in (linear) memory.
        let zero = f32x4_splat(0.0);
        for row in acc.iter_mut() {
            for (v, a) in row.iter_mut().enumerate() {
                // The bias after the sum, as tfjs adds it.
                *a = f32x4_add(*a, load(&bias[v * 4..]));
                // pmax(x, 0) = x < 0 ? 0 : x, pmin(x, m) = m < x ? m : x: NaN stays, as in
                // `relu` / `relu_max`.
                match fused {
                    Fused::None => {}
                    Fused::Relu => *a = f32x4_pmax(*a, zero),
                    Fused::ReluMax(m) => *a = f32x4_pmin(f32x4_pmax(*a, zero), f32x4_splat(m)),
                }
            }
        }
        for (i, a) in acc.iter().enumerate() {
            if i >= valid {
                break;
            }
            if width == NR {
                let d = &mut dst[i * cout..][..NR];
                for (v, &av) in a.iter().enumerate() {
                    unsafe { v128_store(d[v * 4..].as_mut_ptr() as *mut v128, av) };
                }
            } else {
                let mut tmp = [0.0f32; NR];
                for (v, &av) in a.iter().enumerate() {
                    unsafe { v128_store(tmp[v * 4..].as_mut_ptr() as *mut v128, av) };
                }
                dst[i * cout..][..width].copy_from_slice(&tmp[..width]);
            }
        }
    }
}

/// `acc[i][j] += sum_t xs[i][t] * b[t * NR + j]` over the segment's length.
#[inline(always)]
fn segment<const FMA: bool>(acc: &mut [[f32; NR]; MR], xs: &[&[f32]; MR], b: &[f32]) {
    let len = xs[0].len();
    if len == 9 {
        // A 3x3 kernel row of 3 channels (the first layer of most image models): unrolled,
        // as a loop of so few steps costs about as much again in its entry and exit.
        return segment_n::<FMA, 9>(acc, xs, b);
    }
    let mut x = [&[][..]; MR];
    for (d, s) in x.iter_mut().zip(xs) {
        *d = &s[..len];
    }
    for (t, row) in b[..len * NR].chunks_exact(NR).enumerate() {
        for i in 0..MR {
            let a = x[i][t];
            for j in 0..NR {
                acc[i][j] = madd::<FMA>(a, row[j], acc[i][j]);
            }
        }
    }
}

/// [`segment`] for segments of `N` floats.
#[inline(always)]
fn segment_n<const FMA: bool, const N: usize>(
    acc: &mut [[f32; NR]; MR],
    xs: &[&[f32]; MR],
    b: &[f32],
) {
    let x: [&[f32; N]; MR] = core::array::from_fn(|i| xs[i][..N].try_into().unwrap());
    let b = &b[..N * NR];
    for t in 0..N {
        let row = &b[t * NR..][..NR];
        for i in 0..MR {
            let a = x[i][t];
            for j in 0..NR {
                acc[i][j] = madd::<FMA>(a, row[j], acc[i][j]);
            }
        }
    }
}

/// The activations applied to the accumulators before they are stored; the others run over
/// each finished block of pixels.
#[derive(Clone, Copy)]
enum Fused {
    None,
    Relu,
    ReluMax(f32),
}

impl Fused {
    fn of(act: Activation) -> Fused {
        match act {
            Activation::Relu => Fused::Relu,
            Activation::Relu6 => Fused::ReluMax(6.0),
            Activation::ReluMax(m) => Fused::ReluMax(m),
            _ => Fused::None,
        }
    }

    /// Whether this covers `act` entirely (nothing left to apply after the store).
    fn handles(self, act: Activation) -> bool {
        act.is_linear() || !matches!(self, Fused::None)
    }

    #[inline(always)]
    fn apply(self, acc: &mut [[f32; NR]; MR]) {
        match self {
            Fused::None => {}
            Fused::Relu => {
                for row in acc.iter_mut() {
                    for v in row.iter_mut() {
                        *v = relu(*v);
                    }
                }
            }
            Fused::ReluMax(m) => {
                for row in acc.iter_mut() {
                    for v in row.iter_mut() {
                        *v = relu_max(*v, m);
                    }
                }
            }
        }
    }
}
