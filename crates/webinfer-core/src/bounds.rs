//! Bounds on activation sizes: every value a graph computes (inputs, intermediates, outputs,
//! constants folded at load; not the weights, which have their own limits) is checked against a maximum element count before any backend
//! allocates it (`webinfer_tfjs::Limits::max_activation_elements`).
//!
//! - [`check_graph`] runs at load, on the shapes that follow from the declared inputs at
//!   batch 1 (and on every constant subgraph, whatever the inputs): a model that declares an
//!   input `[null, 100000, 100000, 3]`, or a `Dense` of 10^9 units, fails there.
//! - [`check_run`] runs at predict, on the shapes that follow from the inputs given, so that a
//!   batch too large for the limit is refused before the backend allocates.

use crate::error::{dims, open_dims, CoreError, Result};
use crate::ir::{Graph, Op};

/// The elements of `shape`, counting a zero dim as 1: an empty tensor whose other dims are
/// absurd (`[0, 6, 2^62, 2]`) is refused too, since kernels still compute with its row sizes.
fn elements(shape: &[usize]) -> u64 {
    shape.iter().fold(1u64, |acc, &d| {
        acc.saturating_mul(u64::try_from(d.max(1)).unwrap_or(u64::MAX))
    })
}

fn over(
    node: &str,
    shape: String,
    zero: bool,
    elements: u64,
    context: &str,
    limit: u64,
) -> CoreError {
    let zero = if zero {
        ", counting zero dims as 1"
    } else {
        ""
    };
    CoreError::ActivationLimit {
        node: node.to_string(),
        shape,
        elements,
        context: format!("{context}{zero}"),
        limit,
    }
}

fn node_name(graph: &Graph, id: usize) -> String {
    let node = &graph.nodes[id];
    match node.op {
        Op::Input { .. } => format!("input \"{}\"", node.origin),
        _ => format!("layer \"{}\" ({})", node.origin, node.op.name()),
    }
}

/// Load-time check of `graph` against `limit` elements per value.
///
/// Each declared input counts its open dims as 1 (a lower bound: `[null, 100000, 100000, 3]`
/// is over any sensible limit whatever the batch). Shapes are then inferred where they are
/// known at batch 1: everywhere when the inputs are static but for the batch, and on the
/// constant subgraphs otherwise. Shape errors are left to [`Graph::infer_shapes`].
pub fn check_graph(graph: &Graph, limit: u64) -> Result<()> {
    for spec in &graph.inputs {
        let n = spec.shape.iter().fold(1u64, |acc, d| match d {
            Some(d) => acc.saturating_mul(u64::try_from((*d).max(1)).unwrap_or(u64::MAX)),
            None => acc,
        });
        if n > limit {
            return Err(over(
                &format!("input \"{}\"", spec.name),
                open_dims(&spec.shape),
                spec.shape.contains(&Some(0)),
                n,
                "as declared, with open dims as 1",
                limit,
            ));
        }
    }
    let mut shapes: Vec<Option<Vec<usize>>> = Vec::with_capacity(graph.nodes.len());
    for (id, node) in graph.nodes.iter().enumerate() {
        let shape = match &node.op {
            Op::Input { index } => graph.inputs.get(*index).and_then(|spec| {
                spec.shape
                    .iter()
                    .enumerate()
                    .map(|(k, d)| d.or(if k == 0 { Some(1) } else { None }))
                    .collect::<Option<Vec<usize>>>()
            }),
            Op::Constant(t) => Some(t.shape().to_vec()),
            Op::Resident { shape, .. } => Some(shape.clone()),
            op => node
                .inputs
                .iter()
                .map(|&i| if i < id { shapes[i].as_deref() } else { None })
                .collect::<Option<Vec<&[usize]>>>()
                .and_then(|ins| op.output_shape(&ins).ok()),
        };
        // Constants are weights, already decoded under the weight limits; what is computed
        // from them (folded at load) is checked like any other value.
        let computed = !matches!(node.op, Op::Constant(_) | Op::Resident { .. });
        if let (Some(s), true) = (&shape, computed) {
            let n = elements(s);
            if n > limit {
                return Err(over(
                    &node_name(graph, id),
                    dims(s),
                    s.contains(&0),
                    n,
                    "at batch 1",
                    limit,
                ));
            }
        }
        shapes.push(shape);
    }
    Ok(())
}

/// Predict-time check: infers every shape for `input_shapes` (as [`Graph::infer_shapes`],
/// whose errors it returns) and refuses any value over `limit` elements.
pub fn check_run(graph: &Graph, input_shapes: &[Vec<usize>], limit: u64) -> Result<()> {
    let shapes = graph.infer_shapes(input_shapes)?;
    for (id, s) in shapes.iter().enumerate() {
        let n = elements(s);
        if n > limit && !matches!(graph.nodes[id].op, Op::Constant(_) | Op::Resident { .. }) {
            return Err(over(
                &node_name(graph, id),
                dims(s),
                s.contains(&0),
                n,
                "for the inputs given",
                limit,
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Activation, InputSpec};
    use crate::tensor::Tensor;

    fn dense(input: Vec<Option<usize>>, units: usize) -> Graph {
        let k = input.last().copied().flatten().unwrap_or(1);
        let mut g = Graph::default();
        g.inputs.push(InputSpec {
            name: "x".into(),
            shape: input,
            dtype: "float32".into(),
        });
        let x = g.push(Op::Input { index: 0 }, vec![], "x");
        let w = g.constant(Tensor::zeros(vec![k, units]), "d");
        let y = g.push(
            Op::MatMul {
                activation: Activation::Linear,
            },
            vec![x, w],
            "d",
        );
        g.outputs.push(y);
        g
    }

    #[test]
    fn huge_declared_input_is_refused_naming_it_and_the_limit() {
        let g = dense(vec![None, Some(100_000), Some(100_000), Some(3)], 1);
        let err = check_graph(&g, 1 << 28).unwrap_err().to_string();
        assert!(err.contains("input \"x\""), "{err}");
        assert!(err.contains("[?,100000,100000,3]"), "{err}");
        assert!(err.contains("30000000000 elements"), "{err}");
        assert!(
            err.contains("max_activation_elements") && err.contains("268435456"),
            "{err}"
        );
    }

    #[test]
    fn an_output_over_the_limit_names_the_layer() {
        let g = dense(vec![None, Some(2)], 1000);
        check_graph(&g, 1000).unwrap();
        let err = check_graph(&g, 999).unwrap_err().to_string();
        assert!(err.contains("layer \"d\" (matmul)"), "{err}");
        assert!(err.contains("[1,1000]"), "{err}");
        assert!(err.contains("at batch 1"), "{err}");
    }

    #[test]
    fn open_inner_dims_check_only_what_is_known() {
        // The MatMul output depends on the open dim: not checked at load ...
        let g = dense(vec![None, None, Some(2)], 1000);
        check_graph(&g, 1000).unwrap();
        // ... but at predict, with the real shapes.
        check_run(&g, &[vec![1, 1, 2]], 1000).unwrap();
        let err = check_run(&g, &[vec![4, 1, 2]], 1000)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[4,1,1000]") && err.contains("4000 elements"),
            "{err}"
        );
        assert!(err.contains("for the inputs given"), "{err}");
    }

    #[test]
    fn constant_subgraphs_are_checked_whatever_the_inputs() {
        let mut g = dense(vec![None, None], 1);
        let c = g.constant(Tensor::zeros(vec![2, 3]), "c");
        g.push(
            Op::Pad {
                pads: vec![[0, 100], [0, 100]],
                value: 0.0,
            },
            vec![c],
            "pad",
        );
        check_graph(&g, 102 * 103).unwrap();
        let err = check_graph(&g, 102 * 103 - 1).unwrap_err().to_string();
        assert!(
            err.contains("layer \"pad\" (pad)") && err.contains("[102,103]"),
            "{err}"
        );
    }

    #[test]
    fn an_empty_tensor_with_absurd_dims_is_refused() {
        // Found by fuzzing: a graph-model Placeholder [0, 6, 2^62, 2] has no elements, but
        // a convolution's row arithmetic on it overflowed.
        let g = dense(vec![Some(0), Some(6), Some(1 << 62), Some(2)], 1);
        let err = check_graph(&g, 1 << 28).unwrap_err().to_string();
        assert!(
            err.contains("input \"x\"") && err.contains("counting zero dims as 1"),
            "{err}"
        );
        let g = dense(vec![None, Some(2)], 1);
        let err = check_run(&g, &[vec![0, 1 << 40]], 1 << 28);
        assert!(err.is_err(), "a wrong shape must be refused: {err:?}");
        check_run(&g, &[vec![0, 2]], 1 << 28).unwrap();
    }

    #[test]
    fn a_batch_too_large_is_refused_at_predict() {
        let g = dense(vec![None, Some(4)], 8);
        check_run(&g, &[vec![1000, 4]], 8000).unwrap();
        let err = check_run(&g, &[vec![1001, 4]], 8000)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("layer \"d\" (matmul)") && err.contains("[1001,8]"),
            "{err}"
        );
    }
}
