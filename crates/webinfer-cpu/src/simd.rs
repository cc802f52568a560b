//! Runtime CPU-feature dispatch for the hot loops.
//!
//! The kernels are plain loops written for the auto-vectorizer (innermost loop over contiguous
//! channels). A default x86-64 build only targets SSE2, so [`dispatch!`] compiles each hot
//! loop twice, once more with AVX2 + FMA enabled, and picks the variant at run time. On other
//! targets (wasm32 with or without `simd128`, aarch64) the single baseline variant is used.
//!
//! Inside a dispatched body, [`madd`] is `a * b + c`, fused when the FMA variant runs.

/// Defines `fn name(args) -> ret` whose body is compiled twice on x86-64 (baseline and
/// AVX2+FMA) and dispatched on the running CPU. The body sees a `const FMA: bool` under
/// the name given in angle brackets, to pass on to [`madd`]. Arguments must be concrete
/// (non-generic) types; helpers the body calls must be `#[inline(always)]` to benefit.
macro_rules! dispatch {
    ($(#[$m:meta])* $vis:vis fn $name:ident<$fma:ident>($($a:ident : $t:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($a: $t),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn imp<const $fma: bool>($($a: $t),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn avx2($($a: $t),*) $(-> $ret)? {
                    imp::<true>($($a),*)
                }
                if $crate::simd::has_avx2_fma() {
                    // SAFETY: the CPU supports AVX2 and FMA (checked just above).
                    return unsafe { avx2($($a),*) };
                }
            }
            imp::<false>($($a),*)
        }
    };
}
pub(crate) use dispatch;

/// Whether to run the AVX2+FMA variants: the CPU has both and `WEBINFER_CPU_BASELINE` is
/// unset (set it to test or time the baseline code, which is what wasm32 compiles). Cached.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn has_avx2_fma() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    static STATE: AtomicU8 = AtomicU8::new(0); // 0 unknown, 1 no, 2 yes
    match STATE.load(Ordering::Relaxed) {
        0 => {
            let yes = std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
                && std::env::var_os("WEBINFER_CPU_BASELINE").is_none();
            STATE.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
        s => s == 2,
    }
}

/// `a * b + c`; a single fused instruction in the FMA variant of a dispatched body
/// (never call `mul_add` outside one: without the feature it is a slow library call).
#[inline(always)]
pub(crate) fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}
