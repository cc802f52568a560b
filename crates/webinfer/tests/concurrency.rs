//! Overlapping predicts on one `Model` return each caller its own results: from several
//! threads at once (a `Model` is `Send + Sync` natively), and as futures joined on one thread
//! (how a browser page overlaps them). Each call gets a different input (the two tfjs
//! examples of cnn_rich stacked in a different order and count), so a result handed to the
//! wrong caller, or two runs mixing their buffers, fails; the expected values are tfjs's.

use std::path::{Path, PathBuf};

use webinfer::{npy, BackendChoice, LoadOptions, Model, Tensor};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/cnn_rich")
}

fn read(p: &Path) -> Tensor {
    npy::from_bytes(&std::fs::read(p).unwrap(), &p.display().to_string()).unwrap()
}

/// Rows `rows` of `t` (batch axis first), stacked.
fn stack(t: &Tensor, rows: &[usize]) -> Tensor {
    let per: usize = t.shape()[1..].iter().product();
    let mut data = Vec::with_capacity(rows.len() * per);
    for &r in rows {
        data.extend_from_slice(&t.data()[r * per..(r + 1) * per]);
    }
    let mut shape = t.shape().to_vec();
    shape[0] = rows.len();
    Tensor::new(shape, data).unwrap()
}

/// The inputs of the overlapping calls: every one different.
const CALLS: [&[usize]; 8] = [
    &[0],
    &[1],
    &[0, 1],
    &[1, 0],
    &[1, 1, 0],
    &[0, 0, 1],
    &[1, 0, 1, 0],
    &[0, 1, 1, 1],
];

/// Same tolerance as tests/conformance.rs: |webinfer - tfjs| <= 1e-4 + 1e-3 |tfjs|.
fn assert_matches_tfjs(got: &Tensor, want: &Tensor, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    for (i, (a, b)) in got.data().iter().zip(want.data()).enumerate() {
        assert!(
            (a - b).abs() <= 1e-4 + 1e-3 * b.abs(),
            "{what}: element {i}: webinfer {a}, tfjs {b}"
        );
    }
}

struct Case {
    x: Tensor,
    expected: Vec<Tensor>,
}

fn load(backend: BackendChoice) -> Option<(Model, Case)> {
    let dir = fixture();
    let opts = LoadOptions {
        backend,
        ..Default::default()
    };
    let model = match futures::executor::block_on(Model::load_with(dir.join("model.json"), &opts)) {
        Ok(m) => m,
        Err(e) if backend == BackendChoice::Gpu => {
            assert!(
                std::env::var("WEBINFER_REQUIRE_GPU").as_deref() != Ok("1"),
                "WEBINFER_REQUIRE_GPU=1 but: {e}"
            );
            println!("SKIP (no GPU adapter): {e}");
            return None;
        }
        Err(e) => panic!("{e}"),
    };
    let case = Case {
        x: read(&dir.join("input_0.npy")),
        expected: vec![
            read(&dir.join("expected_0.npy")),
            read(&dir.join("expected_1.npy")),
        ],
    };
    Some((model, case))
}

fn check(case: &Case, call: usize, outputs: &[Tensor], how: &str) {
    let rows = CALLS[call];
    assert_eq!(outputs.len(), case.expected.len(), "{how}: call {call}");
    for (o, (got, want)) in outputs.iter().zip(&case.expected).enumerate() {
        assert_matches_tfjs(
            got,
            &stack(want, rows),
            &format!("{how}: call {call} (tfjs examples {rows:?}), output {o}"),
        );
    }
}

fn threads(backend: BackendChoice, how: &str) {
    let Some((model, case)) = load(backend) else {
        return;
    };
    let inputs: Vec<Tensor> = CALLS.iter().map(|rows| stack(&case.x, rows)).collect();
    // Every thread waits for the others before predicting, so that the calls overlap.
    let barrier = std::sync::Barrier::new(CALLS.len());
    let results: Vec<Vec<Tensor>> = std::thread::scope(|s| {
        let handles: Vec<_> = inputs
            .iter()
            .map(|x| {
                let (model, barrier) = (&model, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    // Three rounds per thread: more chances to interleave.
                    let mut last = None;
                    for _ in 0..3 {
                        last = Some(
                            futures::executor::block_on(model.predict(std::slice::from_ref(x)))
                                .unwrap(),
                        );
                    }
                    last.unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (call, out) in results.iter().enumerate() {
        check(&case, call, out, how);
    }
    assert_eq!(
        model.backend_name(),
        if backend == BackendChoice::Gpu {
            "gpu"
        } else {
            "cpu"
        }
    );
}

fn joined(backend: BackendChoice, how: &str) {
    let Some((model, case)) = load(backend) else {
        return;
    };
    let inputs: Vec<Tensor> = CALLS.iter().map(|rows| stack(&case.x, rows)).collect();
    // All eight futures exist before any is polled; join_all polls them in turn, so on the
    // GPU they queue on the same execution plans and readbacks.
    let futures: Vec<_> = inputs
        .iter()
        .map(|x| model.predict(std::slice::from_ref(x)))
        .collect();
    let results = futures::executor::block_on(futures::future::join_all(futures));
    for (call, out) in results.into_iter().enumerate() {
        check(&case, call, &out.unwrap(), how);
    }
}

#[test]
fn model_is_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Model>();
}

#[test]
fn overlapping_predicts_from_threads_cpu() {
    threads(BackendChoice::Cpu, "cpu, 8 threads");
}

#[test]
fn overlapping_predicts_from_threads_gpu() {
    threads(BackendChoice::Gpu, "gpu, 8 threads");
}

#[test]
fn overlapping_predict_futures_cpu() {
    joined(BackendChoice::Cpu, "cpu, 8 joined futures");
}

#[test]
fn overlapping_predict_futures_gpu() {
    joined(BackendChoice::Gpu, "gpu, 8 joined futures");
}
