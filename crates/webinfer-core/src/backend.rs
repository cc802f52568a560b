//! The interface every backend implements.

use crate::error::Result;
use crate::ir::Graph;
use crate::tensor::Tensor;

/// A backend executes a lowered [`Graph`]. `prepare` does the one-time work (packing or
/// uploading weights, compiling pipelines); `run` executes one prediction.
pub trait Backend {
    /// A short name: `"cpu"`, `"gpu"`.
    fn name(&self) -> &str;
    /// Run the graph on `inputs` (in the graph's input order) and return its outputs in order.
    fn run(&self, graph: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>>;
}
