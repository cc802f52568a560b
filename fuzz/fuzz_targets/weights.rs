//! Weight decoding: an arbitrary weights manifest (the `weightsManifest` array, or a whole
//! `model.json` holding one) and arbitrary shard bytes, `JSON \0 BYTES`. Covers every dtype
//! (float32, int32, bool), float16 and uint8 / uint16 affine quantization, several groups
//! and shards, tensors straddling shard boundaries, and lengths that do not match; and the
//! streaming decoder (`StreamDecoder`) against the whole-shard one, bit for bit.
#![no_main]

use std::cell::RefCell;
use std::rc::Rc;

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
    let whole = decode_weights(&manifest, &pieces);
    // The streaming decoder, fed the same files in chunks (size from the data), files
    // back to front and interleaved, lengths at the end, must agree bit for bit.
    // The streaming decoder allocates a weight when its first byte arrives: on inputs whose
    // bytes do not add up it only runs when the declared weights are small.
    let declared: u64 = manifest
        .iter()
        .flat_map(|g| &g.weights)
        .map(|w| w.element_count().saturating_mul(4))
        .fold(0, u64::saturating_add);
    let chunk = 1 + usize::from(bytes.first().copied().unwrap_or(0) % 13);
    // How the lengths come: 0 at the end, 1 first for every file but the first (the
    // decoder infers that one), 2 as 1 with every float weight diverted to a sink, 3 as 2 with
    // the uint8 and float16 ones diverted as stored (their bytes, decoded here).
    let mode = bytes.get(1).copied().unwrap_or(0) % 4;
    if whole.is_ok() || declared <= 64 << 20 {
        let streamed = stream(&manifest, &pieces, chunk, mode);
        match (&whole, &streamed) {
            (Ok(a), Ok(b)) => assert_eq!(bits(a), bits(b), "stream and whole decoding differ"),
            (Ok(_), Err(e)) => panic!("whole decoding succeeded, streaming failed: {e}"),
            (Err(_), _) => {}
        }
    }
    if let Ok(weights) = whole {
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

/// A weight diverted as stored: its bytes, collected.
struct CollectBytes(Rc<RefCell<Vec<u8>>>);

impl webinfer_tfjs::StoredSink for CollectBytes {
    fn write(&mut self, offset: usize, bytes: &[u8]) -> Result<(), String> {
        let mut all = self.0.borrow_mut();
        let end = offset + bytes.len();
        let slot = all.get_mut(offset..end).ok_or("written past the end")?;
        slot.copy_from_slice(bytes);
        Ok(())
    }
}

/// A diverted weight's values, collected.
struct Collect(Rc<RefCell<Vec<f32>>>);

impl webinfer_tfjs::ValueSink for Collect {
    fn write(&mut self, first: usize, values: &[f32]) -> Result<(), String> {
        let mut all = self.0.borrow_mut();
        let end = first + values.len();
        let slot = all.get_mut(first..end).ok_or("written past the end")?;
        slot.copy_from_slice(values);
        Ok(())
    }
}

fn stream(
    manifest: &[webinfer_tfjs::WeightGroup],
    pieces: &[Vec<&[u8]>],
    chunk: usize,
    mode: u8,
) -> Result<Vec<webinfer_tfjs::DecodedWeight>, webinfer_tfjs::FormatError> {
    let mut d = webinfer_tfjs::StreamDecoder::new(manifest)?;
    let files: Vec<&[u8]> = pieces.iter().flatten().copied().collect();
    if mode >= 1 {
        for (i, f) in files.iter().enumerate().skip(1) {
            d.set_file_length(i, f.len() as u64)?;
        }
    }
    let mut diverted = Vec::new();
    let mut stored = Vec::new();
    if mode >= 2 {
        for w in manifest.iter().flat_map(|g| &g.weights) {
            let Ok(n) = usize::try_from(w.element_count()) else {
                continue;
            };
            if n > 1 << 20 {
                continue;
            }
            if mode == 3 {
                if let Some(format) = d.stored_format(&w.name) {
                    let per = if matches!(format, webinfer_tfjs::CodeFormat::F16) {
                        2
                    } else {
                        1
                    };
                    let got = Rc::new(RefCell::new(vec![0u8; n * per]));
                    d.divert_stored(&w.name, Box::new(CollectBytes(got.clone())))
                        .expect("a weight with a stored format can be diverted as stored");
                    stored.push((w.name.clone(), format, got));
                    continue;
                }
            }
            let got = Rc::new(RefCell::new(vec![f32::NAN; n]));
            if d.divert(&w.name, Box::new(Collect(got.clone()))).is_ok() {
                diverted.push((w.name.clone(), got));
            }
        }
    }
    let mut at = vec![0usize; files.len()];
    loop {
        let mut progressed = false;
        for i in (0..files.len()).rev() {
            if at[i] < files[i].len() {
                let end = (at[i] + chunk).min(files[i].len());
                d.write(i, at[i] as u64, &files[i][at[i]..end])?;
                at[i] = end;
                progressed = true;
            }
        }
        if !progressed {
            break;
        }
    }
    for (i, f) in files.iter().enumerate() {
        d.set_file_length(i, f.len() as u64)?;
    }
    let mut weights = d.finish()?;
    // A diverted weight comes back empty: put what its sink got in its place.
    for (name, got) in diverted {
        if let Some(w) = weights.iter_mut().find(|w| w.name == name) {
            assert!(w.data.is_empty(), "diverted weight {name} was held");
            w.data = TensorData::F32(got.borrow().clone());
        }
    }
    for (name, format, got) in stored {
        if let Some(w) = weights.iter_mut().find(|w| w.name == name) {
            assert!(
                w.data.is_empty(),
                "weight {name} diverted as stored was held"
            );
            let bytes = got.borrow();
            w.data = TensorData::F32(match format {
                webinfer_tfjs::CodeFormat::U8 { lut } => {
                    bytes.iter().map(|&q| lut[q as usize]).collect()
                }
                webinfer_tfjs::CodeFormat::F16 => bytes
                    .chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect(),
            });
        }
    }
    Ok(weights)
}
fn bits(w: &[webinfer_tfjs::DecodedWeight]) -> Vec<(String, Vec<u32>)> {
    w.iter()
        .map(|w| {
            let v = match &w.data {
                TensorData::F32(v) => v.iter().map(|x| x.to_bits()).collect(),
                TensorData::I32(v) => v.iter().map(|&x| x as u32).collect(),
                TensorData::Bool(v) => v.iter().map(|&x| u32::from(x)).collect(),
            };
            (w.name.clone(), v)
        })
        .collect()
}

fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    webinfer_fuzz::mutate(data, size, max_size, seed)
});
