//! Matrix products (matrixmultiply's `sgemm` behind a safe, bounds-checked wrapper, with a
//! direct path for very short left-hand sides; in WebAssembly the direct convolution kernel
//! instead of matrixmultiply) and the fused bias + activation epilogue.

use crate::activation::{activation_cost, apply_activation};
#[cfg(target_arch = "wasm32")]
use crate::igemm;
use crate::par::{for_rows, Ctx};
use crate::simd::{dispatch, madd};
use webinfer_core::Activation;

/// A strided read-only matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> Mat<'a> {
    /// A row-major view with row stride `rs`.
    pub fn rows(data: &'a [f32], rs: usize) -> Self {
        Mat { data, rs, cs: 1 }
    }
}

/// Below this many rows of `A`, `gemm` uses a direct row-times-matrix loop: matrixmultiply
/// would pack all of `B` (as much memory traffic as the product itself) for a few rows.
const SMALL_M: usize = 4;

/// Index one past the last element a `rows x cols` view with strides `rs`, `cs` touches.
fn extent(rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    (rows - 1) * rs + (cols - 1) * cs + 1
}

/// `C = A · B` with `A` `m x k`, `B` `k x n`, and `C` row-major `m x n` with row stride
/// `ldc` (overwritten; columns at and beyond `n` are untouched).
///
/// Panics if a view is too short for its dimensions: callers derive both from validated
/// shapes, so that would be a bug here, not bad input.
pub(crate) fn gemm(m: usize, k: usize, n: usize, a: Mat, b: Mat, c: &mut [f32], ldc: usize) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        ldc >= n && extent(m, n, ldc, 1) <= c.len(),
        "gemm: C too short"
    );
    if k == 0 {
        for row in c.chunks_mut(ldc).take(m) {
            row[..n].fill(0.0);
        }
        return;
    }
    assert!(
        extent(m, k, a.rs, a.cs) <= a.data.len(),
        "gemm: A too short"
    );
    assert!(
        extent(k, n, b.rs, b.cs) <= b.data.len(),
        "gemm: B too short"
    );
    // Not in WebAssembly, where the only GEMM with a row-major `B` (WEBINFER_CPU_CONV=gemm
    // aside) is a transposed convolution of one input channel: `direct` takes it, and the
    // module is 1 KB of gzip smaller without this loop.
    if !cfg!(target_arch = "wasm32") && m <= SMALL_M && b.cs == 1 {
        for i in 0..m {
            let row = &mut c[i * ldc..i * ldc + n];
            vec_mat(a, i, k, b.data, b.rs, row);
        }
        return;
    }
    #[cfg(target_arch = "wasm32")]
    direct(m, k, n, a, b, c, ldc);
    // SAFETY: the asserts above keep every element sgemm reads or writes inside its slice;
    // C does not alias A or B (it is a distinct `&mut`).
    #[cfg(not(target_arch = "wasm32"))]
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            0.0,
            c.as_mut_ptr(),
            ldc as isize,
            1,
        );
    }
}

/// [`gemm`] in WebAssembly: the direct convolution kernel as a 1x1 convolution
/// ([`igemm::matmul`]), on copies of `A` and `B` made row-major and contiguous where they are
/// not, into a copy of `C` where its rows are padded. matrixmultiply is then not linked into
/// the browser module (8.8 KB of code); the direct kernel, written for V8, measured faster
/// than it on the transposed convolution, its use there (node, wasm32-wasip1: 3x3/2,
/// 28x28x64 -> 64, 1.61 -> 1.35 ms). MatMul has its own WebAssembly paths (`conv::matmul`).
#[cfg(target_arch = "wasm32")]
fn direct(m: usize, k: usize, n: usize, a: Mat, b: Mat, c: &mut [f32], ldc: usize) {
    fn contiguous(v: Mat, rows: usize, cols: usize) -> std::borrow::Cow<[f32]> {
        if v.cs == 1 && v.rs == cols {
            v.data[..rows * cols].into()
        } else {
            let mut out = Vec::with_capacity(rows * cols);
            for i in 0..rows {
                out.extend((0..cols).map(|j| v.data[i * v.rs + j * v.cs]));
            }
            out.into()
        }
    }
    let (x, w) = (contiguous(a, m, k), contiguous(b, k, n));
    let product = |out: &mut [f32]| {
        let (ctx, linear) = (Ctx { threads: 1 }, Activation::Linear);
        igemm::matmul(ctx, m, k, n, &x, &w, None, linear, None, out);
    };
    if ldc == n {
        product(&mut c[..m * n]);
    } else {
        let mut packed = vec![0.0; m * n];
        product(&mut packed);
        for (dst, src) in c.chunks_mut(ldc).zip(packed.chunks_exact(n)) {
            dst[..n].copy_from_slice(src);
        }
    }
}

/// `row = A[i, :] · B` for a row-major `B` (row stride `ldb`), four rows of `B` per pass.
fn vec_mat(a: Mat, i: usize, k: usize, b: &[f32], ldb: usize, row: &mut [f32]) {
    let coef = |kk: usize| a.data[i * a.rs + kk * a.cs];
    row.fill(0.0);
    let mut kk = 0;
    while kk + 4 <= k {
        let rows = [
            &b[kk * ldb..],
            &b[(kk + 1) * ldb..],
            &b[(kk + 2) * ldb..],
            &b[(kk + 3) * ldb..],
        ];
        axpy4(
            row,
            [coef(kk), coef(kk + 1), coef(kk + 2), coef(kk + 3)],
            rows[0],
            rows[1],
            rows[2],
            rows[3],
        );
        kk += 4;
    }
    while kk < k {
        axpy(row, coef(kk), &b[kk * ldb..]);
        kk += 1;
    }
}

dispatch! {
    /// `y += c0 b0 + c1 b1 + c2 b2 + c3 b3` over `y.len()` elements.
    fn axpy4<FMA>(y: &mut [f32], c: [f32; 4], b0: &[f32], b1: &[f32], b2: &[f32], b3: &[f32]) {
        let n = y.len();
        let (b0, b1, b2, b3) = (&b0[..n], &b1[..n], &b2[..n], &b3[..n]);
        for j in 0..n {
            let mut v = y[j];
            v = madd::<FMA>(c[0], b0[j], v);
            v = madd::<FMA>(c[1], b1[j], v);
            v = madd::<FMA>(c[2], b2[j], v);
            v = madd::<FMA>(c[3], b3[j], v);
            y[j] = v;
        }
    }
}

dispatch! {
    /// `y += c b` over `y.len()` elements.
    fn axpy<FMA>(y: &mut [f32], c: f32, b: &[f32]) {
        for (v, &bv) in y.iter_mut().zip(b) {
            *v = madd::<FMA>(c, bv, *v);
        }
    }
}

/// Rows per block of the epilogue, so that small channel counts still run long loops.
const EPILOGUE_BLOCK: usize = 1024;

/// The fused conv / matmul epilogue: `out[r, j] = act(out[r, j] + bias[j])` over the rows
/// of `out` (row length `n`), in one pass that stays in cache block by block, split over
/// threads when large.
pub(crate) fn bias_act(ctx: Ctx, out: &mut [f32], n: usize, bias: Option<&[f32]>, act: Activation) {
    if n == 0 || (bias.is_none() && act.is_linear()) {
        return;
    }
    let block_len = EPILOGUE_BLOCK.div_ceil(n) * n;
    for_rows(
        ctx,
        out,
        block_len,
        block_len * activation_cost(act),
        |_, blocks| {
            for block in blocks.chunks_mut(block_len) {
                if let Some(bias) = bias {
                    add_rows(block, &bias[..n]);
                }
                apply_activation(act, block);
            }
        },
    );
}

dispatch! {
    /// `rows[r, j] += v[j]` for each row of length `v.len()`.
    fn add_rows<FMA>(rows: &mut [f32], v: &[f32]) {
        for row in rows.chunks_exact_mut(v.len()) {
            for (x, &b) in row.iter_mut().zip(v) {
                *x += b;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    fn naive(m: usize, k: usize, n: usize, a: Mat, b: Mat) -> Vec<f32> {
        let mut c = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f64;
                for kk in 0..k {
                    s += a.data[i * a.rs + kk * a.cs] as f64 * b.data[kk * b.rs + j * b.cs] as f64;
                }
                c[i * n + j] = s as f32;
            }
        }
        c
    }

    #[test]
    fn gemm_matches_naive_for_all_paths() {
        let mut rng = Rng::new(1);
        for &(m, k, n) in &[
            (1, 1, 1),
            (1, 7, 5),
            (3, 9, 17),
            (4, 33, 8),
            (5, 3, 2),
            (17, 31, 13),
            (64, 70, 33),
            (2, 0, 3),
            (0, 4, 4),
        ] {
            for transpose_b in [false, true] {
                let a: Vec<f32> = (0..m * k).map(|_| rng.uniform(-1.0, 1.0)).collect();
                let b: Vec<f32> = (0..k * n).map(|_| rng.uniform(-1.0, 1.0)).collect();
                let bm = if transpose_b {
                    Mat {
                        data: &b,
                        rs: 1,
                        cs: k,
                    }
                } else {
                    Mat::rows(&b, n)
                };
                let am = Mat::rows(&a, k);
                let want = naive(m, k, n, am, bm);
                // A padded C (ldc > n) whose extra column must survive.
                let ldc = n + 1;
                let mut c = vec![9.0f32; m * ldc];
                gemm(m, k, n, am, bm, &mut c, ldc);
                for i in 0..m {
                    for j in 0..n {
                        let (g, w) = (c[i * ldc + j], want[i * n + j]);
                        assert!(
                            (g - w).abs() <= 1e-5 * w.abs().max(1.0),
                            "m{m} k{k} n{n} t{transpose_b}: ({i},{j}) {g} vs {w}"
                        );
                    }
                    assert_eq!(c[i * ldc + n], 9.0);
                }
            }
        }
    }

    #[test]
    fn epilogue_adds_bias_then_activates() {
        let mut out = vec![-1.0, 0.5, 2.0, -3.0, 1.0, 0.25];
        bias_act(
            Ctx { threads: 2 },
            &mut out,
            3,
            Some(&[1.5, -1.0, 0.0]),
            Activation::Relu,
        );
        assert_eq!(out, vec![0.5, 0.0, 2.0, 0.0, 0.0, 0.25]);
    }
}
