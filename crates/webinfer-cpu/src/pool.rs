//! Pooling: windowed max / average (`Op::Pool2d`) and global (`Op::GlobalPool`), NHWC.
//!
//! As in tfjs, average pooling divides by the number of window cells inside the input
//! (padding is not counted) and sums in `f64`; a window with no cell inside gives `-inf`
//! (max) or NaN (avg).

use crate::buffers::buffer;
use crate::conv::Geo;
use crate::par::{for_rows, Ctx};
use crate::simd::dispatch;
use webinfer_core::ir::{Padding, PoolKind};
use webinfer_core::Tensor;

/// `Op::Pool2d` on `x [n,h,w,c]`.
#[inline(never)]
pub(crate) fn pool2d(
    ctx: Ctx,
    kind: PoolKind,
    window: [usize; 2],
    stride: [usize; 2],
    padding: Padding,
    x: &Tensor,
    out_shape: &[usize],
) -> Result<Tensor, String> {
    let g = Geo::new(padding, window, stride, [1, 1], x.shape(), out_shape)?;
    let row_len = g.ow * g.c;
    let mut out = buffer(g.n * g.oh * row_len, 0.0);
    let args = PoolArgs {
        g,
        x: x.data(),
        max: kind == PoolKind::Max,
    };
    for_rows(ctx, &mut out, row_len, row_len * g.kh * g.kw, |r0, rows| {
        let mut sums = vec![0.0f64; if args.max { 0 } else { g.c }];
        for (i, orow) in rows.chunks_exact_mut(row_len).enumerate() {
            pool_row(&args, r0 + i, orow, &mut sums);
        }
    });
    Tensor::new(out_shape.to_vec(), out).map_err(|e| e.to_string())
}

struct PoolArgs<'a> {
    g: Geo,
    x: &'a [f32],
    max: bool,
}

dispatch! {
    /// One output row `r` (global over batch x out height) of a pooling op; `sums` is
    /// scratch of `c` accumulators for average pooling.
    fn pool_row<FMA>(a: &PoolArgs, r: usize, orow: &mut [f32], sums: &mut [f64]) {
        let g = &a.g;
        let c = g.c;
        if c == 0 {
            return;
        }
        let (b, oy) = (r / g.oh, r % g.oh);
        let (ky0, ky1) = g.taps(true, oy);
        for (ox, acc) in orow.chunks_exact_mut(c).enumerate() {
            let (kx0, kx1) = g.taps(false, ox);
            if a.max {
                acc.fill(f32::NEG_INFINITY);
            } else {
                sums.fill(0.0);
            }
            for ky in ky0..ky1 {
                let iy = oy * g.sh + ky - g.pt;
                for kx in kx0..kx1 {
                    let ix = ox * g.sw + kx - g.pl;
                    let o = ((b * g.h + iy) * g.w + ix) * c;
                    let xs = &a.x[o..o + c];
                    if a.max {
                        for (s, &v) in acc.iter_mut().zip(xs) {
                            // tfjs: `if (pixel > max) max = pixel` (NaN never wins).
                            *s = if v > *s { v } else { *s };
                        }
                    } else {
                        for (s, &v) in sums.iter_mut().zip(xs) {
                            *s += v as f64;
                        }
                    }
                }
            }
            if !a.max {
                let count = ((ky1 - ky0) * (kx1 - kx0)) as f64;
                for (o, &s) in acc.iter_mut().zip(sums.iter()) {
                    *o = (s / count) as f32;
                }
            }
        }
    }
}

/// `Op::GlobalPool`: `x [n,h,w,c]` → `[n,c]`. Averages accumulate in `f64`.
#[inline(never)]
pub(crate) fn global_pool(
    kind: PoolKind,
    x: &Tensor,
    out_shape: &[usize],
) -> Result<Tensor, String> {
    let [n, h, w, c] = x.shape().try_into().map_err(|_| "input must be rank 4")?;
    let mut out = vec![0.0f32; n * c];
    let pixels = h * w;
    if c > 0 {
        for (img, o) in x
            .data()
            .chunks_exact((pixels * c).max(1))
            .zip(out.chunks_exact_mut(c))
        {
            if pixels == 0 {
                break;
            }
            match kind {
                PoolKind::Max => global_max(img, o),
                PoolKind::Avg => global_avg(img, o),
            }
        }
        if pixels == 0 {
            out.fill(if kind == PoolKind::Max {
                f32::NEG_INFINITY
            } else {
                f32::NAN
            });
        }
    }
    Tensor::new(out_shape.to_vec(), out).map_err(|e| e.to_string())
}

dispatch! {
    fn global_max<FMA>(img: &[f32], out: &mut [f32]) {
        out.fill(f32::NEG_INFINITY);
        for px in img.chunks_exact(out.len()) {
            for (s, &v) in out.iter_mut().zip(px) {
                *s = if v > *s { v } else { *s };
            }
        }
    }
}

dispatch! {
    fn global_avg<FMA>(img: &[f32], out: &mut [f32]) {
        let c = out.len();
        let mut acc = vec![0.0f64; c];
        for px in img.chunks_exact(c) {
            for (s, &v) in acc.iter_mut().zip(px) {
                *s += v as f64;
            }
        }
        let count = (img.len() / c) as f64;
        for (o, s) in out.iter_mut().zip(&acc) {
            *o = (s / count) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{assert_close, Rng};
    use crate::{eval_op, Op};

    /// Straight from the definition: every window cell, skipping those outside the input.
    fn naive_pool(
        kind: PoolKind,
        x: &Tensor,
        win: [usize; 2],
        stride: [usize; 2],
        padding: Padding,
    ) -> (Vec<usize>, Vec<f32>) {
        let [n, h, w, c]: [usize; 4] = x.shape().try_into().unwrap();
        let wi = webinfer_core::ir::resolve_window(padding, [h, w], win, stride, [1, 1]).unwrap();
        let mut out = vec![];
        for b in 0..n {
            for oy in 0..wi.out_h {
                for ox in 0..wi.out_w {
                    for ch in 0..c {
                        let (mut mx, mut sum, mut cnt) = (f32::NEG_INFINITY, 0.0f64, 0);
                        for ky in 0..win[0] {
                            for kx in 0..win[1] {
                                let iy = (oy * stride[0] + ky) as isize - wi.pad_top as isize;
                                let ix = (ox * stride[1] + kx) as isize - wi.pad_left as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                let v =
                                    x.data()[((b * h + iy as usize) * w + ix as usize) * c + ch];
                                mx = mx.max(v);
                                sum += v as f64;
                                cnt += 1;
                            }
                        }
                        out.push(if kind == PoolKind::Max {
                            mx
                        } else {
                            (sum / cnt as f64) as f32
                        });
                    }
                }
            }
        }
        (vec![n, wi.out_h, wi.out_w, c], out)
    }

    #[test]
    fn pool2d_matches_naive() {
        let mut rng = Rng::new(11);
        for case in 0..60 {
            let kind = if case % 2 == 0 {
                PoolKind::Max
            } else {
                PoolKind::Avg
            };
            let win = [rng.int(1, 3), rng.int(1, 4)];
            let stride = [rng.int(1, 3), rng.int(1, 2)];
            let padding = match case % 3 {
                0 => Padding::Valid,
                1 => Padding::Same,
                _ => Padding::Explicit([
                    rng.int(0, win[0] - 1),
                    rng.int(0, 1),
                    rng.int(0, win[1] - 1),
                    rng.int(0, 2),
                ]),
            };
            let shape = [
                rng.int(1, 2),
                rng.int(win[0], 9),
                rng.int(win[1], 8),
                rng.int(1, 19),
            ];
            let x = rng.tensor(&shape);
            let op = Op::Pool2d {
                kind,
                window: win,
                stride,
                padding,
            };
            let (shape, want) = naive_pool(kind, &x, win, stride, padding);
            let got = eval_op(&op, &[&x], &shape).unwrap();
            assert_close(
                &format!("pool case {case} {op:?} x{:?}", x.shape()),
                &got,
                &shape,
                &want,
            );
        }
    }

    #[test]
    fn pool2d_big_enough_to_thread() {
        let mut rng = Rng::new(12);
        let x = rng.tensor(&[2, 40, 37, 64]);
        for kind in [PoolKind::Max, PoolKind::Avg] {
            let op = Op::Pool2d {
                kind,
                window: [3, 3],
                stride: [2, 2],
                padding: Padding::Same,
            };
            let (shape, want) = naive_pool(kind, &x, [3, 3], [2, 2], Padding::Same);
            let got = eval_op(&op, &[&x], &shape).unwrap();
            assert_close("threaded pool", &got, &shape, &want);
        }
    }

    #[test]
    fn global_pool_matches_naive() {
        let mut rng = Rng::new(13);
        for (n, h, w, c) in [(1, 1, 1, 1), (2, 3, 5, 7), (1, 7, 7, 33)] {
            let x = rng.tensor(&[n, h, w, c]);
            for kind in [PoolKind::Max, PoolKind::Avg] {
                let mut want = vec![];
                for b in 0..n {
                    for ch in 0..c {
                        let vals: Vec<f32> = (0..h * w)
                            .map(|p| x.data()[(b * h * w + p) * c + ch])
                            .collect();
                        want.push(match kind {
                            PoolKind::Max => vals.iter().copied().fold(f32::NEG_INFINITY, f32::max),
                            PoolKind::Avg => {
                                (vals.iter().map(|&v| v as f64).sum::<f64>() / vals.len() as f64)
                                    as f32
                            }
                        });
                    }
                }
                let got = eval_op(&Op::GlobalPool { kind }, &[&x], &[n, c]).unwrap();
                assert_close(
                    &format!("global {kind:?} {:?}", x.shape()),
                    &got,
                    &[n, c],
                    &want,
                );
            }
        }
    }
}
