//! Building a model from an arbitrary `(model.json, shard bytes)` pair, `JSON \0 BYTES`, with
//! `webinfer::Model::from_memory` on the CPU backend, then one predict on an input of the
//! declared shape (open dims as 1). The limits are [`webinfer_fuzz::fuzz_limits`]: tight, so
//! that anything allocated outside them stands out.
#![no_main]

use std::collections::HashMap;

use futures::executor::block_on;
use libfuzzer_sys::{fuzz_mutator, fuzz_target};
use webinfer::{BackendChoice, LoadOptions, Model, Tensor};
use webinfer_core::Op;
use webinfer_fuzz::{fuzz_limits, shards, split};
use webinfer_tfjs::parse_model_json;

/// Skip the predict when a rough count of multiply-adds is above this (keeps runs fast).
const MAX_WORK: u64 = 50_000_000;

fuzz_target!(|data: &[u8]| {
    let (json, bytes) = split(data);
    let limits = fuzz_limits();
    let mut files = HashMap::new();
    if let Ok(mj) = parse_model_json(json, &limits) {
        for (group, pieces) in mj
            .weights_manifest
            .iter()
            .zip(shards(&mj.weights_manifest, bytes))
        {
            for (path, piece) in group.paths.iter().zip(pieces) {
                files.insert(path.clone(), piece.to_vec());
            }
        }
    }
    let options = LoadOptions {
        backend: BackendChoice::Cpu,
        limits,
        ..LoadOptions::default()
    };
    let Ok(model) = block_on(Model::from_memory(json, files, &options)) else {
        return;
    };
    let shapes: Vec<Vec<usize>> = model
        .inputs()
        .iter()
        .map(|i| i.shape.iter().map(|d| d.unwrap_or(1)).collect())
        .collect();
    if work(&model, &shapes) > MAX_WORK {
        return;
    }
    let mut inputs = Vec::with_capacity(shapes.len());
    for shape in shapes {
        let n: usize = shape.iter().product();
        let values = (0..n).map(|k| (k % 7) as f32 * 0.25 - 0.75).collect();
        inputs.push(Tensor::new(shape, values).expect("length matches the shape"));
    }
    if let Ok(outputs) = block_on(model.predict(&inputs)) {
        assert_eq!(outputs.len(), model.outputs().len());
    }
});

/// A rough upper bound on the multiply-adds of one predict (0 when shapes do not infer: the
/// predict then fails fast).
fn work(model: &Model, shapes: &[Vec<usize>]) -> u64 {
    let graph = model.graph();
    let Ok(all) = graph.infer_shapes(shapes) else {
        return 0;
    };
    let count = |s: &[usize]| s.iter().fold(1u64, |a, &d| a.saturating_mul(d as u64));
    let mut total = 0u64;
    for (id, node) in graph.nodes.iter().enumerate() {
        let out = count(&all[id]);
        let per = match &node.op {
            Op::Pool2d { window, .. } => (window[0] as u64).saturating_mul(window[1] as u64),
            _ => node
                .inputs
                .iter()
                .filter_map(|&v| graph.as_constant(v))
                .fold(1u64, |a, t| a.saturating_add(t.len() as u64)),
        };
        let reads = node
            .inputs
            .iter()
            .fold(0u64, |a, &v| a.saturating_add(count(&all[v])));
        total = total
            .saturating_add(out.saturating_mul(per))
            .saturating_add(reads);
    }
    total
}

fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    webinfer_fuzz::mutate(data, size, max_size, seed)
});
