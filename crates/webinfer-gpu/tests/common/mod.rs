//! Shared by the GPU test suites: the adapter (or a skip), random tensors, one-op graphs, and
//! comparison against the CPU backend with a named tolerance.
#![allow(dead_code)]

use webinfer_core::ir::{Graph, InputSpec};
use webinfer_core::{Op, Tensor};
use webinfer_gpu::GpuBackend;

/// |gpu - cpu| <= ATOL + RTOL * |cpu|
pub const ATOL: f32 = 1e-4;
pub const RTOL: f32 = 1e-3;

/// A backend on any adapter, software included. Without one: a skip line, or a failure when
/// `WEBINFER_REQUIRE_GPU=1` (CI), so that a missing driver cannot pass as green.
pub fn backend() -> Option<GpuBackend> {
    match futures::executor::block_on(GpuBackend::new(true)) {
        Ok(b) => Some(b),
        Err(e) => {
            if std::env::var("WEBINFER_REQUIRE_GPU").as_deref() == Ok("1") {
                panic!("WEBINFER_REQUIRE_GPU=1 but no GPU backend: {e}");
            }
            eprintln!(
                "SKIP: no GPU adapter ({e}); set WEBINFER_REQUIRE_GPU=1 to make this a failure"
            );
            None
        }
    }
}

/// splitmix64: deterministic, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
    }
    pub fn tensor(&mut self, shape: &[usize]) -> Tensor {
        self.tensor_in(shape, -1.0, 1.0)
    }
    pub fn tensor_in(&mut self, shape: &[usize], lo: f32, hi: f32) -> Tensor {
        let n = shape.iter().product();
        Tensor::new(
            shape.to_vec(),
            (0..n).map(|_| self.uniform(lo, hi)).collect(),
        )
        .unwrap()
    }
}

/// An operand of a one-op test graph.
pub enum Arg {
    /// A model input.
    In(Tensor),
    /// A constant (weights must be constants for the GPU kernels).
    Const(Tensor),
}

impl Arg {
    pub fn tensor(&self) -> &Tensor {
        match self {
            Arg::In(t) | Arg::Const(t) => t,
        }
    }
}

/// A graph computing `op` on `args`; returns it with the input tensors in order.
pub fn one_op_graph(op: Op, args: Vec<Arg>) -> (Graph, Vec<Tensor>) {
    let mut g = Graph::default();
    let mut operands = Vec::new();
    let mut inputs = Vec::new();
    for (i, a) in args.into_iter().enumerate() {
        match a {
            Arg::In(t) => {
                g.inputs.push(InputSpec {
                    name: format!("x{i}"),
                    shape: t.shape().iter().map(|&d| Some(d)).collect(),
                    dtype: "float32".into(),
                });
                operands.push(g.push(
                    Op::Input {
                        index: inputs.len(),
                    },
                    vec![],
                    &format!("x{i}"),
                ));
                inputs.push(t);
            }
            Arg::Const(t) => operands.push(g.constant(t, &format!("w{i}"))),
        }
    }
    let out = g.push(op, operands, "op under test");
    g.outputs.push(out);
    g.output_names.push("y".into());
    (g, inputs)
}

/// Run `g` on the GPU.
pub fn run_gpu(b: &GpuBackend, g: &Graph, inputs: &[Tensor]) -> Vec<Tensor> {
    let plan = b.prepare(g).unwrap_or_else(|e| panic!("prepare: {e}"));
    futures::executor::block_on(b.run(&plan, g, inputs)).unwrap_or_else(|e| panic!("run: {e}"))
}

/// Run `g` on the CPU backend (the reference).
pub fn run_cpu(g: &Graph, inputs: &[Tensor]) -> Vec<Tensor> {
    use webinfer_core::Backend;
    webinfer_cpu::CpuBackend::new()
        .run(g, inputs)
        .unwrap_or_else(|e| panic!("cpu run: {e}"))
}

/// Assert `got` matches `want` element-wise within the tolerance; the message names the case
/// and the first element that differs.
pub fn assert_close(case: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.shape(), want.shape(), "{case}: shape (gpu vs cpu)");
    let mut worst = (0.0f32, 0usize);
    for (i, (&g, &w)) in got.data().iter().zip(want.data()).enumerate() {
        let ok = (g - w).abs() <= ATOL + RTOL * w.abs() || (g.is_nan() && w.is_nan()) || (g == w);
        if !ok {
            panic!(
                "{case}: element {i} (of shape {:?}): gpu {g}, cpu {w} (|diff| {} > {ATOL} + {RTOL}*|cpu|)",
                want.shape(),
                (g - w).abs()
            );
        }
        let d = (g - w).abs();
        if d > worst.0 {
            worst = (d, i);
        }
    }
}

/// One op on the GPU against `webinfer_cpu::eval_op`.
pub fn check_op(b: &GpuBackend, case: &str, op: Op, args: Vec<Arg>) {
    let ins: Vec<&Tensor> = args.iter().map(|a| a.tensor()).collect();
    let shapes: Vec<&[usize]> = ins.iter().map(|t| t.shape()).collect();
    let out_shape = op
        .output_shape(&shapes)
        .unwrap_or_else(|e| panic!("{case}: {e}"));
    let want = webinfer_cpu::eval_op(&op, &ins, &out_shape)
        .unwrap_or_else(|e| panic!("{case}: cpu eval_op: {e}"));
    let (g, inputs) = one_op_graph(op, args);
    let got = run_gpu(b, &g, &inputs);
    assert_close(case, &got[0], &want);
}
