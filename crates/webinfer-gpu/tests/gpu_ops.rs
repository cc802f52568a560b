//! Every IR op on the GPU against `webinfer_cpu::eval_op`, on small random shapes: odd sizes,
//! stride 2, dilation 2, same / valid / explicit padding, groups, batch 2, depthwise
//! multiplier 2, broadcasting, every activation. Tolerance: 1e-4 abs + 1e-3 rel.
//! Needs an adapter (lavapipe in CI): see `common::backend`.

mod common;

use common::{backend, check_op, Arg, Rng};
use webinfer_core::ir::{
    Activation, BinaryOp, Conv2d, Padding, PoolKind, ReduceKind, ResizeMode, ResizeSize,
};
use webinfer_core::Op;

const ACTIVATIONS: [Activation; 17] = [
    Activation::Linear,
    Activation::Relu,
    Activation::Relu6,
    Activation::ReluMax(0.5),
    Activation::LeakyRelu(0.3),
    Activation::Elu(0.7),
    Activation::Selu,
    Activation::Sigmoid,
    Activation::HardSigmoid,
    Activation::Tanh,
    Activation::Softplus,
    Activation::Softsign,
    Activation::Swish,
    Activation::Mish,
    Activation::Gelu,
    Activation::GeluTanh,
    Activation::Thresholded(0.25),
];

struct ConvCase {
    x: [usize; 4],
    k: [usize; 2],
    cout: usize,
    stride: [usize; 2],
    dilation: [usize; 2],
    padding: Padding,
    groups: usize,
    bias: bool,
    act: Activation,
}

fn conv_cases() -> Vec<ConvCase> {
    let c = |x, k, cout, stride, dilation, padding, groups, bias, act| ConvCase {
        x,
        k,
        cout,
        stride,
        dilation,
        padding,
        groups,
        bias,
        act,
    };
    vec![
        c(
            [2, 7, 9, 3],
            [3, 3],
            5,
            [1, 1],
            [1, 1],
            Padding::Same,
            1,
            true,
            Activation::Relu,
        ),
        c(
            [1, 9, 8, 8],
            [3, 2],
            12,
            [2, 2],
            [1, 1],
            Padding::Valid,
            1,
            false,
            Activation::Linear,
        ),
        c(
            [1, 11, 10, 4],
            [3, 3],
            6,
            [1, 1],
            [2, 2],
            Padding::Same,
            1,
            true,
            Activation::Relu6,
        ),
        c(
            [1, 12, 9, 5],
            [3, 3],
            7,
            [1, 1],
            [2, 1],
            Padding::Valid,
            1,
            true,
            Activation::Sigmoid,
        ),
        c(
            [2, 6, 7, 8],
            [3, 3],
            6,
            [2, 2],
            [1, 1],
            Padding::Same,
            2,
            true,
            Activation::LeakyRelu(0.1),
        ),
        c(
            [1, 8, 8, 6],
            [3, 3],
            9,
            [1, 2],
            [1, 1],
            Padding::Same,
            3,
            false,
            Activation::Linear,
        ),
        c(
            [1, 8, 9, 4],
            [2, 3],
            5,
            [2, 1],
            [1, 1],
            Padding::Explicit([1, 0, 2, 1]),
            1,
            true,
            Activation::Tanh,
        ),
        c(
            [1, 5, 5, 16],
            [1, 1],
            32,
            [1, 1],
            [1, 1],
            Padding::Valid,
            1,
            true,
            Activation::Swish,
        ),
        c(
            [1, 17, 15, 16],
            [3, 3],
            20,
            [1, 1],
            [1, 1],
            Padding::Same,
            1,
            true,
            Activation::Elu(1.0),
        ),
        c(
            [2, 10, 10, 8],
            [5, 5],
            8,
            [2, 2],
            [1, 1],
            Padding::Same,
            4,
            true,
            Activation::Gelu,
        ),
        c(
            [1, 4, 4, 2],
            [3, 3],
            1,
            [1, 1],
            [1, 1],
            Padding::Valid,
            1,
            true,
            Activation::Linear,
        ),
    ]
}

fn conv_op(c: &ConvCase, op: fn(Conv2d) -> Op) -> Op {
    op(Conv2d {
        kernel: c.k,
        stride: c.stride,
        dilation: c.dilation,
        padding: c.padding,
        groups: c.groups,
        activation: c.act,
    })
}

#[test]
fn conv2d() {
    let Some(b) = backend() else { return };
    let mut r = Rng::new(1);
    for (i, c) in conv_cases().iter().enumerate() {
        let w = r.tensor(&[c.k[0], c.k[1], c.x[3] / c.groups, c.cout]);
        let mut args = vec![Arg::In(r.tensor(&c.x)), Arg::Const(w)];
        if c.bias {
            args.push(Arg::Const(r.tensor(&[c.cout])));
        }
        check_op(
            &b,
            &format!(
                "conv2d case {i} x{:?} k{:?} cout {} s{:?} d{:?} {:?} g{}",
                c.x, c.k, c.cout, c.stride, c.dilation, c.padding, c.groups
            ),
            conv_op(c, Op::Conv2d),
            args,
        );
    }
}

#[test]
fn depthwise_conv2d() {
    let Some(b) = backend() else { return };
    let mut r = Rng::new(2);
    let cases = [
        // (x, k, mult, stride, dilation, padding)
        ([1, 9, 9, 8], [3, 3], 1, [1, 1], [1, 1], Padding::Same),
        ([2, 7, 8, 3], [3, 3], 2, [2, 2], [1, 1], Padding::Same),
        ([1, 11, 9, 4], [3, 3], 1, [1, 1], [2, 2], Padding::Valid),
        ([1, 10, 10, 5], [5, 3], 2, [2, 1], [1, 1], Padding::Valid),
        (
            [2, 6, 6, 12],
            [3, 3],
            1,
            [2, 2],
            [1, 1],
            Padding::Explicit([0, 1, 1, 0]),
        ),
        ([1, 5, 7, 2], [2, 2], 3, [1, 1], [2, 1], Padding::Same),
    ];
    for (i, (x, k, mult, stride, dilation, padding)) in cases.into_iter().enumerate() {
        let act = [
            Activation::Relu6,
            Activation::Linear,
            Activation::HardSigmoid,
        ][i % 3];
        let op = Op::DepthwiseConv2d(Conv2d {
            kernel: k,
            stride,
            dilation,
            padding,
            groups: 1,
            activation: act,
        });
        let mut args = vec![
            Arg::In(r.tensor(&x)),
            Arg::Const(r.tensor(&[k[0], k[1], x[3], mult])),
        ];
        if i % 2 == 0 {
            args.push(Arg::Const(r.tensor(&[x[3] * mult])));
        }
        check_op(&b, &format!("depthwise case {i} x{x:?} k{k:?} mult {mult} s{stride:?} d{dilation:?} {padding:?}"), op, args);
    }
}

#[test]
fn conv2d_transpose() {
    let Some(b) = backend() else { return };
    let mut r = Rng::new(3);
    let cases = [
        // (x, k, cout, stride, padding)
        ([1, 5, 4, 4], [3, 3], 6, [2, 2], Padding::Same),
        ([2, 3, 5, 3], [3, 3], 5, [2, 2], Padding::Valid),
        ([1, 4, 4, 8], [2, 2], 4, [2, 2], Padding::Same),
        ([1, 3, 3, 2], [1, 1], 3, [2, 2], Padding::Valid),
        ([1, 4, 5, 4], [4, 3], 2, [1, 2], Padding::Same),
        ([1, 6, 5, 3], [3, 3], 7, [1, 1], Padding::Valid),
    ];
    for (i, (x, k, cout, stride, padding)) in cases.into_iter().enumerate() {
        let act = [Activation::Linear, Activation::Relu][i % 2];
        let op = Op::Conv2dTranspose(Conv2d {
            kernel: k,
            stride,
            dilation: [1, 1],
            padding,
            groups: 1,
            activation: act,
        });
        let mut args = vec![
            Arg::In(r.tensor(&x)),
            Arg::Const(r.tensor(&[k[0], k[1], cout, x[3]])),
        ];
        if i % 2 == 1 {
            args.push(Arg::Const(r.tensor(&[cout])));
        }
        check_op(
            &b,
            &format!("conv2d_transpose case {i} x{x:?} k{k:?} cout {cout} s{stride:?} {padding:?}"),
            op,
            args,
        );
    }
}

#[test]
fn matmul() {
    let Some(b) = backend() else { return };
    let mut r = Rng::new(4);
    let cases: [(&[usize], usize, bool, Activation); 7] = [
        (&[1, 37], 45, true, Activation::Relu),
        (&[5, 16], 10, false, Activation::Linear),
        (&[70, 37], 45, true, Activation::Linear),
        (&[2, 3, 20], 7, true, Activation::Tanh),
        (&[130, 64], 66, true, Activation::Gelu),
        (&[33, 1], 3, false, Activation::Sigmoid),
        (&[1, 300], 1000, true, Activation::Linear),
    ];
    for (i, (x, n, bias, act)) in cases.into_iter().enumerate() {
        let k = *x.last().unwrap();
        let mut args = vec![Arg::In(r.tensor(x)), Arg::Const(r.tensor(&[k, n]))];
        if bias {
            args.push(Arg::Const(r.tensor(&[n])));
        }
        check_op(
            &b,
            &format!("matmul case {i} x{x:?} n {n}"),
            Op::MatMul { activation: act },
            args,
        );
    }
}

/// Every activation fused into each kernel's epilogue (`activate4`): the cheap ones share one
/// pipeline per kernel and are told apart by a uniform, the others need `FULL_ACT`; run one
/// after another on one backend, so a shared pipeline must give each its own result.
#[test]
fn fused_epilogues_every_activation() {
    let Some(b) = backend() else { return };
    let mut r = Rng::new(11);
    for a in ACTIVATIONS {
        for x in [&[3usize, 20][..], &[40, 20]] {
            let args = vec![
                Arg::In(r.tensor_in(x, -6.0, 6.0)),
                Arg::Const(r.tensor(&[20, 9])),
                Arg::Const(r.tensor(&[9])),
            ];
            let op = Op::MatMul { activation: a };
            check_op(&b, &format!("matmul x{x:?} {a:?}"), op, args);
        }
        let conv = |groups| Conv2d {
            kernel: [3, 3],
            stride: [1, 1],
            dilation: [1, 1],
            padding: Padding::Same,
            groups,
            activation: a,
        };
        let args = vec![
            Arg::In(r.tensor_in(&[1, 5, 6, 4], -3.0, 3.0)),
            Arg::Const(r.tensor(&[3, 3, 4, 6])),
            Arg::Const(r.tensor(&[6])),
        ];
        check_op(&b, &format!("conv2d {a:?}"), Op::Conv2d(conv(1)), args);
        let args = vec![
            Arg::In(r.tensor_in(&[1, 5, 6, 4], -3.0, 3.0)),
            Arg::Const(r.tensor(&[3, 3, 4, 1])),
            Arg::Const(r.tensor(&[4])),
        ];
        check_op(
            &b,
            &format!("depthwise {a:?}"),
            Op::DepthwiseConv2d(conv(1)),
            args,
        );
    }
}

#[test]
fn pool2d() {
    let Some(b) = backend() else { return };
    let mut r = Rng::new(5);
    let cases = [
        ([1, 7, 9, 3], [3, 3], [2, 2], Padding::Same),
        ([2, 8, 8, 4], [2, 2], [2, 2], Padding::Valid),
        ([1, 9, 7, 5], [3, 2], [1, 2], Padding::Same),
        (
            [1, 6, 6, 2],
            [3, 3],
            [2, 2],
            Padding::Explicit([1, 1, 0, 2]),
        ),
    ];
    for (i, (x, window, stride, padding)) in cases.into_iter().enumerate() {
        for kind in [PoolKind::Max, PoolKind::Avg] {
            let op = Op::Pool2d {
                kind,
                window,
                stride,
                padding,
            };
            check_op(
                &b,
                &format!("pool2d case {i} {kind:?} x{x:?} w{window:?} s{stride:?} {padding:?}"),
                op,
                vec![Arg::In(r.tensor(&x))],
            );
        }
    }
}

#[test]
fn global_pool() {
    let Some(b) = backend() else { return };
    let mut r = Rng::new(6);
    for x in [[2, 7, 5, 3], [1, 1, 1, 9], [1, 14, 14, 70]] {
        for kind in [PoolKind::Max, PoolKind::Avg] {
            check_op(
                &b,
                &format!("global_pool {kind:?} x{x:?}"),
                Op::GlobalPool { kind },
                vec![Arg::In(r.tensor(&x))],
            );
        }
    }
}

#[test]
fn channel_affine() {
    let Some(b) = backend() else { return };
    let mut r = Rng::new(7);
    for x in [vec![2, 3, 5, 7], vec![4, 6], vec![9]] {
        let c = *x.last().unwrap();
        let args = vec![
            Arg::In(r.tensor(&x)),
            Arg::Const(r.tensor(&[c])),
            Arg::Const(r.tensor(&[c])),
        ];
        check_op(
            &b,
            &format!("channel_affine x{x:?}"),
            Op::ChannelAffine,
            args,
        );
    }
}

#[test]
fn unary_every_activation() {
    let Some(b) = backend() else { return };
    let mut r = Rng::new(8);
    for a in ACTIVATIONS {
        // Wide range: saturation of sigmoid / tanh / softplus, exp overflow guards.
        let x = r.tensor_in(&[3, 67], -20.0, 20.0);
        check_op(
            &b,
            &format!("unary {a:?} on [-20, 20]"),
            Op::Unary(a),
            vec![Arg::In(x)],
        );
        let x = r.tensor_in(&[2, 50], -2.0, 2.0);
        check_op(
            &b,
            &format!("unary {a:?} on [-2, 2]"),
            Op::Unary(a),
            vec![Arg::In(x)],
        );
    }
}

/// The graph-model math ops, on positive inputs (their domain).
#[test]
fn unary_sqrt_rsqrt_square() {
    let Some(b) = backend() else { return };
    let mut r = Rng::new(81);
    for a in [Activation::Sqrt, Activation::Rsqrt, Activation::Square] {
        let x = r.tensor_in(&[3, 67], 0.01, 20.0);
        check_op(
            &b,
            &format!("unary {a:?} on [0.01, 20]"),
            Op::Unary(a),
            vec![Arg::In(x)],
        );
    }
}

#[test]
fn prelu() {
    let Some(b) = backend() else { return };
    let mut r = Rng::new(9);
    for (x, alpha) in [
        (vec![2, 4, 5, 3], vec![3]),
        (vec![1, 4, 5, 3], vec![4, 5, 3]),
        (vec![2, 4, 5, 3], vec![1, 1, 3]),
        (vec![6, 7], vec![7]),
    ] {
        let args = vec![Arg::In(r.tensor(&x)), Arg::Const(r.tensor(&alpha))];
        check_op(&b, &format!("prelu x{x:?} alpha{alpha:?}"), Op::Prelu, args);
    }
}

#[test]
fn binary_broadcasting() {
    let Some(b) = backend() else { return };
    let mut r = Rng::new(10);
    let shapes: [(&[usize], &[usize]); 7] = [
        (&[2, 3, 4], &[2, 3, 4]),
        (&[2, 3, 4], &[4]),
        (&[2, 1, 4], &[3, 1]),
        (&[5], &[]),
        (&[], &[2, 3]),
        (&[2, 5, 1, 3], &[1, 5, 4, 1]),
        (&[1, 7, 7, 16], &[1, 1, 1, 16]),
    ];
    for op in [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
        BinaryOp::Min,
    ] {
        for (i, (sa, sb)) in shapes.iter().enumerate() {
            let a = r.tensor(sa);
            // Keep divisors away from zero.
            let bt = if op == BinaryOp::Div {
                r.tensor_in(sb, 0.5, 2.0)
            } else {
                r.tensor(sb)
            };
            check_op(
                &b,
                &format!("binary {op:?} case {i} {sa:?} x {sb:?}"),
                Op::Binary(op),
                vec![Arg::In(a), Arg::In(bt)],
            );
        }
    }
    // A constant operand (bias-like) works as well.
    check_op(
        &b,
        "binary Add with a constant",
        Op::Binary(BinaryOp::Add),
        vec![Arg::In(r.tensor(&[3, 5])), Arg::Const(r.tensor(&[5]))],
    );
}

#[test]
fn concat() {
    let Some(b) = backend() else { return };
    let mut r = Rng::new(11);
    for axis in 0..3 {
        let mut shapes = [vec![2, 3, 4], vec![2, 3, 4], vec![2, 3, 4]];
        shapes[1][axis] = 1;
        shapes[2][axis] = 5;
        let args = shapes.iter().map(|s| Arg::In(r.tensor(s))).collect();
        check_op(
            &b,
            &format!("concat axis {axis}"),
            Op::Concat { axis },
            args,
        );
    }
    check_op(
        &b,
        "concat with a constant",
        Op::Concat { axis: 1 },
        vec![Arg::In(r.tensor(&[2, 3])), Arg::Const(r.tensor(&[2, 2]))],
    );
}

#[test]
fn pad() {
    let Some(b) = backend() else { return };
    let mut r = Rng::new(12);
    check_op(
        &b,
        "pad rank 4",
        Op::Pad {
            pads: vec![[0, 0], [1, 2], [2, 0], [0, 1]],
            value: 0.0,
        },
        vec![Arg::In(r.tensor(&[2, 3, 4, 5]))],
    );
    check_op(
        &b,
        "pad rank 2 value",
        Op::Pad {
            pads: vec![[3, 1], [0, 2]],
            value: -1.5,
        },
        vec![Arg::In(r.tensor(&[2, 3]))],
    );
}

#[test]
fn slice() {
    let Some(b) = backend() else { return };
    let mut r = Rng::new(13);
    check_op(
        &b,
        "slice rank 3",
        Op::Slice {
            begin: vec![1, 0, 2],
            end: vec![3, -1, i64::MAX],
        },
        vec![Arg::In(r.tensor(&[4, 5, 6]))],
    );
    check_op(
        &b,
        "slice rank 4",
        Op::Slice {
            begin: vec![0, 1, 1, 0],
            end: vec![i64::MAX, 4, -2, 3],
        },
        vec![Arg::In(r.tensor(&[2, 6, 7, 5]))],
    );
}

#[test]
fn reshape() {
    let Some(b) = backend() else { return };
    let mut r = Rng::new(14);
    check_op(
        &b,
        "reshape",
        Op::Reshape { shape: vec![6, -1] },
        vec![Arg::In(r.tensor(&[2, 3, 4]))],
    );
    check_op(
        &b,
        "reshape a constant",
        Op::Reshape {
            shape: vec![0, 2, 2],
        },
        vec![Arg::Const(r.tensor(&[3, 4]))],
    );
}

#[test]
fn transpose() {
    let Some(b) = backend() else { return };
    let mut r = Rng::new(15);
    check_op(
        &b,
        "transpose nhwc->nchw",
        Op::Transpose {
            perm: vec![0, 3, 1, 2],
        },
        vec![Arg::In(r.tensor(&[2, 3, 5, 4]))],
    );
    check_op(
        &b,
        "transpose rank 3",
        Op::Transpose {
            perm: vec![2, 0, 1],
        },
        vec![Arg::In(r.tensor(&[3, 4, 5]))],
    );
    check_op(
        &b,
        "transpose rank 2",
        Op::Transpose { perm: vec![1, 0] },
        vec![Arg::In(r.tensor(&[7, 9]))],
    );
}

#[test]
fn resize() {
    let Some(b) = backend() else { return };
    let mut r = Rng::new(16);
    let sizes = [
        ResizeSize::Scale([2, 3]),
        ResizeSize::Fixed([7, 5]),
        ResizeSize::Fixed([2, 9]),
        ResizeSize::Fixed([1, 1]),
    ];
    for mode in [ResizeMode::Nearest, ResizeMode::Bilinear] {
        for size in sizes {
            for (align_corners, half_pixel_centers) in
                [(false, false), (true, false), (false, true)]
            {
                let op = Op::Resize {
                    mode,
                    size,
                    align_corners,
                    half_pixel_centers,
                };
                check_op(
                    &b,
                    &format!(
                        "resize {mode:?} {size:?} align {align_corners} half {half_pixel_centers}"
                    ),
                    op,
                    vec![Arg::In(r.tensor(&[2, 4, 6, 3]))],
                );
            }
        }
    }
}

#[test]
fn softmax_and_log_softmax() {
    let Some(b) = backend() else { return };
    let mut r = Rng::new(17);
    for (shape, axis) in [
        (vec![3, 10], 1),
        (vec![2, 5, 7], 1),
        (vec![2, 1000], 1),
        (vec![4, 3, 2], 0),
        (vec![1, 200], 1),
    ] {
        let x = r.tensor_in(&shape, -8.0, 8.0);
        check_op(
            &b,
            &format!("softmax {shape:?} axis {axis}"),
            Op::Softmax { axis },
            vec![Arg::In(x.clone())],
        );
        check_op(
            &b,
            &format!("log_softmax {shape:?} axis {axis}"),
            Op::LogSoftmax { axis },
            vec![Arg::In(x)],
        );
    }
}

#[test]
fn reduce() {
    let Some(b) = backend() else { return };
    let mut r = Rng::new(18);
    let cases: [(&[usize], Vec<usize>, bool); 5] = [
        (&[2, 3, 4], vec![1], false),
        (&[2, 3, 4], vec![0, 2], true),
        (&[3, 100], vec![1], false),
        (&[2, 3, 4, 5], vec![1, 2], false),
        (&[6], vec![0], true),
    ];
    for kind in [
        ReduceKind::Sum,
        ReduceKind::Mean,
        ReduceKind::Max,
        ReduceKind::Min,
    ] {
        for (shape, axes, keep_dims) in &cases {
            let op = Op::Reduce {
                kind,
                axes: axes.clone(),
                keep_dims: *keep_dims,
            };
            check_op(
                &b,
                &format!("reduce {kind:?} {shape:?} axes {axes:?} keep {keep_dims}"),
                op,
                vec![Arg::In(r.tensor(shape))],
            );
        }
    }
}
