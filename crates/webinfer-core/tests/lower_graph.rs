//! graph-model lowering: unsupported ops are named at once; shapes follow TF's rules.

use serde_json::json;
use webinfer_core::lower::graph::lower_graph_model;
use webinfer_core::CoreError;
use webinfer_tfjs::{parse_graph_model, parse_model_json, DecodedWeight, Limits, TensorData};

fn model(nodes: serde_json::Value) -> webinfer_tfjs::GraphModel {
    let mj =
        json!({"format": "graph-model", "modelTopology": {"node": nodes}, "weightsManifest": []});
    let parsed = parse_model_json(mj.to_string().as_bytes(), &Limits::default()).unwrap();
    parse_graph_model(&parsed, &Limits::default()).unwrap()
}

fn placeholder(shape: &[i64]) -> serde_json::Value {
    let dims: Vec<_> = shape
        .iter()
        .map(|d| json!({"size": d.to_string()}))
        .collect();
    json!({"name": "x", "op": "Placeholder", "attr": {"shape": {"shape": {"dim": dims}}, "dtype": {"type": "DT_FLOAT"}}})
}

#[test]
fn unsupported_ops_are_named_together() {
    let m = model(json!([
        placeholder(&[-1, 4]),
        {"name": "a", "op": "While", "input": ["x"]},
        {"name": "b", "op": "Enter", "input": ["a"]},
        {"name": "c", "op": "While", "input": ["b"]},
    ]));
    let err = lower_graph_model(&m, vec![]).unwrap_err();
    assert!(
        matches!(&err, CoreError::UnknownLayers(v) if v.len() == 2),
        "{err}"
    );
    assert!(
        err.to_string().contains("While") && err.to_string().contains("Enter"),
        "{err}"
    );
}

#[test]
fn squeeze_expand_dims_and_math_ops_keep_the_batch_open() {
    let axis = DecodedWeight {
        name: "axis".into(),
        shape: vec![],
        data: TensorData::I32(vec![1]),
    };
    let m = model(json!([
        placeholder(&[-1, 1, 5]),
        {"name": "axis", "op": "Const", "attr": {"dtype": {"type": "DT_INT32"}}},
        {"name": "sq", "op": "Squeeze", "input": ["x"], "attr": {"squeeze_dims": {"list": {"i": ["1"]}}}},
        {"name": "r", "op": "Rsqrt", "input": ["sq"]},
        {"name": "s", "op": "Square", "input": ["r"]},
        {"name": "e", "op": "ExpandDims", "input": ["s", "axis"]},
    ]));
    let g = lower_graph_model(&m, vec![axis]).unwrap();
    for batch in [1, 3] {
        let shapes = g.infer_shapes(&[vec![batch, 1, 5]]).unwrap();
        assert_eq!(shapes[g.outputs[0]], vec![batch, 1, 5]);
    }
}
