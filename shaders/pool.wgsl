// Pool2d (max / average), NHWC. Cells in the padding are skipped: max over the valid cells,
// average = sum / (number of valid cells), as tfjs does. One invocation per output element;
// neighbouring invocations handle neighbouring channels, so loads are contiguous.

struct Params {
    n: u32, h: u32, w: u32, c: u32,
    oh: u32, ow: u32, kh: u32, kw: u32,
    stride_h: u32, stride_w: u32, pad_t: i32, pad_l: i32,
    total: u32, _p0: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;

// 0: max, 1: average.
override KIND: u32 = 0u;

@compute @workgroup_size(64)
fn pool2d(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_workgroup(wid, nwg) * 64u + lid;
    if (i >= p.total) {
        return;
    }
    let ch = i % p.c;
    let pix = i / p.c;
    let ox = pix % p.ow;
    let oy = (pix / p.ow) % p.oh;
    let n = pix / (p.ow * p.oh);
    let iy0 = i32(oy * p.stride_h) - p.pad_t;
    let ix0 = i32(ox * p.stride_w) - p.pad_l;
    var best = 0.0;
    var sum = 0.0;
    var count = 0u;
    for (var ky = 0u; ky < p.kh; ky++) {
        let iy = iy0 + i32(ky);
        if (iy < 0 || iy >= i32(p.h)) {
            continue;
        }
        for (var kx = 0u; kx < p.kw; kx++) {
            let ix = ix0 + i32(kx);
            if (ix < 0 || ix >= i32(p.w)) {
                continue;
            }
            let v = x[((n * p.h + u32(iy)) * p.w + u32(ix)) * p.c + ch];
            if (count == 0u || v > best) {
                best = v;
            }
            sum += v;
            count += 1u;
        }
    }
    if (KIND == 0u) {
        y[i] = best;
    } else {
        y[i] = select(sum / f32(count), 0.0, count == 0u);
    }
}
