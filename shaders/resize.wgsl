// Resize, NHWC, with tfjs's resizeNearestNeighbor / resizeBilinear formulas
// (tests/tfjs/SEMANTICS.md). One invocation per output element.
//
// Nearest: the source index is exact integer arithmetic,
//   floor((num_mul * o + num_add) / den) clamped to [0, in - 1],
// which equals tfjs's floor / round of `ratio * o` (+0.5 for half-pixel centres) without the
// float error at integer boundaries. The host derives num_mul, num_add, den per axis.
// Bilinear: src = ratio * o (- 0.5 with half-pixel centres), in f32.

struct Params {
    n: u32, h: u32, w: u32, c: u32,
    oh: u32, ow: u32, total: u32, half_pixel: u32,
    ratio_h: f32, ratio_w: f32, _p0: u32, _p1: u32,
    // nearest: num_mul, num_add, den for y then x.
    ny_mul: u32, ny_add: u32, ny_den: u32, _p2: u32,
    nx_mul: u32, nx_add: u32, nx_den: u32, _p3: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;

struct Out {
    n: u32,
    oy: u32,
    ox: u32,
    ch: u32,
}

fn decompose(i: u32) -> Out {
    let ch = i % p.c;
    let pix = i / p.c;
    let ox = pix % p.ow;
    let oy = (pix / p.ow) % p.oh;
    return Out(pix / (p.ow * p.oh), oy, ox, ch);
}

fn at(n: u32, iy: u32, ix: u32, ch: u32) -> f32 {
    return x[((n * p.h + iy) * p.w + ix) * p.c + ch];
}

@compute @workgroup_size(64)
fn resize_nearest(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_workgroup(wid, nwg) * 64u + lid;
    if (i >= p.total) {
        return;
    }
    let o = decompose(i);
    let iy = min((p.ny_mul * o.oy + p.ny_add) / p.ny_den, p.h - 1u);
    let ix = min((p.nx_mul * o.ox + p.nx_add) / p.nx_den, p.w - 1u);
    y[i] = at(o.n, iy, ix, o.ch);
}

@compute @workgroup_size(64)
fn resize_bilinear(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_workgroup(wid, nwg) * 64u + lid;
    if (i >= p.total) {
        return;
    }
    let o = decompose(i);
    var sy = p.ratio_h * f32(o.oy);
    var sx = p.ratio_w * f32(o.ox);
    if (p.half_pixel != 0u) {
        sy = p.ratio_h * (f32(o.oy) + 0.5) - 0.5;
        sx = p.ratio_w * (f32(o.ox) + 0.5) - 0.5;
    }
    let y0f = max(0.0, floor(sy));
    let x0f = max(0.0, floor(sx));
    let fy = sy - y0f;
    let fx = sx - x0f;
    let y0 = min(u32(y0f), p.h - 1u);
    let x0 = min(u32(x0f), p.w - 1u);
    let y1 = min(u32(max(0.0, ceil(sy))), p.h - 1u);
    let x1 = min(u32(max(0.0, ceil(sx))), p.w - 1u);
    let tl = at(o.n, y0, x0, o.ch);
    let tr = at(o.n, y0, x1, o.ch);
    let bl = at(o.n, y1, x0, o.ch);
    let br = at(o.n, y1, x1, o.ch);
    let top = tl + (tr - tl) * fx;
    let bottom = bl + (br - bl) * fx;
    y[i] = top + (bottom - top) * fy;
}
