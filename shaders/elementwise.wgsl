// Element-wise kernels: one invocation per output element.
//
// - unary: `act(x)` for every Activation (`act`, `alpha`).
// - binary: a (op) b with numpy broadcasting. The host collapses the shapes to at most 8 axes
//   and passes, per output axis, its size and the element strides of a and b (0 on a
//   broadcast axis). `OP` selects the operation; OP 6 is PReLU (`a >= 0 ? a : b * a`).
// - channel_affine: x * scale[c] + shift[c] on the last axis.

struct Params {
    total: u32, rank: u32, channels: u32, alpha: f32,
    act: u32, _p0: u32, _p1: u32, _p2: u32,
    // Output axis sizes, outermost first (8 slots in 2 vec4s).
    shape: array<vec4<u32>, 2>,
    a_strides: array<vec4<u32>, 2>,
    b_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read> c: array<f32>;

// 0 add, 1 sub, 2 mul, 3 div, 4 max, 5 min, 6 prelu.
override OP: u32 = 0u;

fn index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return flat_workgroup(wid, nwg) * 64u + lid;
}

@compute @workgroup_size(64)
fn unary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    if (i >= p.total) {
        return;
    }
    y[i] = activate(a[i], p.alpha, p.act);
}

@compute @workgroup_size(64)
fn binary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    if (i >= p.total) {
        return;
    }
    var rem = i;
    var ia = 0u;
    var ib = 0u;
    for (var d = p.rank; d > 0u; d--) {
        let ax = d - 1u;
        let size = p.shape[ax / 4u][ax % 4u];
        let coord = rem % size;
        rem = rem / size;
        ia += coord * p.a_strides[ax / 4u][ax % 4u];
        ib += coord * p.b_strides[ax / 4u][ax % 4u];
    }
    let u = a[ia];
    let v = b[ib];
    var r: f32;
    switch OP {
        case 0u: { r = u + v; }
        case 1u: { r = u - v; }
        case 2u: { r = u * v; }
        case 3u: { r = u / v; }
        case 4u: { r = max(u, v); }
        case 5u: { r = min(u, v); }
        case 6u: { r = select(v * u, u, u >= 0.0); }
        default: { r = u; }
    }
    y[i] = r;
}

@compute @workgroup_size(64)
fn channel_affine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    if (i >= p.total) {
        return;
    }
    let ch = i % p.channels;
    y[i] = a[i] * b[ch] + c[ch];
}
