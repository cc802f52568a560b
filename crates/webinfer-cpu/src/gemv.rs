//! Dense layers with a few rows (batch 1 and small batches): `y = x · W` with `W [k, n]`
//! row-major as it lies, read from memory exactly once for all the rows of `x`.
//!
//! With one or a few rows the product is bound by the weights' memory traffic, so nothing is
//! packed: the kernel walks [`KB`] rows of `W` at a time (sequential streams) and adds
//! them, scaled by the matching values of `x`, into a block of outputs that stays in the L1
//! cache (one output load and store per `KB` weights). With several rows, each row of `x`
//! revisits the same `KB` weight rows of the block while they are in L1. Natively the
//! columns are split over threads when the weights are large; the loop is written for the
//! auto-vectorizer (and compiled for AVX2+FMA too, `dispatch!`; on wasm32 LLVM's `simd128`
//! code measured faster than a version written with intrinsics).
//!
//! The sum runs over `k` in order for each output (as a plain dot product would); the caller
//! adds the bias after the sum, as tfjs does.

use crate::conv::with_scratch;
use crate::par::{for_rows, Ctx};
use crate::simd::{dispatch, madd};

/// Rows of `W` per pass over a block of outputs. Four, not more: rows `n` floats apart (often
/// a multiple of 4 KiB) fall into the same L1 set, and eight of them plus the outputs
/// overflowed its 8 ways (measured slower for `n` = 1024).
const KB: usize = 4;

/// Columns per thread piece with a single row (the pieces of a thread are contiguous).
const PIECE_1: usize = 64;

/// Columns of a block: its `m` output rows and the `KB` weight rows it revisits (when
/// `m > 1`) stay within ~24 KiB of L1. A single row keeps up to 16 KiB of outputs.
fn block_cols(m: usize) -> usize {
    if m == 1 {
        4096
    } else {
        ((6144 / (m + KB)) & !15).max(64)
    }
}

/// `out[m, n] = x[m, k] · w[k, n]` (all row-major; `out` overwritten).
///
/// Panics if a slice is too short for its dimensions (callers derive both from validated
/// shapes).
pub(crate) fn small_rows(
    ctx: Ctx,
    m: usize,
    k: usize,
    n: usize,
    x: &[f32],
    w: &[f32],
    out: &mut [f32],
) {
    let out = &mut out[..m * n];
    if out.is_empty() {
        return;
    }
    let (x, w) = (&x[..m * k], &w[..k * n]);
    if k == 0 {
        out.fill(0.0);
        return;
    }
    // Worth a second thread only from ~16 MB of weights on (two pieces, out of the caches);
    // below, the weights come from the L2 / L3 cache at about what one core can take.
    let cost = |cols: usize| (k * m * cols) / 64;
    if m == 1 {
        for_rows(ctx, out, PIECE_1, cost(PIECE_1), |p, part| {
            columns(1, k, n, x, w, p * PIECE_1, part.len(), part);
        });
        return;
    }
    // Pieces of `piece` columns, each laid out `[m][width]` in a scratch buffer so that a
    // thread's piece is contiguous, then copied into place.
    let piece = block_cols(m);
    with_scratch(m * n, |tmp| {
        for_rows(ctx, tmp, m * piece, cost(piece), |p, part| {
            for (q, blk) in part.chunks_mut(m * piece).enumerate() {
                let width = blk.len() / m;
                columns(m, k, n, x, w, (p + q) * piece, width, blk);
            }
        });
        for (p, blk) in tmp.chunks(m * piece).enumerate() {
            let width = blk.len() / m;
            for (i, src) in blk.chunks_exact(width).enumerate() {
                out[i * n + p * piece..][..width].copy_from_slice(src);
            }
        }
    });
}

/// `y[i, jj] = sum_kk x[i, kk] w[kk, j0 + jj]` for `jj < width`, `y` laid out `[m][width]`.
#[allow(clippy::too_many_arguments)]
fn columns(
    m: usize,
    k: usize,
    n: usize,
    x: &[f32],
    w: &[f32],
    j0: usize,
    width: usize,
    y: &mut [f32],
) {
    let nc = block_cols(m);
    let mut c0 = 0;
    while c0 < width {
        let cw = nc.min(width - c0);
        let col = j0 + c0;
        for i in 0..m {
            y[i * width + c0..][..cw].fill(0.0);
        }
        let mut kk = 0;
        while kk + KB <= k {
            let row = |r: usize| &w[(kk + r) * n + col..][..cw];
            // Two rows at a time share each weight load; the sums are the same as one row at
            // a time (same terms, same order).
            let mut i = 0;
            while i + 2 <= m {
                let ca: [f32; KB] = x[i * k + kk..][..KB].try_into().unwrap();
                let cb: [f32; KB] = x[(i + 1) * k + kk..][..KB].try_into().unwrap();
                let (head, tail) = y.split_at_mut((i + 1) * width);
                let ya = &mut head[i * width + c0..][..cw];
                let yb = &mut tail[c0..][..cw];
                #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
                relaxed::axpy4x2(ya, yb, ca, cb, [row(0), row(1), row(2), row(3)]);
                #[cfg(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
                axpy4x2(ya, yb, ca, cb, row(0), row(1), row(2), row(3));
                i += 2;
            }
            if i < m {
                let c: [f32; KB] = x[i * k + kk..][..KB].try_into().unwrap();
                #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
                relaxed::axpy4(
                    &mut y[i * width + c0..][..cw],
                    c,
                    row(0),
                    row(1),
                    row(2),
                    row(3),
                );
                #[cfg(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
                axpy4(
                    &mut y[i * width + c0..][..cw],
                    c,
                    row(0),
                    row(1),
                    row(2),
                    row(3),
                );
            }
            kk += KB;
        }
        while kk < k {
            let row = &w[kk * n + col..][..cw];
            for i in 0..m {
                axpy1(&mut y[i * width + c0..][..cw], x[i * k + kk], row);
            }
            kk += 1;
        }
        c0 += cw;
    }
}

dispatch! {
    #[cfg_attr(all(target_arch = "wasm32", target_feature = "relaxed-simd"), allow(dead_code))]
    /// `y[j] += c[0] w0[j] + c[1] w1[j] + c[2] w2[j] + c[3] w3[j]`, in that order. The rows
    /// are separate arguments, not an array of slices: as arguments they are known not to
    /// alias `y`, so LLVM needs no run-time overlap checks to vectorize the loop.
    fn axpy4<FMA>(y: &mut [f32], c: [f32; KB], w0: &[f32], w1: &[f32], w2: &[f32], w3: &[f32]) {
        let n = y.len();
        let (w0, w1, w2, w3) = (&w0[..n], &w1[..n], &w2[..n], &w3[..n]);
        for j in 0..n {
            let mut v = y[j];
            v = madd::<FMA>(c[0], w0[j], v);
            v = madd::<FMA>(c[1], w1[j], v);
            v = madd::<FMA>(c[2], w2[j], v);
            v = madd::<FMA>(c[3], w3[j], v);
            y[j] = v;
        }
    }
}

/// The relaxed-SIMD build (the browser's second module): the same sums with
/// `f32x4.relaxed_madd`, fused where the hardware has FMA. LLVM never fuses on its own.
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
mod relaxed {
    use super::KB;
    use core::arch::wasm32::*;

    /// `y[j] += c[0] w0[j] + c[1] w1[j] + c[2] w2[j] + c[3] w3[j]`, eight columns a step.
    pub(super) fn axpy4(
        y: &mut [f32],
        c: [f32; KB],
        w0: &[f32],
        w1: &[f32],
        w2: &[f32],
        w3: &[f32],
    ) {
        let n = y.len();
        let (w0, w1, w2, w3) = (&w0[..n], &w1[..n], &w2[..n], &w3[..n]);
        #[allow(clippy::redundant_closure)] // f32x4_splat is not an FnMut item
        let cs = c.map(|v| f32x4_splat(v));
        // SAFETY (every load and store): `j + 8 <= n`, and every slice holds `n` floats;
        // wasm accesses need no alignment.
        let ld = |s: &[f32], j: usize| unsafe { v128_load(s.as_ptr().add(j) as *const v128) };
        let mut j = 0;
        while j + 8 <= n {
            let mut a = ld(y, j);
            let mut b = ld(y, j + 4);
            for (cr, w) in cs.iter().zip([w0, w1, w2, w3]) {
                a = f32x4_relaxed_madd(*cr, ld(w, j), a);
                b = f32x4_relaxed_madd(*cr, ld(w, j + 4), b);
            }
            unsafe {
                v128_store(y.as_mut_ptr().add(j) as *mut v128, a);
                v128_store(y.as_mut_ptr().add(j + 4) as *mut v128, b);
            }
            j += 8;
        }
        for j in j..n {
            let mut v = y[j];
            v += c[0] * w0[j];
            v += c[1] * w1[j];
            v += c[2] * w2[j];
            v += c[3] * w3[j];
            y[j] = v;
        }
    }

    /// [`axpy4`] for two rows `ya`, `yb` (coefficients `ca`, `cb`) sharing the weight loads.
    pub(super) fn axpy4x2(
        ya: &mut [f32],
        yb: &mut [f32],
        ca: [f32; KB],
        cb: [f32; KB],
        w: [&[f32]; KB],
    ) {
        let n = ya.len();
        let yb = &mut yb[..n];
        let w = w.map(|r| &r[..n]);
        #[allow(clippy::redundant_closure)] // f32x4_splat is not an FnMut item
        let (sa, sb) = (ca.map(|v| f32x4_splat(v)), cb.map(|v| f32x4_splat(v)));
        // SAFETY (every load and store): `j + 4 <= n`, and every slice holds `n` floats.
        let ld = |s: &[f32], j: usize| unsafe { v128_load(s.as_ptr().add(j) as *const v128) };
        let mut j = 0;
        while j + 4 <= n {
            let mut a = ld(ya, j);
            let mut b = ld(yb, j);
            for r in 0..KB {
                let wv = ld(w[r], j);
                a = f32x4_relaxed_madd(sa[r], wv, a);
                b = f32x4_relaxed_madd(sb[r], wv, b);
            }
            unsafe {
                v128_store(ya.as_mut_ptr().add(j) as *mut v128, a);
                v128_store(yb.as_mut_ptr().add(j) as *mut v128, b);
            }
            j += 4;
        }
        for j in j..n {
            let (mut a, mut b) = (ya[j], yb[j]);
            for r in 0..KB {
                a += ca[r] * w[r][j];
                b += cb[r] * w[r][j];
            }
            ya[j] = a;
            yb[j] = b;
        }
    }
}

dispatch! {
    #[cfg_attr(all(target_arch = "wasm32", target_feature = "relaxed-simd"), allow(dead_code))]
    /// [`axpy4`] for two rows `ya`, `yb` (coefficients `ca`, `cb`) sharing the weight loads.
    fn axpy4x2<FMA>(ya: &mut [f32], yb: &mut [f32], ca: [f32; KB], cb: [f32; KB], w0: &[f32], w1: &[f32], w2: &[f32], w3: &[f32]) {
        let n = ya.len();
        let (yb, w0, w1, w2, w3) = (&mut yb[..n], &w0[..n], &w1[..n], &w2[..n], &w3[..n]);
        for j in 0..n {
            let mut a = ya[j];
            a = madd::<FMA>(ca[0], w0[j], a);
            a = madd::<FMA>(ca[1], w1[j], a);
            a = madd::<FMA>(ca[2], w2[j], a);
            a = madd::<FMA>(ca[3], w3[j], a);
            ya[j] = a;
            let mut b = yb[j];
            b = madd::<FMA>(cb[0], w0[j], b);
            b = madd::<FMA>(cb[1], w1[j], b);
            b = madd::<FMA>(cb[2], w2[j], b);
            b = madd::<FMA>(cb[3], w3[j], b);
            yb[j] = b;
        }
    }
}

dispatch! {
    /// `y += c w`.
    fn axpy1<FMA>(y: &mut [f32], c: f32, w: &[f32]) {
        for (v, &b) in y.iter_mut().zip(w) {
            *v = madd::<FMA>(c, b, *v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    #[test]
    fn small_rows_matches_naive() {
        let mut rng = Rng::new(5);
        for &(m, k, n) in &[
            (1, 1, 1),
            (1, 7, 5),
            (1, 9, 37),
            (1, 300, 4100),
            (2, 17, 70),
            (3, 64, 1000),
            (5, 33, 650),
            (8, 1030, 130),
            (4, 600, 2000),
            // Up to 63 rows: WebAssembly streams large weights for every MatMul below the
            // direct kernel's 64 rows.
            (40, 70, 300),
            (63, 33, 200),
            (1, 0, 4),
            (3, 5, 0),
        ] {
            let x: Vec<f32> = (0..m * k).map(|_| rng.uniform(-1.0, 1.0)).collect();
            let w: Vec<f32> = (0..k * n).map(|_| rng.uniform(-1.0, 1.0)).collect();
            for threads in [1, 2, 3] {
                let mut out = vec![9.0f32; m * n];
                small_rows(Ctx { threads }, m, k, n, &x, &w, &mut out);
                for i in 0..m {
                    for j in 0..n {
                        let want: f64 = (0..k)
                            .map(|kk| x[i * k + kk] as f64 * w[kk * n + j] as f64)
                            .sum();
                        let got = out[i * n + j];
                        assert!(
                            (got as f64 - want).abs() <= 1e-5 * (k as f64).sqrt().max(1.0),
                            "m{m} k{k} n{n} t{threads}: ({i},{j}) {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
