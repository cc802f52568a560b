// Prelude of every webinfer kernel: prepended to each family file (see
// crates/webinfer-gpu/src/shaders.rs), so that a family file alone need not compile.
//
// Conventions shared by all kernels:
// - @group(0) @binding(0) is the kernel's `Params` uniform (shapes, strides, scalars: never
//   pasted into the source), @binding(1) the output, @binding(2..) the inputs in operand order.
// - Dispatches larger than 65535 workgroups wrap into y (and z); `flat_workgroup` undoes that.
// - `act` selects the activation (codes in src/kernels/mod.rs `act_code`), `alpha` is its
//   parameter: both are `Params` fields rather than pipeline constants, so that pipelines are
//   shared across activations (each pipeline costs a compile; the branch is uniform); see
//   `FULL_ACT`.

fn flat_workgroup(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + nwg.x * (wid.y + nwg.y * wid.z);
}

// e^x without overflow to inf for large |x| (keeps formulas like 1/(1+e^-x) finite).
fn exp_clamped(x: f32) -> f32 {
    return exp(clamp(x, -88.0, 88.0));
}

// tanh with an argument range where every implementation is accurate (|x| >= 9 rounds to +-1).
fn tanh_safe(x: f32) -> f32 {
    return tanh(clamp(x, -9.0, 9.0));
}

// tfjs softplus: threshold log(2^-23) + 2.
fn softplus_tfjs(x: f32) -> f32 {
    let t = -13.942385;
    if (x > -t) {
        return x;
    }
    if (x < t) {
        return exp(x);
    }
    return log(1.0 + exp(x));
}

// erf by Abramowitz & Stegun 7.1.26, the approximation tfjs uses for gelu.
fn erf_as(z: f32) -> f32 {
    let a = abs(z);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t;
    let r = 1.0 - poly * exp(-a * a);
    return select(r, -r, z < 0.0);
}

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp_clamped(-x));
}

// Whether `activate` handles every activation (true) or only codes 0-4 (false): a pipeline
// constant, so that one pipeline per kernel serves linear, relu, relu6, relu-max and leaky relu
// (a few selects, inlined into every unrolled epilogue) and the others (exp, tanh, erf: several
// times the code) are compiled only into the pipelines that use them.
override FULL_ACT: bool = false;

fn activate(x: f32, alpha: f32, act: u32) -> f32 {
    switch act {
        case 0u: { return x; }
        // relu: `x < 0 ? 0 : x` keeps NaN like tfjs.
        case 1u: { return select(x, 0.0, x < 0.0); }
        case 2u: { return min(select(x, 0.0, x < 0.0), 6.0); }
        case 3u: { return min(select(x, 0.0, x < 0.0), alpha); }
        case 4u: { return select(alpha * x, x, x >= 0.0); }
        default: {
            if (FULL_ACT) {
                return activate_full(x, alpha, act);
            }
            return x;
        }
    }
}

fn activate_full(x: f32, alpha: f32, act: u32) -> f32 {
    switch act {
        case 5u: { return select(alpha * (exp_clamped(x) - 1.0), x, x >= 0.0); }
        case 6u: { return select(1.7580993408473769 * (exp_clamped(x) - 1.0), 1.0507009873554805 * x, x >= 0.0); }
        case 7u: { return sigmoid(x); }
        case 8u: { return clamp(0.2 * x + 0.5, 0.0, 1.0); }
        case 9u: { return tanh_safe(x); }
        case 10u: { return softplus_tfjs(x); }
        case 11u: { return x / (abs(x) + 1.0); }
        case 12u: { return x * sigmoid(x); }
        case 13u: { return x * tanh_safe(softplus_tfjs(x)); }
        case 14u: { return 0.5 * x * (1.0 + erf_as(x * 0.70710678118654752)); }
        case 15u: { return 0.5 * x * (1.0 + tanh_safe(0.7978845608028654 * (x + 0.044715 * x * x * x))); }
        case 16u: { return select(0.0, x, x > alpha); }
        case 17u: { return sqrt(x); }
        case 18u: { return inverseSqrt(x); }
        case 19u: { return x * x; }
        default: { return x; }
    }
}
