//! A destroyed device makes `run` return `GpuError::DeviceLost`: no panic, no hang.

mod common;

use common::{backend, one_op_graph, Arg, Rng};
use webinfer_core::ir::Activation;
use webinfer_core::Op;
use webinfer_gpu::GpuError;

#[test]
fn destroyed_device_is_reported_as_lost() {
    let Some(b) = backend() else { return };
    let mut r = Rng::new(200);
    let (g, inputs) = one_op_graph(
        Op::MatMul {
            activation: Activation::Relu,
        },
        vec![Arg::In(r.tensor(&[4, 8])), Arg::Const(r.tensor(&[8, 3]))],
    );
    let plan = b.prepare(&g).unwrap();
    futures::executor::block_on(b.run(&plan, &g, &inputs)).expect("runs before destroy");

    b.device().destroy();
    let err = futures::executor::block_on(b.run(&plan, &g, &inputs)).unwrap_err();
    assert!(
        matches!(err, GpuError::DeviceLost(_)),
        "expected DeviceLost, got {err:?}"
    );
    eprintln!("after destroy: {err}");
    // And it stays lost, for new plans too.
    let err = futures::executor::block_on(b.run(&plan, &g, &inputs)).unwrap_err();
    assert!(matches!(err, GpuError::DeviceLost(_)), "{err:?}");
    let err = b.prepare(&g).unwrap_err();
    assert!(matches!(err, GpuError::DeviceLost(_)), "{err:?}");
}
