//! Throughput of the CPU kernels on MobileNet-like shapes.
//!
//! `cargo run --release -p webinfer-cpu --example conv_speed` (set `MATMUL_NUM_THREADS=1` for
//! single-threaded GEMMs). Prints the median time and GFLOP/s (2 flops per multiply-add).

use std::time::Instant;

use webinfer_core::ir::{Conv2d, Padding};
use webinfer_core::{Activation, Op, Tensor};

fn tensor(shape: &[usize], seed: u32) -> Tensor {
    let n = shape.iter().product();
    let data = (0..n).map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as f32 / (1u32 << 24) as f32 - 0.5).collect();
    Tensor::new(shape.to_vec(), data).unwrap()
}

fn conv(kernel: usize, stride: usize, act: Activation) -> Conv2d {
    Conv2d { kernel: [kernel, kernel], stride: [stride, stride], dilation: [1, 1], padding: Padding::Same, groups: 1, activation: act }
}

/// Median seconds per call of `op` over enough repetitions for ~0.5 s.
fn bench(name: &str, op: &Op, inputs: &[&Tensor], flops: f64) {
    let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape()).collect();
    let out = op.output_shape(&shapes).unwrap();
    let run = || webinfer_cpu::eval_op(op, inputs, &out).unwrap();
    let t0 = Instant::now();
    run();
    let once = t0.elapsed().as_secs_f64();
    let reps = ((0.5 / once.max(1e-6)) as usize).clamp(5, 2000);
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(run());
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let med = times[reps / 2];
    println!("{name:<52} {:>9.3} ms {:>8.1} GFLOP/s", med * 1e3, flops / med / 1e9);
}

fn main() {
    let relu6 = Activation::Relu6;
    println!("threads: {:?}, MATMUL_NUM_THREADS={:?}", std::thread::available_parallelism().map(|n| n.get()), std::env::var("MATMUL_NUM_THREADS").ok());

    let x = tensor(&[1, 112, 112, 32], 1);
    let w = tensor(&[1, 1, 32, 64], 2);
    let b = tensor(&[64], 3);
    bench("conv 1x1  1x112x112x32 -> 64 (+bias, relu6)", &Op::Conv2d(conv(1, 1, relu6)), &[&x, &w, &b], 2.0 * 112.0 * 112.0 * 32.0 * 64.0);

    let x = tensor(&[1, 56, 56, 64], 4);
    let w = tensor(&[3, 3, 64, 64], 5);
    let b = tensor(&[64], 6);
    bench("conv 3x3  1x56x56x64 -> 64 same (+bias, relu6)", &Op::Conv2d(conv(3, 1, relu6)), &[&x, &w, &b], 2.0 * 56.0 * 56.0 * 64.0 * 64.0 * 9.0);

    let x = tensor(&[1, 224, 224, 3], 7);
    let w = tensor(&[3, 3, 3, 32], 8);
    bench("conv 3x3/2 1x224x224x3 -> 32 (first layer)", &Op::Conv2d(conv(3, 2, relu6)), &[&x, &w], 2.0 * 112.0 * 112.0 * 32.0 * 27.0);

    let x = tensor(&[1, 14, 14, 576], 9);
    let w = tensor(&[1, 1, 576, 160], 10);
    bench("conv 1x1  1x14x14x576 -> 160", &Op::Conv2d(conv(1, 1, Activation::Linear)), &[&x, &w], 2.0 * 14.0 * 14.0 * 576.0 * 160.0);

    let x = tensor(&[1, 112, 112, 32], 11);
    let w = tensor(&[3, 3, 32, 1], 12);
    let b = tensor(&[32], 13);
    bench("depthwise 3x3 1x112x112x32 (+bias, relu6)", &Op::DepthwiseConv2d(conv(3, 1, relu6)), &[&x, &w, &b], 2.0 * 112.0 * 112.0 * 32.0 * 9.0);

    let x = tensor(&[1, 112, 112, 96], 14);
    let w = tensor(&[3, 3, 96, 1], 15);
    bench("depthwise 3x3/2 1x112x112x96", &Op::DepthwiseConv2d(conv(3, 2, relu6)), &[&x, &w], 2.0 * 56.0 * 56.0 * 96.0 * 9.0);

    let x = tensor(&[1, 28, 28, 192], 16);
    let w = tensor(&[3, 3, 96, 2], 17);
    let x96 = tensor(&[1, 28, 28, 96], 16);
    let _ = x;
    bench("depthwise 3x3 mult 2 1x28x28x96", &Op::DepthwiseConv2d(conv(3, 1, Activation::Linear)), &[&x96, &w], 2.0 * 28.0 * 28.0 * 192.0 * 9.0);

    let x = tensor(&[1, 28, 28, 64], 18);
    let w = tensor(&[4, 4, 32, 64], 19);
    bench("conv2d_transpose 4x4/2 1x28x28x64 -> 32", &Op::Conv2dTranspose(conv(4, 2, Activation::Linear)), &[&x, &w], 2.0 * 28.0 * 28.0 * 64.0 * 32.0 * 16.0);

    let x = tensor(&[1, 1280], 20);
    let w = tensor(&[1280, 1000], 21);
    bench("matmul 1x1280 @ 1280x1000", &Op::MatMul { activation: Activation::Linear }, &[&x, &w], 2.0 * 1280.0 * 1000.0);

    let x = tensor(&[1, 112, 112, 96], 22);
    let n = x.len() as f64;
    bench("swish 1x112x112x96 (Gelem/s)", &Op::Unary(Activation::Swish), &[&x], n);
    bench("avg pool 3x3/2 1x112x112x96 (Gelem/s of input)", &Op::Pool2d { kind: webinfer_core::PoolKind::Avg, window: [3, 3], stride: [2, 2], padding: Padding::Same }, &[&x], n);
}
