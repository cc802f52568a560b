//! Throughput of the CPU kernels on MobileNet-like shapes, through the public `eval_op`.
//!
//! `cargo run --release -p webinfer-cpu --example conv_speed`. `MATMUL_NUM_THREADS=1` makes
//! the GEMMs single-threaded; `WEBINFER_CPU_BASELINE=1` disables the AVX2+FMA variants of the
//! direct kernels (what wasm32 compiles). Prints the best and the median time per call and
//! the best GFLOP/s (2 flops per multiply-add; for element-wise ops, elements per ns).
//! Every call allocates its output: the median includes the page faults of that fresh
//! memory, which a whole-graph run avoids by reusing buffers.

use std::time::Instant;

use webinfer_core::ir::{Conv2d, Padding};
use webinfer_core::{Activation, Op, PoolKind, Tensor};

fn tensor(shape: &[usize], seed: u32) -> Tensor {
    let n = shape.iter().product();
    let data = (0..n)
        .map(|i| {
            ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as f32
                / (1u32 << 24) as f32
                - 0.5
        })
        .collect();
    Tensor::new(shape.to_vec(), data).unwrap()
}

fn conv(kernel: usize, stride: usize, act: Activation) -> Conv2d {
    Conv2d {
        kernel: [kernel, kernel],
        stride: [stride, stride],
        dilation: [1, 1],
        padding: Padding::Same,
        groups: 1,
        activation: act,
    }
}

/// Times `op` over enough calls for ~0.5 s; `work` is its flop (or element) count.
fn bench(name: &str, op: &Op, inputs: &[&Tensor], work: f64) {
    let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape()).collect();
    let out = op.output_shape(&shapes).unwrap();
    let run = || webinfer_cpu::eval_op(op, inputs, &out).unwrap();
    let t0 = Instant::now();
    run();
    let reps = ((0.5 / t0.elapsed().as_secs_f64().max(1e-6)) as usize).clamp(5, 2000);
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(run());
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let (best, median) = (times[0], times[reps / 2]);
    println!(
        "{name:<48} best {:>7.3} ms  median {:>7.3} ms  {:>6.1} G/s",
        best * 1e3,
        median * 1e3,
        work / best / 1e9
    );
}

fn main() {
    let relu6 = Activation::Relu6;
    println!(
        "available_parallelism {:?}, MATMUL_NUM_THREADS {:?}",
        std::thread::available_parallelism().map(|n| n.get()),
        std::env::var("MATMUL_NUM_THREADS").ok()
    );
    let (x, w, b) = (
        tensor(&[1, 112, 112, 32], 1),
        tensor(&[1, 1, 32, 64], 2),
        tensor(&[64], 3),
    );
    let flops = 2.0 * 112.0 * 112.0 * 32.0 * 64.0;
    bench(
        "conv 1x1 1x112x112x32 -> 64, bias, relu6",
        &Op::Conv2d(conv(1, 1, relu6)),
        &[&x, &w, &b],
        flops,
    );

    let (x, w, b) = (
        tensor(&[1, 56, 56, 64], 4),
        tensor(&[3, 3, 64, 64], 5),
        tensor(&[64], 6),
    );
    let flops = 2.0 * 56.0 * 56.0 * 64.0 * 64.0 * 9.0;
    bench(
        "conv 3x3 1x56x56x64 -> 64 same, bias, relu6",
        &Op::Conv2d(conv(3, 1, relu6)),
        &[&x, &w, &b],
        flops,
    );

    let (x, w) = (tensor(&[1, 224, 224, 3], 7), tensor(&[3, 3, 3, 32], 8));
    let flops = 2.0 * 112.0 * 112.0 * 32.0 * 27.0;
    bench(
        "conv 3x3/2 1x224x224x3 -> 32 (first layer)",
        &Op::Conv2d(conv(3, 2, relu6)),
        &[&x, &w],
        flops,
    );

    let (x, w) = (tensor(&[1, 14, 14, 576], 9), tensor(&[1, 1, 576, 160], 10));
    let flops = 2.0 * 14.0 * 14.0 * 576.0 * 160.0;
    bench(
        "conv 1x1 1x14x14x576 -> 160",
        &Op::Conv2d(conv(1, 1, Activation::Linear)),
        &[&x, &w],
        flops,
    );

    let (x, w, b) = (
        tensor(&[1, 112, 112, 32], 11),
        tensor(&[3, 3, 32, 1], 12),
        tensor(&[32], 13),
    );
    let flops = 2.0 * 112.0 * 112.0 * 32.0 * 9.0;
    bench(
        "depthwise 3x3 1x112x112x32, bias, relu6",
        &Op::DepthwiseConv2d(conv(3, 1, relu6)),
        &[&x, &w, &b],
        flops,
    );

    let (x, w) = (tensor(&[1, 112, 112, 96], 14), tensor(&[3, 3, 96, 1], 15));
    let flops = 2.0 * 56.0 * 56.0 * 96.0 * 9.0;
    bench(
        "depthwise 3x3/2 1x112x112x96",
        &Op::DepthwiseConv2d(conv(3, 2, relu6)),
        &[&x, &w],
        flops,
    );

    let (x, w) = (tensor(&[1, 28, 28, 96], 16), tensor(&[3, 3, 96, 2], 17));
    let flops = 2.0 * 28.0 * 28.0 * 192.0 * 9.0;
    bench(
        "depthwise 3x3 mult 2 1x28x28x96",
        &Op::DepthwiseConv2d(conv(3, 1, Activation::Linear)),
        &[&x, &w],
        flops,
    );

    let (x, w) = (tensor(&[1, 28, 28, 64], 18), tensor(&[4, 4, 32, 64], 19));
    let flops = 2.0 * 28.0 * 28.0 * 64.0 * 32.0 * 16.0;
    bench(
        "conv2d_transpose 4x4/2 1x28x28x64 -> 32",
        &Op::Conv2dTranspose(conv(4, 2, Activation::Linear)),
        &[&x, &w],
        flops,
    );

    let (x, w) = (tensor(&[1, 1280], 20), tensor(&[1280, 1000], 21));
    bench(
        "matmul 1x1280 @ 1280x1000",
        &Op::MatMul {
            activation: Activation::Linear,
        },
        &[&x, &w],
        2.0 * 1280.0 * 1000.0,
    );

    let x = tensor(&[1, 112, 112, 96], 22);
    let n = x.len() as f64;
    bench(
        "swish 1x112x112x96 (elements)",
        &Op::Unary(Activation::Swish),
        &[&x],
        n,
    );
    let pool = Op::Pool2d {
        kind: PoolKind::Avg,
        window: [3, 3],
        stride: [2, 2],
        padding: Padding::Same,
    };
    bench(
        "avg pool 3x3/2 1x112x112x96 (input elements)",
        &pool,
        &[&x],
        n,
    );
}
