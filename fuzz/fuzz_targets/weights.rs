//! Weight decoding: an arbitrary weights manifest (the `weightsManifest` array, or a whole
//! `model.json` holding one) and arbitrary shard bytes, `JSON \0 BYTES`. Covers every dtype
//! (float32, int32, bool), float16 and uint8 / uint16 affine quantization, several groups
//! and shards, tensors straddling shard boundaries, and lengths that do not match.
#![no_main]

use libfuzzer_sys::{fuzz_mutator, fuzz_target};
use webinfer_fuzz::{shards, split};
use webinfer_tfjs::{
    decode_group, decode_weight, decode_weights, parse_model_json, parse_weights_manifest, Limits,
    TensorData,
};

fuzz_target!(|data: &[u8]| {
    let (json, bytes) = split(data);
    let limits = Limits::default();
    let manifest = match parse_model_json(json, &limits) {
        Ok(mj) => mj.weights_manifest,
        Err(_) => {
            let Ok(value) = serde_json::from_slice::<serde_json::Value>(json) else {
                return;
            };
            let Ok(m) = parse_weights_manifest(&value, &limits) else {
                return;
            };
            m
        }
    };
    let pieces = shards(&manifest, bytes);
    if let Ok(weights) = decode_weights(&manifest, &pieces) {
        // Every decoded tensor holds exactly the elements its shape declares.
        for w in &weights {
            let n: usize = w.shape.iter().product();
            assert_eq!(w.data.len(), n, "weight {}: {:?}", w.name, w.shape);
            if let TensorData::F32(v) = &w.data {
                let _ = v.iter().filter(|x| x.is_nan()).count();
            }
        }
    }
    for (g, (group, group_shards)) in manifest.iter().zip(&pieces).enumerate() {
        let _ = decode_group(group, g, group_shards);
        // One weight at a time, from the front of the bytes (lengths mostly wrong).
        for entry in &group.weights {
            let _ = decode_weight(entry, bytes);
            if let Ok(n) = usize::try_from(entry.stored_bytes()) {
                if let Some(exact) = bytes.get(..n) {
                    if let Ok(data) = decode_weight(entry, exact) {
                        assert_eq!(
                            u64::try_from(data.len()).ok(),
                            Some(entry.element_count()),
                            "weight {}",
                            entry.name
                        );
                    }
                }
            }
        }
    }
});

fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    webinfer_fuzz::mutate(data, size, max_size, seed)
});
