//! Bounds a caller can raise (`LoadOptions.limits`): a model whose declared activations are
//! absurd fails at load, naming the layer or input and the limit, before anything is allocated;
//! a predict whose inputs would make an intermediate too large fails the same way, and the
//! model keeps working.

use std::collections::HashMap;

use futures::executor::block_on;
use serde_json::json;
use webinfer::{BackendChoice, Limits, LoadOptions, Model, Tensor};

fn cpu(limits: Limits) -> LoadOptions {
    LoadOptions {
        backend: BackendChoice::Cpu,
        limits,
        ..LoadOptions::default()
    }
}

/// A functional layers-model: InputLayer `pixels` of `shape`, then `layers` (the last is the
/// output), with float32 weights `(name, shape)` in one zero-filled shard.
fn layers_model(
    shape: serde_json::Value,
    layers: Vec<serde_json::Value>,
    weights: &[(&str, Vec<usize>)],
) -> (Vec<u8>, HashMap<String, Vec<u8>>) {
    let mut all = vec![
        json!({"class_name": "InputLayer", "name": "pixels", "inbound_nodes": [],
        "config": {"name": "pixels", "batch_input_shape": shape, "dtype": "float32"}}),
    ];
    let last = layers
        .last()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .unwrap();
    all.extend(layers);
    let manifest: Vec<_> = weights
        .iter()
        .map(|(n, s)| json!({"name": n, "shape": s, "dtype": "float32"}))
        .collect();
    let bytes: usize = weights
        .iter()
        .map(|(_, s)| s.iter().product::<usize>() * 4)
        .sum();
    let model = json!({"format": "layers-model",
        "modelTopology": {"class_name": "Model", "config": {"name": "m", "layers": all,
            "input_layers": [["pixels", 0, 0]], "output_layers": [[last, 0, 0]]}},
        "weightsManifest": [{"paths": ["w.bin"], "weights": manifest}]});
    let shards = HashMap::from([("w.bin".to_string(), vec![0u8; bytes])]);
    (model.to_string().into_bytes(), shards)
}

fn layer(class: &str, name: &str, config: serde_json::Value, inbound: &str) -> serde_json::Value {
    let mut config = config;
    config["name"] = name.into();
    json!({"class_name": class, "name": name, "config": config,
           "inbound_nodes": [[[inbound, 0, 0, {}]]]})
}

fn load_err(json: &[u8], shards: HashMap<String, Vec<u8>>, limits: Limits) -> String {
    match block_on(Model::from_memory(json, shards, &cpu(limits))) {
        Ok(m) => panic!("loaded: {m:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn an_absurd_input_shape_is_refused_at_load() {
    let (json, shards) = layers_model(
        json!([null, 100000, 100000, 3]),
        vec![layer("ReLU", "act", json!({}), "pixels")],
        &[],
    );
    let err = load_err(&json, shards, Limits::default());
    for needle in [
        "input \"pixels\"",
        "[?,100000,100000,3]",
        "30000000000 elements",
        "max_activation_elements = 268435456",
    ] {
        assert!(err.contains(needle), "{needle:?} not in: {err}");
    }
}

#[test]
fn a_dense_whose_output_is_absurd_is_refused_at_load_naming_it() {
    // Its kernel (1 x 2^20, 4 MiB) is well within the weight limits; its output
    // [1, 512, 2^20] (2^29 elements, 2 GiB) is not within the activation limit.
    let units = 1usize << 20;
    let (json, shards) = layers_model(
        json!([null, 512, 1]),
        vec![layer(
            "Dense",
            "wide",
            json!({"units": units, "use_bias": false}),
            "pixels",
        )],
        &[("wide/kernel", vec![1, units])],
    );
    let err = load_err(&json, shards.clone(), Limits::default());
    for needle in [
        "layer \"wide\" (matmul)",
        "[1,512,1048576]",
        "536870912 elements",
        "at batch 1",
        "max_activation_elements = 268435456",
    ] {
        assert!(err.contains(needle), "{needle:?} not in: {err}");
    }
    // The caller can raise the limit (loading allocates no activation).
    let limits = Limits {
        max_activation_elements: 1 << 29,
        ..Limits::default()
    };
    let model = block_on(Model::from_memory(&json, shards, &cpu(limits))).unwrap();
    assert_eq!(model.outputs()[0].shape, vec![None, Some(512), Some(units)]);
}

#[test]
fn a_graph_model_placeholder_with_absurd_dims_is_refused_at_load() {
    let dims: Vec<_> = [1, 100000, 100000, 3]
        .iter()
        .map(|d| json!({"size": d.to_string()}))
        .collect();
    let model = json!({"format": "graph-model", "modelTopology": {"node": [
        {"name": "image", "op": "Placeholder",
         "attr": {"shape": {"shape": {"dim": dims}}, "dtype": {"type": "DT_FLOAT"}}},
        {"name": "y", "op": "Relu", "input": ["image"]},
    ]}, "weightsManifest": []});
    let err = load_err(
        model.to_string().as_bytes(),
        HashMap::new(),
        Limits::default(),
    );
    for needle in [
        "input \"image\"",
        "[1,100000,100000,3]",
        "max_activation_elements",
    ] {
        assert!(err.contains(needle), "{needle:?} not in: {err}");
    }
}

#[test]
fn a_batch_too_large_is_refused_at_predict_and_the_model_keeps_working() {
    // UpSampling2D 2048 x 2048 of a [b, 1, 1, 1] input: 2^22 elements per image, so the
    // default limit (2^28) admits a batch of 64 and refuses 65.
    let (json, shards) = layers_model(
        json!([null, 1, 1, 1]),
        vec![layer(
            "UpSampling2D",
            "up",
            json!({"size": [2048, 2048]}),
            "pixels",
        )],
        &[],
    );
    let model = block_on(Model::from_memory(&json, shards, &cpu(Limits::default()))).unwrap();
    let batch = |n: usize| Tensor::new(vec![n, 1, 1, 1], vec![0.5; n]).unwrap();
    let err = block_on(model.predict(&[batch(65)]))
        .unwrap_err()
        .to_string();
    for needle in [
        "layer \"up\" (resize)",
        "[65,2048,2048,1]",
        "272629760 elements",
        "for the inputs given",
        "max_activation_elements = 268435456",
    ] {
        assert!(err.contains(needle), "{needle:?} not in: {err}");
    }
    let y = block_on(model.predict(&[batch(1)])).unwrap();
    assert_eq!(y[0].shape(), &[1, 2048, 2048, 1]);
    assert!(y[0].data().iter().all(|&v| v == 0.5));
}

#[test]
fn a_lowered_limit_applies_to_a_real_fixture() {
    // dense_sequential: input [?, 10], then Dense 8, 6, 4, 3.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/dense_sequential/model.json"
    );
    let with = |n: u64| {
        cpu(Limits {
            max_activation_elements: n,
            ..Limits::default()
        })
    };
    let err = block_on(Model::load_with(path, &with(9)))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("input \"dense_relu_input\"") && err.contains("max_activation_elements = 9"),
        "{err}"
    );
    let model = block_on(Model::load_with(path, &with(10))).unwrap();
    let x = |n: usize| Tensor::new(vec![n, 10], vec![0.1; n * 10]).unwrap();
    assert_eq!(
        block_on(model.predict(&[x(1)])).unwrap()[0].shape(),
        &[1, 3]
    );
    let err = block_on(model.predict(&[x(2)])).unwrap_err().to_string();
    assert!(
        err.contains("input \"dense_relu_input\"") && err.contains("[2,10]"),
        "{err}"
    );
}

#[test]
fn fuzz_input_an_empty_batch_with_an_absurd_width_is_refused_at_load() {
    // Found by fuzzing (fuzz/ model_from_memory): a graph-model whose Placeholder is
    // [0, 6, 2^62, 2] has no elements, so it passed the activation limit, and the CPU
    // depthwise convolution's row arithmetic overflowed at predict. Zero dims now count as 1.
    // The file is `model.json`, a NUL byte, then the one shard (`ws.bin`).
    let data = include_bytes!("fuzz/graph_empty_batch_absurd_width.bin");
    let nul = data.iter().position(|&b| b == 0).unwrap();
    let shards = HashMap::from([("ws.bin".to_string(), data[nul + 1..].to_vec())]);
    match block_on(Model::from_memory(
        &data[..nul],
        shards,
        &cpu(Limits::default()),
    )) {
        Ok(model) => {
            let x = Tensor::new(vec![0, 6, 1 << 62, 2], vec![]).unwrap();
            panic!("loaded; predict gives {:?}", block_on(model.predict(&[x])));
        }
        Err(e) => {
            let err = e.to_string();
            for needle in [
                "input \"x\"",
                "[0,6,4611686018427387904,2]",
                "counting zero dims as 1",
                "max_activation_elements",
            ] {
                assert!(err.contains(needle), "{needle:?} not in: {err}");
            }
        }
    }
}
