// Conv2d (general: stride, dilation, padding, groups) and Conv2dTranspose, NHWC, with a fused
// `act(conv + bias)` epilogue.
//
// Conv2dTranspose runs here as a convolution over the input dilated by the stride
// (`in_dil_*`), with a flipped kernel and stride 1: src/kernels/conv.rs sets that up.
//
// Register tiling: one invocation computes 4 output channels (one vec4 of the packed weights)
// for 4 consecutive output pixels (flattened over n, oy, ox, so odd widths waste nothing),
// i.e. 16 accumulators. Invocations are numbered channel-quad fastest, so neighbours read the
// same input pixels and consecutive weight vec4s.
//
// Packed weights (`weight4`, weights_*.wgsl): [groups][kh*kw][cin_g][quads_g] vec4, output
// channels of a group padded with zeros to a multiple of 4. Input x4: the NHWC tensor read as
// vec4 (conv2d_vec4 needs cin_g % 4 == 0; conv2d_scalar reads single elements).

struct Params {
    n: u32, h: u32, w: u32, cin: u32,
    oh: u32, ow: u32, cout: u32, groups: u32,
    kh: u32, kw: u32, stride_h: u32, stride_w: u32,
    dil_h: u32, dil_w: u32, pad_t: i32, pad_l: i32,
    in_dil_h: u32, in_dil_w: u32, cin_g: u32, cout_g: u32,
    quads_g: u32, quads: u32, tiles: u32, pixels: u32,
    alpha: f32, act: u32, has_bias: u32, _p0: u32,
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

// Element offset of the input cell under tap (ky, kx) of `px`, at channel 0 of group `g`;
// -1 when the tap falls into the padding or between the cells of a dilated input.
fn tap_offset(px: Px, ky: u32, kx: u32, g: u32) -> i32 {
    let uy = px.iy0 + i32(ky * p.dil_h);
    let ux = px.ix0 + i32(kx * p.dil_w);
    if (uy < 0 || ux < 0 || !px.live) {
        return -1;
    }
    let uyu = u32(uy);
    let uxu = u32(ux);
    if (uyu % p.in_dil_h != 0u || uxu % p.in_dil_w != 0u) {
        return -1;
    }
    let iy = uyu / p.in_dil_h;
    let ix = uxu / p.in_dil_w;
    if (iy >= p.h || ix >= p.w) {
        return -1;
    }
    return i32(((px.n * p.h + iy) * p.w + ix) * p.cin + g * p.cin_g);
}

fn x_at(e: u32) -> f32 {
    return x4[e >> 2u][e & 3u];
}

fn store(px: Px, acc: vec4<f32>, g: u32, qg: u32) {
    if (!px.live) {
        return;
    }
    for (var k = 0u; k < 4u; k++) {
        let co = qg * 4u + k;
        if (co < p.cout_g) {
            let oc = g * p.cout_g + co;
            var v = acc[k];
            if (p.has_bias != 0u) {
                v += bias[oc];
            }
            y[px.flat * p.cout + oc] = activate(v, p.alpha, p.act);
        }
    }
}

struct Job {
    live: bool,
    g: u32,
    qg: u32,
    tile: u32,
}

fn job(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> Job {
    let inv = flat_workgroup(wid, nwg) * 64u + lid;
    let q = inv % p.quads;
    let g = q / p.quads_g;
    return Job(inv < p.quads * p.tiles, g, q - g * p.quads_g, inv / p.quads);
}

@compute @workgroup_size(64)
fn conv2d_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let jb = job(wid, nwg, lid);
    if (!jb.live) {
        return;
    }
    let px0 = load_px(jb.tile * 4u);
    let px1 = load_px(jb.tile * 4u + 1u);
    let px2 = load_px(jb.tile * 4u + 2u);
    let px3 = load_px(jb.tile * 4u + 3u);
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    let qs = p.quads_g;
    let cin4 = p.cin_g / 4u;
    for (var ky = 0u; ky < p.kh; ky++) {
        for (var kx = 0u; kx < p.kw; kx++) {
            let o0 = tap_offset(px0, ky, kx, jb.g);
            let o1 = tap_offset(px1, ky, kx, jb.g);
            let o2 = tap_offset(px2, ky, kx, jb.g);
            let o3 = tap_offset(px3, ky, kx, jb.g);
            if (o0 < 0 && o1 < 0 && o2 < 0 && o3 < 0) {
                continue;
            }
            var wi = ((jb.g * p.kh + ky) * p.kw + kx) * p.cin_g * qs + jb.qg;
            for (var c = 0u; c < cin4; c++) {
                let w0 = weight4(wi, jb.qg);
                let w1 = weight4(wi + qs, jb.qg);
                let w2 = weight4(wi + 2u * qs, jb.qg);
                let w3 = weight4(wi + 3u * qs, jb.qg);
                wi += 4u * qs;
                if (o0 >= 0) {
                    let v = x4[u32(o0) / 4u + c];
                    acc0 += v.x * w0 + v.y * w1 + v.z * w2 + v.w * w3;
                }
                if (o1 >= 0) {
                    let v = x4[u32(o1) / 4u + c];
                    acc1 += v.x * w0 + v.y * w1 + v.z * w2 + v.w * w3;
                }
                if (o2 >= 0) {
                    let v = x4[u32(o2) / 4u + c];
                    acc2 += v.x * w0 + v.y * w1 + v.z * w2 + v.w * w3;
                }
                if (o3 >= 0) {
                    let v = x4[u32(o3) / 4u + c];
                    acc3 += v.x * w0 + v.y * w1 + v.z * w2 + v.w * w3;
                }
            }
        }
    }
    store(px0, acc0, jb.g, jb.qg);
    store(px1, acc1, jb.g, jb.qg);
    store(px2, acc2, jb.g, jb.qg);
    store(px3, acc3, jb.g, jb.qg);
}

@compute @workgroup_size(64)
fn conv2d_scalar(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let jb = job(wid, nwg, lid);
    if (!jb.live) {
        return;
    }
    let px0 = load_px(jb.tile * 4u);
    let px1 = load_px(jb.tile * 4u + 1u);
    let px2 = load_px(jb.tile * 4u + 2u);
    let px3 = load_px(jb.tile * 4u + 3u);
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    let qs = p.quads_g;
    for (var ky = 0u; ky < p.kh; ky++) {
        for (var kx = 0u; kx < p.kw; kx++) {
            let o0 = tap_offset(px0, ky, kx, jb.g);
            let o1 = tap_offset(px1, ky, kx, jb.g);
            let o2 = tap_offset(px2, ky, kx, jb.g);
            let o3 = tap_offset(px3, ky, kx, jb.g);
            if (o0 < 0 && o1 < 0 && o2 < 0 && o3 < 0) {
                continue;
            }
            var wi = ((jb.g * p.kh + ky) * p.kw + kx) * p.cin_g * qs + jb.qg;
            for (var c = 0u; c < p.cin_g; c++) {
                let wv = weight4(wi, jb.qg);
                wi += qs;
                if (o0 >= 0) {
                    acc0 += x_at(u32(o0) + c) * wv;
                }
                if (o1 >= 0) {
                    acc1 += x_at(u32(o1) + c) * wv;
                }
                if (o2 >= 0) {
                    acc2 += x_at(u32(o2) + c) * wv;
                }
                if (o3 >= 0) {
                    acc3 += x_at(u32(o3) + c) * wv;
                }
            }
        }
    }
    store(px0, acc0, jb.g, jb.qg);
    store(px1, acc1, jb.g, jb.qg);
    store(px2, acc2, jb.g, jb.qg);
    store(px3, acc3, jb.g, jb.qg);
}
