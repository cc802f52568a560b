//! Dense and Conv2D throughput of the CPU backend next to the `gemm` crate's sgemm on the
//! same matrix shapes (a conv's GEMM: M = N*OH*OW, K = KH*KW*Cin, N = Cout), for scale.
//!
//! `cargo run --release -p webinfer-cpu --example kernel_bench [-- --quick]`
//!
//! Prints one line per case: webinfer's median time and GFLOP/s through the public
//! `eval_op` (bias + activation epilogue included), gemm's, and the ratio; then webinfer's
//! time through a `CpuBackend` running the layer as a one-node graph with constant weights
//! (what a loaded model sees: weights prepared once may be reused). Medians of
//! several runs; nothing here is asserted: timings on shared machines are noisy.

use std::time::Instant;

use webinfer_core::ir::{Conv2d, Padding};
use webinfer_core::{Activation, Backend, Graph, Op, Tensor};

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

/// Median seconds of `f` over `runs` calls after one warm-up.
fn median(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn gemm_time(m: usize, k: usize, n: usize, runs: usize) -> f64 {
    let a = tensor(&[m, k], 1);
    let b = tensor(&[k, n], 2);
    let mut c = vec![0f32; m * n];
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    median(runs, || unsafe {
        // Row-major A [m,k], B [k,n], C [m,n]: column stride 1, row stride = width.
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.data().as_ptr(),
            1,
            k as isize,
            b.data().as_ptr(),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(threads),
        )
    })
}

/// Median seconds of a `CpuBackend` run of `op` as a graph: input `x`, constants `w`, `b`.
fn graph_time(op: &Op, x: &Tensor, w: &Tensor, b: &Tensor, runs: usize) -> f64 {
    let mut graph = Graph::default();
    let xi = graph.push(Op::Input { index: 0 }, vec![], "x");
    let wi = graph.constant(w.clone(), "w");
    let bi = graph.constant(b.clone(), "b");
    let yi = graph.push(op.clone(), vec![xi, wi, bi], "layer");
    graph.outputs = vec![yi];
    let backend = webinfer_cpu::CpuBackend::new();
    let inputs = [x.clone()];
    median(runs, || {
        backend.run(&graph, &inputs).unwrap();
    })
}

fn report(name: &str, flops: f64, ours: f64, theirs: f64, graph: f64) {
    let (g1, g2, g3) = (
        flops / ours / 1e9,
        flops / theirs / 1e9,
        flops / graph / 1e9,
    );
    println!("{name:<40} webinfer {:>8.3} ms {g1:>7.1} GFLOP/s   gemm {:>8.3} ms {g2:>7.1} GFLOP/s   ratio {:.2}   graph {:>8.3} ms {g3:>7.1} GFLOP/s", ours * 1e3, theirs * 1e3, g1 / g2, graph * 1e3);
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let runs = if quick { 3 } else { 15 };
    println!(
        "CPU kernels vs the gemm crate ({} threads), median of {runs} runs",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    for &(m, k, n) in &[
        (1usize, 1280usize, 1000usize),
        (1, 256, 256),
        (1, 1024, 1024),
        (1, 2048, 2048),
        (8, 1024, 1024),
        (64, 1024, 1024),
        (256, 512, 512),
        (1024, 1024, 1024),
    ] {
        let x = tensor(&[m, k], 3);
        let w = tensor(&[k, n], 4);
        let b = tensor(&[n], 5);
        let op = Op::MatMul {
            activation: Activation::Relu,
        };
        let ours = median(runs, || {
            webinfer_cpu::eval_op(&op, &[&x, &w, &b], &[m, n]).unwrap();
        });
        report(
            &format!("dense {m}x{k} @ {k}x{n}"),
            2.0 * (m * k * n) as f64,
            ours,
            gemm_time(m, k, n, runs),
            graph_time(&op, &x, &w, &b, runs),
        );
    }

    // (h, w, cin, cout, kernel, stride): MobileNet / ResNet-like layers.
    for &(h, w, cin, cout, kk, s) in &[
        (112usize, 112usize, 32usize, 64usize, 1usize, 1usize),
        (56, 56, 64, 64, 3, 1),
        (28, 28, 128, 256, 3, 2),
        (14, 14, 576, 160, 1, 1),
        (224, 224, 3, 32, 3, 2),
    ] {
        let x = tensor(&[1, h, w, cin], 6);
        let wt = tensor(&[kk, kk, cin, cout], 7);
        let b = tensor(&[cout], 8);
        let conv = Conv2d {
            kernel: [kk, kk],
            stride: [s, s],
            dilation: [1, 1],
            padding: Padding::Same,
            groups: 1,
            activation: Activation::Relu6,
        };
        let (oh, ow) = (h.div_ceil(s), w.div_ceil(s));
        let op = Op::Conv2d(conv);
        let ours = median(runs, || {
            webinfer_cpu::eval_op(&op, &[&x, &wt, &b], &[1, oh, ow, cout]).unwrap();
        });
        let (m, k, n) = (oh * ow, kk * kk * cin, cout);
        report(
            &format!("conv {kk}x{kk}/{s} {h}x{w}x{cin} -> {cout}"),
            2.0 * (m * k * n) as f64,
            ours,
            gemm_time(m, k, n, runs),
            graph_time(&op, &x, &wt, &b, runs),
        );
    }
}
