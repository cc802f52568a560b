// Depthwise conv2d, NHWC: output channel `oc = c * mult + m` reads input channel `c`.
// Fused `act(conv + bias)` epilogue.
//
// One invocation computes 4 consecutive output channels (one vec4 of packed weights) for 4
// consecutive output pixels (flattened over n, oy, ox). Packed weights (`weight4`):
// [kh*kw][quads] vec4 with the output channels padded to a multiple of 4. depthwise_vec4
// (mult == 1 and c % 4 == 0) loads the input as vec4; depthwise_scalar gathers the 4 input
// channels.

struct Params {
    n: u32, h: u32, w: u32, c: u32,
    oh: u32, ow: u32, cout: u32, mult: u32,
    kh: u32, kw: u32, stride_h: u32, stride_w: u32,
    dil_h: u32, dil_w: u32, pad_t: i32, pad_l: i32,
    quads: u32, tiles: u32, pixels: u32, alpha: f32,
    act: u32, has_bias: u32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

struct Px {
    flat: u32,
    n: u32,
    iy0: i32,
    ix0: i32,
    live: bool,
}

fn load_px(idx: u32) -> Px {
    let i = min(idx, p.pixels - 1u);
    let hw = p.oh * p.ow;
    let n = i / hw;
    let r = i - n * hw;
    let oy = r / p.ow;
    let ox = r - oy * p.ow;
    return Px(idx, n, i32(oy * p.stride_h) - p.pad_t, i32(ox * p.stride_w) - p.pad_l, idx < p.pixels);
}

// Element offset of the input pixel under tap (ky, kx), channel 0; -1 in the padding.
fn tap_offset(px: Px, ky: u32, kx: u32) -> i32 {
    let iy = px.iy0 + i32(ky * p.dil_h);
    let ix = px.ix0 + i32(kx * p.dil_w);
    if (iy < 0 || ix < 0 || iy >= i32(p.h) || ix >= i32(p.w) || !px.live) {
        return -1;
    }
    return i32(((px.n * p.h + u32(iy)) * p.w + u32(ix)) * p.c);
}

fn x_at(e: u32) -> f32 {
    return x4[e >> 2u][e & 3u];
}

// The input values feeding output channels 4q .. 4q+3 at pixel offset `o`.
fn gather(o: i32, q: u32) -> vec4<f32> {
    let base = u32(o);
    let last = p.cout - 1u;
    return vec4<f32>(
        x_at(base + min(4u * q, last) / p.mult),
        x_at(base + min(4u * q + 1u, last) / p.mult),
        x_at(base + min(4u * q + 2u, last) / p.mult),
        x_at(base + min(4u * q + 3u, last) / p.mult),
    );
}

fn store(px: Px, acc: vec4<f32>, q: u32) {
    if (!px.live) {
        return;
    }
    for (var k = 0u; k < 4u; k++) {
        let oc = q * 4u + k;
        if (oc < p.cout) {
            var v = acc[k];
            if (p.has_bias != 0u) {
                v += bias[oc];
            }
            y[px.flat * p.cout + oc] = activate(v, p.alpha, p.act);
        }
    }
}

@compute @workgroup_size(64)
fn depthwise_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let inv = flat_workgroup(wid, nwg) * 64u + lid;
    if (inv >= p.quads * p.tiles) {
        return;
    }
    let q = inv % p.quads;
    let tile = inv / p.quads;
    let px0 = load_px(tile * 4u);
    let px1 = load_px(tile * 4u + 1u);
    let px2 = load_px(tile * 4u + 2u);
    let px3 = load_px(tile * 4u + 3u);
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var ky = 0u; ky < p.kh; ky++) {
        for (var kx = 0u; kx < p.kw; kx++) {
            let wv = weight4((ky * p.kw + kx) * p.quads + q, q);
            let o0 = tap_offset(px0, ky, kx);
            let o1 = tap_offset(px1, ky, kx);
            let o2 = tap_offset(px2, ky, kx);
            let o3 = tap_offset(px3, ky, kx);
            if (o0 >= 0) {
                acc0 += x4[u32(o0) / 4u + q] * wv;
            }
            if (o1 >= 0) {
                acc1 += x4[u32(o1) / 4u + q] * wv;
            }
            if (o2 >= 0) {
                acc2 += x4[u32(o2) / 4u + q] * wv;
            }
            if (o3 >= 0) {
                acc3 += x4[u32(o3) / 4u + q] * wv;
            }
        }
    }
    store(px0, acc0, q);
    store(px1, acc1, q);
    store(px2, acc2, q);
    store(px3, acc3, q);
}

@compute @workgroup_size(64)
fn depthwise_scalar(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let inv = flat_workgroup(wid, nwg) * 64u + lid;
    if (inv >= p.quads * p.tiles) {
        return;
    }
    let q = inv % p.quads;
    let tile = inv / p.quads;
    let px0 = load_px(tile * 4u);
    let px1 = load_px(tile * 4u + 1u);
    let px2 = load_px(tile * 4u + 2u);
    let px3 = load_px(tile * 4u + 3u);
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var ky = 0u; ky < p.kh; ky++) {
        for (var kx = 0u; kx < p.kw; kx++) {
            let wv = weight4((ky * p.kw + kx) * p.quads + q, q);
            let o0 = tap_offset(px0, ky, kx);
            let o1 = tap_offset(px1, ky, kx);
            let o2 = tap_offset(px2, ky, kx);
            let o3 = tap_offset(px3, ky, kx);
            if (o0 >= 0) {
                acc0 += gather(o0, q) * wv;
            }
            if (o1 >= 0) {
                acc1 += gather(o1, q) * wv;
            }
            if (o2 >= 0) {
                acc2 += gather(o2, q) * wv;
            }
            if (o3 >= 0) {
                acc3 += gather(o3, q) * wv;
            }
        }
    }
    store(px0, acc0, q);
    store(px1, acc1, q);
    store(px2, acc2, q);
    store(px3, acc3, q);
}
