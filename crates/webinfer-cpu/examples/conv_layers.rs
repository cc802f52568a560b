//! The single Conv2D layers of the browser benchmark (`bench/gen-models.mjs`: 3x3 'same',
//! C -> C, bias, relu) and MobileNet's first layer, timed through `eval_op`: median ms and
//! GFLOP/s, through `eval_op` (direct kernel and the old GEMM path, weights prepared on
//! every call) and through a `CpuBackend` running a one-node graph whose weights are
//! constants ("graph": what a loaded model sees). Runs natively and on wasm32-wasip1 (build with simd128, run under node's WASI),
//! so the wasm kernels can be timed without a browser:
//!
//! ```text
//! cargo run --release -p webinfer-cpu --example conv_layers
//! RUSTFLAGS="-C target-feature=+simd128" cargo build --release --target wasm32-wasip1 \
//!     -p webinfer-cpu --example conv_layers
//! node crates/webinfer-cpu/examples/run-wasi.mjs target/wasm32-wasip1/release/examples/conv_layers.wasm
//! ```

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

/// The timed paths: `eval_op` on the direct kernel, `eval_op` on the GEMM path, and a
/// `CpuBackend` run of the layer as a graph with constant weights (direct kernel).
const PATHS: [&str; 3] = ["direct", "gemm", "graph"];

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // `--only dense` times the dense layers only, `--only conv` the convolutions.
    let args: Vec<String> = std::env::args().collect();
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1).cloned());
    // Convolutions as (h, cin, cout, kernel, stride), on [1, h, h, cin].
    for &(h, cin, cout, k, s) in &[
        (56usize, 32usize, 32usize, 3usize, 1usize),
        (28, 128, 128, 3, 1),
        (14, 256, 256, 3, 1),
        (224, 3, 32, 3, 2),
        (112, 32, 64, 1, 1),
        (14, 1024, 256, 1, 1),
        // Dense layers as [m, k] x [k, n]: (m, k, n, 0, 0).
        (1, 256, 256, 0, 0),
        (1, 1024, 1024, 0, 0),
        (1, 2048, 2048, 0, 0),
        (2, 1024, 1024, 0, 0),
        (4, 1024, 1024, 0, 0),
        (8, 1024, 1024, 0, 0),
        (16, 1024, 1024, 0, 0),
        (64, 1024, 1024, 0, 0),
        (256, 512, 512, 0, 0),
        (32, 2048, 2048, 0, 0),
    ] {
        let dense = k == 0;
        if only.as_deref().is_some_and(|o| (o == "dense") != dense) {
            continue;
        }
        let (x, w, b) = if dense {
            (
                tensor(&[h, cin], 1),
                tensor(&[cin, cout], 2),
                tensor(&[cout], 3),
            )
        } else {
            (
                tensor(&[1, h, h, cin], 1),
                tensor(&[k, k, cin, cout], 2),
                tensor(&[cout], 3),
            )
        };
        let op = if dense {
            Op::MatMul {
                activation: Activation::Relu,
            }
        } else {
            Op::Conv2d(Conv2d {
                kernel: [k, k],
                stride: [s, s],
                dilation: [1, 1],
                padding: Padding::Same,
                groups: 1,
                activation: Activation::Relu,
            })
        };
        let (shape, flops) = if dense {
            (vec![h, cout], 2.0 * (h * cin * cout) as f64)
        } else {
            let oh = h.div_ceil(s);
            (
                vec![1, oh, oh, cout],
                2.0 * (oh * oh * k * k * cin * cout) as f64,
            )
        };
        let run = || webinfer_cpu::eval_op(&op, &[&x, &w, &b], &shape).unwrap();
        let mut graph = Graph::default();
        let xi = graph.push(Op::Input { index: 0 }, vec![], "x");
        let wi = graph.constant(w.clone(), "w");
        let bi = graph.constant(b.clone(), "b");
        let yi = graph.push(op.clone(), vec![xi, wi, bi], "layer");
        graph.outputs = vec![yi];
        let backend = webinfer_cpu::CpuBackend::new();
        let inputs = [x.clone()];
        let run_graph = || backend.run(&graph, &inputs).unwrap();
        let t0 = Instant::now();
        std::hint::black_box(run());
        let once = t0.elapsed().as_secs_f64();
        let reps = if quick {
            3
        } else {
            ((0.3 / once) as usize).clamp(3, 100)
        };
        // All paths, interleaved round by round so that all see the same machine load.
        let mut times = [Vec::new(), Vec::new(), Vec::new()];
        for _round in 0..if quick { 1 } else { 5 } {
            for (path, t) in PATHS.iter().zip(times.iter_mut()) {
                let f = || {
                    if *path == "graph" {
                        std::hint::black_box(run_graph());
                    } else {
                        std::hint::black_box(run());
                    }
                };
                std::env::set_var(
                    "WEBINFER_CPU_CONV",
                    if *path == "gemm" { "gemm" } else { "direct" },
                );
                f();
                for _ in 0..reps {
                    let s = Instant::now();
                    f();
                    t.push(s.elapsed().as_secs_f64());
                }
            }
        }
        std::env::remove_var("WEBINFER_CPU_CONV");
        let mut line = if dense {
            format!("dense {h}x{cin} @ {cin}x{cout:<12}")
        } else {
            format!("conv {k}x{k}/{s} {h}x{h}x{cin} -> {cout:<4}")
        };
        for (path, t) in PATHS.iter().zip(times.iter_mut()) {
            t.sort_by(f64::total_cmp);
            let (med, min) = (t[t.len() / 2], t[0]);
            line += &format!(
                "  {path} median {:>7.3} ms min {:>7.3} ms ({:>5.1} GFLOP/s)",
                med * 1e3,
                min * 1e3,
                flops / min / 1e9
            );
        }
        println!("{line}");
    }
}
