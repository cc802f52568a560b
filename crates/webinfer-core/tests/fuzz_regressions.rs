//! Inputs found by fuzzing (`scripts/fuzz.sh`) and the same bugs written small by hand: shape
//! arithmetic on absurd sizes from a model file must fail with an error naming the layer, never
//! overflow (a panic in debug builds, a silently wrong shape in release ones).
//!
//! `tests/fuzz/*.bin` are the fuzzer's minimized inputs (`model.json`, a NUL byte, then the
//! shard bytes: the format of `fuzz/src/lib.rs`).

use serde_json::json;
use webinfer_core::{lower, CoreError};
use webinfer_tfjs::{
    decode_weights, parse_layers_topology, parse_model_json, DecodedWeight, Limits, TensorData,
};

const HUGE: u64 = 1 << 62;

/// A functional model: inputs `x0, x1, ...` of the given shapes, then `layers`, output `out`.
fn model(
    inputs: &[serde_json::Value],
    layers: Vec<serde_json::Value>,
) -> webinfer_tfjs::LayersModel {
    let mut all = Vec::new();
    let mut names = Vec::new();
    for (i, shape) in inputs.iter().enumerate() {
        let name = format!("x{i}");
        all.push(
            json!({"class_name": "InputLayer", "name": name, "inbound_nodes": [],
            "config": {"name": name, "batch_input_shape": shape, "dtype": "float32"}}),
        );
        names.push(json!([name, 0, 0]));
    }
    all.extend(layers);
    let topo = json!({"class_name": "Model", "config": {"name": "m", "layers": all,
        "input_layers": names, "output_layers": [["out", 0, 0]]}});
    parse_layers_topology(&topo, &Limits::default()).unwrap()
}

fn layer(class: &str, config: serde_json::Value, inbound: &[&str]) -> serde_json::Value {
    let mut config = config;
    config["name"] = "out".into();
    let refs: Vec<_> = inbound.iter().map(|i| json!([i, 0, 0, {}])).collect();
    json!({"class_name": class, "name": "out", "config": config, "inbound_nodes": [refs]})
}

fn zeros(name: &str, shape: &[usize]) -> DecodedWeight {
    DecodedWeight {
        name: name.into(),
        shape: shape.to_vec(),
        data: TensorData::F32(vec![0.0; shape.iter().product()]),
    }
}

/// Lowering must fail with an error about layer "out" that says the shape overflows or does
/// not fit.
fn assert_refused(m: &webinfer_tfjs::LayersModel, weights: Vec<DecodedWeight>) {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        lower::lower_layers_model(m, weights)
    }));
    let lowered = result.unwrap_or_else(|_| panic!("lowering panicked"));
    match lowered {
        Ok(g) => panic!("lowered into a graph: {g:?}"),
        Err(e) => {
            let msg = e.to_string();
            assert!(
                matches!(e, CoreError::Shape { .. } | CoreError::Layer { .. }),
                "{msg}"
            );
            assert!(msg.contains("\"out\""), "the error names the layer: {msg}");
        }
    }
}

#[test]
fn upsampling_by_a_huge_factor_is_refused() {
    let m = model(
        &[json!([null, 8, 8, 1])],
        vec![layer("UpSampling2D", json!({"size": [HUGE, 1]}), &["x0"])],
    );
    assert_refused(&m, vec![]);
}

#[test]
fn zero_padding_by_a_huge_amount_is_refused() {
    let m = model(
        &[json!([null, 8, 8, 1])],
        vec![layer(
            "ZeroPadding2D",
            json!({"padding": [[HUGE * 2, HUGE * 2], [0, 0]]}),
            &["x0"],
        )],
    );
    assert_refused(&m, vec![]);
}

#[test]
fn concatenating_huge_inputs_is_refused() {
    let m = model(
        &[json!([null, HUGE * 2]), json!([null, HUGE * 2])],
        vec![layer("Concatenate", json!({"axis": -1}), &["x0", "x1"])],
    );
    assert_refused(&m, vec![]);
}

#[test]
fn transposed_convolution_with_a_huge_stride_is_refused() {
    let m = model(
        &[json!([null, 8, 8, 1])],
        vec![layer(
            "Conv2DTranspose",
            json!({"filters": 1, "kernel_size": [1, 1], "strides": [HUGE, 1], "use_bias": false}),
            &["x0"],
        )],
    );
    assert_refused(&m, vec![zeros("out/kernel", &[1, 1, 1, 1])]);
}

#[test]
fn same_padding_with_a_huge_dilation_is_refused() {
    let m = model(
        &[json!([null, 8, 8, 1])],
        vec![layer(
            "Conv2D",
            json!({"filters": 1, "kernel_size": [3, 3], "padding": "same",
                   "dilation_rate": [i64::MAX, 1], "use_bias": false}),
            &["x0"],
        )],
    );
    assert_refused(&m, vec![zeros("out/kernel", &[3, 3, 1, 1])]);
}

#[test]
fn huge_groups_on_an_empty_kernel_are_refused() {
    let m = model(
        &[json!([null, 8, 8, 4])],
        vec![layer(
            "Conv2D",
            json!({"filters": 0, "kernel_size": [1, 1], "groups": HUGE, "use_bias": false}),
            &["x0"],
        )],
    );
    assert_refused(&m, vec![zeros("out/kernel", &[1, 1, 4, 0])]);
}

#[test]
fn cropping_past_i64_max_is_refused() {
    let m = model(
        &[json!([null, 8, 8, 1])],
        vec![layer(
            "Cropping2D",
            json!({"cropping": [[1, HUGE * 2], [1, 1]]}),
            &["x0"],
        )],
    );
    assert_refused(&m, vec![]);
}

/// Parse, decode and lower a fuzzer input; the weights must decode (so that what is tested is
/// the lowering), and the lowering must fail without panicking. Returns the error.
fn lower_fuzz_input(name: &str) -> String {
    let path = format!("{}/tests/fuzz/{name}", env!("CARGO_MANIFEST_DIR"));
    let data = std::fs::read(&path).unwrap();
    let (json, shard) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&data[..], &[][..]),
    };
    let limits = Limits::default();
    let mj = parse_model_json(json, &limits).unwrap();
    let topology = parse_layers_topology(&mj.topology, &limits).unwrap();
    // These inputs have at most one group of one shard.
    let shards: Vec<Vec<&[u8]>> = mj.weights_manifest.iter().map(|_| vec![shard]).collect();
    let weights = decode_weights(&mj.weights_manifest, &shards).unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        lower::lower_layers_model(&topology, weights)
    }));
    match result {
        Err(_) => panic!("{name}: lowering panicked"),
        Ok(Ok(g)) => panic!("{name}: lowered into {g:?}"),
        Ok(Err(e)) => e.to_string(),
    }
}

#[test]
fn fuzz_input_same_padding_with_a_dilation_of_i64_max() {
    // DepthwiseConv2D "dw_same": kernel 3, dilation 2^63 - 1, 'same' padding: the padding sum
    // overflowed in Padding::resolve.
    let err = lower_fuzz_input("same_padding_huge_dilation.bin");
    assert!(
        err.contains("\"dw_same\"") && err.contains("does not fit"),
        "{err}"
    );
}

#[test]
fn fuzz_input_cropping_past_i64_max() {
    // Cropping2D "p_1" with a crop of 2^63: negating it overflowed.
    let err = lower_fuzz_input("cropping_past_i64_max.bin");
    assert!(err.contains("\"p_1\""), "{err}");
}

#[test]
fn fuzz_input_conv_with_a_dilation_of_2_pow_62() {
    // Conv2D "conv": kernel 3, dilation 2^62, 'same' padding on a 6x6 input: the shape was
    // fine but the padding (about 2^62) overflowed the CPU kernel's signed index arithmetic.
    // Such geometry is refused at load now (windows, strides, paddings over 2^31 cells).
    let err = lower_fuzz_input("conv_dilation_2_62_same.bin");
    assert!(
        err.contains("\"conv\"") && err.contains("does not fit"),
        "{err}"
    );
}

#[test]
fn a_pointwise_conv_with_a_dilation_of_u64_max_is_refused() {
    // Found by fuzzing (functional_two_in_two_out with proj's dilation_rate [1, 2^64 - 1]):
    // a 1x1 kernel makes the dilation irrelevant to the shape, but the CPU kernel's row and
    // column steps (dilation x width x channels) overflowed. Dilations (and strides, windows,
    // paddings) over 2^31 are refused at load.
    let m = model(
        &[json!([null, 4, 7, 3])],
        vec![layer(
            "Conv2D",
            json!({"filters": 4, "kernel_size": [1, 1], "dilation_rate": [1, u64::MAX],
                   "use_bias": false}),
            &["x0"],
        )],
    );
    assert_refused(&m, vec![zeros("out/kernel", &[1, 1, 3, 4])]);
}
