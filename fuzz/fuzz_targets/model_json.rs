//! Arbitrary bytes as a `model.json`: parse it, then its topology as its format says (layers
//! or graph), then read every layer config / node attribute through the typed accessors the
//! lowering uses; and the shard paths as a loader peeks at them first. Default limits:
//! parsing never allocates by a declared size. The JSON parser refuses what serde_json refuses.
#![no_main]

use libfuzzer_sys::{fuzz_mutator, fuzz_target};
use webinfer_tfjs::{
    parse_graph_model, parse_layers_topology, parse_model_json, peek_shard_paths, Limits,
    ModelFormat,
};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    // What a loader reads first: never a panic, and never a path the full parse does not
    // find in that place (it may find none where it is unsure).
    let peeked = peek_shard_paths(data, &limits, 4);
    // With tight limits: paths only for a manifest the full parse finds within them (a
    // model over a limit is refused before any shard is requested).
    let tight = Limits {
        max_shards: 2,
        max_weights: 4,
        max_rank: 3,
        max_tensor_elements: 64,
        max_total_weight_bytes: 256,
        ..Limits::default()
    };
    if peek_shard_paths(data, &tight, 4).is_ok_and(|p| !p.is_empty()) {
        let full = parse_model_json(data, &tight);
        assert!(
            !matches!(full, Err(webinfer_tfjs::FormatError::Limit { .. })),
            "paths peeked from a manifest over a limit: {:?}",
            full.err()
        );
    }
    let parsed = parse_model_json(data, &limits);
    // model.json's JSON parser refuses exactly what serde_json refuses (its unit tests compare
    // the values too), a leading byte-order mark aside.
    let text = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let serde_ok = serde_json::from_slice::<serde_json::Value>(text).is_ok();
    let refused = matches!(parsed, Err(webinfer_tfjs::FormatError::Json { .. }));
    assert_eq!(serde_ok, !refused, "serde_json accepts: {serde_ok}, parse: {parsed:?}");
    let Ok(mj) = parsed else {
        return;
    };
    if let Ok(p) = &peeked {
        let all: Vec<&str> = mj.shard_paths().collect();
        assert!(
            p.len() <= all.len() && p.iter().zip(&all).all(|(a, b)| a == b),
            "peeked other paths: {p:?} of {all:?}"
        );
    }
    let _ = mj.total_weight_bytes();
    let _ = mj.shard_paths().count();
    match mj.format {
        ModelFormat::LayersModel => {
            let Ok(model) = parse_layers_topology(&mj.topology, &limits) else {
                return;
            };
            for layer in &model.layers {
                let _ = layer.is_input_layer();
                let _ = layer.activation_name();
                for key in layer.config.keys() {
                    let _ = layer.get_usize(key);
                    let _ = layer.get_i64(key);
                    let _ = layer.usize_pair(key);
                    let _ = layer.get_f32(key);
                    let _ = layer.get_f64(key);
                    let _ = layer.get_str(key);
                    let _ = layer.get_bool(key);
                    let _ = layer.get_shape(key);
                    let _ = layer.get_int_list(key);
                }
            }
            let _ = webinfer_core::lower::unsupported_layers(&model);
        }
        ModelFormat::GraphModel => {
            let Ok(model) = parse_graph_model(&mj, &limits) else {
                return;
            };
            for node in &model.nodes {
                for key in node.attrs.keys() {
                    let _ = node.attr_str(key);
                    let _ = node.attr_strs(key);
                    let _ = node.attr_int(key);
                    let _ = node.attr_ints(key);
                    let _ = node.attr_f32(key);
                    let _ = node.attr_bool(key);
                    let _ = node.attr_shape(key);
                }
            }
            let _ = webinfer_core::lower::graph::unsupported_ops(&model);
        }
    }
});

fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    webinfer_fuzz::mutate(data, size, max_size, seed)
});
