//! Whole graphs on the GPU: agreement with the CPU backend, one submission per run, plan
//! caching per input shape, buffer reuse, the CPU fallback path (forced by the test switch or
//! by tensors over the binding limit) and input errors.

mod common;

use common::{assert_close, backend, run_cpu, Rng};
use webinfer_core::ir::{Activation, BinaryOp, Conv2d, Graph, InputSpec, Padding, PoolKind};
use webinfer_core::{Op, Tensor};
use webinfer_gpu::{GpuBackend, GpuError};

/// A small MobileNet-like network: conv, depthwise, pointwise, residual add, pool, dense, softmax.
fn mobilenet_like(r: &mut Rng) -> Graph {
    let mut g = Graph::default();
    g.inputs.push(InputSpec {
        name: "image".into(),
        shape: vec![None, Some(12), Some(12), Some(3)],
        dtype: "float32".into(),
    });
    let x = g.push(Op::Input { index: 0 }, vec![], "image");
    let conv = |k: usize, stride: usize, act| Conv2d {
        kernel: [k, k],
        stride: [stride, stride],
        dilation: [1, 1],
        padding: Padding::Same,
        groups: 1,
        activation: act,
    };
    let w1 = g.constant(r.tensor(&[3, 3, 3, 8]), "conv1/kernel");
    let b1 = g.constant(r.tensor(&[8]), "conv1/bias");
    let c1 = g.push(
        Op::Conv2d(conv(3, 2, Activation::Relu6)),
        vec![x, w1, b1],
        "conv1",
    );
    let wd = g.constant(r.tensor(&[3, 3, 8, 1]), "dw/depthwise_kernel");
    let d = g.push(
        Op::DepthwiseConv2d(conv(3, 1, Activation::Relu6)),
        vec![c1, wd],
        "dw",
    );
    let wp = g.constant(r.tensor(&[1, 1, 8, 8]), "pw/kernel");
    let p = g.push(
        Op::Conv2d(conv(1, 1, Activation::Linear)),
        vec![d, wp],
        "pw",
    );
    let add = g.push(Op::Binary(BinaryOp::Add), vec![p, c1], "add");
    let mp = g.push(
        Op::Pool2d {
            kind: PoolKind::Max,
            window: [2, 2],
            stride: [2, 2],
            padding: Padding::Valid,
        },
        vec![add],
        "pool",
    );
    let gp = g.push(
        Op::GlobalPool {
            kind: PoolKind::Avg,
        },
        vec![mp],
        "gap",
    );
    let flat = g.push(Op::Reshape { shape: vec![0, -1] }, vec![gp], "flatten");
    let wf = g.constant(r.tensor(&[8, 5]), "dense/kernel");
    let bf = g.constant(r.tensor(&[5]), "dense/bias");
    let fc = g.push(
        Op::MatMul {
            activation: Activation::Linear,
        },
        vec![flat, wf, bf],
        "dense",
    );
    let sm = g.push(Op::Softmax { axis: 1 }, vec![fc], "softmax");
    g.outputs = vec![sm, add];
    g.output_names = vec!["probs".into(), "features".into()];
    g
}

fn run(b: &GpuBackend, plan: &webinfer_gpu::GpuPlan, g: &Graph, inputs: &[Tensor]) -> Vec<Tensor> {
    futures::executor::block_on(b.run(plan, g, inputs)).unwrap_or_else(|e| panic!("run: {e}"))
}

fn check_all(case: &str, got: &[Tensor], want: &[Tensor]) {
    assert_eq!(got.len(), want.len(), "{case}: output count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_close(&format!("{case}, output {i}"), g, w);
    }
}

#[test]
fn network_matches_cpu_backend_in_one_submission() {
    let Some(b) = backend() else { return };
    let mut r = Rng::new(100);
    let g = mobilenet_like(&mut r);
    let x = vec![r.tensor(&[2, 12, 12, 3])];
    let plan = b.prepare(&g).unwrap();
    let got = run(&b, &plan, &g, &x);
    check_all("mobilenet-like", &got, &run_cpu(&g, &x));
    let stats = plan
        .stats(&[vec![2, 12, 12, 3]])
        .expect("plan built by the run");
    assert!(stats.cpu_nodes.is_empty(), "{:?}", stats.cpu_nodes);
    assert_eq!(stats.submissions, 1);
    assert_eq!(
        stats.dispatches, 8,
        "conv, dw, pw, add, pool, gap, dense, softmax (reshape aliases)"
    );
    // 9 values live on the GPU; lifetimes let them share fewer buffers.
    assert!(stats.slots < 8, "no buffer reuse: {} slots", stats.slots);
    assert!(plan.peak_bytes() > plan.weight_bytes());
}

#[test]
fn plans_are_cached_per_input_shape() {
    let Some(b) = backend() else { return };
    let mut r = Rng::new(101);
    let g = mobilenet_like(&mut r);
    // prepare builds the plan for the declared shape (batch 1), pipelines included.
    let plan = b.prepare(&g).unwrap();
    assert!(plan.stats(&[vec![1, 12, 12, 3]]).is_some());
    let pipelines = b.pipeline_count();
    let x1 = vec![r.tensor(&[1, 12, 12, 3])];
    check_all("batch 1", &run(&b, &plan, &g, &x1), &run_cpu(&g, &x1));
    check_all("batch 1 again", &run(&b, &plan, &g, &x1), &run_cpu(&g, &x1));
    assert_eq!(
        b.pipeline_count(),
        pipelines,
        "a repeated run created pipelines"
    );
    let x3 = vec![r.tensor(&[3, 12, 12, 3])];
    check_all("batch 3", &run(&b, &plan, &g, &x3), &run_cpu(&g, &x3));
    assert!(plan.stats(&[vec![3, 12, 12, 3]]).is_some());
    // Back to batch 1: the cached plan, fresh data.
    let x1b = vec![r.tensor(&[1, 12, 12, 3])];
    check_all(
        "batch 1, new data",
        &run(&b, &plan, &g, &x1b),
        &run_cpu(&g, &x1b),
    );
}

#[test]
fn forced_cpu_ops_run_with_explicit_transfers() {
    let Some(b) = backend() else { return };
    let mut r = Rng::new(102);
    let g = mobilenet_like(&mut r);
    let x = vec![r.tensor(&[2, 12, 12, 3])];
    let want = run_cpu(&g, &x);
    for ops in [
        &["depthwise_conv2d"][..],
        &["conv2d", "softmax"],
        &["reshape", "binary"],
        &["global_pool", "matmul"],
    ] {
        b.debug_force_cpu(ops);
        let plan = b.prepare(&g).unwrap();
        let got = run(&b, &plan, &g, &x);
        check_all(&format!("forced onto the CPU: {ops:?}"), &got, &want);
        let stats = plan.stats(&[vec![2, 12, 12, 3]]).unwrap();
        let on_cpu: Vec<&str> = stats.cpu_nodes.iter().map(|n| n.op).collect();
        for op in ops {
            assert!(on_cpu.contains(op), "{op} not on the CPU: {on_cpu:?}");
        }
        assert!(
            stats.submissions >= 2,
            "{ops:?}: a CPU node between GPU nodes needs a download"
        );
    }
    b.debug_force_cpu(&[]);
}

#[test]
fn tensors_over_the_binding_limit_run_on_the_cpu() {
    let Some(b) = backend() else { return };
    let mut r = Rng::new(103);
    let g = mobilenet_like(&mut r);
    let x = vec![r.tensor(&[2, 12, 12, 3])];
    // 2 KiB: the input (3456 B) and conv1's output (4608 B) are too big; later ones fit.
    b.debug_max_binding(2048);
    let plan = b.prepare(&g).unwrap();
    let got = run(&b, &plan, &g, &x);
    check_all("2 KiB binding limit", &got, &run_cpu(&g, &x));
    let stats = plan.stats(&[vec![2, 12, 12, 3]]).unwrap();
    let cpu: Vec<&str> = stats.cpu_nodes.iter().map(|n| n.origin.as_str()).collect();
    assert!(cpu.contains(&"conv1"), "{cpu:?}");
    assert!(
        stats
            .cpu_nodes
            .iter()
            .any(|n| n.reason.contains("binding limit")),
        "{:?}",
        stats.cpu_nodes
    );
    assert!(stats.gpu_nodes > 0, "the small tail should stay on the GPU");
}

#[test]
fn input_errors_name_the_input() {
    let Some(b) = backend() else { return };
    let mut r = Rng::new(104);
    let g = mobilenet_like(&mut r);
    let plan = b.prepare(&g).unwrap();
    let err =
        futures::executor::block_on(b.run(&plan, &g, &[r.tensor(&[1, 12, 11, 3])])).unwrap_err();
    assert!(matches!(err, GpuError::Shape(_)), "{err}");
    assert!(err.to_string().contains("image"), "{err}");
    let err = futures::executor::block_on(b.run(&plan, &g, &[])).unwrap_err();
    assert!(matches!(err, GpuError::Shape(_)), "{err}");
    let other = Graph::default();
    let err = futures::executor::block_on(b.run(&plan, &other, &[])).unwrap_err();
    assert!(matches!(err, GpuError::Shape(_)), "{err}");
}

/// The graph with its constant `origin` turned into a resident weight (key 0) written in
/// pieces, and the buffer that holds it.
fn with_resident(
    b: &GpuBackend,
    g: &Graph,
    origin: &str,
) -> (Graph, Vec<webinfer_gpu::ResidentWeight>) {
    let mut g = g.clone();
    let node = g.nodes.iter_mut().find(|n| n.origin == origin).unwrap();
    let Op::Constant(t) = &node.op else {
        panic!("{origin} is not a constant")
    };
    let w = b.resident_weight(origin, t.len()).unwrap();
    for (k, piece) in t.data().chunks(3).enumerate() {
        w.write(k * 3, piece).unwrap();
    }
    assert!(w.write(t.len(), &[1.0]).is_err(), "a write past the end");
    node.op = Op::Resident {
        shape: t.shape().to_vec(),
        key: 0,
    };
    (g, vec![w])
}

#[test]
fn resident_weights_are_bound_as_they_lie_or_downloaded_for_a_cpu_node() {
    let Some(b) = backend() else { return };
    let mut r = Rng::new(104);
    let host = mobilenet_like(&mut r);
    let x = vec![r.tensor(&[2, 12, 12, 3])];
    let want = run_cpu(&host, &x);
    // The dense kernel [8, 5] is not bound as it lies (5 columns pad to 8): the
    // pointwise [1, 1, 8, 8] kernel is.
    let (g, resident) = with_resident(&b, &host, "pw/kernel");
    let plan = b.prepare_with(&g, &resident, &[]).unwrap();
    check_all("resident conv kernel", &run(&b, &plan, &g, &x), &want);
    let stats = plan.stats(&[vec![2, 12, 12, 3]]).unwrap();
    assert!(stats.cpu_nodes.is_empty(), "{:?}", stats.cpu_nodes);
    assert_eq!(stats.submissions, 1);
    // Its consumer forced onto the CPU: the weight is downloaded for it.
    b.debug_force_cpu(&["conv2d"]);
    let plan = b.prepare_with(&g, &resident, &[]).unwrap();
    check_all(
        "resident conv kernel, conv on the CPU",
        &run(&b, &plan, &g, &x),
        &want,
    );
    b.debug_force_cpu(&[]);
    // A resident weight the kernel needs repacked: its node runs on the CPU, correctly.
    let (g, resident) = with_resident(&b, &host, "dense/kernel");
    let plan = b.prepare_with(&g, &resident, &[]).unwrap();
    check_all(
        "resident dense kernel [8, 5]",
        &run(&b, &plan, &g, &x),
        &want,
    );
    let stats = plan.stats(&[vec![2, 12, 12, 3]]).unwrap();
    assert!(
        stats.cpu_nodes.iter().any(|n| n.op == "matmul"),
        "{:?}",
        stats.cpu_nodes
    );
    // Without its buffer, prepare says which weight is missing; the CPU backend refuses.
    let e = b.prepare(&g).unwrap_err().to_string();
    assert!(e.contains("dense") && e.contains("resident"), "{e}");
    let e = webinfer_core::Backend::run(&webinfer_cpu::CpuBackend::new(), &g, &x)
        .unwrap_err()
        .to_string();
    assert!(e.contains("GPU memory only"), "{e}");
}

/// How [`store`] stores a weight.
#[derive(Debug, Clone, Copy)]
enum Stored {
    U8,
    F16,
}

/// A weight's stored form: its bytes, and a uint8 weight's code values.
struct StoredWeight {
    bytes: Vec<u8>,
    lut: Box<[f32; 256]>,
    format: Stored,
}

impl StoredWeight {
    fn codes<'a>(&'a self, layer: &'a str) -> webinfer_gpu::WeightCodes<'a> {
        webinfer_gpu::WeightCodes {
            layer,
            codes: &self.bytes,
            format: match self.format {
                Stored::U8 => webinfer_gpu::CodeFormat::U8 { lut: &self.lut },
                Stored::F16 => webinfer_gpu::CodeFormat::F16,
            },
        }
    }
}

/// Replaces constant `origin` of `g` with values a stored form stands for (uint8 codes, with
/// an affine de-quantization as tfjs does it, in doubles; or float16 values), each output
/// channel multiplied by a factor when `factors` (what folding a BatchNormalization into the
/// kernel does).
fn store(g: &mut Graph, origin: &str, r: &mut Rng, format: Stored, factors: bool) -> StoredWeight {
    let node = g.nodes.iter_mut().find(|n| n.origin == origin).unwrap();
    let Op::Constant(t) = &node.op else {
        panic!("{origin} is not a constant")
    };
    let (scale, min) = (0.0123_f64, -1.57_f64);
    let lut: [f32; 256] = std::array::from_fn(|q| (q as f64 * scale + min) as f32);
    let channels = *t.shape().last().unwrap();
    let f: Vec<f32> = (0..channels)
        .map(|_| if factors { r.uniform(-2.0, 2.0) } else { 1.0 })
        .collect();
    let (bytes, values): (Vec<u8>, Vec<f32>) = match format {
        Stored::U8 => (0..t.len())
            .map(|_| {
                let q = (r.next_u64() % 256) as u8;
                (q, lut[q as usize])
            })
            .unzip(),
        Stored::F16 => {
            // Random bits with exponents 0..15 (below 2 in magnitude, so that the float32
            // check against the CPU stays within its tolerance): zeros and subnormals
            // included, both signs.
            let h: Vec<half::f16> = (0..t.len())
                .map(|_| {
                    let b = r.next_u64();
                    let (sign, exp, mantissa) = (b & 0x8000, (b >> 16) % 16, b & 0x3ff);
                    half::f16::from_bits((sign | exp << 10 | mantissa) as u16)
                })
                .collect();
            (
                h.iter().flat_map(|v| v.to_le_bytes()).collect(),
                h.iter().map(|v| v.to_f32()).collect(),
            )
        }
    };
    let data = values
        .iter()
        .enumerate()
        .map(|(i, &v)| v * f[i % channels])
        .collect();
    node.op = Op::Constant(Tensor::new(t.shape().to_vec(), data).unwrap());
    StoredWeight {
        bytes,
        lut: Box::new(lut),
        format,
    }
}

fn assert_bit_identical(case: &str, got: &[Tensor], want: &[Tensor]) {
    for (o, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.shape(), w.shape(), "{case}, output {o}: shape");
        for (i, (a, b)) in g.data().iter().zip(w.data()).enumerate() {
            assert!(
                a.to_bits() == b.to_bits(),
                "{case}, output {o}, element {i}: stored weights {a}, float32 weights {b}"
            );
        }
    }
}

/// A network whose kernels are large enough for uint8 codes to save memory (a code's 256
/// values and the channel factors cost (256 + channels) * 4 bytes): conv (3 input channels:
/// conv2d_scalar), depthwise 5x5, pointwise (conv2d_vec4), dense [64, 20], dense [20, 5].
fn quantizable(r: &mut Rng) -> Graph {
    let mut g = Graph::default();
    g.inputs.push(InputSpec {
        name: "image".into(),
        shape: vec![None, Some(10), Some(10), Some(3)],
        dtype: "float32".into(),
    });
    let x = g.push(Op::Input { index: 0 }, vec![], "image");
    let conv = |k: usize, act| Conv2d {
        kernel: [k, k],
        stride: [1, 1],
        dilation: [1, 1],
        padding: Padding::Same,
        groups: 1,
        activation: act,
    };
    let w = g.constant(r.tensor(&[3, 3, 3, 64]), "conv/kernel");
    let bias = g.constant(r.tensor(&[64]), "conv/bias");
    let c = g.push(
        Op::Conv2d(conv(3, Activation::Relu6)),
        vec![x, w, bias],
        "conv",
    );
    let w = g.constant(r.tensor(&[5, 5, 64, 1]), "dw/depthwise_kernel");
    let d = g.push(
        Op::DepthwiseConv2d(conv(5, Activation::Relu6)),
        vec![c, w],
        "dw",
    );
    let w = g.constant(r.tensor(&[1, 1, 64, 64]), "pw/kernel");
    let p = g.push(Op::Conv2d(conv(1, Activation::Linear)), vec![d, w], "pw");
    let gp = g.push(
        Op::GlobalPool {
            kind: PoolKind::Avg,
        },
        vec![p],
        "gap",
    );
    let flat = g.push(Op::Reshape { shape: vec![0, -1] }, vec![gp], "flatten");
    let mut fc = flat;
    for (name, k, n) in [("fc1", 64, 20), ("fc2", 20, 5)] {
        let w = g.constant(r.tensor(&[k, n]), &format!("{name}/kernel"));
        let bias = g.constant(r.tensor(&[n]), &format!("{name}/bias"));
        fc = g.push(
            Op::MatMul {
                activation: Activation::Relu,
            },
            vec![fc, w, bias],
            name,
        );
    }
    g.outputs = vec![fc, p];
    g.output_names = vec!["scores".into(), "features".into()];
    g
}

#[test]
fn uint8_and_float16_weights_stay_compact_and_compute_what_float32_weights_do() {
    let Some(b) = backend() else { return };
    for (format, per_weight, table) in [(Stored::U8, 1u64, 256u64), (Stored::F16, 2, 0)] {
        let case = format!("{format:?}");
        let mut r = Rng::new(105);
        let mut g = quantizable(&mut r);
        // Folded factors on conv, dw and fc1; none on pw. fc2's 5 columns pad to 8 in the
        // kernel's layout, so it stays float32.
        let layers = [
            ("conv", "conv/kernel", true),
            ("dw", "dw/depthwise_kernel", true),
            ("pw", "pw/kernel", false),
            ("fc1", "fc1/kernel", true),
            ("fc2", "fc2/kernel", false),
        ];
        let stored: Vec<StoredWeight> = layers
            .iter()
            .map(|&(_, origin, factors)| store(&mut g, origin, &mut r, format, factors))
            .collect();
        let codes: Vec<webinfer_gpu::WeightCodes<'_>> = layers
            .iter()
            .zip(&stored)
            .map(|(&(layer, ..), w)| w.codes(layer))
            .collect();
        let f32_plan = b.prepare(&g).unwrap();
        let plan = b.prepare_with(&g, &[], &codes).unwrap();
        // Bit-identical on 2 images (matmul_rows) and on 70 (matmul_tiled).
        for n in [2, 70] {
            let x = vec![r.tensor(&[n, 10, 10, 3])];
            let want = run(&b, &f32_plan, &g, &x);
            check_all(
                &format!("{case}, {n} images, float32"),
                &want,
                &run_cpu(&g, &x),
            );
            assert_bit_identical(
                &format!("{case}, {n} images"),
                &run(&b, &plan, &g, &x),
                &want,
            );
        }
        // conv, dw, pw and fc1 in their stored form plus a uint8 weight's 256 values and the
        // channel factors, instead of 4 bytes a weight.
        let sizes = [(1728, 64), (1600, 64), (4096, 64), (1280, 20)];
        let f32_bytes: u64 = sizes.iter().map(|&(n, _)| n * 4).sum();
        let stored_bytes: u64 = sizes
            .iter()
            .map(|&(n, c)| (n * per_weight).div_ceil(16) * 16 + ((table + c) * 4).div_ceil(16) * 16)
            .sum();
        assert_eq!(
            f32_plan.weight_bytes() - plan.weight_bytes(),
            f32_bytes - stored_bytes,
            "{case}: weight bytes {} (float32 {})",
            plan.weight_bytes(),
            f32_plan.weight_bytes()
        );
        let stats = plan.stats(&[vec![70, 10, 10, 3]]).unwrap();
        assert!(stats.cpu_nodes.is_empty(), "{case}: {:?}", stats.cpu_nodes);
        assert_eq!(stats.submissions, 1);

        // A stored form that does not reproduce the weight (one byte changed) is not used.
        let x = vec![r.tensor(&[2, 10, 10, 3])];
        let want = run(&b, &f32_plan, &g, &x);
        let mut wrong = StoredWeight {
            bytes: stored[2].bytes.clone(),
            lut: stored[2].lut.clone(),
            format,
        };
        wrong.bytes[5] = wrong.bytes[5].wrapping_add(1);
        let plan = b.prepare_with(&g, &[], &[wrong.codes("pw")]).unwrap();
        assert_eq!(plan.weight_bytes(), f32_plan.weight_bytes(), "{case}");
        assert_bit_identical(
            &format!("{case}, wrong codes"),
            &run(&b, &plan, &g, &x),
            &want,
        );
    }
}

#[test]
fn resident_weights_in_their_stored_form_are_bound_or_decoded_for_a_cpu_node() {
    let Some(b) = backend() else { return };
    for format in [Stored::U8, Stored::F16] {
        let case = format!("{format:?}");
        let mut r = Rng::new(106);
        let mut g = quantizable(&mut r);
        // pw [1, 1, 64, 64] streamed in its stored form (no folded factors: streaming skips
        // kernels a BatchNormalization follows).
        let stored = store(&mut g, "pw/kernel", &mut r, format, false);
        let node = g
            .nodes
            .iter()
            .position(|n| n.origin == "pw/kernel")
            .unwrap();
        let shape = g.nodes[node].op.output_shape(&[]).unwrap();
        let w = b
            .resident_stored_weight("pw/kernel", &shape, stored.codes("pw").format)
            .unwrap();
        assert!(
            w.write(0, &[1.0]).is_err(),
            "{case}: float32 values into a stored weight"
        );
        // Pieces of 3 bytes, back to front: words are completed across pieces.
        let pieces: Vec<(usize, &[u8])> = stored.bytes.chunks(3).enumerate().collect();
        for &(k, piece) in pieces.iter().rev() {
            w.write_stored(k * 3, piece).unwrap();
        }
        assert!(
            w.write_stored(stored.bytes.len(), &[0]).is_err(),
            "{case}: past the end"
        );
        let mut resident = g.clone();
        resident.nodes[node].op = Op::Resident { shape, key: 0 };
        let x = vec![r.tensor(&[2, 10, 10, 3])];
        let want = run(&b, &b.prepare(&g).unwrap(), &g, &x);
        let plan = b
            .prepare_with(&resident, std::slice::from_ref(&w), &[])
            .unwrap();
        assert_bit_identical(&case, &run(&b, &plan, &resident, &x), &want);
        let f32_plan = b.prepare(&g).unwrap();
        assert!(plan.weight_bytes() < f32_plan.weight_bytes(), "{case}");
        // The convolutions forced onto the CPU: the weight is read back and decoded.
        b.debug_force_cpu(&["conv2d"]);
        let want = run(&b, &b.prepare(&g).unwrap(), &g, &x);
        let plan = b.prepare_with(&resident, &[w], &[]).unwrap();
        let got = run(&b, &plan, &resident, &x);
        b.debug_force_cpu(&[]);
        assert_bit_identical(&format!("{case}, conv on the CPU"), &got, &want);
    }
}
