// How the weighted kernels (conv2d, depthwise, matmul) read their packed weights, float32
// variant: one vec4 (4 consecutive output channels) per element. Composed between
// common.wgsl and the kernel's file (src/shaders.rs); weights_u8.wgsl is the other variant.

@group(0) @binding(3) var<storage, read> w4: array<vec4<f32>>;

// Packed weight vec4 `i`, which holds output-channel quad `q` (unused here).
fn weight4(i: u32, q: u32) -> vec4<f32> {
    return w4[i];
}
