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
