// How the weighted kernels (conv2d, depthwise, matmul) read their packed weights, uint8
// variant: the weights stay as the model's 8-bit codes (a quarter of float32's memory) and are
// de-quantized as they are read. `wq` holds 4 codes per u32: the 4 output channels of one
// packed vec4, in order. `wlut` holds the 256 values a code stands for (computed on the host
// exactly as tfjs de-quantizes), then one factor per output channel: 1, or the scale of a
// BatchNormalization folded into the kernel. weight = lut[code] * factor is the same float32
// product the host computes when it folds a float32 kernel, so the weights, and the results,
// are bit-identical to the float32 variant's.

@group(0) @binding(3) var<storage, read> wq: array<u32>;
@group(0) @binding(5) var<storage, read> wlut: array<f32>;

// Packed weight vec4 `i`, which holds output-channel quad `q`.
fn weight4(i: u32, q: u32) -> vec4<f32> {
    let c = wq[i];
    let v = vec4<f32>(wlut[c & 255u], wlut[(c >> 8u) & 255u], wlut[(c >> 16u) & 255u], wlut[c >> 24u]);
    let f = 256u + q * 4u;
    return v * vec4<f32>(wlut[f], wlut[f + 1u], wlut[f + 2u], wlut[f + 3u]);
}
