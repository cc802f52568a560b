//! A GPU device destroyed *while* a predict is in flight (its work submitted, its results
//! being read back): that predict and the ones queued behind it are computed again on the
//! CPU and still match tfjs; the model says it fell back. (gpu_fallback.rs covers a device
//! lost between predicts.)

use std::path::Path;

use webinfer::{npy, BackendChoice, LoadOptions, Model, Tensor};

fn read(p: &Path) -> Tensor {
    npy::from_bytes(&std::fs::read(p).unwrap(), &p.display().to_string()).unwrap()
}

/// Same tolerance as tests/conformance.rs: |webinfer - tfjs| <= 1e-4 + 1e-3 |tfjs|.
fn assert_matches_tfjs(got: &[Tensor], want: &[Tensor], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: output count");
    for (o, (got, want)) in got.iter().zip(want).enumerate() {
        assert_eq!(got.shape(), want.shape(), "{what}: output {o}");
        for (i, (a, b)) in got.data().iter().zip(want.data()).enumerate() {
            assert!(
                (a - b).abs() <= 1e-4 + 1e-3 * b.abs(),
                "{what}: output {o}, element {i}: webinfer {a}, tfjs {b}"
            );
        }
    }
}

fn gpu_model(dir: &Path) -> Option<Model> {
    let opts = LoadOptions {
        backend: BackendChoice::Gpu,
        ..Default::default()
    };
    match futures::executor::block_on(Model::load_with(dir.join("model.json"), &opts)) {
        Ok(m) => Some(m),
        Err(e) => {
            assert!(
                std::env::var("WEBINFER_REQUIRE_GPU").as_deref() != Ok("1"),
                "WEBINFER_REQUIRE_GPU=1 but: {e}"
            );
            println!("SKIP (no GPU adapter): {e}");
            None
        }
    }
}

#[test]
fn device_lost_during_a_predict_retries_it_on_the_cpu() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/cnn_rich");
    let Some(model) = gpu_model(&dir) else { return };
    let x = read(&dir.join("input_0.npy"));
    let want = [
        read(&dir.join("expected_0.npy")),
        read(&dir.join("expected_1.npy")),
    ];
    let y = futures::executor::block_on(model.predict(std::slice::from_ref(&x))).unwrap();
    assert_matches_tfjs(&y, &want, "cnn_rich on the gpu");
    assert_eq!(model.backend_name(), "gpu");

    model.debug_lose_gpu_device_during_next_predict();
    let y = futures::executor::block_on(model.predict(std::slice::from_ref(&x)))
        .expect("the predict during which the device was lost");
    assert_matches_tfjs(&y, &want, "cnn_rich, device lost mid-predict");
    assert_eq!(model.backend_name(), "cpu");
    let note = model.gpu_fallback().expect("the model says it fell back");
    assert!(note.contains("lost") && note.contains("CPU"), "{note}");
    println!("fallback: {note}");
    assert_eq!(
        model.gpu_bytes(),
        None,
        "no GPU memory is reported after the fallback"
    );

    let y = futures::executor::block_on(model.predict(&[x])).unwrap();
    assert_matches_tfjs(&y, &want, "cnn_rich, the call after");
}

#[test]
fn device_lost_with_predicts_queued_behind_the_one_in_flight() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/dense_sequential");
    let Some(model) = gpu_model(&dir) else { return };
    let x = read(&dir.join("input_0.npy"));
    let want = [read(&dir.join("expected_0.npy"))];
    model.debug_lose_gpu_device_during_next_predict();
    // Six predicts at once: the first polled one loses the device during its readback, the
    // others are queued on the same execution plan and find the device gone.
    let calls: Vec<_> = (0..6)
        .map(|_| model.predict(std::slice::from_ref(&x)))
        .collect();
    for (i, y) in futures::executor::block_on(futures::future::join_all(calls))
        .into_iter()
        .enumerate()
    {
        let y = y.unwrap_or_else(|e| panic!("call {i}: {e}"));
        assert_matches_tfjs(
            &y,
            &want,
            &format!("dense_sequential, overlapping call {i}"),
        );
    }
    assert_eq!(model.backend_name(), "cpu");
    assert!(model.gpu_fallback().is_some());
}
