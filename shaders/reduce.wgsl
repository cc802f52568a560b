// Reduce (sum / mean / max / min) over any set of axes; GlobalPool runs here too (axes 1, 2).
// One 64-invocation workgroup per output element: it walks the reduced elements with a
// stride of 64 and combines the partial results in workgroup memory. The host passes the kept
// axes (sizes and input strides) and the reduced axes (sizes and input strides), each merged
// where contiguous, at most 8 of each.

struct Params {
    total: u32, kept_rank: u32, red_rank: u32, red_count: u32,
    kept_shape: array<vec4<u32>, 2>,
    kept_strides: array<vec4<u32>, 2>,
    red_shape: array<vec4<u32>, 2>,
    red_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;

// 0 sum, 1 mean, 2 max, 3 min.
override KIND: u32 = 0u;

var<workgroup> red: array<f32, 64>;

fn combine(u: f32, v: f32) -> f32 {
    switch KIND {
        case 2u: { return max(u, v); }
        case 3u: { return min(u, v); }
        default: { return u + v; }
    }
}

fn identity() -> f32 {
    switch KIND {
        case 2u: { return -3.4028234e38; }
        case 3u: { return 3.4028234e38; }
        default: { return 0.0; }
    }
}

@compute @workgroup_size(64)
fn reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let o = flat_workgroup(wid, nwg);
    if (o >= p.total) {
        return;
    }
    var rem = o;
    var base = 0u;
    for (var d = p.kept_rank; d > 0u; d--) {
        let ax = d - 1u;
        let size = p.kept_shape[ax / 4u][ax % 4u];
        base += (rem % size) * p.kept_strides[ax / 4u][ax % 4u];
        rem = rem / size;
    }
    var acc = identity();
    for (var r = lid; r < p.red_count; r += 64u) {
        var rr = r;
        var off = base;
        for (var d = p.red_rank; d > 0u; d--) {
            let ax = d - 1u;
            let size = p.red_shape[ax / 4u][ax % 4u];
            off += (rr % size) * p.red_strides[ax / 4u][ax % 4u];
            rr = rr / size;
        }
        acc = combine(acc, x[off]);
    }
    red[lid] = acc;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red[lid] = combine(red[lid], red[lid + s]);
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        var v = red[0];
        if (KIND == 1u) {
            v = v / f32(p.red_count);
        }
        y[o] = v;
    }
}
