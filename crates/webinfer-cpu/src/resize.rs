//! `Op::Resize`: nearest-neighbour and bilinear resampling of NHWC images, with the exact
//! source-coordinate formulas, rounding and `f64` arithmetic of tfjs-backend-cpu 4.22
//! (`resizeNearestNeighbor`, `resizeBilinear`), so results match tfjs bit for bit.
//! One deliberate difference: source indices are clamped to the image, where tfjs' bilinear
//! reads past the last row / column when `align_corners` and `half_pixel_centers` are both
//! set (a combination TF rejects) and the image shrinks.

use crate::buffers::buffer;
use crate::par::{for_rows, Ctx};
use webinfer_core::ir::ResizeMode;
use webinfer_core::Tensor;

/// tfjs' scale between an output and an input axis (`alignCorners` maps corner to corner).
fn ratio(input: usize, output: usize, align_corners: bool) -> f64 {
    if align_corners && output > 1 {
        (input as f64 - 1.0) / (output as f64 - 1.0)
    } else {
        input as f64 / output as f64
    }
}

/// Source index of output position `o` for nearest-neighbour.
fn nearest_index(
    o: usize,
    input: usize,
    ratio: f64,
    align_corners: bool,
    half_pixel: bool,
) -> usize {
    let frac = if half_pixel {
        ratio * (o as f64 + 0.5)
    } else {
        ratio * o as f64
    };
    // JS Math.round is floor(x + 0.5); the fraction is never negative here.
    let i = if align_corners {
        (frac + 0.5).floor()
    } else {
        frac.floor()
    };
    // `as usize` saturates negatives to 0 (tfjs' max(0, ..) for half-pixel centers).
    (i as usize).min(input - 1)
}

/// The two source indices and the interpolation weight of output position `o` for bilinear.
fn bilinear_taps(o: usize, input: usize, ratio: f64, half_pixel: bool) -> (usize, usize, f64) {
    let frac = if half_pixel {
        ratio * (o as f64 + 0.5) - 0.5
    } else {
        ratio * o as f64
    };
    let lo = frac.floor().max(0.0);
    let weight = frac - lo;
    let hi = (frac.ceil() as usize).min(input - 1);
    ((lo as usize).min(input - 1), hi, weight)
}

/// `Op::Resize` on `x [n,h,w,c]` to `out_shape [n,H,W,c]`.
#[inline(never)]
pub(crate) fn resize(
    ctx: Ctx,
    mode: ResizeMode,
    align_corners: bool,
    half_pixel: bool,
    x: &Tensor,
    out_shape: &[usize],
) -> Result<Tensor, String> {
    let [n, ih, iw, c] = x.shape().try_into().map_err(|_| "input must be rank 4")?;
    let (oh, ow) = (out_shape[1], out_shape[2]);
    let len = n * oh * ow * c;
    let mut out = buffer(len, 0.0);
    if len == 0 {
        return Tensor::new(out_shape.to_vec(), out).map_err(|e| e.to_string());
    }
    if ih == 0 || iw == 0 {
        return Err(format!(
            "cannot resize an empty image {:?} to {oh}x{ow}",
            x.shape()
        ));
    }
    let (ry, rx) = (ratio(ih, oh, align_corners), ratio(iw, ow, align_corners));
    let xd = x.data();
    let row_len = ow * c;
    match mode {
        ResizeMode::Nearest => {
            let cols: Vec<usize> = (0..ow)
                .map(|o| nearest_index(o, iw, rx, align_corners, half_pixel) * c)
                .collect();
            for_rows(ctx, &mut out, row_len, row_len, |r0, rows| {
                for (i, orow) in rows.chunks_exact_mut(row_len).enumerate() {
                    let (b, oy) = ((r0 + i) / oh, (r0 + i) % oh);
                    let iy = nearest_index(oy, ih, ry, align_corners, half_pixel);
                    let src = &xd[(b * ih + iy) * iw * c..][..iw * c];
                    for (px, &col) in orow.chunks_exact_mut(c).zip(&cols) {
                        px.copy_from_slice(&src[col..col + c]);
                    }
                }
            });
        }
        ResizeMode::Bilinear => {
            let cols: Vec<(usize, usize, f64)> = (0..ow)
                .map(|o| {
                    let (l, h, f) = bilinear_taps(o, iw, rx, half_pixel);
                    (l * c, h * c, f)
                })
                .collect();
            for_rows(ctx, &mut out, row_len, row_len * 8, |r0, rows| {
                for (i, orow) in rows.chunks_exact_mut(row_len).enumerate() {
                    let (b, oy) = ((r0 + i) / oh, (r0 + i) % oh);
                    let (y0, y1, fy) = bilinear_taps(oy, ih, ry, half_pixel);
                    let top = &xd[(b * ih + y0) * iw * c..][..iw * c];
                    let bot = &xd[(b * ih + y1) * iw * c..][..iw * c];
                    for (px, &(x0, x1, fx)) in orow.chunks_exact_mut(c).zip(&cols) {
                        let (tl, tr, bl, br) = (
                            &top[x0..x0 + c],
                            &top[x1..x1 + c],
                            &bot[x0..x0 + c],
                            &bot[x1..x1 + c],
                        );
                        for d in 0..c {
                            let t = tl[d] as f64 + (tr[d] as f64 - tl[d] as f64) * fx;
                            let btm = bl[d] as f64 + (br[d] as f64 - bl[d] as f64) * fx;
                            px[d] = (t + (btm - t) * fy) as f32;
                        }
                    }
                }
            });
        }
    }
    Tensor::new(out_shape.to_vec(), out).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{assert_close, Rng};
    use crate::{eval_op, Op};
    use webinfer_core::ir::ResizeSize;

    /// tfjs-backend-cpu's loops, transcribed per element (JS numbers are f64).
    fn tfjs_resize(
        mode: ResizeMode,
        x: &Tensor,
        size: [usize; 2],
        ac: bool,
        hpc: bool,
    ) -> Vec<f32> {
        let [n, ih, iw, c]: [usize; 4] = x.shape().try_into().unwrap();
        let [nh, nw] = size;
        let eff_in = [
            if ac && nh > 1 { ih - 1 } else { ih } as f64,
            if ac && nw > 1 { iw - 1 } else { iw } as f64,
        ];
        let eff_out = [
            if ac && nh > 1 { nh - 1 } else { nh } as f64,
            if ac && nw > 1 { nw - 1 } else { nw } as f64,
        ];
        let (rr, rc) = (eff_in[0] / eff_out[0], eff_in[1] / eff_out[1]);
        let at = |b: usize, y: usize, xx: usize, d: usize| {
            x.data()[((b * ih + y) * iw + xx) * c + d] as f64
        };
        let mut out = vec![];
        for b in 0..n {
            for r in 0..nh {
                for col in 0..nw {
                    for d in 0..c {
                        let v = match mode {
                            ResizeMode::Nearest => {
                                let fr = if hpc {
                                    rr * (r as f64 + 0.5)
                                } else {
                                    rr * r as f64
                                };
                                let mut sr = ((ih - 1) as f64).min(if ac {
                                    (fr + 0.5).floor()
                                } else {
                                    fr.floor()
                                });
                                if hpc {
                                    sr = sr.max(0.0);
                                }
                                let fc = if hpc {
                                    rc * (col as f64 + 0.5)
                                } else {
                                    rc * col as f64
                                };
                                let mut sc = ((iw - 1) as f64).min(if ac {
                                    (fc + 0.5).floor()
                                } else {
                                    fc.floor()
                                });
                                if hpc {
                                    sc = sc.max(0.0);
                                }
                                at(b, sr as usize, sc as usize, d)
                            }
                            ResizeMode::Bilinear => {
                                let fr = if hpc {
                                    rr * (r as f64 + 0.5) - 0.5
                                } else {
                                    rr * r as f64
                                };
                                // tfjs leaves `floor` unclamped above, so align_corners together with
                                // half_pixel_centers (which TF rejects) reads past the last row when
                                // downsampling; here the index is clamped to the edge.
                                let r0 = fr.floor().max(0.0);
                                let rf = fr - r0;
                                let r0 = r0.min((ih - 1) as f64);
                                let r1 = ((ih - 1) as f64).min(fr.ceil());
                                let fc = if hpc {
                                    rc * (col as f64 + 0.5) - 0.5
                                } else {
                                    rc * col as f64
                                };
                                let c0 = fc.floor().max(0.0);
                                let cf = fc - c0;
                                let c0 = c0.min((iw - 1) as f64);
                                let c1 = ((iw - 1) as f64).min(fc.ceil());
                                let (tl, tr) = (
                                    at(b, r0 as usize, c0 as usize, d),
                                    at(b, r0 as usize, c1 as usize, d),
                                );
                                let (bl, br) = (
                                    at(b, r1 as usize, c0 as usize, d),
                                    at(b, r1 as usize, c1 as usize, d),
                                );
                                let top = tl + (tr - tl) * cf;
                                let bottom = bl + (br - bl) * cf;
                                top + (bottom - top) * rf
                            }
                        };
                        out.push(v as f32);
                    }
                }
            }
        }
        out
    }

    #[test]
    fn resize_matches_tfjs_formulas_exactly() {
        let mut rng = Rng::new(41);
        for case in 0..120 {
            let mode = if case % 2 == 0 {
                ResizeMode::Nearest
            } else {
                ResizeMode::Bilinear
            };
            let (ac, hpc) = match case % 8 / 2 {
                0 => (false, false),
                1 => (true, false),
                2 => (false, true),
                _ => (true, true),
            };
            let shape = [rng.int(1, 2), rng.int(1, 7), rng.int(1, 7), rng.int(1, 5)];
            let x = rng.tensor(&shape);
            let size = [rng.int(1, 13), rng.int(1, 13)];
            let op = Op::Resize {
                mode,
                size: ResizeSize::Fixed(size),
                align_corners: ac,
                half_pixel_centers: hpc,
            };
            let want = tfjs_resize(mode, &x, size, ac, hpc);
            let shape = [x.shape()[0], size[0], size[1], x.shape()[3]];
            let got = eval_op(&op, &[&x], &shape).unwrap();
            assert_close(
                &format!("resize case {case} {op:?} {:?}", x.shape()),
                &got,
                &shape,
                &want,
            );
            assert_eq!(got.data(), &want[..], "resize case {case}: not bit-exact");
        }
        // UpSampling2D: nearest x2 is pixel repetition.
        let x = rng.tensor(&[1, 3, 2, 2]);
        let op = Op::Resize {
            mode: ResizeMode::Nearest,
            size: ResizeSize::Scale([2, 2]),
            align_corners: false,
            half_pixel_centers: false,
        };
        let got = eval_op(&op, &[&x], &[1, 6, 4, 2]).unwrap();
        for (i, &v) in got.data().iter().enumerate() {
            let (y, xx, d) = (i / 8, (i / 2) % 4, i % 2);
            assert_eq!(v, x.data()[((y / 2) * 2 + xx / 2) * 2 + d]);
        }
    }
}
