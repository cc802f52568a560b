//! Element-wise activations ([`Activation`]) and the vectorizable math they need.
//!
//! `exp`, `tanh`, `ln` and `erf` here are branch-free polynomial versions (Cephes-style,
//! about 1-2 ulp; `erf` is Abramowitz-Stegun 7.1.26 exactly as tfjs computes it) so that a
//! loop applying them auto-vectorizes; `f32::exp` would be a scalar library call per element.

use crate::par::{for_rows, Ctx};
use crate::simd::dispatch;
use webinfer_core::Activation;

/// SELU scale (Klambauer et al.): 1.0507009873554805.
const SELU_SCALE: f32 = 1.050_701;
/// SELU scale * alpha (alpha = 1.6732632423543772), the constant tfjs multiplies by.
const SELU_SCALE_ALPHA: f32 = 1.758_099_3;

dispatch! {
    /// Apply `a` to every element of `data`, in place.
    pub fn apply_activation<FMA>(a: Activation, data: &mut [f32]) {
        match a {
            Activation::Linear => {}
            Activation::Relu => map(data, relu),
            Activation::Relu6 => map(data, |x| relu_max(x, 6.0)),
            Activation::ReluMax(m) => map(data, |x| relu_max(x, m)),
            Activation::LeakyRelu(alpha) => map(data, |x| if x >= 0.0 { x } else { alpha * x }),
            Activation::Elu(alpha) => map(data, |x| elu(x, alpha)),
            Activation::Selu => map(data, |x| if x >= 0.0 { SELU_SCALE * x } else { elu(x, SELU_SCALE_ALPHA) }),
            Activation::Sigmoid => map(data, sigmoid),
            Activation::HardSigmoid => map(data, hard_sigmoid),
            Activation::Tanh => map(data, tanh),
            Activation::Softplus => map(data, softplus),
            Activation::Softsign => map(data, |x| x / (1.0 + x.abs())),
            Activation::Swish => map(data, |x| x * sigmoid(x)),
            Activation::Mish => map(data, |x| x * tanh(softplus(x))),
            Activation::Gelu => map(data, gelu),
            Activation::GeluTanh => map(data, gelu_tanh),
            // tfjs computes `x * (x > theta)`: negative inputs give -0, NaN stays NaN.
            Activation::Thresholded(theta) => map(data, |x| x * if x > theta { 1.0 } else { 0.0 }),
            Activation::Sqrt => map(data, f32::sqrt),
            Activation::Rsqrt => map(data, |x| 1.0 / x.sqrt()),
            Activation::Square => map(data, |x| x * x),
        }
    }
}

/// Rough cost of `a` per element relative to a plain copy (for the threading decision).
pub(crate) fn activation_cost(a: Activation) -> usize {
    use Activation::*;
    match a {
        Linear | Relu | Relu6 | ReluMax(_) | LeakyRelu(_) | HardSigmoid | Softsign
        | Thresholded(_) | Square => 1,
        Sqrt | Rsqrt => 4,
        Elu(_) | Selu | Sigmoid | Tanh | Swish => 8,
        Softplus | Gelu | GeluTanh => 12,
        Mish => 24,
    }
}

/// [`apply_activation`] split over threads when `data` is large.
#[inline(never)]
pub(crate) fn apply_activation_par(ctx: Ctx, a: Activation, data: &mut [f32]) {
    const ROW: usize = 4096;
    if !a.is_linear() {
        for_rows(ctx, data, ROW, ROW * activation_cost(a), |_, part| {
            apply_activation(a, part)
        });
    }
}

/// `data[i] = f(data[i])`. In WebAssembly one function per activation, not inlined into
/// [`apply_activation`]'s `match`: the engine compiles a function to optimised code once it
/// runs hot, and a function holding every activation's loop took as long to compile as a
/// MobileNetV2 predict; natively inlined, so that the AVX2 variant of a dispatched body
/// vectorizes it with its features.
#[cfg(not(target_arch = "wasm32"))]
#[inline(always)]
fn map(data: &mut [f32], f: impl Fn(f32) -> f32) {
    for v in data {
        *v = f(*v);
    }
}

/// `data[i] = f(data[i])` (see the native [`map`] for why it is not inlined). The whole quads
/// and the last, partial one (from a padded copy) run through the same loop, whose length is a
/// multiple of four: the auto-vectorised loop needs no scalar copy of `f` for a remainder
/// (19 such functions were 14 KB of the browser module, half of it the scalar copies).
#[cfg(target_arch = "wasm32")]
#[inline(never)]
fn map(data: &mut [f32], f: impl Fn(f32) -> f32 + Copy) {
    let quads = data.len() / 4;
    map_quads(data, quads, f);
    let tail = &mut data[quads * 4..];
    if !tail.is_empty() {
        let mut last = [0.0f32; 4];
        last[..tail.len()].copy_from_slice(tail);
        map_quads(&mut last, 1, f);
        tail.copy_from_slice(&last[..tail.len()]);
    }
}

/// `map` over the first `quads` quads of `data` (a length LLVM knows to be a multiple of four).
#[cfg(target_arch = "wasm32")]
#[inline(never)]
fn map_quads(data: &mut [f32], quads: usize, f: impl Fn(f32) -> f32) {
    for v in &mut data[..quads * 4] {
        *v = f(*v);
    }
}

#[inline(always)]
pub(crate) fn relu(x: f32) -> f32 {
    // `x < 0 ? 0 : x` keeps NaN, as tfjs does.
    if x < 0.0 {
        0.0
    } else {
        x
    }
}

#[inline(always)]
pub(crate) fn relu_max(x: f32, max: f32) -> f32 {
    let r = relu(x);
    if r > max {
        max
    } else {
        r
    }
}

#[inline(always)]
fn elu(x: f32, alpha: f32) -> f32 {
    let neg = alpha * expm1(x);
    if x >= 0.0 {
        x
    } else {
        neg
    }
}

#[inline(always)]
fn hard_sigmoid(x: f32) -> f32 {
    (0.2 * x + 0.5).clamp(0.0, 1.0)
}

#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `ln(1 + exp(x))` without overflow: `max(x, 0) + ln1p(exp(-|x|))`.
#[inline(always)]
pub(crate) fn softplus(x: f32) -> f32 {
    let pos = if x > 0.0 { x } else { 0.0 };
    pos + ln_1p_unit(exp(-x.abs()))
}

/// Exact gelu: `0.5 x (1 + erf(x / sqrt 2))`.
#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
#[inline(always)]
fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))
}

/// `e^x` (Cephes `expf`: range reduction by ln 2 and a degree-6 polynomial, ~1 ulp).
/// Overflows to `inf` above ~88.72, underflows through the subnormals to 0, keeps NaN.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: adding and subtracting it rounds to the nearest integer (|t| < 2^22).
    const ROUND: f32 = 12_582_912.0;
    // (`clamp` keeps NaN.)
    let xc = x.clamp(-104.0, 88.8);
    let big = xc * std::f32::consts::LOG2_E + ROUND;
    let n = big - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let p = (((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2)
        * r
        + 1.666_666_5e-1)
        * r
        + 5e-1)
        * (r * r)
        + r
        + 1.0;
    // n as an integer, read from the mantissa of `big` (a float-to-int `as` cast would not
    // vectorize); NaN gives garbage here but NaN in `p`, so the result is NaN anyway.
    let ni = big.to_bits() as i32 - ROUND.to_bits() as i32;
    // 2^n as two factors so that n in [-150, 128] never leaves the normal exponent range.
    let n1 = ni >> 1;
    let n2 = ni - n1;
    let s1 = f32::from_bits(((n1 + 127) as u32) << 23);
    let s2 = f32::from_bits(((n2 + 127) as u32) << 23);
    p * s1 * s2
}

/// `e^x - 1`, accurate near 0 (a Taylor polynomial below 0.5 in magnitude).
#[inline(always)]
pub(crate) fn expm1(x: f32) -> f32 {
    // x + x^2/2! + ... + x^9/9!: the next term is < 3e-9 |x| for |x| < 0.5.
    let p = x
        * (1.0
            + x * (0.5
                + x * (1.0 / 6.0
                    + x * (1.0 / 24.0
                        + x * (1.0 / 120.0
                            + x * (1.0 / 720.0
                                + x * (1.0 / 5040.0
                                    + x * (1.0 / 40320.0 + x * (1.0 / 362_880.0)))))))));
    if x.abs() < 0.5 {
        p
    } else {
        exp(x) - 1.0
    }
}

/// `tanh x`: an odd polynomial below 0.625 (Cephes `tanhf`), `1 - 2 / (e^2|x| + 1)` above.
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let small =
        ((((-5.704_988_7e-3 * z + 2.063_909e-2) * z - 5.373_971_6e-2) * z + 1.333_144_2e-1) * z
            - 3.333_328e-1)
            * z
            * x
            + x;
    let big = (1.0 - 2.0 / (exp(2.0 * a) + 1.0)).copysign(x);
    if a < 0.625 {
        small
    } else {
        big
    }
}

/// Natural log of a positive, finite, normal `x` (Cephes `logf`, ~1 ulp).
#[inline(always)]
pub(crate) fn ln(x: f32) -> f32 {
    const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    let bits = x.to_bits();
    // x = m * 2^e with m in [0.5, 1).
    let e = ((bits >> 23) & 0xff) as i32 - 126;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    let low = m < SQRT_HALF;
    let e = if low { e - 1 } else { e } as f32;
    let m = if low { m + m - 1.0 } else { m - 1.0 };
    let z = m * m;
    let poly = ((((((((7.037_683_6e-2 * m - 1.151_461e-1) * m + 1.167_699_9e-1) * m
        - 1.242_014_1e-1)
        * m
        + 1.424_932_3e-1)
        * m
        - 1.666_805_8e-1)
        * m
        + 2.000_071_4e-1)
        * m
        - 2.499_999_4e-1)
        * m
        + 3.333_333e-1)
        * m
        * z;
    let y = poly - 2.121_944_4e-4 * e - 0.5 * z;
    m + y + 0.693_359_4 * e
}

/// `ln(1 + u)` for `u` in `[0, 1]`, accurate for tiny `u` (Goldberg's `w = 1 + u` trick).
#[inline(always)]
fn ln_1p_unit(u: f32) -> f32 {
    let w = 1.0 + u;
    let l = ln(w) * (u / (w - 1.0));
    if w == 1.0 {
        u
    } else {
        l
    }
}

/// `erf x`, Abramowitz-Stegun 7.1.26 (absolute error < 1.5e-7): the formula tfjs uses.
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A1: f32 = 0.254_829_6;
    const A2: f32 = -0.284_496_74;
    const A3: f32 = 1.421_413_8;
    const A4: f32 = -1.453_152_1;
    const A5: f32 = 1.061_405_4;
    let a = x.abs();
    let t = 1.0 / (1.0 + P * a);
    let y = 1.0 - ((((A5 * t + A4) * t + A3) * t + A2) * t + A1) * t * exp(-a * a);
    y.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    /// Reference formulas in f64 with the standard library.
    fn reference(a: Activation, x: f64) -> f64 {
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        let softplus = |x: f64| x.max(0.0) + (-x.abs()).exp().ln_1p();
        match a {
            Activation::Linear => x,
            Activation::Relu => x.max(0.0),
            Activation::Relu6 => x.clamp(0.0, 6.0),
            Activation::ReluMax(m) => x.clamp(0.0, m as f64),
            Activation::LeakyRelu(al) => {
                if x >= 0.0 {
                    x
                } else {
                    al as f64 * x
                }
            }
            Activation::Elu(al) => {
                if x >= 0.0 {
                    x
                } else {
                    al as f64 * x.exp_m1()
                }
            }
            Activation::Selu => {
                1.0507009873554805
                    * if x >= 0.0 {
                        x
                    } else {
                        1.6732632423543772 * x.exp_m1()
                    }
            }
            Activation::Sigmoid => sigmoid(x),
            // tfjs rounds each step to f32: mul(0.2, x), then add 0.5, then clip.
            Activation::HardSigmoid => ((0.2f32 * x as f32) + 0.5).clamp(0.0, 1.0) as f64,
            Activation::Tanh => x.tanh(),
            Activation::Softplus => softplus(x),
            Activation::Softsign => x / (1.0 + x.abs()),
            Activation::Swish => x * sigmoid(x),
            Activation::Mish => x * softplus(x).tanh(),
            Activation::Gelu => 0.5 * x * (1.0 + erf_ref(x / std::f64::consts::SQRT_2)),
            Activation::GeluTanh => {
                0.5 * x
                    * (1.0
                        + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
            }
            Activation::Thresholded(theta) => {
                if x > theta as f64 {
                    x
                } else {
                    0.0
                }
            }
            Activation::Sqrt => x.sqrt(),
            Activation::Rsqrt => 1.0 / x.sqrt(),
            Activation::Square => x * x,
        }
    }

    /// erf by its Taylor series / continued fraction, accurate to ~1e-15 on the range used.
    fn erf_ref(x: f64) -> f64 {
        let a = x.abs();
        let r = if a < 3.0 {
            // Taylor: 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))
            let mut sum = 0.0;
            let mut term = a;
            let mut n = 0.0;
            while term.abs() > 1e-17 {
                sum += term / (2.0 * n + 1.0);
                n += 1.0;
                term *= -a * a / n;
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            // erfc continued fraction (Lentz), fine for a >= 3.
            let mut f = a;
            for k in (1..60).rev() {
                f = a + (k as f64 / 2.0) / f;
            }
            1.0 - (-a * a).exp() / (f * std::f64::consts::PI.sqrt())
        };
        r.copysign(x)
    }

    fn activation_scalar(a: Activation, x: f32) -> f32 {
        let mut v = [x];
        apply_activation(a, &mut v);
        v[0]
    }

    fn all() -> Vec<Activation> {
        use Activation::*;
        vec![
            Linear,
            Relu,
            Relu6,
            ReluMax(2.5),
            LeakyRelu(0.3),
            Elu(1.0),
            Elu(0.7),
            Selu,
            Sigmoid,
            HardSigmoid,
            Tanh,
            Softplus,
            Softsign,
            Swish,
            Mish,
            Gelu,
            GeluTanh,
            Thresholded(1.0),
            Thresholded(-0.5),
        ]
    }

    #[test]
    fn sqrt_rsqrt_square_match_f64() {
        let mut rng = Rng::new(11);
        let xs: Vec<f32> = (0..2000).map(|_| rng.uniform(1e-3, 50.0)).collect();
        for a in [Activation::Sqrt, Activation::Rsqrt, Activation::Square] {
            let mut got = xs.clone();
            apply_activation(a, &mut got);
            for (&x, &g) in xs.iter().zip(&got) {
                let want = reference(a, x as f64);
                assert!(
                    (g as f64 - want).abs() <= 1e-6 * want.abs().max(1.0),
                    "{a:?}({x}) = {g}, want {want}"
                );
            }
        }
    }

    #[test]
    fn every_activation_matches_its_formula() {
        let mut rng = Rng::new(7);
        let mut xs: Vec<f32> = (0..4000).map(|_| rng.uniform(-12.0, 12.0)).collect();
        xs.extend((0..2000).map(|_| rng.uniform(-1.0, 1.0)));
        xs.extend([
            0.0, -0.0, 1e-8, -1e-8, 1e-30, 0.6249, 0.6251, -0.625, 20.0, -20.0, 50.0, -50.0, 87.0,
            -87.0, 100.0, -100.0,
        ]);
        // A length that is not a multiple of four (the WebAssembly loop's padded last quad).
        xs.extend([0.3, -0.3, 2.5]);
        for a in all() {
            let mut got = xs.clone();
            apply_activation(a, &mut got);
            for (&x, &g) in xs.iter().zip(&got) {
                let want = reference(a, x as f64);
                // A&S erf is only good to 1.5e-7 absolute, and `1 + tanh` cancels for x << 0 (in
                // tfjs too): both gelus get an absolute allowance.
                let abs_tol = match a {
                    Activation::Gelu => 2e-7 * (x.abs() as f64).max(1.0),
                    Activation::GeluTanh => 1e-7,
                    _ => 1e-30,
                };
                let err = (g as f64 - want).abs();
                assert!(
                    err <= 4e-6 * want.abs() + abs_tol,
                    "{a:?}({x}) = {g}, want {want} (err {err:e})"
                );
            }
        }
    }

    #[test]
    fn exp_edges() {
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(89.0), f32::INFINITY);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-200.0), 0.0);
        assert!(exp(f32::NAN).is_nan());
        assert!(tanh(f32::NAN).is_nan());
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
        assert_eq!(activation_scalar(Activation::Sigmoid, -200.0), 0.0);
        assert_eq!(activation_scalar(Activation::Sigmoid, 200.0), 1.0);
        assert_eq!(activation_scalar(Activation::Softplus, 200.0), 200.0);
        assert!(activation_scalar(Activation::Relu, f32::NAN).is_nan());
        // Subnormal results stay close to the true value.
        let e = exp(-100.0) as f64;
        assert!((e - (-100f64).exp()).abs() < 1e-45, "{e}");
        // Relative accuracy over the whole range.
        let mut x = -103.0f32;
        while x < 88.7 {
            let want = (x as f64).exp();
            if want > 1.2e-38 {
                assert!(((exp(x) as f64 - want) / want).abs() < 3e-7, "exp({x})");
            }
            x += 0.0137;
        }
        let mut x = 1e-30f32;
        while x < 1e30 {
            let want = (x as f64).ln();
            assert!(
                (ln(x) as f64 - want).abs() <= 2e-7 * want.abs().max(1.0),
                "ln({x})"
            );
            x *= 1.37;
        }
    }
}
