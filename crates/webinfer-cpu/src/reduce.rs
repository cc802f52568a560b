//! Reductions: `Op::Softmax` / `Op::LogSoftmax` (any axis, max-subtracted) and `Op::Reduce`
//! (sum / mean / max / min over any set of axes). Sums accumulate in `f64`, as tfjs' JS
//! numbers do.

use crate::activation::{exp, ln};
use crate::simd::dispatch;
use webinfer_core::ir::ReduceKind;

/// Lanes of the independent accumulators that let a horizontal fold vectorize.
const LANES: usize = 8;

/// `Op::Softmax` (or `Op::LogSoftmax` when `log`) along `axis`, in place.
#[inline(never)]
pub(crate) fn softmax_assign(x: &mut [f32], shape: &[usize], axis: usize, log: bool) {
    let len = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    if x.is_empty() {
        return;
    }
    if inner == 1 {
        for row in x.chunks_exact_mut(len) {
            softmax_row(row, log);
        }
    } else {
        // An outer axis (rare: a classifier's softmax takes the last one): each column of a
        // `[len, inner]` block is gathered into a row, run through the row kernel and put
        // back. (A strided kernel of its own was ~0.8 KB of gzip in the browser module.)
        let mut column = vec![0.0f32; len];
        for block in x.chunks_exact_mut(len * inner) {
            for j in 0..inner {
                for (c, v) in column.iter_mut().zip(block.iter().skip(j).step_by(inner)) {
                    *c = *v;
                }
                softmax_row(&mut column, log);
                for (c, v) in column.iter().zip(block.iter_mut().skip(j).step_by(inner)) {
                    *v = *c;
                }
            }
        }
    }
}

dispatch! {
    /// Softmax (`e / sum e`) or log-softmax (`x - max - ln(sum e)`) of one contiguous row.
    fn softmax_row<FMA>(row: &mut [f32], log: bool) {
        let mut m = [f32::NEG_INFINITY; LANES];
        let mut chunks = row.chunks_exact(LANES);
        for ch in &mut chunks {
            for j in 0..LANES {
                m[j] = if ch[j] > m[j] { ch[j] } else { m[j] };
            }
        }
        let mut max = chunks.remainder().iter().fold(f32::NEG_INFINITY, |a, &v| if v > a { v } else { a });
        for v in m {
            max = if v > max { v } else { max };
        }
        let mut s = [0.0f32; LANES];
        let mut sum = 0.0f32;
        if log {
            let mut chunks = row.chunks_exact(LANES);
            for ch in &mut chunks {
                for j in 0..LANES {
                    s[j] += exp(ch[j] - max);
                }
            }
            for v in chunks.remainder() {
                sum += exp(*v - max);
            }
            let shift = max + ln(sum + s.iter().sum::<f32>());
            for v in row.iter_mut() {
                *v -= shift;
            }
            return;
        }
        let mut chunks = row.chunks_exact_mut(LANES);
        for ch in &mut chunks {
            for j in 0..LANES {
                ch[j] = exp(ch[j] - max);
                s[j] += ch[j];
            }
        }
        for v in chunks.into_remainder() {
            *v = exp(*v - max);
            sum += *v;
        }
        let sum = sum + s.iter().sum::<f32>();
        for v in row.iter_mut() {
            *v /= sum;
        }
    }
}

/// `Op::Reduce` of `x` (shape `shape`) over `axes`; the output is row-major over the kept axes.
#[inline(never)]
pub(crate) fn reduce(kind: ReduceKind, x: &[f32], shape: &[usize], axes: &[usize]) -> Vec<f32> {
    // Axes as (size, output stride or 0 when reduced); size-1 axes dropped, like ones merged.
    let mut dims: Vec<(usize, usize)> = Vec::new();
    let mut out_len = 1usize;
    let mut count = 1usize;
    for (i, &s) in shape.iter().enumerate().rev() {
        let reduced = axes.contains(&i);
        if reduced {
            count *= s;
        }
        if s == 1 {
            continue;
        }
        let so = if reduced { 0 } else { out_len };
        if !reduced {
            out_len *= s;
        }
        match dims.last_mut() {
            // Walking from the innermost axis outwards: merge into the inner neighbour.
            Some(last) if (last.1 == 0) == reduced && (reduced || so == last.1 * last.0) => {
                last.0 *= s
            }
            _ => dims.push((s, so)),
        }
    }
    dims.reverse();
    let inner = dims.pop().unwrap_or((1, 1));
    match kind {
        ReduceKind::Sum | ReduceKind::Mean => {
            let acc = fold(
                x,
                &dims,
                inner,
                out_len,
                0.0f64,
                |a, v| a + v as f64,
                |a, b| a + b,
            );
            let div = if kind == ReduceKind::Mean {
                count as f64
            } else {
                1.0
            };
            acc.iter().map(|&s| (s / div) as f32).collect()
        }
        ReduceKind::Max => fold(
            x,
            &dims,
            inner,
            out_len,
            f32::NEG_INFINITY,
            max_nan,
            max_nan,
        ),
        ReduceKind::Min => fold(x, &dims, inner, out_len, f32::INFINITY, min_nan, min_nan),
    }
}

/// `max` that propagates NaN (as tfjs' `Math.max`-style comparisons do not ignore it).
#[inline(always)]
fn max_nan(a: f32, b: f32) -> f32 {
    if b > a || b.is_nan() {
        b
    } else {
        a
    }
}

#[inline(always)]
fn min_nan(a: f32, b: f32) -> f32 {
    if b < a || b.is_nan() {
        b
    } else {
        a
    }
}

/// Folds `x` into `out_len` accumulators: `outer` axes (size, output stride) and the
/// innermost axis `inner` (size, output stride 1 = kept, 0 = reduced).
fn fold<A: Copy>(
    x: &[f32],
    outer: &[(usize, usize)],
    inner: (usize, usize),
    out_len: usize,
    init: A,
    f: impl Fn(A, f32) -> A,
    combine: impl Fn(A, A) -> A,
) -> Vec<A> {
    let mut acc = vec![init; out_len];
    if x.is_empty() {
        return acc;
    }
    let (n, kept) = (inner.0, inner.1 != 0);
    let runs: usize = outer.iter().map(|d| d.0).product();
    let mut idx = vec![0usize; outer.len()];
    let mut o = 0usize;
    for xs in x.chunks_exact(n).take(runs) {
        if kept {
            for (a, &v) in acc[o..o + n].iter_mut().zip(xs) {
                *a = f(*a, v);
            }
        } else {
            let mut lanes = [init; LANES];
            let mut chunks = xs.chunks_exact(LANES);
            for ch in &mut chunks {
                for j in 0..LANES {
                    lanes[j] = f(lanes[j], ch[j]);
                }
            }
            let mut a = chunks.remainder().iter().fold(acc[o], |a, &v| f(a, v));
            for l in lanes {
                a = combine(a, l);
            }
            acc[o] = a;
        }
        for d in (0..outer.len()).rev() {
            idx[d] += 1;
            o += outer[d].1;
            if idx[d] < outer[d].0 {
                break;
            }
            o -= outer[d].1 * outer[d].0;
            idx[d] = 0;
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{assert_close, Rng};
    use crate::{eval_op, Op};

    fn coords(mut lin: usize, shape: &[usize]) -> Vec<usize> {
        let mut c = vec![0; shape.len()];
        for d in (0..shape.len()).rev() {
            c[d] = lin % shape[d];
            lin /= shape[d];
        }
        c
    }

    #[test]
    fn reduce_matches_naive() {
        let mut rng = Rng::new(51);
        for case in 0..200 {
            let rank = rng.int(1, 4);
            let shape: Vec<usize> = (0..rank).map(|_| rng.int(1, 6)).collect();
            let axes: Vec<usize> = (0..rank).filter(|_| rng.bool()).collect();
            let keep_dims = rng.bool();
            let kind = [
                ReduceKind::Sum,
                ReduceKind::Mean,
                ReduceKind::Max,
                ReduceKind::Min,
            ][case % 4];
            let x = rng.tensor(&shape);
            let kept: Vec<usize> = (0..rank)
                .filter(|a| !axes.contains(a))
                .map(|a| shape[a])
                .collect();
            let n_out: usize = kept.iter().product();
            let mut groups: Vec<Vec<f64>> = vec![vec![]; n_out];
            for (lin, &v) in x.data().iter().enumerate() {
                let c = coords(lin, &shape);
                let o = (0..rank)
                    .filter(|a| !axes.contains(a))
                    .fold(0, |acc, a| acc * shape[a] + c[a]);
                groups[o].push(v as f64);
            }
            let want: Vec<f32> = groups
                .iter()
                .map(|g| match kind {
                    ReduceKind::Sum => g.iter().sum::<f64>() as f32,
                    ReduceKind::Mean => (g.iter().sum::<f64>() / g.len() as f64) as f32,
                    ReduceKind::Max => g.iter().copied().fold(f64::NEG_INFINITY, f64::max) as f32,
                    ReduceKind::Min => g.iter().copied().fold(f64::INFINITY, f64::min) as f32,
                })
                .collect();
            let out_shape: Vec<usize> = (0..rank)
                .filter_map(|a| {
                    if axes.contains(&a) {
                        keep_dims.then_some(1)
                    } else {
                        Some(shape[a])
                    }
                })
                .collect();
            let op = Op::Reduce {
                kind,
                axes: axes.clone(),
                keep_dims,
            };
            let got = eval_op(&op, &[&x], &out_shape).unwrap();
            assert_close(
                &format!("reduce case {case} {shape:?} {op:?}"),
                &got,
                &out_shape,
                &want,
            );
        }
        // A long reduced run (exercises the lane accumulators).
        let x = rng.tensor(&[3, 1000]);
        let got = eval_op(
            &Op::Reduce {
                kind: ReduceKind::Sum,
                axes: vec![1],
                keep_dims: false,
            },
            &[&x],
            &[3],
        )
        .unwrap();
        let want: Vec<f32> = x
            .data()
            .chunks(1000)
            .map(|r| r.iter().map(|&v| v as f64).sum::<f64>() as f32)
            .collect();
        assert_close("long sum", &got, &[3], &want);
    }

    #[test]
    fn softmax_matches_naive_on_every_axis() {
        let mut rng = Rng::new(52);
        for shape in [vec![5], vec![3, 17], vec![2, 3, 4, 5], vec![1, 40, 3]] {
            for axis in 0..shape.len() {
                let x = Rng::new(axis as u64).tensor(&shape);
                let x = webinfer_core::Tensor::new(
                    shape.clone(),
                    x.data()
                        .iter()
                        .map(|v| v * 10.0 + rng.uniform(-1.0, 1.0))
                        .collect(),
                )
                .unwrap();
                let len = shape[axis];
                let inner: usize = shape[axis + 1..].iter().product();
                let mut want = vec![0.0f32; x.len()];
                for (i, w) in want.iter_mut().enumerate() {
                    let base = i - ((i / inner) % len) * inner;
                    let vals: Vec<f64> = (0..len)
                        .map(|k| x.data()[base + k * inner] as f64)
                        .collect();
                    let m = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let s: f64 = vals.iter().map(|v| (v - m).exp()).sum();
                    *w = ((x.data()[i] as f64 - m).exp() / s) as f32;
                }
                let got = eval_op(&Op::Softmax { axis }, &[&x], &shape).unwrap();
                assert_close(
                    &format!("softmax {shape:?} axis {axis}"),
                    &got,
                    &shape,
                    &want,
                );
                let want_log: Vec<f32> = want.iter().map(|&p| (p as f64).ln() as f32).collect();
                let got = eval_op(&Op::LogSoftmax { axis }, &[&x], &shape).unwrap();
                // log p of tiny p is large: compare with the relative term (as the goldens do).
                for (i, (&g, &w)) in got.data().iter().zip(&want_log).enumerate() {
                    assert!(
                        (g - w).abs() <= 1e-5 * w.abs().max(1.0),
                        "log_softmax {shape:?} axis {axis} element {i}: {g} vs {w}"
                    );
                }
            }
        }
    }
}
