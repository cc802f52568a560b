//! A GPU device lost during predict: that call and every later one run on the CPU, the model
//! says so, and the results still match tfjs.

use std::path::Path;

use webinfer::{npy, BackendChoice, LoadOptions, Model, Tensor};

fn read(p: &Path) -> Tensor {
    npy::from_bytes(&std::fs::read(p).unwrap(), &p.display().to_string()).unwrap()
}

fn assert_matches_tfjs(got: &Tensor, want: &Tensor, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}");
    for (i, (a, b)) in got.data().iter().zip(want.data()).enumerate() {
        // Same tolerance as tests/conformance.rs.
        assert!(
            (a - b).abs() <= 1e-4 + 1e-3 * b.abs(),
            "{what}: element {i}: webinfer {a}, tfjs {b}"
        );
    }
}

#[test]
fn device_loss_falls_back_to_the_cpu() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/cnn_rich");
    let opts = LoadOptions {
        backend: BackendChoice::Gpu,
        ..Default::default()
    };
    let model = match futures::executor::block_on(Model::load_with(dir.join("model.json"), &opts)) {
        Ok(m) => m,
        Err(e) => {
            assert!(
                std::env::var("WEBINFER_REQUIRE_GPU").as_deref() != Ok("1"),
                "WEBINFER_REQUIRE_GPU=1 but: {e}"
            );
            println!("SKIP device_loss_falls_back_to_the_cpu: {e}");
            return;
        }
    };
    let x = read(&dir.join("input_0.npy"));
    let want = read(&dir.join("expected_0.npy"));
    assert_eq!(model.backend_name(), "gpu");
    let y = futures::executor::block_on(model.predict(std::slice::from_ref(&x))).unwrap();
    assert_matches_tfjs(&y[0], &want, "cnn_rich on gpu");

    model.debug_lose_gpu_device();
    let y = futures::executor::block_on(model.predict(std::slice::from_ref(&x)))
        .expect("predict after device loss");
    assert_matches_tfjs(&y[0], &want, "cnn_rich after device loss");
    assert_eq!(model.backend_name(), "cpu");
    let note = model.gpu_fallback().expect("the model says it fell back");
    assert!(note.contains("lost") && note.contains("CPU"), "{note}");

    let y = futures::executor::block_on(model.predict(&[x])).unwrap();
    assert_matches_tfjs(&y[0], &want, "cnn_rich, later call");
}
