//! Decoded weights of the real pretrained models (uint8-quantized layers- and
//! graph-models from nsfwjs) must be bit-identical to what tfjs decodes.
//! Goldens: `golden/real-weight-hashes.txt`, written by
//! `golden/gen-real-weight-hashes.mjs` with tfjs 4.22. Skipped when the models
//! (git-ignored, fetched by the project's scripts) are absent.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use webinfer_tfjs::*;

fn hash(w: &DecodedWeight) -> u32 {
    let fold = |h: u32, bits: u32| h.wrapping_mul(31).wrapping_add(bits);
    match &w.data {
        TensorData::F32(v) => v.iter().fold(0, |h, x| fold(h, x.to_bits())),
        TensorData::I32(v) => v.iter().fold(0, |h, &x| fold(h, x as u32)),
        TensorData::Bool(v) => v.iter().fold(0, |h, &x| fold(h, u32::from(x))),
    }
}

#[test]
fn real_model_weights_match_tfjs_bit_for_bit() {
    let golden = include_str!("golden/real-weight-hashes.txt");
    let mut by_model: BTreeMap<&str, Vec<(usize, u32, &str)>> = BTreeMap::new();
    for line in golden.lines() {
        let mut parts = line.splitn(4, ' ');
        let (Some(model), Some(count), Some(h), Some(name)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            panic!("bad golden line: {line}")
        };
        by_model.entry(model).or_default().push((
            count.parse().unwrap(),
            u32::from_str_radix(h, 16).unwrap(),
            name,
        ));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/real/models");
    let mut checked = 0;
    for (model, want) in &by_model {
        let dir = root.join(model);
        let Ok(json) = fs::read(dir.join("model.json")) else {
            eprintln!("skipping {model}: not present under {}", root.display());
            continue;
        };
        let m = parse_model_json(&json, &Limits::default()).unwrap();
        let files: Vec<Vec<Vec<u8>>> = m
            .weights_manifest
            .iter()
            .map(|g| {
                g.paths
                    .iter()
                    .map(|p| fs::read(dir.join(p)).unwrap())
                    .collect()
            })
            .collect();
        let shards: Vec<Vec<&[u8]>> = files
            .iter()
            .map(|g| g.iter().map(Vec::as_slice).collect())
            .collect();
        let got = decode_weights(&m.weights_manifest, &shards).unwrap();
        assert_eq!(got.len(), want.len(), "{model}: number of weights");
        for (w, &(count, h, name)) in got.iter().zip(want) {
            assert_eq!((w.name.as_str(), w.data.len()), (name, count), "{model}");
            assert_eq!(hash(w), h, "{model}: weight \"{name}\" differs from tfjs");
        }
        checked += got.len();
    }
    eprintln!("{checked} weights bit-identical to tfjs");
}
