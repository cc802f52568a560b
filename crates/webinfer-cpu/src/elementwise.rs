//! Element-wise ops with numpy broadcasting: `Op::Binary`, `Op::Prelu`, `Op::ChannelAffine`.
//!
//! Broadcasting is planned once per call: size-1 axes are dropped and adjacent axes merged
//! where both operands stay contiguous, which leaves an outer loop over runs and an innermost
//! run where each operand is either contiguous or a repeated scalar. Same-shape,
//! scalar and trailing-vector operands (a bias over channels) all become long simple runs.
//!
//! Each op has an in-place form used by the backend when an operand that already has the
//! output's shape is not needed afterwards; the other form broadcasts the left operand into a
//! new buffer and runs the same in-place loop (one loop per op in the module).

use crate::buffers::{buffer, copied};
use webinfer_core::ir::BinaryOp;

/// One axis of a broadcast loop: its size and each operand's stride on it (0 = broadcast).
#[derive(Debug, Clone, Copy)]
struct Axis {
    size: usize,
    sa: usize,
    sb: usize,
}

/// Row-major strides of `shape` aligned to the right of a rank-`rank` output, 0 where broadcast.
fn aligned_strides(shape: &[usize], rank: usize) -> Vec<usize> {
    let mut st = vec![0; rank];
    let off = rank - shape.len();
    let mut acc = 1;
    for i in (0..shape.len()).rev() {
        st[off + i] = if shape[i] == 1 { 0 } else { acc };
        acc *= shape[i];
    }
    st
}

/// The collapsed loop nest for `a` and `b` broadcast to `out`: outer axes and the inner run.
fn plan(out: &[usize], a: &[usize], b: &[usize]) -> (Vec<Axis>, Axis) {
    let r = out.len();
    let (sa, sb) = (aligned_strides(a, r), aligned_strides(b, r));
    let mut axes: Vec<Axis> = Vec::with_capacity(r);
    for i in 0..r {
        if out[i] == 1 {
            continue;
        }
        let ax = Axis {
            size: out[i],
            sa: sa[i],
            sb: sb[i],
        };
        if let Some(last) = axes.last_mut() {
            if last.sa == ax.sa * ax.size && last.sb == ax.sb * ax.size {
                *last = Axis {
                    size: last.size * ax.size,
                    sa: ax.sa,
                    sb: ax.sb,
                };
                continue;
            }
        }
        axes.push(ax);
    }
    let inner = axes.pop().unwrap_or(Axis {
        size: 1,
        sa: 0,
        sb: 0,
    });
    (axes, inner)
}

/// Calls `f(out_offset, a_offset, b_offset)` for each inner run of the plan, in order.
fn for_each_run(outer: &[Axis], inner: usize, mut f: impl FnMut(usize, usize, usize)) {
    let runs: usize = outer.iter().map(|a| a.size).product();
    let mut idx = vec![0usize; outer.len()];
    let (mut oa, mut ob) = (0usize, 0usize);
    for run in 0..runs {
        f(run * inner, oa, ob);
        for d in (0..outer.len()).rev() {
            idx[d] += 1;
            oa += outer[d].sa;
            ob += outer[d].sb;
            if idx[d] < outer[d].size {
                break;
            }
            oa -= outer[d].sa * outer[d].size;
            ob -= outer[d].sb * outer[d].size;
            idx[d] = 0;
        }
    }
}

/// The loop of an element-wise op: `acc[i] = f(acc[i], other[i])`, the `Rev` forms with the
/// operands swapped (`acc` holding the right operand).
///
/// The broadcast traversal ([`assign`]) is one function for every op; it hands each block of
/// the two innermost axes to the op's own loop (rows of the inner run), so that an op adds
/// only its two small loops to the module, not a whole traversal: 13 monomorphised
/// traversals were 18.2 KB of the browser module's code (1.4-1.75 KB each), now 2 KB plus
/// 0.2-0.3 KB per loop. The rows are the op's loop, not the traversal's, so that a bias over
/// a few channels does not pay a call per channel-long run. The loops stay separate
/// functions, not one `match` holding them all: a page compiles only the loops its model runs
/// to optimised code (see `activation::map`).
#[derive(Debug, Clone, Copy)]
enum Kernel {
    /// `acc[i] = other[i]` (broadcasting into a new buffer).
    Set,
    Add,
    Mul,
    Sub,
    SubRev,
    Div,
    DivRev,
    Max,
    MaxRev,
    Min,
    MinRev,
    Prelu,
}

impl Kernel {
    /// This op's loop over the `n`-long rows of `dst`: [`splat`] where `src` holds one value
    /// per row (`repeated`), [`zip`] where it holds a whole row.
    fn rows(self, dst: &mut [f32], src: &[f32], n: usize, step: usize, repeated: bool) {
        #[inline(always)]
        fn run(
            dst: &mut [f32],
            src: &[f32],
            (n, step, repeated): (usize, usize, bool),
            f: impl Fn(f32, f32) -> f32,
        ) {
            if repeated {
                splat(dst, src, n, step, f)
            } else {
                zip(dst, src, n, step, f)
            }
        }
        let at = (n, step, repeated);
        match self {
            Kernel::Set => run(dst, src, at, |_, y| y),
            Kernel::Add => run(dst, src, at, add),
            Kernel::Mul => run(dst, src, at, mul),
            Kernel::Sub => run(dst, src, at, sub),
            Kernel::SubRev => run(dst, src, at, |y, x| sub(x, y)),
            Kernel::Div => run(dst, src, at, div),
            Kernel::DivRev => run(dst, src, at, |y, x| div(x, y)),
            Kernel::Max => run(dst, src, at, max),
            Kernel::MaxRev => run(dst, src, at, |y, x| max(x, y)),
            Kernel::Min => run(dst, src, at, min),
            Kernel::MinRev => run(dst, src, at, |y, x| min(x, y)),
            Kernel::Prelu => run(dst, src, at, prelu1),
        }
    }
}

/// `dst[r, i] = f(dst[r, i], src[r * step + i])` over the `n`-long rows `r` of `dst`.
#[inline(never)]
fn zip(dst: &mut [f32], src: &[f32], n: usize, step: usize, f: impl Fn(f32, f32) -> f32) {
    for (r, row) in dst.chunks_exact_mut(n).enumerate() {
        let src = &src[r * step..r * step + n];
        for (d, &y) in row.iter_mut().zip(src) {
            *d = f(*d, y);
        }
    }
}

/// `dst[r, i] = f(dst[r, i], src[r * step])` over the `n`-long rows `r` of `dst` (`step` 0
/// only with one row: the plan merges a repeated scalar into the inner run).
#[inline(never)]
fn splat(dst: &mut [f32], src: &[f32], n: usize, step: usize, f: impl Fn(f32, f32) -> f32) {
    for (row, &y) in dst.chunks_exact_mut(n).zip(src.iter().step_by(step.max(1))) {
        for d in row {
            *d = f(*d, y);
        }
    }
}

/// `acc = k(acc, other)` in place, `acc` having the output shape and `other` broadcasting to
/// it. Every element-wise op runs through here.
#[inline(never)]
fn assign(acc: &mut [f32], acc_shape: &[usize], other: &[f32], osh: &[usize], k: Kernel) {
    if acc.is_empty() {
        return;
    }
    let (mut outer, inner) = plan(acc_shape, acc_shape, osh);
    // The op's loop walks the innermost outer axis as its rows (`acc` is contiguous, so its
    // rows lie `n` apart).
    let rows = outer.pop().unwrap_or(Axis {
        size: 1,
        sa: 0,
        sb: 0,
    });
    let n = inner.size;
    let block = rows.size * n;
    for_each_run(&outer, block, |o, _, ob| {
        let dst = &mut acc[o..o + block];
        k.rows(dst, &other[ob..], n, rows.sb, inner.sb == 0);
    });
}

#[inline(always)]
fn add(x: f32, y: f32) -> f32 {
    x + y
}

#[inline(always)]
fn sub(x: f32, y: f32) -> f32 {
    x - y
}

#[inline(always)]
fn mul(x: f32, y: f32) -> f32 {
    x * y
}

#[inline(always)]
fn div(x: f32, y: f32) -> f32 {
    x / y
}

/// tfjs's maximum: NaN if either is NaN.
#[inline(always)]
fn max(x: f32, y: f32) -> f32 {
    if x.is_nan() || x > y {
        x
    } else {
        y
    }
}

/// tfjs's minimum: NaN if either is NaN.
#[inline(always)]
fn min(x: f32, y: f32) -> f32 {
    if x.is_nan() || x < y {
        x
    } else {
        y
    }
}

/// `x` broadcast to `out_shape`, in a new buffer.
fn broadcast_to(x: &[f32], xsh: &[usize], out_shape: &[usize]) -> Vec<f32> {
    if xsh == out_shape {
        return copied(x);
    }
    let mut out = buffer(out_shape.iter().product(), 0.0);
    assign(&mut out, out_shape, x, xsh, Kernel::Set);
    out
}

/// `Op::Binary`: `a op b` broadcast to `out_shape`: `a` broadcast into a new buffer, then
/// combined with `b` there by the in-place loop (one loop per op serves both forms).
#[inline(never)]
pub(crate) fn binary(
    op: BinaryOp,
    a: &[f32],
    ash: &[usize],
    b: &[f32],
    bsh: &[usize],
    out_shape: &[usize],
) -> Vec<f32> {
    let mut out = broadcast_to(a, ash, out_shape);
    binary_assign(op, &mut out, out_shape, b, bsh, true);
    out
}

/// `Op::Binary` in place: `acc` holds the left operand (`acc_is_lhs`) or the right one and
/// has the output's shape; `other` is the remaining operand. Addition and multiplication are
/// commutative in IEEE arithmetic (to the bit), so one loop serves both sides.
#[inline(never)]
pub(crate) fn binary_assign(
    op: BinaryOp,
    acc: &mut [f32],
    acc_shape: &[usize],
    other: &[f32],
    osh: &[usize],
    acc_is_lhs: bool,
) {
    let k = match (op, acc_is_lhs) {
        (BinaryOp::Add, _) => Kernel::Add,
        (BinaryOp::Mul, _) => Kernel::Mul,
        (BinaryOp::Sub, true) => Kernel::Sub,
        (BinaryOp::Sub, false) => Kernel::SubRev,
        (BinaryOp::Div, true) => Kernel::Div,
        (BinaryOp::Div, false) => Kernel::DivRev,
        (BinaryOp::Max, true) => Kernel::Max,
        (BinaryOp::Max, false) => Kernel::MaxRev,
        (BinaryOp::Min, true) => Kernel::Min,
        (BinaryOp::Min, false) => Kernel::MinRev,
    };
    assign(acc, acc_shape, other, osh, k)
}

#[inline(always)]
fn prelu1(x: f32, alpha: f32) -> f32 {
    if x >= 0.0 {
        x
    } else {
        alpha * x
    }
}

/// `Op::Prelu`: `x >= 0 ? x : alpha * x`, `alpha` broadcast to `x`.
#[inline(never)]
pub(crate) fn prelu(x: &[f32], xsh: &[usize], alpha: &[f32], ash: &[usize]) -> Vec<f32> {
    let mut out = copied(x);
    prelu_assign(&mut out, xsh, alpha, ash);
    out
}

/// `Op::Prelu` in place on `x`.
#[inline(never)]
pub(crate) fn prelu_assign(x: &mut [f32], xsh: &[usize], alpha: &[f32], ash: &[usize]) {
    assign(x, xsh, alpha, ash, Kernel::Prelu)
}

/// `Op::ChannelAffine` in place: `x * scale[c] + shift[c]` over the last axis.
#[inline(never)]
pub(crate) fn channel_affine_assign(x: &mut [f32], scale: &[f32], shift: &[f32]) {
    let c = scale.len();
    if c == 0 {
        return;
    }
    for row in x.chunks_exact_mut(c) {
        for ((v, &s), &t) in row.iter_mut().zip(scale).zip(shift) {
            *v = *v * s + t;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{assert_close, Rng};
    use crate::{eval_op, Op};
    use webinfer_core::ir::broadcast_shapes;
    use webinfer_core::Tensor;

    fn apply(op: BinaryOp, x: f32, y: f32) -> f32 {
        match op {
            BinaryOp::Add => x + y,
            BinaryOp::Sub => x - y,
            BinaryOp::Mul => x * y,
            BinaryOp::Div => x / y,
            BinaryOp::Max => x.max(y),
            BinaryOp::Min => x.min(y),
        }
    }

    /// numpy broadcasting from the definition: index each operand by the output's coordinates.
    fn naive_broadcast(
        a: &Tensor,
        b: &Tensor,
        f: impl Fn(f32, f32) -> f32,
    ) -> (Vec<usize>, Vec<f32>) {
        let out = broadcast_shapes(a.shape(), b.shape()).unwrap();
        let r = out.len();
        let total: usize = out.iter().product();
        let index = |t: &Tensor, coord: &[usize]| {
            let off = r - t.rank();
            let mut i = 0;
            for (d, &s) in t.shape().iter().enumerate() {
                i = i * s + if s == 1 { 0 } else { coord[off + d] };
            }
            i
        };
        let mut data = Vec::with_capacity(total);
        for lin in 0..total {
            let mut coord = vec![0; r];
            let mut rem = lin;
            for d in (0..r).rev() {
                coord[d] = rem % out[d];
                rem /= out[d];
            }
            data.push(f(a.data()[index(a, &coord)], b.data()[index(b, &coord)]));
        }
        (out, data)
    }

    fn shape_pairs(rng: &mut Rng) -> (Vec<usize>, Vec<usize>) {
        let rank = rng.int(0, 4);
        let full: Vec<usize> = (0..rank).map(|_| rng.int(1, 5)).collect();
        let squash = |rng: &mut Rng| -> Vec<usize> {
            let keep = rng.int(0, rank);
            full[rank - keep..]
                .iter()
                .map(|&d| if rng.int(0, 2) == 0 { 1 } else { d })
                .collect()
        };
        let a = squash(rng);
        let b = squash(rng);
        if rng.bool() {
            (a, b)
        } else {
            (full.clone(), b)
        }
    }

    #[test]
    fn binary_broadcasting_matches_naive() {
        let mut rng = Rng::new(21);
        let ops = [
            BinaryOp::Add,
            BinaryOp::Sub,
            BinaryOp::Mul,
            BinaryOp::Div,
            BinaryOp::Max,
            BinaryOp::Min,
        ];
        let mut fixed = vec![
            (vec![2, 3, 4, 5], vec![2, 3, 4, 5]),
            (vec![2, 3, 4, 5], vec![]),
            (vec![], vec![2, 3, 4, 5]),
            (vec![2, 3, 4, 5], vec![5]),
            (vec![2, 3, 4, 5], vec![4, 1]),
            (vec![2, 1, 4, 1], vec![1, 3, 1, 5]),
            (vec![1, 1, 1, 7], vec![2, 5, 3, 7]),
            (vec![2, 5, 3, 1], vec![2, 5, 3, 7]),
            (vec![0, 3], vec![3]),
        ];
        for _ in 0..200 {
            fixed.push(shape_pairs(&mut rng));
        }
        for (i, (sa, sb)) in fixed.iter().enumerate() {
            let op = ops[i % ops.len()];
            let a = rng.tensor(sa);
            let mut b = rng.tensor(sb);
            if op == BinaryOp::Div {
                b = Tensor::new(
                    b.shape().to_vec(),
                    b.data().iter().map(|v| v + 2.0).collect(),
                )
                .unwrap();
            }
            let (shape, want) = naive_broadcast(&a, &b, |x, y| apply(op, x, y));
            let got = eval_op(&Op::Binary(op), &[&a, &b], &shape).unwrap();
            let case = format!("{op:?} {sa:?} {sb:?}");
            assert_close(&case, &got, &shape, &want);
            // In place on whichever operand has the output's shape.
            if sa == &shape {
                let mut acc = a.data().to_vec();
                binary_assign(op, &mut acc, sa, b.data(), sb, true);
                assert_close(
                    &format!("{case} in place lhs"),
                    &Tensor::new(shape.clone(), acc).unwrap(),
                    &shape,
                    &want,
                );
            }
            if sb == &shape {
                let mut acc = b.data().to_vec();
                binary_assign(op, &mut acc, sb, a.data(), sa, false);
                assert_close(
                    &format!("{case} in place rhs"),
                    &Tensor::new(shape.clone(), acc).unwrap(),
                    &shape,
                    &want,
                );
            }
        }
    }

    #[test]
    fn prelu_and_channel_affine_match_naive() {
        let mut rng = Rng::new(22);
        for (xs, als) in [
            (vec![2, 3, 4, 5], vec![5]),
            (vec![2, 3, 4, 5], vec![4, 5]),
            (vec![2, 3, 4, 5], vec![1, 1, 5]),
            (vec![3, 7], vec![7]),
            (vec![3, 7], vec![]),
        ] {
            let x = rng.tensor(&xs);
            let al = rng.tensor(&als);
            let (shape, want) = naive_broadcast(&x, &al, |v, a| if v >= 0.0 { v } else { a * v });
            let got = eval_op(&Op::Prelu, &[&x, &al], &shape).unwrap();
            assert_close(&format!("prelu {xs:?} {als:?}"), &got, &shape, &want);
            let mut acc = x.data().to_vec();
            prelu_assign(&mut acc, &xs, al.data(), &als);
            assert_close(
                "prelu in place",
                &Tensor::new(xs.clone(), acc).unwrap(),
                &shape,
                &want,
            );
        }
        let x = rng.tensor(&[2, 3, 5]);
        let (scale, shift) = (rng.tensor(&[5]), rng.tensor(&[5]));
        let want: Vec<f32> = x
            .data()
            .iter()
            .enumerate()
            .map(|(i, v)| v * scale.data()[i % 5] + shift.data()[i % 5])
            .collect();
        let got = eval_op(&Op::ChannelAffine, &[&x, &scale, &shift], &[2, 3, 5]).unwrap();
        assert_close("channel affine", &got, &[2, 3, 5], &want);
    }
}
