//! Lowering fails up front with errors that name what is wrong and where.

use serde_json::json;
use webinfer_core::{lower, CoreError};
use webinfer_tfjs::{parse_layers_topology, DecodedWeight, Limits, TensorData};

fn dense(name: &str, units: usize, inbound: &str) -> serde_json::Value {
    json!({"class_name": "Dense", "config": {"name": name, "units": units, "use_bias": false, "activation": "linear"},
           "name": name, "inbound_nodes": [[[inbound, 0, 0, {}]]]})
}

fn model(layers: Vec<serde_json::Value>, outputs: &[&str]) -> webinfer_tfjs::LayersModel {
    let mut all = vec![
        json!({"class_name": "InputLayer", "config": {"name": "x", "batch_input_shape": [null, 3], "dtype": "float32"}, "name": "x", "inbound_nodes": []}),
    ];
    all.extend(layers);
    let outs: Vec<_> = outputs.iter().map(|o| json!([o, 0, 0])).collect();
    let topo = json!({"class_name": "Model", "config": {"name": "m", "layers": all, "input_layers": [["x", 0, 0]], "output_layers": outs}});
    parse_layers_topology(&topo, &Limits::default()).unwrap()
}

fn w(name: &str, shape: &[usize]) -> DecodedWeight {
    DecodedWeight {
        name: name.into(),
        shape: shape.to_vec(),
        data: TensorData::F32(vec![0.5; shape.iter().product()]),
    }
}

#[test]
fn unknown_layers_are_named_together() {
    let mut a = dense("a", 2, "x");
    a["class_name"] = "Frobnicate".into();
    let mut b = dense("b", 2, "a");
    b["class_name"] = "Wibble".into();
    let err = lower::lower_layers_model(&model(vec![a, b], &["b"]), vec![]).unwrap_err();
    assert!(
        matches!(&err, CoreError::UnknownLayers(v) if v.len() == 2),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("Frobnicate (layer \"a\")") && msg.contains("Wibble (layer \"b\")"),
        "{msg}"
    );
}

#[test]
fn missing_surplus_and_misshapen_weights() {
    let m = model(vec![dense("d", 2, "x")], &["d"]);
    let err = lower::lower_layers_model(&m, vec![]).unwrap_err();
    assert!(
        err.to_string().contains("missing weight \"d/kernel\""),
        "{err}"
    );

    let err = lower::lower_layers_model(&m, vec![w("d/kernel", &[3, 2]), w("extra/kernel", &[1])])
        .unwrap_err();
    assert!(
        matches!(&err, CoreError::SurplusWeights(v) if v == &["extra/kernel".to_string()]),
        "{err}"
    );

    let err = lower::lower_layers_model(&m, vec![w("d/kernel", &[3, 5])]).unwrap_err();
    assert!(
        err.to_string().contains("d/kernel")
            && err.to_string().contains("[3,5]")
            && err.to_string().contains("[?,2]"),
        "{err}"
    );
}

#[test]
fn shape_mismatch_between_layers_is_found_at_load() {
    // The kernel fits the layer config (units 2) but not its input (3 features, kernel says 4).
    let m = model(vec![dense("d", 2, "x")], &["d"]);
    let err = lower::lower_layers_model(&m, vec![w("d/kernel", &[4, 2])]).unwrap_err();
    assert!(matches!(err, CoreError::Shape { .. }), "{err}");
    assert!(err.to_string().contains("layer \"d\""), "{err}");
}

#[test]
fn channels_first_is_a_clear_error() {
    let conv = json!({"class_name": "Conv2D", "name": "c", "inbound_nodes": [[["x", 0, 0, {}]]],
        "config": {"name": "c", "filters": 2, "kernel_size": [1, 1], "data_format": "channels_first"}});
    let err = lower::lower_layers_model(&model(vec![conv], &["c"]), vec![]).unwrap_err();
    assert!(err.to_string().contains("channels_first"), "{err}");
}

fn batch_norm(name: &str, inbound: &str) -> serde_json::Value {
    json!({"class_name": "BatchNormalization", "name": name, "inbound_nodes": [[[inbound, 0, 0, {}]]],
        "config": {"name": name, "axis": -1, "epsilon": 0.001}})
}

fn bn_weights() -> Vec<DecodedWeight> {
    ["gamma", "beta", "moving_mean", "moving_variance"]
        .iter()
        .map(|s| w(&format!("bn/{s}"), &[3]))
        .collect()
}

#[test]
fn the_structure_is_lowered_and_checked_from_names_and_shapes_alone() {
    // Every check but the values' happens before any value exists (a loader lowers a model
    // while its shards download): a weight that does not fit its layer, one no layer uses.
    let m = model(vec![dense("d", 2, "x")], &["d"]);
    let err =
        lower::lower_layers_structure(&m, [("d/kernel".to_string(), vec![3, 5])]).unwrap_err();
    assert!(matches!(err, CoreError::WeightShape { .. }), "{err}");
    let err = lower::lower_layers_structure(
        &m,
        [
            ("d/kernel".to_string(), vec![3, 2]),
            ("e/kernel".to_string(), vec![1]),
        ],
    )
    .unwrap_err();
    assert!(matches!(err, CoreError::SurplusWeights(_)), "{err}");
    // The structure is whole: shapes inferred, weights as placeholders until filled.
    let lowered =
        lower::lower_layers_structure(&m, [("d/kernel".to_string(), vec![3, 2])]).unwrap();
    let graph = lowered
        .fill(vec![w("d/kernel", &[3, 2])], &Default::default())
        .unwrap();
    let kernel = graph.nodes[graph.nodes[graph.outputs[0]].inputs[1]]
        .op
        .clone();
    assert!(
        matches!(kernel, webinfer_core::Op::Constant(ref t) if t.data() == [0.5; 6]),
        "{kernel:?}"
    );
    // A weight missing at fill (the values do not match the names lowered from): named.
    let lowered =
        lower::lower_layers_structure(&m, [("d/kernel".to_string(), vec![3, 2])]).unwrap();
    let err = lowered.fill(vec![], &Default::default()).unwrap_err();
    assert!(err.to_string().contains("d/kernel"), "{err}");
}

#[test]
fn batch_normalization_is_computed_at_fill_and_needs_its_values_on_the_host() {
    let m = model(vec![batch_norm("bn", "x")], &["bn"]);
    let weights = bn_weights();
    let shapes = weights.iter().map(|w| (w.name.clone(), w.shape.clone()));
    let graph = lower::lower_layers_structure(&m, shapes.clone())
        .unwrap()
        .fill(weights.clone(), &Default::default())
        .unwrap();
    // gamma 0.5, var 0.5: scale = 0.5 / sqrt(0.5 + 0.001); shift = 0.5 - 0.5 * scale.
    let affine = &graph.nodes[graph.outputs[0]];
    let scale = 0.5f32 * (1.0 / (0.5f32 + 0.001).sqrt());
    let constant = |i: usize| match &graph.nodes[affine.inputs[i]].op {
        webinfer_core::Op::Constant(t) => t.data().to_vec(),
        other => panic!("{other:?}"),
    };
    assert_eq!(constant(1), [scale; 3]);
    assert_eq!(constant(2), [0.5 - 0.5 * scale; 3]);
    // A parameter whose values went to a backend cannot be read: a clear error.
    let resident = [("bn/gamma".to_string(), 0usize)].into_iter().collect();
    let err = lower::lower_layers_structure(&m, shapes)
        .unwrap()
        .fill(weights, &resident)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("\"bn/gamma\" is needed on the host"),
        "{err}"
    );
}
