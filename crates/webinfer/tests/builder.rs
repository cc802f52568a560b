//! `ModelBuilder` fed shard bytes in small chunks, files interleaved and back to front (as
//! concurrent downloads deliver them), predicts what TensorFlow.js predicts: the expected
//! outputs are tfjs's own (tests/fixtures, cpu backend), compared with the conformance
//! suite's tolerance. Covers float32, float16 and uint8 fixtures and a two-group, five-shard one.

use std::path::{Path, PathBuf};

use webinfer::{BackendChoice, LoadOptions, ModelBuilder};

/// The conformance suite's tolerance (tests/conformance.rs): |got - tfjs| <= 1e-4 + 1e-3 |tfjs|.
const ABS_TOL: f32 = 1e-4;
const REL_TOL: f32 = 1e-3;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

fn npy(p: &Path) -> webinfer::Tensor {
    webinfer::npy::from_bytes(&std::fs::read(p).unwrap(), &p.display().to_string()).unwrap()
}

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
            let paths: Vec<String> = builder.decoder().file_paths().map(str::to_owned).collect();
            let files: Vec<Vec<u8>> = paths
                .iter()
                .map(|p| std::fs::read(dir.join(p)).unwrap())
                .collect();
            let mut at = vec![0usize; files.len()];
            loop {
                let mut progressed = false;
                for i in (0..files.len()).rev() {
                    if at[i] < files[i].len() {
                        let end = (at[i] + chunk).min(files[i].len());
                        builder
                            .decoder()
                            .write(i, at[i] as u64, &files[i][at[i]..end])
                            .unwrap();
                        at[i] = end;
                        progressed = true;
                    }
                }
                if !progressed {
                    break;
                }
            }
            for (i, f) in files.iter().enumerate() {
                builder
                    .decoder()
                    .set_file_length(i, f.len() as u64)
                    .unwrap();
            }
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
