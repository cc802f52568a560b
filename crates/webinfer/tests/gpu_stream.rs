//! Weights streamed straight to the GPU while the shards arrive (`ModelBuilder::use_backend`,
//! `LoadOptions::gpu_stream_min_bytes`): the Dense and Conv2D kernels the GPU binds as they lie
//! live in GPU memory only (`Op::Resident`, no host copy), other weights stay on the host,
//! and the model predicts what TensorFlow.js predicts (tests/fixtures, tfjs cpu backend),
//! within the conformance suite's tolerance. A lost device is then a clear error that asks
//! for a reload (the host has no copy to fall back on).
//!
//! Needs a GPU adapter (lavapipe in CI): with `WEBINFER_REQUIRE_GPU=1` a missing one fails.

mod common;

use std::path::Path;

use common::{fixture, npy, ABS_TOL, REL_TOL};

use webinfer::{Backend, BackendChoice, LoadOptions, ModelBuilder, Tensor};
use webinfer_core::Op;

/// `input_0.npy`, `input_1.npy`, ... (or `expected_*`) of a fixture.
fn numbered(dir: &Path, stem: &str) -> Vec<Tensor> {
    (0..)
        .map(|i| dir.join(format!("{stem}_{i}.npy")))
        .take_while(|p| p.exists())
        .map(|p| npy(&p))
        .collect()
}

fn gpu() -> Option<Backend> {
    match futures::executor::block_on(Backend::choose(BackendChoice::Gpu)) {
        Ok(b) => Some(b),
        Err(e) => {
            assert!(
                std::env::var("WEBINFER_REQUIRE_GPU").as_deref() != Ok("1"),
                "WEBINFER_REQUIRE_GPU=1 but: {e}"
            );
            println!("SKIP: no GPU adapter: {e}");
            None
        }
    }
}

/// Builds `name` on `backend`, its shard bytes given in `chunk`-byte pieces, files
/// interleaved back to front (as concurrent downloads deliver them).
fn build(
    name: &str,
    backend: Backend,
    options: &LoadOptions,
    chunk: usize,
) -> (webinfer::Model, u64) {
    let dir = fixture(name);
    let json = std::fs::read(dir.join("model.json")).unwrap();
    let mut builder = ModelBuilder::new(&json, options).unwrap();
    let streamed = builder.use_backend(backend).unwrap();
    common::feed_shards(&mut builder, &dir, chunk);
    (
        futures::executor::block_on(builder.finish()).unwrap(),
        streamed,
    )
}

#[test]
fn streamed_dense_kernels_predict_what_tfjs_predicts() {
    let Some(backend) = gpu() else { return };
    let options = LoadOptions {
        backend: BackendChoice::Gpu,
        gpu_stream_min_bytes: 0,
        ..LoadOptions::default()
    };
    // Dense kernels [k, n] with n a multiple of 4 stream; the others ([8, 6] in
    // dense_sequential) stay on the host in the same model.
    for (name, kernels) in [
        (
            "dense_sequential",
            &["dense_relu/kernel", "dense_tanh/kernel"][..],
        ),
        ("dense_rank3", &["dense_sigmoid/kernel"][..]),
        (
            "functional_two_in_two_out",
            &["conv/kernel", "vec_dense/kernel", "proj/kernel"][..],
        ),
        // Conv2D kernels [kh, kw, cin, cout] with cout a multiple of 4, dilated and shared
        // ones included.
        ("conv2d_padding", &["conv_same/kernel"][..]),
        ("conv2d_strides", &["conv_s12_valid/kernel"][..]),
        ("conv2d_dilation", &["conv_d2_same/kernel"][..]),
        ("keras2_topology", &["conv2d_1/kernel"][..]),
        ("functional_shared_layer", &["shared_conv/kernel"][..]),
        // conv_a [3, 3, 4, 8] feeds a BatchNormalization (folded into it on the host): not
        // streamed; nor are cnn_rich's convolutions, for the same reason.
        ("multi_shard", &["dense/kernel"][..]),
        ("cnn_rich", &[][..]),
        // uint8 and float16 kernels stream in that form: 1 or 2 bytes a weight, plus a
        // uint8 kernel's 256 code values and a factor per output channel.
        ("dense_wide_uint8", &["wide/kernel", "head/kernel"][..]),
        ("cnn_wide_float16", &["fc/kernel", "head/kernel"][..]),
    ] {
        let dir = fixture(name);
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("model.json")).unwrap()).unwrap();
        let expected_bytes: u64 = json["weightsManifest"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["weights"].as_array().unwrap())
            .filter(|w| kernels.contains(&w["name"].as_str().unwrap()))
            .map(|w| {
                let shape: Vec<u64> = w["shape"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_u64().unwrap())
                    .collect();
                let (n, channels) = (shape.iter().product::<u64>(), *shape.last().unwrap());
                let round16 = |b: u64| b.div_ceil(16) * 16;
                match w["quantization"]["dtype"].as_str() {
                    Some("uint8") => round16(n) + round16((256 + channels) * 4),
                    Some("float16") => round16(n * 2) + round16(channels * 4),
                    _ => n * 4,
                }
            })
            .sum();
        for chunk in [3usize, 4096] {
            let (model, streamed) = build(name, backend.clone(), &options, chunk);
            assert_eq!(
                streamed, expected_bytes,
                "{name}: bytes announced as streamed"
            );
            assert_eq!(model.gpu_resident_bytes(), expected_bytes, "{name}");
            let resident = model
                .graph()
                .nodes
                .iter()
                .filter(|n| matches!(n.op, Op::Resident { .. }))
                .count();
            assert_eq!(resident, kernels.len(), "{name}: resident nodes");
            check_fixture(
                name,
                &model,
                &format!("gpu with streamed kernels, chunk {chunk}"),
            );
        }
    }
}

/// GPU bytes of dense_wide_uint8's wide/kernel [256, 1024] streamed as uint8 codes: the codes,
/// then the 256 values they stand for and a factor per output channel (float32).
const WIDE_KERNEL_CODES: u64 = 256 * 1024 + (256 + 1024) * 4;

/// Asserts that `model` predicts the fixture's tfjs outputs.
fn check_fixture(name: &str, model: &webinfer::Model, what: &str) {
    let dir = fixture(name);
    let x = numbered(&dir, "input");
    let want = numbered(&dir, "expected");
    let y = futures::executor::block_on(model.predict(&x)).unwrap();
    assert_eq!(y.len(), want.len(), "{name}: outputs");
    for (o, (g, w)) in y.iter().zip(&want).enumerate() {
        assert_eq!(g.shape(), w.shape(), "{name}: output {o} shape");
        for (i, (a, b)) in g.data().iter().zip(w.data()).enumerate() {
            assert!(
                (a - b).abs() <= ABS_TOL + REL_TOL * b.abs(),
                "{name} ({what}), output {o} element {i}: webinfer {a}, tfjs {b}"
            );
        }
    }
}

#[test]
fn by_default_a_1_mib_uint8_kernel_streams_and_predicts_what_tfjs_predicts() {
    let Some(backend) = gpu() else { return };
    let options = LoadOptions {
        backend: BackendChoice::Gpu,
        ..LoadOptions::default()
    };
    // wide/kernel: [256, 1024] uint8, 1 MiB decoded (over the 64 KiB default), streams as its
    // codes (256 KiB) plus their 256 values and a factor per output channel; head/kernel
    // [1024, 4] (16 KiB decoded) stays on the host.
    for chunk in [1000usize, 65536] {
        let (model, streamed) = build("dense_wide_uint8", backend.clone(), &options, chunk);
        assert_eq!(streamed, WIDE_KERNEL_CODES);
        assert_eq!(model.gpu_resident_bytes(), WIDE_KERNEL_CODES);
        check_fixture(
            "dense_wide_uint8",
            &model,
            &format!("gpu, streamed, chunk {chunk}"),
        );
    }
}

#[test]
fn below_the_threshold_or_on_the_cpu_nothing_streams() {
    let options = LoadOptions {
        backend: BackendChoice::Gpu,
        ..LoadOptions::default() // 64 KiB: dense_sequential's kernels are far smaller
    };
    if let Some(backend) = gpu() {
        let (model, streamed) = build("dense_sequential", backend, &options, 4096);
        assert_eq!((streamed, model.gpu_resident_bytes()), (0, 0));
        assert!(!model.graph().has_resident());
    }
    let cpu = futures::executor::block_on(Backend::choose(BackendChoice::Cpu)).unwrap();
    let options = LoadOptions {
        gpu_stream_min_bytes: 0,
        ..options
    };
    let (model, streamed) = build("dense_sequential", cpu, &options, 4096);
    assert_eq!((streamed, model.backend_name()), (0, "cpu"));
    assert!(!model.graph().has_resident());
}

#[test]
fn a_lost_device_asks_for_a_reload_when_weights_were_streamed() {
    let Some(backend) = gpu() else { return };
    let options = LoadOptions {
        backend: BackendChoice::Gpu,
        gpu_stream_min_bytes: 0,
        ..LoadOptions::default()
    };
    let (model, _) = build("dense_sequential", backend, &options, 4096);
    let x = numbered(&fixture("dense_sequential"), "input");
    futures::executor::block_on(model.predict(&x)).unwrap();
    model.debug_lose_gpu_device();
    for _ in 0..2 {
        let e = futures::executor::block_on(model.predict(&x)).unwrap_err();
        assert!(matches!(e, webinfer::Error::GpuWeightsLost { .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains("GPU device was lost") && text.contains("load it again"),
            "{text}"
        );
    }
    assert_eq!(model.backend_name(), "cpu");
}

#[test]
fn loaded_from_files_the_kernel_streams_and_a_lost_device_reads_it_again() {
    if gpu().is_none() {
        return;
    }
    let options = LoadOptions {
        backend: BackendChoice::Gpu,
        ..LoadOptions::default()
    };
    let path = fixture("dense_wide_uint8").join("model.json");
    let model = futures::executor::block_on(webinfer::Model::load_with(&path, &options)).unwrap();
    assert_eq!(
        model.gpu_resident_bytes(),
        WIDE_KERNEL_CODES,
        "wide/kernel streamed from the file"
    );
    check_fixture("dense_wide_uint8", &model, "gpu, loaded from files");
    model.debug_lose_gpu_device();
    for round in 0..2 {
        check_fixture(
            "dense_wide_uint8",
            &model,
            &format!("cpu after the loss, weights read again from the files, predict {round}"),
        );
    }
    assert_eq!(model.backend_name(), "cpu");
    let note = model.gpu_fallback().unwrap();
    assert!(
        note.starts_with("the GPU device was lost (")
            && note.contains("were read again from")
            && note.ends_with("running on the CPU from now on"),
        "{note}"
    );
    // On the CPU nothing streams, and the model is the same.
    let cpu = LoadOptions {
        backend: BackendChoice::Cpu,
        ..LoadOptions::default()
    };
    let model = futures::executor::block_on(webinfer::Model::load_with(&path, &cpu)).unwrap();
    assert_eq!(model.gpu_resident_bytes(), 0);
    check_fixture("dense_wide_uint8", &model, "cpu, loaded from files");
}

/// GPU weight bytes if every weight were float32 (each buffer rounded to 16 bytes, as the
/// plan allocates them).
fn float32_bytes(dir: &Path) -> u64 {
    let json = std::fs::read(dir.join("model.json")).unwrap();
    let parsed = webinfer_tfjs::parse_model_json(&json, &webinfer_tfjs::Limits::default()).unwrap();
    parsed
        .weights_manifest
        .iter()
        .flat_map(|g| &g.weights)
        .map(|w| (w.element_count() * 4).div_ceil(16) * 16)
        .sum()
}

#[test]
fn uint8_and_float16_kernels_that_do_not_stream_stay_compact_on_the_gpu() {
    let Some(backend) = gpu() else { return };
    let options = LoadOptions {
        backend: BackendChoice::Gpu,
        gpu_stream_min_bytes: u64::MAX,
        ..LoadOptions::default()
    };
    // wide/kernel [256, 1024] and head/kernel [1024, 4]: their codes and 256 values plus a
    // factor per output channel, instead of 4 bytes a weight.
    let (model, streamed) = build("dense_wide_uint8", backend, &options, 4096);
    assert_eq!((streamed, model.gpu_resident_bytes()), (0, 0));
    let (weights, _) = model.gpu_bytes().unwrap();
    let float32 = float32_bytes(&fixture("dense_wide_uint8"));
    println!("dense_wide_uint8: GPU weights {weights} bytes, {float32} as float32");
    assert!(weights * 10 < float32 * 3, "{weights} vs {float32}");
    check_fixture("dense_wide_uint8", &model, "gpu, compact uint8 kernels");

    // float16: conv [3, 3, 16, 64] and dw [3, 3, 64, 1], each with a BatchNormalization folded
    // in (as channel factors), fc [64, 32] and head [32, 4], all four at 2 bytes a weight plus
    // a float32 factor per output channel; the biases (the folded ones included) float32.
    let (model, streamed) = build("cnn_wide_float16", gpu().unwrap(), &options, 4096);
    assert_eq!(streamed, 0);
    let (weights, _) = model.gpu_bytes().unwrap();
    let float32 = float32_bytes(&fixture("cnn_wide_float16"));
    println!("cnn_wide_float16: GPU weights {weights} bytes, {float32} as float32");
    let kernels =
        (9216 * 2 + 64 * 4) + (576 * 2 + 64 * 4) + (2048 * 2 + 32 * 4) + (128 * 2 + 4 * 4);
    let biases = (64 + 64 + 32 + 4) * 4;
    assert_eq!(weights, kernels + biases);
    check_fixture("cnn_wide_float16", &model, "gpu, float16 kernels");
}

#[test]
fn mobilenet_v2_keeps_its_uint8_kernels_compact_on_the_gpu() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/real/models/mobilenet_v2");
    if !dir.join("model.json").exists() {
        assert!(
            std::env::var("WEBINFER_REQUIRE_REAL_MODELS").as_deref() != Ok("1"),
            "WEBINFER_REQUIRE_REAL_MODELS=1 but {} is missing (scripts/fetch-models.sh)",
            dir.display()
        );
        println!("SKIP: real models not fetched");
        return;
    }
    if gpu().is_none() {
        return;
    }
    let options = LoadOptions {
        backend: BackendChoice::Gpu,
        ..LoadOptions::default()
    };
    let model =
        futures::executor::block_on(webinfer::Model::load_with(dir.join("model.json"), &options))
            .unwrap();
    let (weights, _) = model.gpu_bytes().unwrap();
    let float32 = float32_bytes(&dir);
    println!("mobilenet_v2: GPU weights {weights} bytes, {float32} as float32");
    // Its convolutions are followed by BatchNormalizations (folded into the codes' channel
    // factors). What stays float32: the folded biases, and kernels too small for the codes'
    // 1 KiB of values to pay (the first depthwise one, 3x3 x 32 channels). Measured: 3.73 MB
    // instead of 10.48.
    assert!(weights * 2 < float32, "{weights} vs {float32}");
    // What it predicts is checked against tfjs by the conformance suite (tests/conformance.rs),
    // on this backend too.
}
