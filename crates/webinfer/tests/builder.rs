//! `ModelBuilder` fed shard bytes in small chunks, files interleaved and back to front (as
//! concurrent downloads deliver them), predicts what TensorFlow.js predicts: the expected
//! outputs are tfjs's own (tests/fixtures, cpu backend), compared with the conformance
//! suite's tolerance. Covers float32, float16 and uint8 fixtures and a two-group, five-shard one.

mod common;

use common::{fixture, npy, ABS_TOL, REL_TOL};

use webinfer::{BackendChoice, LoadOptions, ModelBuilder};

#[test]
fn chunked_interleaved_bytes_predict_what_tfjs_predicts() {
    for name in [
        "multi_shard",
        "cnn_rich",
        "cnn_rich_float16",
        "cnn_rich_uint8",
        "cnn_rich_uint16",
        "dense_sequential",
    ] {
        let dir = fixture(name);
        if !dir.join("model.json").exists() {
            panic!("fixture {name} is missing");
        }
        let json = std::fs::read(dir.join("model.json")).unwrap();
        let options = LoadOptions {
            backend: BackendChoice::Cpu,
            ..LoadOptions::default()
        };
        for chunk in [1usize, 7, 4096] {
            let mut builder = if chunk == 7 {
                // From a model.json parsed beforehand, as the browser's loader hands it over.
                let parsed = webinfer_tfjs::parse_model_json(&json, &options.limits).unwrap();
                ModelBuilder::from_model_json(parsed, &options).unwrap()
            } else {
                ModelBuilder::new(&json, &options).unwrap()
            };
            common::feed_shards(&mut builder, &dir, chunk);
            let model = futures::executor::block_on(builder.finish()).unwrap();
            let x = npy(&dir.join("input_0.npy"));
            let y = futures::executor::block_on(model.predict(&[x])).unwrap();
            let want = npy(&dir.join("expected_0.npy"));
            assert_eq!(y[0].shape(), want.shape(), "{name}: output shape");
            for (i, (g, w)) in y[0].data().iter().zip(want.data()).enumerate() {
                assert!(
                    (g - w).abs() <= ABS_TOL + REL_TOL * w.abs(),
                    "{name} (chunk {chunk}), cpu, output 0 element {i}: webinfer {g}, tfjs {w}"
                );
            }
        }
    }
}

#[test]
fn a_model_whose_weights_do_not_fit_its_layers_is_refused_before_any_shard_byte() {
    // The graph is lowered from model.json alone: a manifest shape that does not fit the
    // layer's config, or a weight no layer uses, is refused by `ModelBuilder::new`, before a
    // loader downloads anything.
    let json = std::fs::read(fixture("cnn_rich").join("model.json")).unwrap();
    let options = LoadOptions::default();
    assert!(ModelBuilder::new(&json, &options).is_ok());
    let mut bad: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let weights = &mut bad["weightsManifest"][0]["weights"];
    let kernel = weights
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|w| w["name"].as_str().unwrap().ends_with("/kernel"))
        .unwrap();
    let name = kernel["name"].as_str().unwrap().to_string();
    let last = kernel["shape"].as_array().unwrap().len() - 1;
    kernel["shape"][last] = serde_json::json!(kernel["shape"][last].as_u64().unwrap() + 1);
    let err = ModelBuilder::new(&serde_json::to_vec(&bad).unwrap(), &options).unwrap_err();
    assert!(
        matches!(&err, webinfer::Error::Core(webinfer_core::CoreError::WeightShape { weight, .. }) if *weight == name),
        "{err}"
    );
    let mut surplus: serde_json::Value = serde_json::from_slice(&json).unwrap();
    surplus["weightsManifest"][0]["weights"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "nobody/kernel", "shape": [2], "dtype": "float32"}));
    let err = ModelBuilder::new(&serde_json::to_vec(&surplus).unwrap(), &options).unwrap_err();
    assert!(err.to_string().contains("nobody/kernel"), "{err}");
}
