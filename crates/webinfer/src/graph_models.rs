//! Graph-models (tf.GraphModel, the converter's output), behind the `graph-models` feature (on
//! by default). Without it a `model.json` of that format is refused by [`parse`] with a clear
//! error, and none of the graph-model code (its parsing, its lowering: ~23 KB of gzip in the
//! browser module) is linked: the browser package's smallest module, for pages that run
//! layers-models on the CPU (`init({backend: 'cpu', graphModels: false})`), is built so.

use webinfer_core::Graph;
use webinfer_tfjs::{DecodedWeight, Limits, ModelJson};

use crate::{Error, Result};

#[cfg(feature = "graph-models")]
pub(crate) type Model = webinfer_tfjs::GraphModel;

/// No graph-model is ever parsed without the feature: a value of this type cannot exist.
#[cfg(not(feature = "graph-models"))]
pub(crate) enum Model {}

/// The graph-model in `parsed` (`json_name` names it in errors).
#[cfg(feature = "graph-models")]
pub(crate) fn parse(parsed: &ModelJson, json_name: &str, limits: &Limits) -> Result<Model> {
    webinfer_tfjs::parse_graph_model(parsed, limits).map_err(|source| Error::Format {
        path: json_name.to_string(),
        source,
    })
}

#[cfg(not(feature = "graph-models"))]
pub(crate) fn parse(_: &ModelJson, json_name: &str, _: &Limits) -> Result<Model> {
    Err(Error::GraphModelsNotBuilt {
        path: json_name.to_string(),
    })
}

/// The ops webinfer cannot run, as (node name, op).
pub(crate) fn unsupported_ops(model: &Model) -> Vec<(String, String)> {
    #[cfg(feature = "graph-models")]
    return webinfer_core::lower::graph::unsupported_ops(model);
    #[cfg(not(feature = "graph-models"))]
    match *model {}
}

/// The graph, its constants' values in `weights`.
pub(crate) fn lower(model: &Model, weights: Vec<DecodedWeight>) -> Result<Graph> {
    #[cfg(feature = "graph-models")]
    return Ok(webinfer_core::lower::graph::lower_graph_model(
        model, weights,
    )?);
    #[cfg(not(feature = "graph-models"))]
    {
        drop(weights);
        match *model {}
    }
}

/// (name, op) of every node but the constants, for the model's stats.
pub(crate) fn nodes(model: &Model) -> Vec<(String, String)> {
    #[cfg(feature = "graph-models")]
    return model
        .nodes
        .iter()
        .filter(|n| n.op != "Const")
        .map(|n| (n.name.clone(), n.op.clone()))
        .collect();
    #[cfg(not(feature = "graph-models"))]
    match *model {}
}

#[cfg(test)]
mod tests {
    use crate::{LoadOptions, ModelBuilder};

    /// A graph-model of one ReLU on a [1, 2] placeholder.
    const RELU_GRAPH: &[u8] = br#"{"format": "graph-model", "modelTopology": {"node": [
        {"name": "x", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"},
         "shape": {"shape": {"dim": [{"size": "1"}, {"size": "2"}]}}}},
        {"name": "y", "op": "Relu", "input": ["x"], "attr": {"T": {"type": "DT_FLOAT"}}}]},
      "weightsManifest": []}"#;

    #[cfg(feature = "graph-models")]
    #[test]
    fn a_graph_model_loads() {
        let builder = ModelBuilder::new(RELU_GRAPH, &LoadOptions::default());
        assert!(builder.is_ok(), "{:?}", builder.err());
    }

    /// Without the feature the model is refused, by a variant that says why, before any shard.
    #[cfg(not(feature = "graph-models"))]
    #[test]
    fn a_graph_model_is_refused_without_the_feature() {
        match ModelBuilder::new(RELU_GRAPH, &LoadOptions::default()) {
            Err(e @ crate::Error::GraphModelsNotBuilt { .. }) => assert_eq!(
                e.to_string(),
                "model.json: a graph-model, and this build of webinfer loads layers-models only \
                 (built without its `graph-models` feature)"
            ),
            other => panic!("expected GraphModelsNotBuilt, got {other:?}"),
        }
    }
}
