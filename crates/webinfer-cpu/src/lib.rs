//! webinfer-cpu: the CPU backend. It runs every op of the [IR](webinfer_core::ir) on dense
//! NHWC `f32` tensors, natively and on `wasm32-unknown-unknown`.
//!
//! - [`CpuBackend`] runs a whole [`Graph`]: shapes are inferred (and checked) up front,
//!   constants are borrowed from the graph (never copied per run), every intermediate is freed
//!   after its last reader (its buffer goes to a later op of the same run), and element-wise
//!   ops / reshapes / softmax compute into a dying operand's buffer.
//! - [`eval_op`] evaluates one op on CPU tensors (the GPU backend's fallback, and the tests').
//! - [`apply_activation`] applies an [`Activation`](webinfer_core::Activation) in place.
//!
//! Errors are values, never panics: a failing op becomes
//! [`CoreError::Backend`] naming the layer it came from and the op.
//!
//! # Performance
//! Conv2d runs on a direct implicit-GEMM kernel (`igemm.rs`: register tiles read straight
//! from the NHWC input; AVX2+FMA natively, `simd128` intrinsics on wasm32). Natively, MatMul
//! (and the old convolution path, `WEBINFER_CPU_CONV=gemm`) run on `matrixmultiply`'s sgemm
//! (runtime-selected AVX-512 / AVX2 / NEON kernels; threaded, up to `MATMUL_NUM_THREADS`,
//! default the physical core count, at most 4); on wasm32 every GEMM runs on the direct
//! kernel (matrixmultiply is not linked there). The other direct
//! kernels are loops over contiguous channels, written for the auto-vectorizer and compiled a
//! second time for AVX2+FMA on x86-64 (see `simd.rs`; set `WEBINFER_CPU_BASELINE=1` to run
//! the baseline variant); the big ones split their output rows over a small persistent
//! thread pool. On wasm32 everything runs on the
//! calling thread; build with `-C target-feature=+simd128` to get SIMD there.
//!
//! # Crate map
//! - `conv.rs`: Conv2d (dispatch; im2col + GEMM behind `WEBINFER_CPU_CONV=gemm`),
//!   DepthwiseConv2d (direct), Conv2dTranspose (GEMM + col2im), MatMul.
//! - `igemm.rs`: the direct Conv2d kernel.
//! - `gemm.rs`: the sgemm wrapper and the fused bias + activation epilogue.
//! - `activation.rs`: activations and their vectorizable `exp` / `tanh` / `ln` / `erf`.
//! - `pool.rs`, `elementwise.rs` (broadcasting), `layout.rs` (concat / pad / slice /
//!   transpose), `resize.rs`, `reduce.rs` (softmax, reductions).
//! - `par.rs`: the execution context, row-parallel loop and thread pool; `simd.rs`: feature
//!   dispatch; `buffers.rs`: reuse of freed intermediate buffers within a run.

mod activation;
mod buffers;
mod conv;
mod elementwise;
mod gemm;
mod gemv;
mod igemm;
mod layout;
mod packed;
mod par;
mod pool;
// Without `graph-ops` only the softmax kernels of reduce.rs are used.
#[cfg_attr(not(feature = "graph-ops"), allow(dead_code))]
mod reduce;
mod resize;
mod simd;
#[cfg(test)]
mod testutil;

pub use activation::apply_activation;

use par::Ctx;
use webinfer_core::ir::InputSpec;
use webinfer_core::tensor::element_count;
use webinfer_core::{Backend, CoreError, Graph, Op, Result, Tensor};

/// The CPU backend. Between runs it keeps its settings, the buffers of the last run's
/// intermediates (at most 512 MiB), which the next run reuses instead of fresh memory, and
/// the constant convolution / dense weights it has reordered for its kernels (at most
/// 256 MiB, about one more copy of those weights; dropped once unused for a few runs);
/// [`CpuBackend::release_memory`] drops both.
#[derive(Debug)]
pub struct CpuBackend {
    threads: usize,
    idle: std::sync::Mutex<buffers::Idle>,
    packs: packed::PackCache,
}

impl CpuBackend {
    /// A backend using all of the machine's parallelism (one thread on wasm32).
    pub fn new() -> Self {
        Self::with_threads(par::default_threads())
    }

    /// A backend whose direct kernels use at most `threads` threads (1 = the calling thread
    /// only). GEMMs follow matrixmultiply's own setting, `MATMUL_NUM_THREADS`.
    pub fn with_threads(threads: usize) -> Self {
        CpuBackend {
            threads: threads.max(1),
            idle: Default::default(),
            packs: Default::default(),
        }
    }

    /// The thread limit of the direct kernels.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Frees the intermediate buffers kept for the next run and the reordered weights.
    pub fn release_memory(&self) {
        self.idle_buffers().clear();
        self.packs.clear();
    }

    /// Bytes of reordered (packed) weights kept between runs.
    pub fn packed_weight_bytes(&self) -> usize {
        self.packs.bytes()
    }

    fn idle_buffers(&self) -> std::sync::MutexGuard<'_, buffers::Idle> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clone for CpuBackend {
    /// The same settings, no kept buffers or packed weights.
    fn clone(&self) -> Self {
        Self::with_threads(self.threads)
    }
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self::new()
    }
}

/// A value during a run: borrowed (graph constants, the caller's inputs) or computed.
enum Value<'a> {
    Borrowed(&'a Tensor),
    Owned(Tensor),
}

impl Value<'_> {
    fn get(&self) -> &Tensor {
        match self {
            Value::Borrowed(t) => t,
            Value::Owned(t) => t,
        }
    }
    fn into_owned(self) -> Tensor {
        match self {
            Value::Borrowed(t) => t.clone(),
            Value::Owned(t) => t,
        }
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> &str {
        "cpu"
    }

    fn run(&self, graph: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        self.run_observed(graph, inputs, |_| {})
    }
}

/// What [`CpuBackend::run_observed`] reports after each node (for tests and profiling).
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(test), allow(dead_code))]
struct Step {
    /// Values held (computed or borrowed) once this node's dead operands are freed.
    live: usize,
    /// Whether the node computed into an operand's buffer.
    in_place: bool,
}

impl CpuBackend {
    /// [`Backend::run`], calling `observe` after every node.
    fn run_observed(
        &self,
        graph: &Graph,
        inputs: &[Tensor],
        mut observe: impl FnMut(Step),
    ) -> Result<Vec<Tensor>> {
        check_inputs(&graph.inputs, inputs)?;
        if let Some(node) = graph
            .nodes
            .iter()
            .find(|n| matches!(n.op, Op::Resident { .. }))
        {
            return Err(CoreError::Graph(format!(
                "weight of layer \"{}\": {RESIDENT}",
                node.origin
            )));
        }
        // Concurrent runs each take what is idle; the last to finish leaves its buffers.
        let reuse = buffers::RunPool::install(std::mem::take(&mut *self.idle_buffers()));
        let input_shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape().to_vec()).collect();
        let shapes = graph.infer_shapes(&input_shapes)?;
        if let Some((k, &o)) = graph
            .outputs
            .iter()
            .enumerate()
            .find(|&(_, &o)| o >= graph.nodes.len())
        {
            return Err(CoreError::Graph(format!(
                "output {k} refers to value {o}, but the graph has {} nodes",
                graph.nodes.len()
            )));
        }
        let last = graph.last_uses();
        let ctx = Ctx {
            threads: self.threads,
        };
        let mut vals: Vec<Option<Value>> = (0..graph.nodes.len()).map(|_| None).collect();
        let mut live = 0;
        for (id, node) in graph.nodes.iter().enumerate() {
            let mut in_place = false;
            let value = match &node.op {
                // infer_shapes has checked that the index is in range.
                Op::Input { index } => Value::Borrowed(&inputs[*index]),
                Op::Constant(t) => Value::Borrowed(t),
                op => {
                    // Weights that are graph constants keep their packed form between runs.
                    let packs = matches!(op, Op::Conv2d(_) | Op::MatMul { .. })
                        .then(|| node.inputs.get(1))
                        .flatten()
                        .and_then(|&w| graph.as_constant(w))
                        .map(|_| &self.packs);
                    let (out, reused) = eval_node(
                        ctx,
                        packs,
                        op,
                        &node.inputs,
                        id,
                        &mut vals,
                        &last,
                        &shapes[id],
                    )
                    .map_err(|message| CoreError::Backend {
                        backend: "cpu".into(),
                        message: format!("layer \"{}\" ({}): {message}", node.origin, op.name()),
                    })?;
                    in_place = reused;
                    Value::Owned(out)
                }
            };
            vals[id] = Some(value);
            // An in-place op consumed its operand.
            live = live + 1 - usize::from(in_place);
            for &i in &node.inputs {
                if last[i] == id {
                    live -= free(&mut vals[i]);
                }
            }
            if last[id] == id {
                // Nobody reads this value and it is no output.
                live -= free(&mut vals[id]);
            }
            observe(Step { live, in_place });
        }
        let mut outputs = Vec::with_capacity(graph.outputs.len());
        for (k, &o) in graph.outputs.iter().enumerate() {
            let missing = || CoreError::Graph(format!("output {k} (value {o}) was not computed"));
            // The last mention of a value among the outputs takes it; earlier ones copy it.
            let value = if graph.outputs[k + 1..].contains(&o) {
                vals.get(o)
                    .and_then(Option::as_ref)
                    .ok_or_else(missing)?
                    .get()
                    .clone()
            } else {
                vals.get_mut(o)
                    .and_then(Option::take)
                    .ok_or_else(missing)?
                    .into_owned()
            };
            outputs.push(value);
        }
        drop(vals);
        *self.idle_buffers() = reuse.finish();
        self.packs.end_run();
        Ok(outputs)
    }
}

/// Drop a value (returns 1 if there was one), keeping a computed one's buffer for later ops
/// of the run.
fn free(v: &mut Option<Value>) -> usize {
    match v.take() {
        Some(Value::Owned(t)) => {
            buffers::recycle(t.into_data());
            1
        }
        Some(Value::Borrowed(_)) => 1,
        None => 0,
    }
}

/// Check the caller's tensors against the graph's input specs (when it has them).
fn check_inputs(specs: &[InputSpec], inputs: &[Tensor]) -> Result<()> {
    if specs.is_empty() {
        return Ok(());
    }
    if specs.len() != inputs.len() {
        return Err(CoreError::InputCount {
            expected: specs.len(),
            actual: inputs.len(),
        });
    }
    for (index, (spec, t)) in specs.iter().zip(inputs).enumerate() {
        let fits = spec.shape.len() == t.rank()
            && spec
                .shape
                .iter()
                .zip(t.shape())
                .all(|(s, &d)| s.is_none_or(|s| s == d));
        if !fits {
            let dims: Vec<String> = spec
                .shape
                .iter()
                .map(|d| d.map_or("?".to_string(), |d| d.to_string()))
                .collect();
            return Err(CoreError::InputShape {
                index,
                name: spec.name.clone(),
                expected: format!("[{}]", dims.join(", ")),
                actual: t.shape().to_vec(),
            });
        }
    }
    Ok(())
}

/// Evaluate one node of a run, reusing an operand's buffer when it dies here (then `.1`).
#[allow(clippy::too_many_arguments)]
fn eval_node(
    ctx: Ctx,
    packs: Option<&packed::PackCache>,
    op: &Op,
    operands: &[usize],
    id: usize,
    vals: &mut [Option<Value>],
    last: &[usize],
    out_shape: &[usize],
) -> Result<(Tensor, bool), String> {
    let lost = |i: usize| format!("value {i} is not available (freed or never computed)");
    if let Some(slot) = in_place_slot(op, operands, id, vals, last, out_shape) {
        let i = operands[slot];
        if let Some(Value::Owned(t)) = vals[i].take() {
            let others = operands
                .iter()
                .enumerate()
                .filter(|&(k, _)| k != slot)
                .map(|(_, &j)| vals[j].as_ref().map(Value::get).ok_or_else(|| lost(j)))
                .collect::<Result<Vec<&Tensor>, String>>()?;
            return Ok((eval_in_place(ctx, op, t, slot, &others, out_shape)?, true));
        }
    }
    let ins = operands
        .iter()
        .map(|&j| vals[j].as_ref().map(Value::get).ok_or_else(|| lost(j)))
        .collect::<Result<Vec<&Tensor>, String>>()?;
    Ok((eval(ctx, packs, op, &ins, out_shape)?, false))
}

/// Which operand's buffer `op` can compute into: one this node owns, reads once, that dies
/// here and already has the output's shape (any shape for a reshape).
fn in_place_slot(
    op: &Op,
    operands: &[usize],
    id: usize,
    vals: &[Option<Value>],
    last: &[usize],
    out_shape: &[usize],
) -> Option<usize> {
    let candidates: &[usize] = match op {
        Op::Unary(_)
        | Op::Prelu
        | Op::ChannelAffine
        | Op::Softmax { .. }
        | Op::LogSoftmax { .. }
        | Op::Reshape { .. } => &[0],
        Op::Binary(_) => &[0, 1],
        _ => &[],
    };
    candidates.iter().copied().find(|&slot| {
        let Some(&i) = operands.get(slot) else { return false };
        let owned = matches!(&vals[i], Some(Value::Owned(t)) if t.shape() == out_shape || matches!(op, Op::Reshape { .. }));
        owned && last[i] == id && operands.iter().filter(|&&j| j == i).count() == 1
    })
}

/// `op` computed into the buffer of its operand `slot` (`t`); `others` are the remaining operands.
fn eval_in_place(
    ctx: Ctx,
    op: &Op,
    mut t: Tensor,
    slot: usize,
    others: &[&Tensor],
    out_shape: &[usize],
) -> Result<Tensor, String> {
    match op {
        Op::Reshape { .. } => return t.reshaped(out_shape.to_vec()).map_err(|e| e.to_string()),
        Op::Unary(a) => activation::apply_activation_par(ctx, *a, t.data_mut()),
        Op::Softmax { axis } => reduce::softmax_assign(t.data_mut(), out_shape, *axis, false),
        Op::LogSoftmax { axis } => reduce::softmax_assign(t.data_mut(), out_shape, *axis, true),
        Op::ChannelAffine => {
            elementwise::channel_affine_assign(t.data_mut(), others[0].data(), others[1].data())
        }
        Op::Prelu => {
            elementwise::prelu_assign(t.data_mut(), out_shape, others[0].data(), others[0].shape())
        }
        Op::Binary(b) => elementwise::binary_assign(
            *b,
            t.data_mut(),
            out_shape,
            others[0].data(),
            others[0].shape(),
            slot == 0,
        ),
        _ => return Err(format!("{} cannot run in place", op.name())),
    }
    Ok(t)
}

/// Evaluate one op on CPU tensors.
///
/// `out_shape` must be the op's output shape for these operands ([`Op::output_shape`]); a
/// mismatch, like any bad operand, is an error. Public for the GPU backend (ops it lacks)
/// and for tests.
/// Why a graph with an [`Op::Resident`] weight cannot run here.
const RESIDENT: &str = "its values live in GPU memory only (streamed there while loading); \
     the CPU backend needs the model loaded again with its weights on the host";

pub fn eval_op(op: &Op, inputs: &[&Tensor], out_shape: &[usize]) -> Result<Tensor, String> {
    let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape()).collect();
    let expected = op.output_shape(&shapes)?;
    if expected != out_shape {
        return Err(format!("output shape {out_shape:?} does not match {expected:?}, the {} output for operands {shapes:?}", op.name()));
    }
    if element_count(out_shape).is_none() {
        return Err(format!("output shape {out_shape:?} is too large"));
    }
    eval(Ctx::default(), None, op, inputs, out_shape)
}

/// Evaluate `op` into a new tensor; operands and `out_shape` are already checked. `packs`
/// keeps the packed weights of a Conv2d / MatMul whose weight operand is a graph constant.
///
/// Every op's kernel entry point is `#[inline(never)]`: inlined here they made this one
/// function of every kernel, which a browser compiles to optimised code whole once it runs hot
/// (~200 ms on a 2-core machine, during a page's first predicts); apart, only the kernels a
/// model runs are compiled, each quickly.
fn eval(
    ctx: Ctx,
    packs: Option<&packed::PackCache>,
    op: &Op,
    ins: &[&Tensor],
    out_shape: &[usize],
) -> Result<Tensor, String> {
    let tensor = |data: Vec<f32>| Tensor::new(out_shape.to_vec(), data).map_err(|e| e.to_string());
    let copy_then = |f: &dyn Fn(&mut [f32])| {
        let mut data = buffers::copied(ins[0].data());
        f(&mut data);
        tensor(data)
    };
    match op {
        Op::Input { .. } => Err("input nodes take the caller's tensors".into()),
        Op::Constant(t) => Ok(t.clone()),
        Op::Resident { .. } => Err(RESIDENT.into()),
        Op::Conv2d(p) => conv::conv2d(
            ctx,
            packs,
            p,
            ins[0],
            ins[1],
            ins.get(2).copied(),
            out_shape,
        ),
        Op::DepthwiseConv2d(p) => {
            conv::depthwise(ctx, p, ins[0], ins[1], ins.get(2).copied(), out_shape)
        }
        Op::Conv2dTranspose(p) => {
            conv::conv2d_transpose(ctx, p, ins[0], ins[1], ins.get(2).copied(), out_shape)
        }
        Op::MatMul { activation } => conv::matmul(
            ctx,
            packs,
            *activation,
            ins[0],
            ins[1],
            ins.get(2).copied(),
            out_shape,
        ),
        Op::Pool2d {
            kind,
            window,
            stride,
            padding,
        } => pool::pool2d(ctx, *kind, *window, *stride, *padding, ins[0], out_shape),
        Op::GlobalPool { kind } => pool::global_pool(*kind, ins[0], out_shape),
        Op::ChannelAffine => {
            copy_then(&|d| elementwise::channel_affine_assign(d, ins[1].data(), ins[2].data()))
        }
        Op::Unary(a) => copy_then(&|d| activation::apply_activation_par(ctx, *a, d)),
        Op::Prelu => tensor(elementwise::prelu(
            ins[0].data(),
            ins[0].shape(),
            ins[1].data(),
            ins[1].shape(),
        )),
        Op::Binary(b) => tensor(elementwise::binary(
            *b,
            ins[0].data(),
            ins[0].shape(),
            ins[1].data(),
            ins[1].shape(),
            out_shape,
        )),
        Op::Concat { axis } => {
            let parts: Vec<(&[f32], &[usize])> =
                ins.iter().map(|t| (t.data(), t.shape())).collect();
            tensor(layout::concat(&parts, *axis, out_shape))
        }
        Op::Pad { pads, value } => tensor(layout::pad(
            ins[0].data(),
            ins[0].shape(),
            pads,
            *value,
            out_shape,
        )),
        Op::Slice { begin, .. } => tensor(layout::slice(
            ins[0].data(),
            ins[0].shape(),
            begin,
            out_shape,
        )),
        Op::Reshape { .. } => tensor(ins[0].data().to_vec()),
        Op::Transpose { perm } => tensor(layout::transpose(ins[0].data(), ins[0].shape(), perm)),
        Op::Resize {
            mode,
            align_corners,
            half_pixel_centers,
            ..
        } => resize::resize(
            ctx,
            *mode,
            *align_corners,
            *half_pixel_centers,
            ins[0],
            out_shape,
        ),
        Op::Softmax { axis } => copy_then(&|d| reduce::softmax_assign(d, out_shape, *axis, false)),
        Op::LogSoftmax { axis } => {
            copy_then(&|d| reduce::softmax_assign(d, out_shape, *axis, true))
        }
        #[cfg(feature = "graph-ops")]
        Op::Reduce { kind, axes, .. } => {
            tensor(reduce::reduce(*kind, ins[0].data(), ins[0].shape(), axes))
        }
        // Only a graph-model's lowering makes a Reduce: a build without graph-models
        // (the browser's layers-only module) leaves its kernel out.
        #[cfg(not(feature = "graph-ops"))]
        Op::Reduce { .. } => Err(
            "reduce: this build of webinfer-cpu has no reduction kernels (its `graph-ops` \
             feature is off)"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{assert_close, Rng};
    use webinfer_core::ir::{BinaryOp, Conv2d, Padding};
    use webinfer_core::Activation;

    fn spec(name: &str, shape: &[Option<usize>]) -> InputSpec {
        InputSpec {
            name: name.into(),
            shape: shape.to_vec(),
            dtype: "float32".into(),
        }
    }

    /// x -> conv(3x3, relu) -> sigmoid -> add(x-projection) -> ... : a small residual block.
    fn block_graph(rng: &mut Rng) -> Graph {
        let mut g = Graph::default();
        let x = g.push(Op::Input { index: 0 }, vec![], "input");
        let w = g.constant(rng.tensor(&[3, 3, 4, 4]), "conv/kernel");
        let b = g.constant(rng.tensor(&[4]), "conv/bias");
        let p = Conv2d {
            kernel: [3, 3],
            stride: [1, 1],
            dilation: [1, 1],
            padding: Padding::Same,
            groups: 1,
            activation: Activation::Relu,
        };
        let c = g.push(Op::Conv2d(p), vec![x, w, b], "conv");
        let s = g.push(Op::Unary(Activation::Sigmoid), vec![c], "act");
        let a = g.push(Op::Binary(BinaryOp::Add), vec![s, x], "add");
        let r = g.push(Op::Reshape { shape: vec![0, -1] }, vec![a], "flatten");
        let sm = g.push(Op::Softmax { axis: 1 }, vec![r], "softmax");
        g.outputs = vec![sm, c];
        g.output_names = vec!["probs".into(), "features".into()];
        g.inputs = vec![spec("x", &[None, Some(5), Some(6), Some(4)])];
        g
    }

    /// The same graph evaluated op by op with `eval_op`.
    fn reference(g: &Graph, x: &Tensor) -> Vec<Tensor> {
        let mut vals: Vec<Tensor> = Vec::new();
        for node in &g.nodes {
            let v = match &node.op {
                Op::Input { .. } => x.clone(),
                op => {
                    let ins: Vec<&Tensor> = node.inputs.iter().map(|&i| &vals[i]).collect();
                    let shapes: Vec<&[usize]> = ins.iter().map(|t| t.shape()).collect();
                    eval_op(op, &ins, &op.output_shape(&shapes).unwrap()).unwrap()
                }
            };
            vals.push(v);
        }
        g.outputs.iter().map(|&o| vals[o].clone()).collect()
    }

    #[test]
    fn run_matches_op_by_op_and_frees_intermediates() {
        let mut rng = Rng::new(71);
        let g = block_graph(&mut rng);
        let x = rng.tensor(&[2, 5, 6, 4]);
        let want = reference(&g, &x);
        let mut steps = Vec::new();
        let got = CpuBackend::new()
            .run_observed(&g, std::slice::from_ref(&x), |s| steps.push(s))
            .unwrap();
        assert_eq!(got.len(), 2);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_close(&format!("output {i}"), g, w.shape(), w.data());
        }
        // Constants go once the conv has read them, the input once add has; the conv output
        // (a graph output) stays; each value dies at its last reader.
        let live: Vec<usize> = steps.iter().map(|s| s.live).collect();
        assert_eq!(
            live,
            vec![1, 2, 3, 2, 3, 2, 2, 2],
            "live values after each node"
        );
        // sigmoid cannot reuse the conv output (still needed), add / reshape / softmax reuse theirs.
        let in_place: Vec<bool> = steps.iter().map(|s| s.in_place).collect();
        assert_eq!(
            in_place,
            vec![false, false, false, false, false, true, true, true]
        );
        // Single-threaded gives the same answer.
        let got1 = CpuBackend::with_threads(1)
            .run(&g, std::slice::from_ref(&x))
            .unwrap();
        assert_eq!(got1, got);
    }

    #[test]
    fn packed_weights_are_kept_checked_and_dropped() {
        let mut rng = Rng::new(73);
        let mut g = Graph::default();
        let x = g.push(Op::Input { index: 0 }, vec![], "x");
        let v = g.push(Op::Input { index: 1 }, vec![], "v");
        let w = g.constant(rng.tensor(&[40, 30]), "w");
        let dense = Op::MatMul {
            activation: Activation::Relu,
        };
        let y = g.push(dense.clone(), vec![x, w], "dense");
        // A weight that is an input, not a constant: never kept.
        let z = g.push(dense, vec![x, v], "dense_input");
        g.outputs = vec![y, z];
        let be = CpuBackend::new();
        let check = |g: &Graph, m: usize, rng: &mut Rng| {
            let ins = [rng.tensor(&[m, 40]), rng.tensor(&[40, 30])];
            let got = be.run(g, &ins).unwrap();
            for (o, &id) in got.iter().zip(&g.outputs) {
                let wt = if id == y {
                    g.as_constant(w).unwrap()
                } else {
                    &ins[1]
                };
                let want = eval_op(&g.nodes[id].op, &[&ins[0], wt], &[m, 30]).unwrap();
                assert_close(&format!("m {m} output {id}"), o, want.shape(), want.data());
            }
        };
        // Many rows: the direct kernel packs the constant into 2 panels of 16 (4 of 8 on
        // wasm32) x 40, once; the input weight is packed per call.
        for _ in 0..3 {
            check(&g, 70, &mut rng);
            assert_eq!(be.packed_weight_bytes(), 40 * 32 * 4);
        }
        // The same allocation with other values is packed again.
        if let Op::Constant(t) = &mut g.nodes[w].op {
            t.data_mut().iter_mut().for_each(|v| *v = 0.5 - *v);
        }
        check(&g, 70, &mut rng);
        assert_eq!(be.packed_weight_bytes(), 40 * 32 * 4);
        // One row streams the weights as they lie; the unused panels go after a few runs.
        for _ in 0..6 {
            check(&g, 1, &mut rng);
        }
        assert_eq!(be.packed_weight_bytes(), 0);
        check(&g, 70, &mut rng);
        assert!(be.packed_weight_bytes() > 0);
        be.release_memory();
        assert_eq!(be.packed_weight_bytes(), 0);
    }

    #[test]
    fn outputs_may_repeat_or_be_inputs_and_constants() {
        let mut g = Graph::default();
        let x = g.push(Op::Input { index: 0 }, vec![], "in");
        let k = g.constant(Tensor::scalar(2.0), "two");
        let y = g.push(Op::Binary(BinaryOp::Mul), vec![x, k], "double");
        let _unused = g.push(Op::Unary(Activation::Relu), vec![x], "dead end");
        g.outputs = vec![y, x, y, k];
        let t = Tensor::new(vec![3], vec![1.0, -2.0, 3.0]).unwrap();
        let out = CpuBackend::new().run(&g, std::slice::from_ref(&t)).unwrap();
        assert_eq!(out[0].data(), &[2.0, -4.0, 6.0]);
        assert_eq!(out[1], t);
        assert_eq!(out[2], out[0]);
        assert_eq!(out[3], Tensor::scalar(2.0));
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let mut rng = Rng::new(72);
        let g = block_graph(&mut rng);
        let be = CpuBackend::new();
        // Wrong spatial size: the input spec catches it.
        let err = be.run(&g, &[rng.tensor(&[1, 7, 6, 4])]).unwrap_err();
        assert!(
            matches!(err, CoreError::InputShape { index: 0, .. }),
            "{err}"
        );
        // Wrong rank.
        let err = be.run(&g, &[rng.tensor(&[5, 6, 4])]).unwrap_err();
        assert!(matches!(err, CoreError::InputShape { .. }), "{err}");
        // Wrong count.
        let err = be.run(&g, &[]).unwrap_err();
        assert!(
            matches!(
                err,
                CoreError::InputCount {
                    expected: 1,
                    actual: 0
                }
            ),
            "{err}"
        );
        // Without specs, shape inference names the layer.
        let mut loose = g.clone();
        loose.inputs.clear();
        let err = be.run(&loose, &[rng.tensor(&[1, 5, 6, 3])]).unwrap_err();
        assert!(err.to_string().contains("conv"), "{err}");
        // A kernel-level failure becomes a Backend error naming layer and op.
        let mut g2 = Graph::default();
        let x = g2.push(Op::Input { index: 0 }, vec![], "in");
        let w = g2.constant(Tensor::zeros(vec![1, 1, 2, 3]), "w");
        let p = Conv2d {
            kernel: [1, 1],
            stride: [1, 1],
            dilation: [1, 1],
            padding: Padding::Valid,
            groups: 2,
            activation: Activation::Linear,
        };
        let y = g2.push(Op::Conv2d(p), vec![x, w], "grouped");
        g2.outputs = vec![y];
        // Shape inference refuses it before the kernel runs, naming the layer.
        let err = be.run(&g2, &[Tensor::zeros(vec![1, 2, 2, 4])]).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, CoreError::Shape { .. }) && msg.contains("\"grouped\" (conv2d)"),
            "{msg}"
        );
        // Resizing an empty image.
        let mut g3 = Graph::default();
        let x = g3.push(Op::Input { index: 0 }, vec![], "in");
        let op = Op::Resize {
            mode: webinfer_core::ir::ResizeMode::Bilinear,
            size: webinfer_core::ir::ResizeSize::Fixed([4, 4]),
            align_corners: false,
            half_pixel_centers: false,
        };
        let y = g3.push(op, vec![x], "resize");
        g3.outputs = vec![y];
        assert!(be.run(&g3, &[Tensor::zeros(vec![1, 0, 3, 2])]).is_err());
        // An output index out of range.
        let mut g4 = g3.clone();
        g4.outputs = vec![17];
        assert!(be.run(&g4, &[Tensor::zeros(vec![1, 2, 3, 2])]).is_err());
    }

    #[test]
    fn eval_op_checks_the_output_shape() {
        let x = Tensor::zeros(vec![2, 3]);
        assert!(eval_op(&Op::Unary(Activation::Relu), &[&x], &[3, 2]).is_err());
        assert!(eval_op(&Op::Binary(BinaryOp::Add), &[&x], &[2, 3]).is_err());
        assert!(eval_op(&Op::Input { index: 0 }, &[], &[1]).is_err());
    }
}
