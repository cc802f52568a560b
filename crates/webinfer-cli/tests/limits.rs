//! The limit options (`--max-weight-bytes`, `--max-tensor-elements`,
//! `--max-activation-elements`): documented in --help, applied at load and at predict, and
//! refused when they are not positive integers.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
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

#[test]
fn help_documents_the_limit_options() {
    let (code, out, _) = webinfer(&["--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--max-weight-bytes N",
        "--max-tensor-elements N",
        "--max-activation-elements N",
    ] {
        assert!(out.contains(flag), "{flag} not in --help:\n{out}");
    }
}

#[test]
fn limits_are_applied_and_can_be_raised() {
    let model = fixture("dense_sequential").join("model.json");
    let input = fixture("dense_sequential").join("input_0.npy");
    let (model, input) = (model.to_str().unwrap(), input.to_str().unwrap());

    // The fixture stores 716 bytes of weights: 715 is refused at load, 716 is fine.
    let (code, _, err) = webinfer(&[
        "inspect",
        model,
        "--backend",
        "cpu",
        "--max-weight-bytes",
        "715",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("716 exceeds the limit of 715"), "{err}");
    let (code, _, err) = webinfer(&[
        "inspect",
        model,
        "--backend",
        "cpu",
        "--max-weight-bytes",
        "716",
    ]);
    assert_eq!(code, 0, "{err}");

    // Its largest weight has 80 elements.
    let (code, _, err) = webinfer(&[
        "inspect",
        model,
        "--backend",
        "cpu",
        "--max-tensor-elements",
        "79",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("exceeds the limit of 79"), "{err}");

    // Input [?, 10] and input_0.npy holds a batch of 2: a limit of 9 elements refuses the
    // model at load, 10 loads it but refuses that batch at predict, 20 runs it.
    let predict = |limit: &str| {
        webinfer(&[
            "predict",
            model,
            "--input",
            input,
            "--backend",
            "cpu",
            "--max-activation-elements",
            limit,
        ])
    };
    let (code, _, err) = predict("9");
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    for needle in [
        "input \"dense_relu_input\"",
        "[?,10]",
        "max_activation_elements = 9",
    ] {
        assert!(err.contains(needle), "{needle:?} not in: {err}");
    }
    let (code, _, err) = predict("10");
    assert_eq!(code, 1, "{err}");
    for needle in [
        "[2,10]",
        "for the inputs given",
        "max_activation_elements = 10",
    ] {
        assert!(err.contains(needle), "{needle:?} not in: {err}");
    }
    let (code, out, err) = predict("20");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("output_0") && out.contains("[2, 3]"), "{out}");
}

#[test]
fn a_limit_must_be_a_positive_integer() {
    let model = fixture("dense_sequential").join("model.json");
    for bad in ["0", "-5", "lots", "1e9"] {
        let (code, _, err) = webinfer(&[
            "inspect",
            model.to_str().unwrap(),
            "--max-activation-elements",
            bad,
        ]);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(
            err.contains(&format!(
                "--max-activation-elements needs a positive integer, got {bad}"
            )),
            "{err}"
        );
    }
}
