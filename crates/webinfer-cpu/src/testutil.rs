//! Helpers shared by the kernel tests: a seeded generator and a named-tolerance comparison.

use webinfer_core::Tensor;

/// A small deterministic generator (xorshift64*), so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }
    /// Uniform integer in `[lo, hi]`.
    pub fn int(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.int(0, items.len() - 1)]
    }
    pub fn bool(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
    /// A tensor of the given shape with values in `[-1, 1)`.
    pub fn tensor(&mut self, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor::new(
            shape.to_vec(),
            (0..n).map(|_| self.uniform(-1.0, 1.0)).collect(),
        )
        .unwrap()
    }
}

/// Relative-ish tolerance: `|got - want| <= tol * max(1, |want|)`.
pub const TOL: f32 = 1e-5;

/// Compare element-wise with [`TOL`]; the message names the case and the differing element.
#[track_caller]
pub fn assert_close(case: &str, got: &Tensor, want_shape: &[usize], want: &[f32]) {
    assert_close_tol(case, got, want_shape, want, TOL)
}

/// [`assert_close`] with tolerance `tol` (long f32 dot products drift from the f64 reference).
#[track_caller]
pub fn assert_close_tol(case: &str, got: &Tensor, want_shape: &[usize], want: &[f32], tol: f32) {
    assert_eq!(got.shape(), want_shape, "{case}: shape");
    assert_eq!(got.len(), want.len(), "{case}: length");
    for (i, (&g, &w)) in got.data().iter().zip(want).enumerate() {
        let ok = (g == w) || (g.is_nan() && w.is_nan()) || (g - w).abs() <= tol * w.abs().max(1.0);
        assert!(
            ok,
            "{case}: element {i} of {want_shape:?}: got {g}, want {w} (diff {:e})",
            (g - w).abs()
        );
    }
}
