//! Plans: what `prepare` does once per graph (weights uploaded in the layouts the kernels
//! want) and what the first `run` with new input shapes does once per shape set (placement
//! of every node on the GPU or the CPU, buffer assignment by lifetime, uniform params, bind
//! groups), cached so that repeated predictions rebuild nothing.
//!
//! Buffer planning: every intermediate value gets a *slot* (one wgpu buffer) when it is
//! produced and gives it back after its last reader (`Graph::last_uses`); a free slot is
//! reused best-fit, or the largest free one grows, before a new one is made. A Reshape aliases
//! its input's slot (and extends its lifetime). Inputs get their own buffers, written with
//! `queue.write_buffer` at the start of a run.
//!
//! Placement: a node runs on the CPU (`webinfer_cpu::eval_op`) when the GPU cannot run it:
//! a tensor it touches is larger than the device's storage binding limit, its lowering has no
//! GPU form (e.g. more than 8 broadcast axes, non-constant conv weights), or the test switch
//! forces its op there. Values cross with explicit transfers: a `Download` step (copy to a
//! staging buffer, submit, map) before a CPU node that reads GPU values, an `Upload` step
//! before a GPU node that reads a CPU result.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use webinfer_core::{Graph, Op, ValueId};

use crate::device::{Ctx, OwnedBuffer};
use crate::error::{GpuError, Result};
use crate::info::{CpuNode, PlanStats};
use crate::kernels::{self, Dispatch, KernelLimits, Layout, Lowered, Operand};
use crate::pipelines::PipelineKey;
use crate::shaders::Weights;
use crate::{CodeFormat, ResidentWeight, WeightCodes};

/// Bytes of uniform params reserved per dispatch (>= every `Params` struct, and a multiple of
/// every device's `min_uniform_buffer_offset_alignment`).
const UNIFORM_STRIDE: u64 = 256;
/// Input-shape sets whose execution plans stay cached per `GpuPlan`.
const MAX_CACHED_SHAPES: usize = 8;

fn round16(bytes: u64) -> u64 {
    bytes.max(16).div_ceil(16) * 16
}

/// Settings a plan is made with (snapshotted from the backend at `prepare`).
#[derive(Debug, Clone, Default)]
pub(crate) struct PlanConfig {
    pub max_binding: u64,
    /// `Op::name()`s that must run on the CPU (test switch).
    pub force_cpu: HashSet<String>,
}

/// A constant uploaded at prepare time, or a resident weight (shared between the layouts
/// that read it as it lies).
#[derive(Clone)]
struct Weight {
    buffer: Arc<OwnedBuffer>,
    /// A weight kept in its stored form (`buffer` holds the uint8 codes or the float16
    /// values): how the kernel decodes it, and its table (a uint8 weight's 256 values, then
    /// one factor per output channel; `shaders/weights_*.wgsl`).
    decode: Option<(Weights, Arc<OwnedBuffer>)>,
    /// A resident weight in its stored form: its bytes, and how the host decodes them (for
    /// a node that runs on the CPU).
    host: Option<(u64, Arc<HostDecode>)>,
}

impl Weight {
    /// GPU memory it takes: its buffer and a stored form's table.
    fn bytes(&self) -> u64 {
        self.buffer.size() + self.decode.as_ref().map_or(0, |d| d.1.size())
    }
}

/// How the host decodes a resident weight's stored bytes.
pub(crate) enum HostDecode {
    /// uint8 codes: the value of each.
    U8(Box<[f32; 256]>),
    /// float16, little-endian.
    F16,
}

impl HostDecode {
    pub(crate) fn decode(&self, bytes: &[u8]) -> Vec<f32> {
        match self {
            HostDecode::U8(lut) => bytes.iter().map(|&q| lut[q as usize]).collect(),
            HostDecode::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
        }
    }
}

/// The result of [`crate::GpuBackend::prepare`]: weights on the device, and the execution
/// plans of the input shapes seen so far.
pub struct GpuPlan {
    pub(crate) ctx: Arc<Ctx>,
    nodes: usize,
    config: PlanConfig,
    weights: HashMap<(ValueId, Layout), Weight>,
    weight_bytes: u64,
    cache: Mutex<ShapeCache>,
}

#[derive(Default)]
struct ShapeCache {
    plans: HashMap<Vec<Vec<usize>>, Arc<ExecPlan>>,
    order: VecDeque<Vec<Vec<usize>>>,
    peak_activation: u64,
}

impl std::fmt::Debug for GpuPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuPlan")
            .field("nodes", &self.nodes)
            .field("weights", &self.weights.len())
            .field("weight_bytes", &self.weight_bytes)
            .finish()
    }
}

impl GpuPlan {
    /// Upload every constant a GPU kernel may read, in the layout that kernel wants. A
    /// resident weight (`Op::Resident`, already on the device: `resident[key]`) is
    /// bound as it lies by every kernel whose layout leaves it so; another kernel reading it
    /// runs on the CPU with the weight downloaded.
    pub(crate) fn new(
        ctx: Arc<Ctx>,
        graph: &Graph,
        config: PlanConfig,
        resident: &[ResidentWeight],
        codes: &[WeightCodes<'_>],
    ) -> Result<GpuPlan> {
        let mut codes_of: HashMap<&str, Vec<&WeightCodes<'_>>> = HashMap::new();
        for c in codes {
            codes_of.entry(c.layer).or_default().push(c);
        }
        let mut weights = HashMap::new();
        let mut weight_bytes = 0;
        for (id, node) in graph.nodes.iter().enumerate() {
            let Op::Resident { shape, key } = &node.op else {
                continue;
            };
            let w = resident.get(*key).ok_or_else(|| {
                GpuError::Internal(format!(
                    "layer \"{}\": resident weight {key} was not given to prepare",
                    node.origin
                ))
            })?;
            if !Arc::ptr_eq(&w.ctx, &ctx) || w.elements != shape.iter().product::<usize>() {
                return Err(GpuError::Internal(format!(
                    "layer \"{}\": resident weight {key} ({} values) is not a {shape:?} \
                     weight on this device",
                    node.origin, w.elements
                )));
            }
            weight_bytes += w.bytes();
            weights.insert(
                (id, Layout::Plain),
                Weight {
                    buffer: w.buffer.clone(),
                    decode: w.stored.as_ref().map(|s| (s.format, s.table.clone())),
                    host: w.stored.as_ref().map(|s| (s.bytes, s.host.clone())),
                },
            );
        }
        for node in &graph.nodes {
            if matches!(
                node.op,
                Op::Input { .. } | Op::Constant(_) | Op::Resident { .. }
            ) || config.force_cpu.contains(node.op.name())
            {
                continue;
            }
            for (k, &v) in node.inputs.iter().enumerate() {
                if let Op::Resident { shape, .. } = &graph.nodes[v].op {
                    let layout = kernels::operand_layout(&node.op, k);
                    if layout.is_identity(shape) && !weights.contains_key(&(v, layout)) {
                        if let Some(w) = weights.get(&(v, Layout::Plain)) {
                            let w = w.clone();
                            weights.insert((v, layout), w);
                        }
                    }
                    continue;
                }
                let Some(t) = graph.as_constant(v) else {
                    continue;
                };
                let layout = kernels::operand_layout(&node.op, k);
                if weights.contains_key(&(v, layout)) {
                    continue;
                }
                let candidates = codes_of.get(node.origin.as_str());
                if let Some(w) = candidates.and_then(|c| compact_weight(&ctx, t, layout, c)) {
                    weight_bytes += w.bytes();
                    weights.insert((v, layout), w);
                    continue;
                }
                // A weight the kernel cannot use (bad shape) or the device cannot bind stays
                // on the host; its node then runs on the CPU.
                let Ok(data) = layout.pack(t) else { continue };
                let bytes = data.len() as u64 * 4;
                if bytes > config.max_binding {
                    continue;
                }
                let buffer = OwnedBuffer::new(
                    &ctx.device,
                    &wgpu::BufferDescriptor {
                        label: Some(&node.origin),
                        size: round16(bytes),
                        usage: wgpu::BufferUsages::STORAGE
                            | wgpu::BufferUsages::COPY_DST
                            | wgpu::BufferUsages::COPY_SRC,
                        mapped_at_creation: false,
                    },
                );
                if !data.is_empty() {
                    ctx.queue
                        .write_buffer(&buffer, 0, bytemuck::cast_slice(&data));
                }
                weight_bytes += round16(bytes);
                weights.insert(
                    (v, layout),
                    Weight {
                        buffer: Arc::new(buffer),
                        decode: None,
                        host: None,
                    },
                );
            }
        }
        ctx.take_errors()?;
        Ok(GpuPlan {
            ctx,
            nodes: graph.nodes.len(),
            config,
            weights,
            weight_bytes,
            cache: Mutex::default(),
        })
    }

    /// Bytes of weights on the device.
    pub fn weight_bytes(&self) -> u64 {
        self.weight_bytes
    }

    /// Peak GPU memory of this plan: weights plus the largest execution plan built so far
    /// (intermediates after reuse, inputs, uniforms). Staging buffers of a run are not counted.
    pub fn peak_bytes(&self) -> u64 {
        self.weight_bytes + self.lock_cache().peak_activation
    }

    /// What the execution plan for these input shapes does, if it has been built (by a run,
    /// or by `prepare` for the graph's declared shapes with unknown dims set to 1).
    pub fn stats(&self, input_shapes: &[Vec<usize>]) -> Option<PlanStats> {
        self.lock_cache()
            .plans
            .get(input_shapes)
            .map(|p| p.stats.clone())
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, ShapeCache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn check_graph(&self, graph: &Graph) -> Result<()> {
        if graph.nodes.len() != self.nodes {
            return Err(GpuError::Shape(format!(
                "this plan was prepared for a graph of {} nodes, not this one ({})",
                self.nodes,
                graph.nodes.len()
            )));
        }
        Ok(())
    }

    /// The execution plan for these input shapes, built on first use.
    pub(crate) fn exec_for(
        &self,
        graph: &Graph,
        input_shapes: &[Vec<usize>],
    ) -> Result<Arc<ExecPlan>> {
        if let Some(p) = self.lock_cache().plans.get(input_shapes) {
            return Ok(p.clone());
        }
        let plan = Arc::new(self.build(graph, input_shapes)?);
        let mut cache = self.lock_cache();
        if cache.order.len() >= MAX_CACHED_SHAPES {
            if let Some(old) = cache.order.pop_front() {
                cache.plans.remove(&old);
            }
        }
        cache.order.push_back(input_shapes.to_vec());
        cache.plans.insert(input_shapes.to_vec(), plan.clone());
        cache.peak_activation = cache.peak_activation.max(plan.stats.activation_bytes);
        Ok(plan)
    }

    fn build(&self, graph: &Graph, input_shapes: &[Vec<usize>]) -> Result<ExecPlan> {
        let ctx = &*self.ctx;
        let shapes = graph.infer_shapes(input_shapes)?;
        let sym = self.place(graph, &shapes)?;
        let bytes = |v: ValueId| shapes[v].iter().product::<usize>() as u64 * 4;

        // Buffers.
        let storage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST;
        let make = |label: &str, size: u64| {
            OwnedBuffer::new(
                &ctx.device,
                &wgpu::BufferDescriptor {
                    label: Some(label),
                    size,
                    usage: storage,
                    mapped_at_creation: false,
                },
            )
        };
        let slots: Vec<OwnedBuffer> = sym
            .slot_caps
            .iter()
            .map(|&cap| make("webinfer intermediate", cap))
            .collect();
        let input_bufs: BTreeMap<usize, OwnedBuffer> = sym
            .input_bytes
            .iter()
            .map(|(&i, &b)| (i, make("webinfer input", round16(b))))
            .collect();
        let n_dispatch = sym
            .steps
            .iter()
            .filter(|s| matches!(s, SymStep::Dispatch(..)))
            .count() as u64;
        let uniform = OwnedBuffer::new(
            &ctx.device,
            &wgpu::BufferDescriptor {
                label: Some("webinfer params"),
                size: (n_dispatch * UNIFORM_STRIDE).max(UNIFORM_STRIDE),
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            },
        );
        let bufs = Buffers {
            slots: &slots,
            inputs: &input_bufs,
            weights: &self.weights,
        };
        let loc_buffer = |loc: Loc| bufs.get(loc);
        let gpu_loc = |v: ValueId| -> Result<Loc> {
            sym.gpu[v]
                .ok_or_else(|| GpuError::Internal(format!("planner: value {v} has no GPU buffer")))
        };
        // A copy of value `v` to or from the host: a resident weight in its stored form is
        // read as those bytes, which the host decodes.
        let transfer = |v: ValueId| -> Result<Transfer> {
            let loc = gpu_loc(v)?;
            let stored = match loc {
                Loc::Weight(w, layout) => {
                    self.weights.get(&(w, layout)).and_then(|w| w.host.clone())
                }
                _ => None,
            };
            Ok(Transfer {
                value: v,
                buffer: loc_buffer(loc).clone(),
                bytes: stored.as_ref().map_or(bytes(v), |s| s.0),
                decode: stored.map(|s| s.1),
            })
        };

        let mut uniform_data: Vec<u8> = Vec::with_capacity((n_dispatch * UNIFORM_STRIDE) as usize);
        let mut steps: Vec<Step> = Vec::new();
        for s in &sym.steps {
            match s {
                SymStep::Dispatch(node_id, d) => {
                    let node = &graph.nodes[*node_id];
                    let offset = uniform_data.len() as u64;
                    let mut words = d.params.clone();
                    words.resize((UNIFORM_STRIDE / 4) as usize, 0);
                    uniform_data.extend_from_slice(bytemuck::cast_slice(&words));
                    // A kernel reading a weight in its stored form binds its table after the
                    // operands.
                    let decode = d.operands.iter().find_map(|o| match *o {
                        Operand::Value { index, layout } if layout != Layout::Plain => self
                            .weights
                            .get(&(node.inputs[index], layout))
                            .and_then(|w| w.decode.clone()),
                        _ => None,
                    });
                    let key = PipelineKey {
                        shader: d.shader,
                        weights: decode.as_ref().map_or(Weights::F32, |d| d.0),
                        entry: d.entry,
                        constants: d.constants.clone(),
                        inputs: d.operands.len() + usize::from(decode.is_some()),
                    };
                    let (pipeline, bgl) = ctx.pipelines.get(&ctx.device, &key);
                    let out_buf = loc_buffer(gpu_loc(*node_id)?);
                    let mut entries = vec![
                        wgpu::BindGroupEntry {
                            binding: 0,
                            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                buffer: &uniform,
                                offset,
                                size: wgpu::BufferSize::new(UNIFORM_STRIDE),
                            }),
                        },
                        wgpu::BindGroupEntry {
                            binding: 1,
                            resource: binding(out_buf, bytes(*node_id)),
                        },
                    ];
                    for (j, op) in d.operands.iter().enumerate() {
                        let resource = match *op {
                            Operand::Absent => binding(&ctx.dummy, 16),
                            Operand::Value {
                                index,
                                layout: Layout::Plain,
                            } => {
                                let v = node.inputs[index];
                                binding(loc_buffer(gpu_loc(v)?), bytes(v))
                            }
                            Operand::Value { index, layout } => {
                                let v = node.inputs[index];
                                let w = self.weights.get(&(v, layout)).ok_or_else(|| {
                                    GpuError::Internal(format!(
                                        "planner: weight {v} not uploaded as {layout:?}"
                                    ))
                                })?;
                                binding(&w.buffer, w.buffer.size())
                            }
                        };
                        entries.push(wgpu::BindGroupEntry {
                            binding: 2 + j as u32,
                            resource,
                        });
                    }
                    if let Some((_, table)) = &decode {
                        entries.push(wgpu::BindGroupEntry {
                            binding: 2 + d.operands.len() as u32,
                            resource: binding(table, table.size()),
                        });
                    }
                    let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some(&node.origin),
                        layout: &bgl,
                        entries: &entries,
                    });
                    let call = Call {
                        pipeline,
                        bind_group,
                        workgroups: d.workgroups,
                    };
                    match steps.last_mut() {
                        Some(Step::Pass(calls)) => calls.push(call),
                        _ => steps.push(Step::Pass(vec![call])),
                    }
                }
                SymStep::Download(values) => {
                    let items = values
                        .iter()
                        .map(|&v| transfer(v))
                        .collect::<Result<Vec<_>>>()?;
                    steps.push(Step::Download(items));
                }
                SymStep::Cpu(v) => steps.push(Step::Cpu(*v)),
                SymStep::Upload(v) => steps.push(Step::Upload(transfer(*v)?)),
            }
        }
        if !uniform_data.is_empty() {
            ctx.queue.write_buffer(&uniform, 0, &uniform_data);
        }

        let outputs = graph
            .outputs
            .iter()
            .map(|&v| {
                if sym.host[v] {
                    Ok(OutputSrc::Host(v))
                } else {
                    Ok(OutputSrc::Gpu(transfer(v)?))
                }
            })
            .collect::<Result<Vec<_>>>()?;

        // Submissions per run: one per download, one before an upload that follows GPU work,
        // and the final one.
        let mut submissions = 0;
        let mut dirty = false;
        for s in &steps {
            match s {
                Step::Pass(_) => dirty = true,
                Step::Download(_) => {
                    submissions += 1;
                    dirty = false;
                }
                Step::Upload(_) if dirty => {
                    submissions += 1;
                    dirty = false;
                }
                _ => {}
            }
        }
        if dirty || outputs.iter().any(|o| matches!(o, OutputSrc::Gpu(_))) {
            submissions += 1;
        }
        let mut stats = sym.stats;
        stats.dispatches = n_dispatch as usize;
        stats.submissions = submissions;
        stats.slots = slots.len();
        stats.activation_bytes = sym.slot_caps.iter().sum::<u64>()
            + input_bufs.values().map(|b| b.size()).sum::<u64>()
            + uniform.size();
        ctx.take_errors()?;
        Ok(ExecPlan {
            shapes,
            steps,
            input_writes: input_bufs.into_iter().collect(),
            outputs,
            stats,
            lock: futures::lock::Mutex::new(()),
            _keep: (slots, uniform),
        })
    }

    /// Decide where every node runs and which buffer every value lives in (symbolically).
    fn place(&self, graph: &Graph, shapes: &[Vec<usize>]) -> Result<Symbolic> {
        let ctx = &*self.ctx;
        let kl = KernelLimits {
            max_workgroups_per_dim: ctx.limits.max_compute_workgroups_per_dimension,
        };
        let max = self.config.max_binding;
        let last = graph.last_uses();
        let n = graph.nodes.len();
        let bytes = |v: ValueId| shapes[v].iter().product::<usize>() as u64 * 4;
        let mut sym = Symbolic {
            gpu: vec![None; n],
            host: vec![false; n],
            ..Default::default()
        };
        let mut pool = SlotPool::default();

        for (id, node) in graph.nodes.iter().enumerate() {
            match &node.op {
                Op::Input { .. } => sym.host[id] = true,
                Op::Resident { .. } => {
                    sym.gpu[id] = Some(Loc::Weight(id, Layout::Plain));
                }
                Op::Constant(_) => {
                    sym.host[id] = true;
                    if self.weights.contains_key(&(id, Layout::Plain)) {
                        sym.gpu[id] = Some(Loc::Weight(id, Layout::Plain));
                    }
                }
                op => match self.gpu_lowering(graph, id, shapes, max, &kl) {
                    Ok(lowered) => {
                        // Operands the kernel reads as plain tensors must be on the device.
                        let used: Vec<usize> = match &lowered {
                            Lowered::Alias => vec![0],
                            Lowered::Dispatches(ds) => {
                                let mut u: Vec<usize> = ds
                                    .iter()
                                    .flat_map(|d| d.operands.iter())
                                    .filter_map(|o| match o {
                                        Operand::Value {
                                            index,
                                            layout: Layout::Plain,
                                        } => Some(*index),
                                        _ => None,
                                    })
                                    .collect();
                                webinfer_core::order::sort(&mut u);
                                u.dedup();
                                u
                            }
                        };
                        for k in used {
                            let v = node.inputs[k];
                            if sym.gpu[v].is_some() {
                                continue;
                            }
                            if let Op::Input { index } = graph.nodes[v].op {
                                sym.gpu[v] = Some(Loc::Input(index));
                                sym.input_bytes.insert(index, bytes(v));
                            } else {
                                let s = pool.alloc(round16(bytes(v)), last[v]);
                                sym.gpu[v] = Some(Loc::Slot(s));
                                sym.steps.push(SymStep::Upload(v));
                            }
                        }
                        match lowered {
                            Lowered::Alias => {
                                let src = sym.gpu[node.inputs[0]];
                                if let Some(Loc::Slot(s)) = src {
                                    pool.extend(s, last[id]);
                                }
                                sym.gpu[id] = src;
                            }
                            Lowered::Dispatches(ds) => {
                                let s = pool.alloc(round16(bytes(id)), last[id]);
                                sym.gpu[id] = Some(Loc::Slot(s));
                                sym.steps
                                    .extend(ds.into_iter().map(|d| SymStep::Dispatch(id, d)));
                            }
                        }
                        sym.stats.gpu_nodes += 1;
                    }
                    Err(reason) => {
                        let mut missing: Vec<ValueId> = node
                            .inputs
                            .iter()
                            .copied()
                            .filter(|&v| !sym.host[v])
                            .collect();
                        webinfer_core::order::sort(&mut missing);
                        missing.dedup();
                        if !missing.is_empty() {
                            for &v in &missing {
                                sym.host[v] = true;
                            }
                            sym.steps.push(SymStep::Download(missing));
                        }
                        sym.steps.push(SymStep::Cpu(id));
                        sym.host[id] = true;
                        sym.stats.cpu_nodes.push(CpuNode {
                            node: id,
                            origin: node.origin.clone(),
                            op: op.name(),
                            reason,
                        });
                    }
                },
            }
            pool.release_after(id);
        }
        sym.slot_caps = pool.caps();
        Ok(sym)
    }

    /// The GPU form of node `id`, or why it runs on the CPU.
    fn gpu_lowering(
        &self,
        graph: &Graph,
        id: ValueId,
        shapes: &[Vec<usize>],
        max: u64,
        kl: &KernelLimits,
    ) -> std::result::Result<Lowered, String> {
        let node = &graph.nodes[id];
        let op = &node.op;
        if self.config.force_cpu.contains(op.name()) {
            return Err("forced onto the CPU (test switch)".into());
        }
        let too_big = |v: ValueId, what: &str| -> std::result::Result<(), String> {
            let b = shapes[v].iter().product::<usize>() as u64 * 4;
            if b > max {
                Err(format!("{what} {:?} is {b} bytes, over the device's storage binding limit of {max} bytes", shapes[v]))
            } else {
                Ok(())
            }
        };
        too_big(id, "the output")?;
        for (k, &v) in node.inputs.iter().enumerate() {
            too_big(v, &format!("operand {k} (\"{}\")", graph.nodes[v].origin))?;
        }
        let ins: Vec<&[usize]> = node.inputs.iter().map(|&v| shapes[v].as_slice()).collect();
        let lowered = kernels::lower(op, &ins, &shapes[id], kl)?;
        if let Lowered::Dispatches(ds) = &lowered {
            for d in ds {
                for o in &d.operands {
                    if let Operand::Value { index, layout } = *o {
                        if layout != Layout::Plain
                            && !self.weights.contains_key(&(node.inputs[index], layout))
                        {
                            return Err(format!(
                                "operand {index} must be a constant weight for the GPU kernel"
                            ));
                        }
                    }
                }
            }
        }
        Ok(lowered)
    }
}

/// `t`, a kernel in `layout`, kept in the stored form of one of `candidates` when that layout
/// leaves the kernel as it lies, the stored form reproduces it bit for bit and is smaller.
fn compact_weight(
    ctx: &Ctx,
    t: &webinfer_core::Tensor,
    layout: Layout,
    candidates: &[&WeightCodes<'_>],
) -> Option<Weight> {
    let s = t.shape();
    let channels = match (layout, s) {
        (Layout::ConvWeights { .. }, [_, _, _, cout]) => *cout,
        (Layout::DepthwiseWeights, [_, _, c, m]) => c * m,
        (Layout::MatMulWeights, [_, n]) => *n,
        _ => return None,
    };
    if !layout.is_identity(s) || channels % 4 != 0 {
        return None;
    }
    let n = t.len();
    let (codes, factors) = candidates.iter().find_map(|c| {
        // What the stored form costs besides itself: a uint8 weight's 256 values, and the
        // factors. A small kernel (the first depthwise ones) is smaller as float32.
        let (bytes, table) = match c.format {
            CodeFormat::U8 { .. } => (n, 256),
            CodeFormat::F16 => (n.checked_mul(2)?, 0),
        };
        let compact = round16(bytes as u64) + round16(((table + channels) * 4) as u64);
        if c.codes.len() != bytes || compact >= n as u64 * 4 {
            return None;
        }
        let f = match c.format {
            CodeFormat::U8 { lut } => {
                channel_factors(t.data(), channels, |i| lut[c.codes[i] as usize])
            }
            CodeFormat::F16 => channel_factors(t.data(), channels, |i| {
                half::f16::from_le_bytes([c.codes[2 * i], c.codes[2 * i + 1]]).to_f32()
            }),
        }?;
        Some((c, f))
    })?;
    let upload = |label: &str, bytes: &[u8]| {
        let buffer = OwnedBuffer::new(
            &ctx.device,
            &wgpu::BufferDescriptor {
                label: Some(label),
                size: round16(bytes.len() as u64),
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            },
        );
        ctx.queue.write_buffer(&buffer, 0, bytes);
        Arc::new(buffer)
    };
    let (format, mut table) = match codes.format {
        CodeFormat::U8 { lut } => (Weights::U8, lut.to_vec()),
        CodeFormat::F16 => (Weights::F16, Vec::new()),
    };
    table.extend_from_slice(&factors);
    Some(Weight {
        buffer: upload(codes.layer, codes.codes),
        decode: Some((format, upload(codes.layer, bytemuck::cast_slice(&table)))),
        host: None,
    })
}

/// The factor of each output channel (the innermost axis, `channels` long) with which
/// `value(i) * factor` is `w[i]` bit for bit, or `None` when there is none: `value(i)` is
/// what the stored form of element `i` decodes to, and `w` the weight it became, possibly with
/// a BatchNormalization folded in (each channel multiplied by its scale, which this recovers).
pub(crate) fn channel_factors(
    w: &[f32],
    channels: usize,
    value: impl Fn(usize) -> f32,
) -> Option<Vec<f32>> {
    if channels == 0 || w.len() % channels != 0 {
        return None;
    }
    let rows = w.len() / channels;
    let at = |r: usize, c: usize| (w[r * channels + c], value(r * channels + c));
    let fits = |c: usize, f: f32| {
        (0..rows).all(|r| {
            let (wv, l) = at(r, c);
            (l * f).to_bits() == wv.to_bits()
        })
    };
    // The factor is the quotient w / value of an element (or a sign, when every value of
    // the channel is zero), give or take the roundings of the product and of the quotient.
    let quotients = |c: usize| {
        (0..rows).filter_map(move |r| {
            let (wv, l) = at(r, c);
            (l != 0.0 && l.is_finite() && wv.is_finite()).then(|| wv / l)
        })
    };
    // First guess: the first quotient of each channel, checked in one pass in memory order.
    let mut factors: Vec<f32> = (0..channels)
        .map(|c| quotients(c).next().unwrap_or(1.0))
        .collect();
    let mut wrong = vec![false; channels];
    for (row, values) in w.chunks_exact(channels).enumerate() {
        for (c, &wv) in values.iter().enumerate() {
            if !wrong[c] && (value(row * channels + c) * factors[c]).to_bits() != wv.to_bits() {
                wrong[c] = true;
            }
        }
    }
    // A channel the guess missed: the quotients of two elements and their neighbours (2 ulps
    // either way), and the signs, each checked against the whole channel.
    for c in (0..channels).filter(|&c| wrong[c]) {
        let near = |f: f32| {
            let b = f.to_bits();
            [0i64, 1, -1, 2, -2]
                .into_iter()
                .map(move |d| f32::from_bits((b as i64 + d) as u32))
        };
        factors[c] = quotients(c)
            .take(2)
            .flat_map(near)
            .chain([1.0, -1.0])
            .find(|&f| fits(c, f))?;
    }
    Some(factors)
}

/// Bind `bytes` (rounded up to 16, at least 16) from the start of a buffer.
fn binding(buffer: &wgpu::Buffer, bytes: u64) -> wgpu::BindingResource<'_> {
    let size = round16(bytes).min(buffer.size());
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer,
        offset: 0,
        size: wgpu::BufferSize::new(size),
    })
}

struct Buffers<'a> {
    slots: &'a [OwnedBuffer],
    inputs: &'a BTreeMap<usize, OwnedBuffer>,
    weights: &'a HashMap<(ValueId, Layout), Weight>,
}

impl<'a> Buffers<'a> {
    fn get(&self, loc: Loc) -> &'a wgpu::Buffer {
        match loc {
            Loc::Slot(s) => &self.slots[s].buffer,
            Loc::Input(i) => &self.inputs[&i].buffer,
            Loc::Weight(v, l) => &self.weights[&(v, l)].buffer,
        }
    }
}

/// A value's GPU buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loc {
    Slot(usize),
    Input(usize),
    Weight(ValueId, Layout),
}

#[derive(Debug)]
enum SymStep {
    Dispatch(ValueId, Dispatch),
    Download(Vec<ValueId>),
    Cpu(ValueId),
    Upload(ValueId),
}

#[derive(Debug, Default)]
struct Symbolic {
    steps: Vec<SymStep>,
    gpu: Vec<Option<Loc>>,
    /// Whether the value is on the host at the end of the run (inputs, constants, CPU results,
    /// downloads).
    host: Vec<bool>,
    input_bytes: BTreeMap<usize, u64>,
    slot_caps: Vec<u64>,
    stats: PlanStats,
}

/// Intermediate buffers handed out by lifetime.
#[derive(Debug, Default)]
struct SlotPool {
    /// (capacity, busy until after this node; None = free)
    slots: Vec<(u64, Option<usize>)>,
}

impl SlotPool {
    fn alloc(&mut self, need: u64, until: usize) -> usize {
        let free = || self.slots.iter().enumerate().filter(|(_, s)| s.1.is_none());
        let pick = free()
            .filter(|(_, s)| s.0 >= need)
            .min_by_key(|(_, s)| s.0)
            .or_else(|| free().max_by_key(|(_, s)| s.0))
            .map(|(i, _)| i);
        match pick {
            Some(i) => {
                let s = &mut self.slots[i];
                s.0 = s.0.max(need);
                s.1 = Some(until);
                i
            }
            None => {
                self.slots.push((need, Some(until)));
                self.slots.len() - 1
            }
        }
    }

    fn extend(&mut self, slot: usize, until: usize) {
        if let Some(u) = &mut self.slots[slot].1 {
            *u = (*u).max(until);
        }
    }

    fn release_after(&mut self, node: usize) {
        for s in &mut self.slots {
            if matches!(s.1, Some(u) if u <= node) {
                s.1 = None;
            }
        }
    }

    fn caps(&self) -> Vec<u64> {
        self.slots.iter().map(|s| s.0).collect()
    }
}

/// A buffer region holding one value, for a transfer.
pub(crate) struct Transfer {
    pub value: ValueId,
    pub buffer: wgpu::Buffer,
    pub bytes: u64,
    /// Bytes of a weight in its stored form, which the host decodes.
    pub decode: Option<Arc<HostDecode>>,
}

pub(crate) struct Call {
    pub pipeline: wgpu::ComputePipeline,
    pub bind_group: wgpu::BindGroup,
    pub workgroups: [u32; 3],
}

pub(crate) enum Step {
    /// Dispatches recorded into one compute pass.
    Pass(Vec<Call>),
    /// Submit, then copy these GPU values to the host.
    Download(Vec<Transfer>),
    /// Run this node on the CPU.
    Cpu(ValueId),
    /// Write this host value into its GPU buffer.
    Upload(Transfer),
}

pub(crate) enum OutputSrc {
    Host(ValueId),
    Gpu(Transfer),
}

/// The execution plan of one set of input shapes.
pub(crate) struct ExecPlan {
    pub shapes: Vec<Vec<usize>>,
    pub steps: Vec<Step>,
    /// Graph input index → its buffer, written at the start of each run.
    pub input_writes: Vec<(usize, OwnedBuffer)>,
    pub outputs: Vec<OutputSrc>,
    pub stats: PlanStats,
    /// One run at a time: runs share the intermediate buffers.
    pub lock: futures::lock::Mutex<()>,
    /// The intermediate slots and the uniform buffer (destroyed with the plan).
    _keep: (Vec<OwnedBuffer>, OwnedBuffer),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_best_fit_and_grown() {
        let mut p = SlotPool::default();
        let a = p.alloc(100, 1);
        let b = p.alloc(50, 2);
        p.release_after(1); // a is free
        let c = p.alloc(80, 3); // fits a
        assert_eq!(c, a);
        p.release_after(3); // b, c free
        let d = p.alloc(400, 4); // none fits: the largest free one grows
        assert_eq!(d, a);
        assert_eq!(p.caps(), vec![400, 50]);
        let e = p.alloc(10, 5);
        assert_eq!(e, b);
        let f = p.alloc(10, 5);
        assert_eq!(f, 2);
    }

    #[test]
    fn channel_factors_recover_every_folded_scale_exactly() {
        // A tiny xorshift: codes and scales spread over many magnitudes and both signs.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let lut: [f32; 256] = std::array::from_fn(|q| (q as f64 * 0.00731 - 0.93) as f32);
        let (rows, channels) = (9, 4096);
        let codes: Vec<u8> = (0..rows * channels).map(|_| next() as u8).collect();
        let scales: Vec<f32> = (0..channels)
            .map(|_| {
                let m = (next() % 1_000_000) as f32 / 1_000_000.0 + 0.001;
                let e = (next() % 12) as i32 - 6;
                let s = m * 2f32.powi(e);
                if next() % 2 == 0 {
                    s
                } else {
                    -s
                }
            })
            .collect();
        let w: Vec<f32> = codes
            .iter()
            .enumerate()
            .map(|(i, &q)| lut[q as usize] * scales[i % channels])
            .collect();
        let value = |i: usize| lut[codes[i] as usize];
        let f = channel_factors(&w, channels, value).expect("every channel recovered");
        for (i, (&q, &wv)) in codes.iter().zip(&w).enumerate() {
            assert_eq!((lut[q as usize] * f[i % channels]).to_bits(), wv.to_bits());
        }
        // Unscaled, and a channel whose codes all stand for zero.
        let zero = lut.iter().position(|&v| v == 0.0);
        assert!(zero.is_none(), "the test's lut has no exact zero");
        let f = channel_factors(&lut, 4, |i| lut[i]).unwrap();
        assert_eq!(f, vec![1.0; 4]);
        // A value no factor gives.
        let mut bad = w.clone();
        bad[17] = f32::from_bits(bad[17].to_bits() ^ 1);
        assert!(channel_factors(&bad, channels, value).is_none());
    }
}
