//! The CPU path for ops the GPU plan does not run (no kernel, over a device limit, forced by
//! the test switch): `webinfer_cpu::eval_op` on host tensors.

use webinfer_core::{Op, Tensor};

pub(crate) fn eval_op(op: &Op, inputs: &[&Tensor], out_shape: &[usize]) -> Result<Tensor, String> {
    webinfer_cpu::eval_op(op, inputs, out_shape)
}
