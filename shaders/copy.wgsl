// Data movement as one strided copy: for every index `i` of a view of `rank` axes,
//   y[out_base + sum(i_d * out_stride_d)] = x[in_base + sum((i_d - off_d) * in_stride_d)]
// or `value` where some `i_d - off_d` falls outside [0, in_dim_d).
// The host expresses Pad, Slice, Transpose and each operand of Concat this way (at most 8
// axes after merging contiguous ones). One invocation per element of the view.

struct Params {
    total: u32, rank: u32, in_base: u32, out_base: u32,
    value: f32, _p0: u32, _p1: u32, _p2: u32,
    shape: array<vec4<u32>, 2>,
    in_strides: array<vec4<u32>, 2>,
    out_strides: array<vec4<u32>, 2>,
    offs: array<vec4<u32>, 2>,
    in_dims: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;

@compute @workgroup_size(64)
fn strided_copy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_workgroup(wid, nwg) * 64u + lid;
    if (i >= p.total) {
        return;
    }
    var rem = i;
    var src = p.in_base;
    var dst = p.out_base;
    var inside = true;
    for (var d = p.rank; d > 0u; d--) {
        let ax = d - 1u;
        let v = ax / 4u;
        let l = ax % 4u;
        let size = p.shape[v][l];
        let coord = rem % size;
        rem = rem / size;
        dst += coord * p.out_strides[v][l];
        let off = p.offs[v][l];
        if (coord < off || coord - off >= p.in_dims[v][l]) {
            inside = false;
        } else {
            src += (coord - off) * p.in_strides[v][l];
        }
    }
    if (inside) {
        y[dst] = x[src];
    } else {
        y[dst] = p.value;
    }
}
