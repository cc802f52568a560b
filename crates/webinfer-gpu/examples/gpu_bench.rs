//! Dense and Conv2D microbenchmarks on the GPU backend.
//!
//!   cargo run --release -p webinfer-gpu --example gpu_bench [-- --iters 20 --chain 8 --batch 1]
//!
//! `--quick`: tiny sizes (a smoke test); `--large`: sizes that keep a big GPU busy (add
//! `--batch 8` for the convolutions).
//!
//! Each case is a graph of `chain` identical ops fed one into the next (one command
//! submission), so a run's input upload and output readback are amortized over the chain. It
//! prints the median over `iters` runs of the time per op, and GFLOP/s (2 flops per
//! multiply-add). Never used as a test: timings on a software adapter say nothing about a GPU.

use std::time::Instant;

use webinfer_core::ir::{Activation, Conv2d, Graph, InputSpec, Padding};
use webinfer_core::{Op, Tensor};
use webinfer_gpu::GpuBackend;

struct Lcg(u64);

impl Lcg {
    fn tensor(&mut self, shape: &[usize], scale: f32) -> Tensor {
        let n = shape.iter().product();
        let data = (0..n)
            .map(|_| {
                self.0 = self
                    .0
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((self.0 >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect();
        Tensor::new(shape.to_vec(), data).unwrap()
    }
}

/// `chain` copies of `op(x, w_i, b_i)`, each reading the previous one's output.
fn chain_graph(
    input: &[usize],
    chain: usize,
    op: &Op,
    w: &[usize],
    bias: usize,
    rng: &mut Lcg,
) -> Graph {
    let mut g = Graph::default();
    g.inputs.push(InputSpec {
        name: "x".into(),
        shape: input.iter().map(|&d| Some(d)).collect(),
        dtype: "float32".into(),
    });
    let mut x = g.push(Op::Input { index: 0 }, vec![], "x");
    let fan_in: usize = w[..w.len() - 1].iter().product();
    for i in 0..chain {
        let wt = g.constant(
            rng.tensor(w, 1.0 / (fan_in as f32).sqrt()),
            &format!("w{i}"),
        );
        let bt = g.constant(rng.tensor(&[bias], 0.1), &format!("b{i}"));
        x = g.push(op.clone(), vec![x, wt, bt], &format!("layer{i}"));
    }
    g.outputs.push(x);
    g.output_names.push("y".into());
    g
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// One benchmark: a chain graph and the work of one of its ops.
struct Case {
    name: String,
    graph: Graph,
    input: Vec<usize>,
    chain: usize,
    flops_per_op: f64,
}

fn bench(b: &GpuBackend, c: &Case, iters: usize, rng: &mut Lcg) {
    let name = &c.name;
    let x = vec![rng.tensor(&c.input, 1.0)];
    let plan = match b.prepare(&c.graph) {
        Ok(p) => p,
        Err(e) => return println!("{name:<44} prepare failed: {e}"),
    };
    // Warm-up: builds the execution plan and pipelines.
    if let Err(e) = futures::executor::block_on(b.run(&plan, &c.graph, &x)) {
        return println!("{name:<44} run failed: {e}");
    }
    let times: Vec<f64> = (0..iters)
        .map(|_| {
            let t = Instant::now();
            futures::executor::block_on(b.run(&plan, &c.graph, &x)).expect("run");
            t.elapsed().as_secs_f64() / c.chain as f64
        })
        .collect();
    let ms = median(times) * 1e3;
    let gflops = c.flops_per_op / (ms * 1e-3) / 1e9;
    println!(
        "{name:<44} {ms:>9.3} ms/op {gflops:>9.2} GFLOP/s   (chain {}, peak {:.1} MiB)",
        c.chain,
        plan.peak_bytes() as f64 / (1 << 20) as f64
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opt = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let quick = args.iter().any(|a| a == "--quick");
    let iters = opt("--iters", if quick { 3 } else { 10 });
    let chain = opt("--chain", if quick { 2 } else { 8 });
    let batch = opt("--batch", 1);
    let large = args.iter().any(|a| a == "--large");

    let b = match futures::executor::block_on(GpuBackend::new(true)) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("gpu_bench: {e}");
            std::process::exit(1);
        }
    };
    let info = b.adapter_info();
    println!(
        "adapter: {} ({}, {}{})",
        info.name,
        info.backend,
        info.device_type,
        if info.is_software { ", software" } else { "" }
    );
    println!("iters {iters}, median; time per op includes its share of one upload + readback\n");
    let mut rng = Lcg(42);

    println!("Dense  y[m,n] = relu(x[m,k] w[k,n] + b)");
    let dense: &[(usize, usize)] = if quick {
        &[(1, 256), (64, 256)]
    } else if large {
        &[(1, 8192), (1024, 4096), (4096, 4096)]
    } else {
        &[(1, 1024), (1, 4096), (64, 1024), (256, 1024), (1024, 1024)]
    };
    for &(m, k) in dense {
        let graph = chain_graph(
            &[m, k],
            chain,
            &Op::MatMul {
                activation: Activation::Relu,
            },
            &[k, k],
            k,
            &mut rng,
        );
        let name = format!("m {m:>4}  k {k:>4}  n {k:>4}");
        bench(
            &b,
            &Case {
                name,
                graph,
                input: vec![m, k],
                chain,
                flops_per_op: 2.0 * (m * k * k) as f64,
            },
            iters,
            &mut rng,
        );
    }

    println!("\nConv2D 'same', stride 1, relu, cin = cout, batch {batch}");
    let convs: &[(usize, usize, usize)] = if quick {
        &[(16, 16, 3), (16, 32, 1)]
    } else if large {
        &[(112, 64, 3), (56, 128, 3), (28, 256, 3), (56, 256, 1)]
    } else {
        &[
            (56, 64, 3),
            (28, 128, 3),
            (14, 256, 3),
            (112, 32, 3),
            (56, 128, 1),
            (14, 512, 1),
        ]
    };
    for &(hw, c, k) in convs {
        let op = Op::Conv2d(Conv2d {
            kernel: [k, k],
            stride: [1, 1],
            dilation: [1, 1],
            padding: Padding::Same,
            groups: 1,
            activation: Activation::Relu,
        });
        let input = [batch, hw, hw, c];
        let graph = chain_graph(&input, chain, &op, &[k, k, c, c], c, &mut rng);
        let flops_per_op = 2.0 * (batch * hw * hw * c * c * k * k) as f64;
        let name = format!("{hw:>3}x{hw:<3} c {c:>3}  {k}x{k}");
        bench(
            &b,
            &Case {
                name,
                graph,
                input: input.to_vec(),
                chain,
                flops_per_op,
            },
            iters,
            &mut rng,
        );
    }
}
