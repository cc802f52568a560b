//! `webinfer::gpu_memory()` counts the GPU buffers and devices webinfer holds, and dropping a
//! model releases all of them (its device is destroyed). One test in this binary: the
//! counters are process-wide.

use std::path::Path;

use webinfer::{gpu_memory, npy, BackendChoice, LoadOptions, Model};

#[test]
fn dropping_models_releases_every_gpu_buffer_and_device() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/cnn_rich");
    let opts = LoadOptions {
        backend: BackendChoice::Gpu,
        ..Default::default()
    };
    let x = npy::from_bytes(
        &std::fs::read(dir.join("input_0.npy")).unwrap(),
        "input_0.npy",
    )
    .unwrap();
    let start = gpu_memory();
    assert_eq!(start.buffer_bytes, 0);
    assert_eq!(start.devices, 0);
    for cycle in 0..3 {
        let model =
            match futures::executor::block_on(Model::load_with(dir.join("model.json"), &opts)) {
                Ok(m) => m,
                Err(e) => {
                    assert!(
                        std::env::var("WEBINFER_REQUIRE_GPU").as_deref() != Ok("1"),
                        "WEBINFER_REQUIRE_GPU=1 but: {e}"
                    );
                    println!("SKIP (no GPU adapter): {e}");
                    return;
                }
            };
        // The input's batch (2) differs from the declared one (open, planned as 1): predict
        // builds a second execution plan.
        for _ in 0..5 {
            futures::executor::block_on(model.predict(std::slice::from_ref(&x))).unwrap();
        }
        let live = gpu_memory();
        let (weights, peak) = model.gpu_bytes().unwrap();
        assert_eq!(live.devices, 1, "cycle {cycle}");
        // Weights + both plans' buffers + the 16-byte placeholder: more than the peak (one
        // plan), and no readback staging buffer left over from the five predicts.
        assert!(
            live.buffer_bytes > peak && peak > weights,
            "cycle {cycle}: {live:?}, weights {weights}, peak {peak}"
        );
        assert!(
            live.buffer_bytes < 2 * peak + 16,
            "cycle {cycle}: {live:?}, peak {peak}"
        );
        drop(model);
        assert_eq!(gpu_memory(), start, "cycle {cycle}: after drop");
    }
}
