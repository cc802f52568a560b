// MatMul: y[m, n] = act(sum_k a[m, k] * w[k, n] + bias[n]); `a` is the input with its leading
// axes flattened into m. Packed weights (`weight4`, weights_*.wgsl): [k][n4] vec4, columns
// padded to a multiple of 4.
//
// matmul_tiled: a 16x16 workgroup computes a 64x64 block of y; each invocation a 4x4 register
// tile (4 rows x one vec4 of columns). A and B tiles of depth 16 are staged in workgroup
// memory. Used when m is large enough to fill a block.
// matmul_rows: for small m (Dense on one sample), where a 64-row block would be mostly idle.
// A 16x16 workgroup covers 4 rows x 64 columns and splits k over 16 slices (more parallelism
// for the GEMV case); each invocation accumulates 4 rows x one vec4 of columns for its slice,
// and the slices are summed in workgroup memory.

struct Params {
    m: u32, k: u32, n: u32, n4: u32,
    row_tiles: u32, col_tiles: u32, alpha: f32, act: u32,
    has_bias: u32, _p0: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

fn store_row(row: u32, q: u32, acc: vec4<f32>) {
    if (row >= p.m) {
        return;
    }
    for (var c = 0u; c < 4u; c++) {
        let col = q * 4u + c;
        if (col < p.n) {
            var v = acc[c];
            if (p.has_bias != 0u) {
                v += bias[col];
            }
            y[row * p.n + col] = activate(v, p.alpha, p.act);
        }
    }
}

var<workgroup> a_tile: array<vec4<f32>, 256>; // [64 rows][4 k-quads]
var<workgroup> b_tile: array<vec4<f32>, 256>; // [16 k][16 column quads]

@compute @workgroup_size(16, 16)
fn matmul_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let f = flat_workgroup(wid, nwg);
    let col_tile = f % p.col_tiles;
    let row_tile = f / p.col_tiles;
    if (row_tile >= p.row_tiles) {
        return;
    }
    let tx = lid.x;
    let ty = lid.y;
    let t = ty * 16u + tx;
    // What this invocation stages: one vec4 of A (row t/4, k-quad t%4) and of B (k t/16, quad t%16).
    let a_row = row_tile * 64u + t / 4u;
    let a_k = (t % 4u) * 4u;
    let b_k = t / 16u;
    let b_q = col_tile * 16u + t % 16u;

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < p.k; k0 += 16u) {
        var av = vec4<f32>(0.0);
        if (a_row < p.m) {
            let base = a_row * p.k;
            for (var i = 0u; i < 4u; i++) {
                let kk = k0 + a_k + i;
                if (kk < p.k) {
                    av[i] = a[base + kk];
                }
            }
        }
        a_tile[t] = av;
        var bv = vec4<f32>(0.0);
        if (k0 + b_k < p.k && b_q < p.n4) {
            bv = weight4((k0 + b_k) * p.n4 + b_q, b_q);
        }
        b_tile[t] = bv;
        workgroupBarrier();
        for (var kq = 0u; kq < 4u; kq++) {
            let b0 = b_tile[(kq * 4u) * 16u + tx];
            let b1 = b_tile[(kq * 4u + 1u) * 16u + tx];
            let b2 = b_tile[(kq * 4u + 2u) * 16u + tx];
            let b3 = b_tile[(kq * 4u + 3u) * 16u + tx];
            let r0 = a_tile[(ty * 4u) * 4u + kq];
            let r1 = a_tile[(ty * 4u + 1u) * 4u + kq];
            let r2 = a_tile[(ty * 4u + 2u) * 4u + kq];
            let r3 = a_tile[(ty * 4u + 3u) * 4u + kq];
            acc0 += r0.x * b0 + r0.y * b1 + r0.z * b2 + r0.w * b3;
            acc1 += r1.x * b0 + r1.y * b1 + r1.z * b2 + r1.w * b3;
            acc2 += r2.x * b0 + r2.y * b1 + r2.z * b2 + r2.w * b3;
            acc3 += r3.x * b0 + r3.y * b1 + r3.z * b2 + r3.w * b3;
        }
        workgroupBarrier();
    }
    let q = col_tile * 16u + tx;
    if (q < p.n4) {
        let row = row_tile * 64u + ty * 4u;
        store_row(row, q, acc0);
        store_row(row + 1u, q, acc1);
        store_row(row + 2u, q, acc2);
        store_row(row + 3u, q, acc3);
    }
}

var<workgroup> partial: array<vec4<f32>, 256>; // [16 k-slices][16 column quads]

// Sum `acc` over the 16 k-slices of the workgroup and store it as row `row`.
fn reduce_store(lid: vec3<u32>, acc: vec4<f32>, row: u32, q: u32) {
    let t = lid.y * 16u + lid.x;
    partial[t] = acc;
    workgroupBarrier();
    for (var s = 8u; s > 0u; s >>= 1u) {
        if (lid.y < s) {
            partial[t] += partial[t + s * 16u];
        }
        workgroupBarrier();
    }
    if (lid.y == 0u && q < p.n4) {
        store_row(row, q, partial[lid.x]);
    }
    workgroupBarrier();
}

@compute @workgroup_size(16, 16)
fn matmul_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let f = flat_workgroup(wid, nwg);
    let col_block = f % p.col_tiles;
    let row_group = f / p.col_tiles;
    if (row_group >= p.row_tiles) {
        return;
    }
    let q = col_block * 16u + lid.x;
    let row = row_group * 4u;
    let last = p.m - 1u;
    let base0 = min(row, last) * p.k;
    let base1 = min(row + 1u, last) * p.k;
    let base2 = min(row + 2u, last) * p.k;
    let base3 = min(row + 3u, last) * p.k;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    if (q < p.n4) {
        // k-slice lid.y takes every 16th k: the 16 invocations of a slice read 16
        // consecutive weight vec4s of one row.
        for (var kk = lid.y; kk < p.k; kk += 16u) {
            let b = weight4(kk * p.n4 + q, q);
            acc0 += a[base0 + kk] * b;
            acc1 += a[base1 + kk] * b;
            acc2 += a[base2 + kk] * b;
            acc3 += a[base3 + kk] * b;
        }
    }
    reduce_store(lid, acc0, row, q);
    reduce_store(lid, acc1, row + 1u, q);
    reduce_store(lid, acc2, row + 2u, q);
    reduce_store(lid, acc3, row + 3u, q);
}
