//! Data movement: `Op::Concat`, `Op::Pad`, `Op::Slice`, `Op::Transpose`.
//!
//! Concat, Pad and Slice are all "copy a box from one array into another" ([`copy_box`]),
//! which merges trailing axes the box spans completely so that each copy is one long
//! `memcpy`. Transpose drops size-1 axes and merges axes that stay adjacent, then copies
//! contiguous runs when the innermost axis is unchanged and gathers otherwise.

use crate::buffers::{buffer, copied};

/// Row-major strides of `shape`.
pub(crate) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut st = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        st[i] = st[i + 1] * shape[i + 1];
    }
    st
}

/// Copy the box of extent `size` at `src_start` in `src` (shape `src_shape`) to `dst_start`
/// in `dst` (shape `dst_shape`). All ranks equal; the box must fit both arrays.
pub(crate) fn copy_box(
    src: &[f32],
    src_shape: &[usize],
    src_start: &[usize],
    dst: &mut [f32],
    dst_shape: &[usize],
    dst_start: &[usize],
    size: &[usize],
) {
    let r = size.len();
    if size.contains(&0) {
        return;
    }
    if r == 0 {
        dst[0] = src[0];
        return;
    }
    let (ss, ds) = (strides(src_shape), strides(dst_shape));
    // The copied run spans axis `a` and every later axis (which the box covers completely).
    let mut a = r - 1;
    let mut run = size[a];
    while a > 0 && size[a] == src_shape[a] && size[a] == dst_shape[a] {
        a -= 1;
        run *= size[a];
    }
    let mut so: usize = (0..r).map(|d| src_start[d] * ss[d]).sum();
    let mut doff: usize = (0..r).map(|d| dst_start[d] * ds[d]).sum();
    let runs: usize = size[..a].iter().product();
    let mut idx = vec![0usize; a];
    for _ in 0..runs {
        dst[doff..doff + run].copy_from_slice(&src[so..so + run]);
        for d in (0..a).rev() {
            idx[d] += 1;
            so += ss[d];
            doff += ds[d];
            if idx[d] < size[d] {
                break;
            }
            so -= ss[d] * size[d];
            doff -= ds[d] * size[d];
            idx[d] = 0;
        }
    }
}

/// `Op::Concat` of `inputs` (data, shape) along `axis` into `out_shape`.
#[inline(never)]
pub(crate) fn concat(inputs: &[(&[f32], &[usize])], axis: usize, out_shape: &[usize]) -> Vec<f32> {
    let mut out = buffer(out_shape.iter().product(), 0.0);
    let mut start = vec![0usize; out_shape.len()];
    let zeros = vec![0usize; out_shape.len()];
    for &(data, shape) in inputs {
        copy_box(data, shape, &zeros, &mut out, out_shape, &start, shape);
        start[axis] += shape[axis];
    }
    out
}

/// `Op::Pad` with a constant `value`: `pads[axis] = [before, after]`.
#[inline(never)]
pub(crate) fn pad(
    x: &[f32],
    shape: &[usize],
    pads: &[[usize; 2]],
    value: f32,
    out_shape: &[usize],
) -> Vec<f32> {
    let mut out = buffer(out_shape.iter().product(), value);
    let zeros = vec![0usize; shape.len()];
    let before: Vec<usize> = pads.iter().map(|p| p[0]).collect();
    copy_box(x, shape, &zeros, &mut out, out_shape, &before, shape);
    out
}

/// `Op::Slice`: the box starting at `begin` with the output's extent.
#[inline(never)]
pub(crate) fn slice(x: &[f32], shape: &[usize], begin: &[usize], out_shape: &[usize]) -> Vec<f32> {
    let mut out = buffer(out_shape.iter().product(), 0.0);
    let zeros = vec![0usize; shape.len()];
    copy_box(x, shape, begin, &mut out, out_shape, &zeros, out_shape);
    out
}

/// `Op::Transpose`: output axis `i` is input axis `perm[i]`.
#[inline(never)]
pub(crate) fn transpose(x: &[f32], shape: &[usize], perm: &[usize]) -> Vec<f32> {
    let total: usize = shape.iter().product();
    if total == 0 {
        return Vec::new();
    }
    // Drop size-1 axes, renumbering the rest.
    let kept: Vec<usize> = (0..shape.len()).filter(|&i| shape[i] != 1).collect();
    let mut renum = vec![usize::MAX; shape.len()];
    for (new, &old) in kept.iter().enumerate() {
        renum[old] = new;
    }
    let p: Vec<usize> = perm
        .iter()
        .filter(|&&a| shape[a] != 1)
        .map(|&a| renum[a])
        .collect();
    // Merge runs of output axes that are consecutive input axes.
    let mut groups: Vec<(usize, usize)> = Vec::new(); // (first input axis, count), in output order
    for &a in &p {
        match groups.last_mut() {
            Some((first, count)) if *first + *count == a => *count += 1,
            _ => groups.push((a, 1)),
        }
    }
    let mut by_input: Vec<usize> = (0..groups.len()).collect();
    webinfer_core::order::sort_by_key(&mut by_input, |&g| groups[g].0);
    // The merged input shape (groups in input order) and the merged permutation.
    let in_shape: Vec<usize> = by_input
        .iter()
        .map(|&g| {
            (groups[g].0..groups[g].0 + groups[g].1)
                .map(|a| shape[kept[a]])
                .product()
        })
        .collect();
    let mut rank_of = vec![0; groups.len()];
    for (rank, &g) in by_input.iter().enumerate() {
        rank_of[g] = rank;
    }
    let q: Vec<usize> = (0..groups.len()).map(|g| rank_of[g]).collect();
    if q.len() <= 1 || q.iter().enumerate().all(|(i, &a)| i == a) {
        return copied(x);
    }
    let ist = strides(&in_shape);
    let out_dims: Vec<usize> = q.iter().map(|&a| in_shape[a]).collect();
    let src_st: Vec<usize> = q.iter().map(|&a| ist[a]).collect();
    let r = q.len();
    let (inner, inner_st) = (out_dims[r - 1], src_st[r - 1]);
    let mut out = buffer(total, 0.0);
    let outer = &out_dims[..r - 1];
    let mut idx = vec![0usize; r - 1];
    let mut so = 0usize;
    for run in out.chunks_exact_mut(inner) {
        if inner_st == 1 {
            run.copy_from_slice(&x[so..so + inner]);
        } else {
            for (j, v) in run.iter_mut().enumerate() {
                *v = x[so + j * inner_st];
            }
        }
        for d in (0..r - 1).rev() {
            idx[d] += 1;
            so += src_st[d];
            if idx[d] < outer[d] {
                break;
            }
            so -= src_st[d] * outer[d];
            idx[d] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::testutil::{assert_close, Rng};
    use crate::{eval_op, Op};
    use webinfer_core::ir::slice_range;
    use webinfer_core::Tensor;

    /// Multi-index of linear position `lin` in `shape`.
    fn coords(mut lin: usize, shape: &[usize]) -> Vec<usize> {
        let mut c = vec![0; shape.len()];
        for d in (0..shape.len()).rev() {
            c[d] = lin % shape[d];
            lin /= shape[d];
        }
        c
    }
    fn linear(c: &[usize], shape: &[usize]) -> usize {
        c.iter().zip(shape).fold(0, |acc, (&i, &s)| acc * s + i)
    }

    fn random_shape(rng: &mut Rng, rank: usize) -> Vec<usize> {
        (0..rank).map(|_| rng.int(1, 5)).collect()
    }

    #[test]
    fn transpose_matches_naive() {
        let mut rng = Rng::new(31);
        for case in 0..150 {
            let rank = rng.int(1, 5);
            let shape = random_shape(&mut rng, rank);
            let mut perm: Vec<usize> = (0..rank).collect();
            for i in (1..rank).rev() {
                let j = rng.int(0, i);
                perm.swap(i, j);
            }
            let x = rng.tensor(&shape);
            let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
            let total: usize = shape.iter().product();
            let want: Vec<f32> = (0..total)
                .map(|lin| {
                    let oc = coords(lin, &out_shape);
                    let mut ic = vec![0; rank];
                    for (i, &p) in perm.iter().enumerate() {
                        ic[p] = oc[i];
                    }
                    x.data()[linear(&ic, &shape)]
                })
                .collect();
            let got = eval_op(&Op::Transpose { perm: perm.clone() }, &[&x], &out_shape).unwrap();
            assert_close(
                &format!("transpose case {case} {shape:?} {perm:?}"),
                &got,
                &out_shape,
                &want,
            );
        }
    }

    #[test]
    fn slice_pad_concat_match_naive() {
        let mut rng = Rng::new(32);
        for case in 0..120 {
            let rank = rng.int(1, 4);
            let shape = random_shape(&mut rng, rank);
            let x = rng.tensor(&shape);
            // Slice.
            let begin: Vec<usize> = shape.iter().map(|&d| rng.int(0, d - 1)).collect();
            let end: Vec<i64> = shape
                .iter()
                .zip(&begin)
                .map(|(&d, &b)| match rng.int(0, 2) {
                    0 => i64::MAX,
                    1 => rng.int(b + 1, d) as i64,
                    _ => {
                        // A negative end counts from the back.
                        let stop = rng.int(b + 1, d);
                        if stop < d {
                            stop as i64 - d as i64
                        } else {
                            i64::MAX
                        }
                    }
                })
                .collect();
            let ranges: Vec<(usize, usize)> = (0..rank)
                .map(|i| slice_range(begin[i], end[i], shape[i]).unwrap())
                .collect();
            let out_shape: Vec<usize> = ranges.iter().map(|(a, b)| b - a).collect();
            let total: usize = out_shape.iter().product();
            let want: Vec<f32> = (0..total)
                .map(|lin| {
                    let c: Vec<usize> = coords(lin, &out_shape)
                        .iter()
                        .zip(&ranges)
                        .map(|(i, r)| i + r.0)
                        .collect();
                    x.data()[linear(&c, &shape)]
                })
                .collect();
            let got = eval_op(
                &Op::Slice {
                    begin: begin.clone(),
                    end: end.clone(),
                },
                &[&x],
                &out_shape,
            )
            .unwrap();
            assert_close(
                &format!("slice case {case} {shape:?} {begin:?} {end:?}"),
                &got,
                &out_shape,
                &want,
            );

            // Pad.
            let pads: Vec<[usize; 2]> = (0..rank).map(|_| [rng.int(0, 2), rng.int(0, 2)]).collect();
            let out_shape: Vec<usize> = shape
                .iter()
                .zip(&pads)
                .map(|(d, p)| d + p[0] + p[1])
                .collect();
            let total: usize = out_shape.iter().product();
            let want: Vec<f32> = (0..total)
                .map(|lin| {
                    let oc = coords(lin, &out_shape);
                    let inside = oc
                        .iter()
                        .zip(&pads)
                        .zip(&shape)
                        .all(|((&o, p), &d)| o >= p[0] && o - p[0] < d);
                    if inside {
                        let ic: Vec<usize> = oc.iter().zip(&pads).map(|(o, p)| o - p[0]).collect();
                        x.data()[linear(&ic, &shape)]
                    } else {
                        -7.5
                    }
                })
                .collect();
            let got = eval_op(
                &Op::Pad {
                    pads: pads.clone(),
                    value: -7.5,
                },
                &[&x],
                &out_shape,
            )
            .unwrap();
            assert_close(
                &format!("pad case {case} {shape:?} {pads:?}"),
                &got,
                &out_shape,
                &want,
            );

            // Concat of 1-3 tensors on a random axis.
            let axis = rng.int(0, rank - 1);
            let parts: Vec<Tensor> = (0..rng.int(1, 3))
                .map(|_| {
                    let mut s = shape.clone();
                    s[axis] = rng.int(1, 3);
                    rng.tensor(&s)
                })
                .collect();
            let mut out_shape = shape.clone();
            out_shape[axis] = parts.iter().map(|t| t.shape()[axis]).sum();
            let total: usize = out_shape.iter().product();
            let want: Vec<f32> = (0..total)
                .map(|lin| {
                    let mut c = coords(lin, &out_shape);
                    for t in &parts {
                        if c[axis] < t.shape()[axis] {
                            return t.data()[linear(&c, t.shape())];
                        }
                        c[axis] -= t.shape()[axis];
                    }
                    unreachable!()
                })
                .collect();
            let refs: Vec<&Tensor> = parts.iter().collect();
            let got = eval_op(&Op::Concat { axis }, &refs, &out_shape).unwrap();
            assert_close(
                &format!("concat case {case} axis {axis}"),
                &got,
                &out_shape,
                &want,
            );
        }
    }

    #[test]
    fn reshape_keeps_data() {
        let x = Tensor::new(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let got = eval_op(&Op::Reshape { shape: vec![3, -1] }, &[&x], &[3, 2]).unwrap();
        assert_close("reshape", &got, &[3, 2], x.data());
    }
}
