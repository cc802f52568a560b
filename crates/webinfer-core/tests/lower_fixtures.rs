//! Every tfjs-made fixture lowers into the IR, and shape inference over the lowered graph
//! (before and after the load-time passes) gives the output shapes tfjs produced.

use std::path::Path;

use webinfer_core::{lower, passes};
use webinfer_tfjs::{decode_group, parse_layers_topology, parse_model_json, Limits};

fn expected_shape(path: &Path) -> Vec<usize> {
    // The .npy header holds `'shape': (a, b, ...)`.
    let bytes = std::fs::read(path).unwrap();
    let header = String::from_utf8_lossy(&bytes[10..bytes.len().min(200)]).to_string();
    let inner = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

#[test]
fn fixtures_lower_with_tfjs_output_shapes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let index: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(root.join("index.json")).unwrap()).unwrap();
    assert!(
        index.len() >= 30,
        "expected the full fixture set, found {}",
        index.len()
    );
    for name in index {
        check(&root.join(&name), &name);
    }
}

/// The real nsfwjs layers-models, when scripts/fetch-models.sh has fetched them.
#[test]
fn real_models_lower_with_tfjs_output_shapes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/real/models");
    for name in ["mobilenet_v2", "inception_v3"] {
        if root.join(name).join("expected_0.npy").exists() {
            check(&root.join(name), name);
        }
    }
}

fn check(dir: &Path, name: &str) {
    {
        let mj = parse_model_json(
            &std::fs::read(dir.join("model.json")).unwrap(),
            &Limits::default(),
        )
        .unwrap();
        let model = parse_layers_topology(&mj.topology, &Limits::default()).unwrap();
        let mut weights = Vec::new();
        for (gi, g) in mj.weights_manifest.iter().enumerate() {
            let shards: Vec<Vec<u8>> = g
                .paths
                .iter()
                .map(|p| std::fs::read(dir.join(p)).unwrap())
                .collect();
            let slices: Vec<&[u8]> = shards.iter().map(Vec::as_slice).collect();
            weights.extend(decode_group(g, gi, &slices).unwrap());
        }
        let mut graph =
            lower::lower_layers_model(&model, weights).unwrap_or_else(|e| panic!("{name}: {e}"));
        let inputs: Vec<Vec<usize>> = (0..)
            .map(|i| dir.join(format!("input_{i}.npy")))
            .take_while(|p| p.exists())
            .map(|p| expected_shape(&p))
            .collect();
        let outputs: Vec<Vec<usize>> = (0..)
            .map(|i| dir.join(format!("expected_{i}.npy")))
            .take_while(|p| p.exists())
            .map(|p| expected_shape(&p))
            .collect();
        for stage in ["lowered", "optimized"] {
            if stage == "optimized" {
                passes::optimize(&mut graph);
            }
            let shapes = graph
                .infer_shapes(&inputs)
                .unwrap_or_else(|e| panic!("{name} ({stage}): {e}"));
            let got: Vec<Vec<usize>> = graph.outputs.iter().map(|&o| shapes[o].clone()).collect();
            assert_eq!(
                got, outputs,
                "{name} ({stage}): output shapes differ from tfjs's"
            );
        }
    }
}
