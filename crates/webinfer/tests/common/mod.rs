//! Shared by the `ModelBuilder` test suites.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use webinfer::{ModelBuilder, Tensor};

/// The conformance suite's tolerance (tests/conformance.rs): |got - tfjs| <= 1e-4 + 1e-3 |tfjs|.
pub const ABS_TOL: f32 = 1e-4;
pub const REL_TOL: f32 = 1e-3;

/// A conformance fixture's folder (tests/fixtures: files tfjs made, outputs tfjs computed).
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

pub fn npy(p: &Path) -> Tensor {
    webinfer::npy::from_bytes(&std::fs::read(p).unwrap(), &p.display().to_string()).unwrap()
}

/// Gives `builder` the shard files of the model in `dir` in `chunk`-byte pieces, files
/// interleaved back to front (as concurrent downloads deliver them: later files' bytes
/// first), then every file's length.
pub fn feed_shards(builder: &mut ModelBuilder, dir: &Path, chunk: usize) {
    let paths: Vec<String> = builder.decoder().file_paths().map(str::to_owned).collect();
    let files: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| std::fs::read(dir.join(p)).unwrap())
        .collect();
    let mut at = vec![0usize; files.len()];
    while (0..files.len()).any(|i| at[i] < files[i].len()) {
        for i in (0..files.len()).rev() {
            if at[i] < files[i].len() {
                let end = (at[i] + chunk).min(files[i].len());
                builder
                    .decoder()
                    .write(i, at[i] as u64, &files[i][at[i]..end])
                    .unwrap();
                at[i] = end;
            }
        }
    }
    for (i, f) in files.iter().enumerate() {
        builder
            .decoder()
            .set_file_length(i, f.len() as u64)
            .unwrap();
    }
}
