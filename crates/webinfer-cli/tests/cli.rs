//! The CLI contract: inspect / predict on a tfjs-made fixture, and one clear line with a
//! non-zero exit for every kind of bad input a user can hand it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// A private copy of a fixture that a test may corrupt.
fn copy_fixture(name: &str, tag: &str) -> PathBuf {
    let dst = std::env::temp_dir().join(format!("webinfer-cli-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(fixtures().join(name)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    dst
}

fn webinfer(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_webinfer"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Exit 1 and exactly one line on stderr that contains every `needles`.
fn assert_clear_error(args: &[&str], needles: &[&str]) {
    let (code, _, err) = webinfer(args);
    assert_eq!(
        code, 1,
        "expected exit 1 for {args:?}, got {code}; stderr: {err}"
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "expected one line on stderr, got: {err}"
    );
    assert!(err.starts_with("webinfer: error: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "stderr should mention {n:?}: {err}");
    }
}

#[test]
fn inspect_lists_inputs_outputs_layers_and_weights() {
    let m = fixtures().join("functional_two_in_two_out/model.json");
    let (code, out, err) = webinfer(&["inspect", s(&m)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("input ")).count(),
        2,
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("output ")).count(),
        2,
        "{out}"
    );
    assert!(out.contains("weights ") && out.contains("bytes"), "{out}");
    assert!(out.contains("layers ") && out.contains("Dense"), "{out}");
}

/// `webinfer predict` of the cnn_rich fixture on `backend`, written to a temp folder, checked
/// against tfjs's expected output with the conformance tolerance; returns stdout.
fn predict_cnn_rich_matches_tfjs(backend: &str) -> String {
    let dir = fixtures().join("cnn_rich");
    let out_dir =
        std::env::temp_dir().join(format!("webinfer-cli-{backend}-{}", std::process::id()));
    let (code, out, err) = webinfer(&[
        "predict",
        s(&dir.join("model.json")),
        "--input",
        s(&dir.join("input_0.npy")),
        "--backend",
        backend,
        "--out",
        s(&out_dir),
    ]);
    assert_eq!(code, 0, "{err}");
    let read = |p: &Path| {
        webinfer::npy::from_bytes(&std::fs::read(p).unwrap(), &p.display().to_string()).unwrap()
    };
    let (got, want) = (
        read(&out_dir.join("output_0.npy")),
        read(&dir.join("expected_0.npy")),
    );
    assert_eq!(got.shape(), want.shape());
    // Same tolerance as tests/conformance.rs.
    for (i, (a, b)) in got.data().iter().zip(want.data()).enumerate() {
        assert!(
            (a - b).abs() <= 1e-4 + 1e-3 * b.abs(),
            "cnn_rich on {backend}, element {i}: webinfer {a}, tfjs {b}"
        );
    }
    out
}

#[test]
fn predict_writes_outputs_matching_tfjs() {
    let out = predict_cnn_rich_matches_tfjs("cpu");
    assert!(out.contains("predict first"), "{out}");
}

/// Hide every Vulkan and GL driver from wgpu: "no adapter at all".
const NO_ADAPTER: &[(&str, &str)] = &[
    ("VK_ICD_FILENAMES", "/nonexistent.json"),
    ("__EGL_VENDOR_LIBRARY_FILENAMES", "/nonexistent.json"),
];

fn webinfer_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_webinfer"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn without_any_adapter_gpu_is_a_clear_error_and_auto_runs_on_the_cpu() {
    let dir = fixtures().join("dense_sequential");
    let (m, x) = (dir.join("model.json"), dir.join("input_0.npy"));
    let (code, _, err) = webinfer_env(
        &["predict", s(&m), "--input", s(&x), "--backend", "gpu"],
        NO_ADAPTER,
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with("webinfer: error: backend \"gpu\" is not available")
            && err.trim_end().lines().count() == 1,
        "{err}"
    );
    let (code, out, err) = webinfer_env(
        &["predict", s(&m), "--input", s(&x), "--backend", "auto"],
        NO_ADAPTER,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("backend cpu"), "{out}");
    let (code, out, err) = webinfer_env(&["inspect", s(&m)], NO_ADAPTER);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("adapters   none")
            && out.contains("backend    cpu (auto: cpu, because no GPU adapter was found"),
        "{out}"
    );
}

/// With lavapipe (CI) or a real GPU: `--backend gpu` runs there and matches tfjs, and
/// `inspect` says which adapters exist and what auto picks.
#[test]
fn gpu_backend_predicts_on_an_adapter() {
    let require = std::env::var("WEBINFER_REQUIRE_GPU").is_ok_and(|v| v == "1");
    let dir = fixtures().join("cnn_rich");
    let m = dir.join("model.json");
    let (_, out, _) = webinfer(&["inspect", s(&m)]);
    if !out.contains("adapter    \"") {
        assert!(
            !require,
            "WEBINFER_REQUIRE_GPU=1 but no GPU adapter was found:\n{out}"
        );
        println!("SKIP gpu_backend_predicts_on_an_adapter: no GPU adapter");
        return;
    }
    assert!(out.contains("backend    "), "{out}");
    let out = predict_cnn_rich_matches_tfjs("gpu");
    assert!(out.contains("backend gpu"), "{out}");
}

#[test]
fn truncated_shard() {
    let dir = copy_fixture("cnn_rich", "truncated");
    let shard = dir.join("group1-shard1of1.bin");
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() - 7]).unwrap();
    assert_clear_error(
        &[
            "predict",
            s(&dir.join("model.json")),
            "--input",
            s(&dir.join("input_0.npy")),
        ],
        &["group1-shard1of1.bin", &format!("{}", bytes.len() - 7)],
    );
}

#[test]
fn missing_shard_file() {
    let dir = copy_fixture("cnn_rich", "missing");
    std::fs::remove_file(dir.join("group1-shard1of1.bin")).unwrap();
    assert_clear_error(
        &["inspect", s(&dir.join("model.json"))],
        &["group1-shard1of1.bin"],
    );
}

#[test]
fn malformed_json() {
    let dir = copy_fixture("dense_sequential", "malformed");
    let text = std::fs::read_to_string(dir.join("model.json")).unwrap();
    std::fs::write(dir.join("model.json"), &text[..text.len() / 2]).unwrap();
    assert_clear_error(
        &["inspect", s(&dir.join("model.json"))],
        &["model.json", "line"],
    );
}

#[test]
fn unknown_layers_are_all_named_at_once() {
    let dir = copy_fixture("cnn_rich", "unknown");
    let text = std::fs::read_to_string(dir.join("model.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let layers = v["modelTopology"]["config"]["layers"]
        .as_array_mut()
        .unwrap();
    let n = layers.len();
    layers[n - 1]["class_name"] = "FancyLayer".into();
    layers[n - 2]["class_name"] = "OtherLayer".into();
    std::fs::write(dir.join("model.json"), v.to_string()).unwrap();
    assert_clear_error(
        &["inspect", s(&dir.join("model.json"))],
        &["FancyLayer", "OtherLayer"],
    );
}

#[test]
fn missing_weight() {
    let dir = copy_fixture("dense_sequential", "noweight");
    let text = std::fs::read_to_string(dir.join("model.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    // Rename the first weight: its layer no longer finds it (and the renamed one is surplus).
    let name = v["weightsManifest"][0]["weights"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    v["weightsManifest"][0]["weights"][0]["name"] = format!("{name}_renamed").into();
    std::fs::write(dir.join("model.json"), v.to_string()).unwrap();
    assert_clear_error(
        &["inspect", s(&dir.join("model.json"))],
        &["missing weight", &name],
    );
}

#[test]
fn wrong_input_shape() {
    let dir = fixtures().join("cnn_rich");
    let other = fixtures().join("dense_sequential/input_0.npy");
    assert_clear_error(
        &["predict", s(&dir.join("model.json")), "--input", s(&other)],
        &["input 0", "expected shape"],
    );
}

#[test]
fn wrong_input_count_and_bad_npy() {
    let dir = fixtures().join("functional_two_in_two_out");
    let x = dir.join("input_0.npy");
    assert_clear_error(
        &["predict", s(&dir.join("model.json")), "--input", s(&x)],
        &["2 input"],
    );
    let bad = std::env::temp_dir().join(format!("webinfer-cli-bad-{}.npy", std::process::id()));
    std::fs::write(&bad, b"not numpy").unwrap();
    assert_clear_error(
        &[
            "predict",
            s(&fixtures().join("dense_sequential/model.json")),
            "--input",
            s(&bad),
        ],
        &["magic"],
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(webinfer(&[]).0, 2);
    assert_eq!(webinfer(&["predict"]).0, 2);
    assert_eq!(webinfer(&["predict", "m.json", "--backend", "tpu"]).0, 2);
}
