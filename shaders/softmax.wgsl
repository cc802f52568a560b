// Softmax / log-softmax along one axis. The host views the tensor as [outer, len, inner]; one
// 64-invocation workgroup handles one row (a fixed outer and inner index) and reduces the max
// and the sum of exponentials in workgroup memory.
//   softmax:     e = exp(x - max); e / sum(e)
//   log_softmax: x - max - log(sum(exp(x - max)))

struct Params {
    rows: u32, len: u32, inner: u32, _p0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;

override LOG: bool = false;

var<workgroup> red: array<f32, 64>;

fn reduce_max(lid: u32, v: f32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red[lid] = max(red[lid], red[lid + s]);
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

fn reduce_sum(lid: u32, v: f32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red[lid] = red[lid] + red[lid + s];
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(64)
fn softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = flat_workgroup(wid, nwg);
    if (row >= p.rows) {
        return;
    }
    let outer = row / p.inner;
    let base = outer * p.len * p.inner + (row - outer * p.inner);
    var m = -3.4028234e38;
    for (var j = lid; j < p.len; j += 64u) {
        m = max(m, x[base + j * p.inner]);
    }
    m = reduce_max(lid, m);
    var s = 0.0;
    for (var j = lid; j < p.len; j += 64u) {
        s += exp(x[base + j * p.inner] - m);
    }
    s = reduce_sum(lid, s);
    if (LOG) {
        let ls = log(s);
        for (var j = lid; j < p.len; j += 64u) {
            let i = base + j * p.inner;
            y[i] = x[i] - m - ls;
        }
    } else {
        for (var j = lid; j < p.len; j += 64u) {
            let i = base + j * p.inner;
            y[i] = exp(x[i] - m) / s;
        }
    }
}
