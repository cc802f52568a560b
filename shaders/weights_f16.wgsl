// How the weighted kernels (conv2d, depthwise, matmul) read their packed weights, float16
// variant: the weights stay as the model's half-precision values (half of float32's memory)
// and are widened as they are read, exactly (every float16 is a float32; done with integer
// operations, so subnormals are kept and no shader-f16 support is needed). `wh` holds one
// packed vec4 (4 output channels, in order) per vec2<u32>; `wfactor` one factor per output
// channel: 1, or the scale of a BatchNormalization folded into the kernel, applied as the same
// float32 product the host computes when it folds a float32 kernel.

@group(0) @binding(3) var<storage, read> wh: array<vec2<u32>>;
@group(0) @binding(5) var<storage, read> wfactor: array<vec4<f32>>;

// Four float16 bit patterns (in the low 16 bits) as float32.
fn widen_halves(h: vec4<u32>) -> vec4<f32> {
    let e = (h >> vec4<u32>(10u)) & vec4<u32>(31u);
    let m = h & vec4<u32>(1023u);
    let sign = (h & vec4<u32>(32768u)) << vec4<u32>(16u);
    // Normal: the exponent rebiased (15 -> 127), the mantissa widened.
    let normal = sign | ((e + vec4<u32>(112u)) << vec4<u32>(23u)) | (m << vec4<u32>(13u));
    // Zero and subnormal: m * 2^-24, exact.
    let small = sign | bitcast<vec4<u32>>(vec4<f32>(m) * bitcast<f32>(0x33800000u));
    // Infinity and NaN.
    let special = sign | vec4<u32>(0x7f800000u) | (m << vec4<u32>(13u));
    let bits = select(select(normal, special, e == vec4<u32>(31u)), small, e == vec4<u32>(0u));
    return bitcast<vec4<f32>>(bits);
}

// Packed weight vec4 `i`, which holds output-channel quad `q`.
fn weight4(i: u32, q: u32) -> vec4<f32> {
    let w = wh[i];
    let h = vec4<u32>(w.x & 65535u, w.x >> 16u, w.y & 65535u, w.y >> 16u);
    return widen_halves(h) * wfactor[q];
}
