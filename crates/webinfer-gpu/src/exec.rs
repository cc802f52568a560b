//! Running an execution plan: input writes, compute passes, the transfers around CPU nodes,
//! and the async readback of the outputs.

use std::collections::HashMap;

use webinfer_core::{Graph, Op, Tensor, ValueId};

use crate::device::{Ctx, OwnedBuffer};
use crate::error::{GpuError, Result};
use crate::fallback;
use crate::plan::{ExecPlan, OutputSrc, Step, Transfer};

fn encoder(ctx: &Ctx) -> wgpu::CommandEncoder {
    ctx.device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("webinfer run"),
        })
}

/// A value available on the host: a caller's input, a constant, or a CPU / downloaded result.
fn host_value<'a>(
    v: ValueId,
    graph: &'a Graph,
    inputs: &'a [Tensor],
    host: &'a HashMap<ValueId, Tensor>,
) -> Result<&'a Tensor> {
    match &graph.nodes[v].op {
        Op::Input { index } => inputs
            .get(*index)
            .ok_or_else(|| GpuError::Shape(format!("missing input {index}"))),
        Op::Constant(t) => Ok(t),
        _ => host.get(&v).ok_or_else(|| {
            GpuError::Internal(format!(
                "planner: value {v} (\"{}\") is not on the host",
                graph.nodes[v].origin
            ))
        }),
    }
}

pub(crate) async fn run(
    ctx: &Ctx,
    plan: &ExecPlan,
    graph: &Graph,
    inputs: &[Tensor],
) -> Result<Vec<Tensor>> {
    let _one_at_a_time = plan.lock.lock().await;
    ctx.check_lost()?;
    for (i, buffer) in &plan.input_writes {
        let data = inputs[*i].data();
        if !data.is_empty() {
            ctx.queue
                .write_buffer(buffer, 0, bytemuck::cast_slice(data));
        }
    }
    let mut host: HashMap<ValueId, Tensor> = HashMap::new();
    let mut enc = encoder(ctx);
    let mut dirty = false;
    for step in &plan.steps {
        match step {
            Step::Pass(calls) => {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: None,
                    timestamp_writes: None,
                });
                for c in calls {
                    pass.set_pipeline(&c.pipeline);
                    pass.set_bind_group(0, &c.bind_group, &[]);
                    let [x, y, z] = c.workgroups;
                    pass.dispatch_workgroups(x, y, z);
                }
                drop(pass);
                dirty = true;
            }
            Step::Download(items) => {
                let done = std::mem::replace(&mut enc, encoder(ctx));
                let data = readback(ctx, done, items).await?;
                for (t, d) in items.iter().zip(data) {
                    host.insert(
                        t.value,
                        Tensor::new(plan.shapes[t.value].clone(), d)
                            .map_err(|e| GpuError::Internal(e.to_string()))?,
                    );
                }
                dirty = false;
            }
            Step::Cpu(v) => {
                let node = &graph.nodes[*v];
                let ins = node
                    .inputs
                    .iter()
                    .map(|&i| host_value(i, graph, inputs, &host))
                    .collect::<Result<Vec<_>>>()?;
                let out = fallback::eval_op(&node.op, &ins, &plan.shapes[*v]).map_err(|m| {
                    GpuError::Cpu(format!(
                        "layer \"{}\" ({}): {m}",
                        node.origin,
                        node.op.name()
                    ))
                })?;
                host.insert(*v, out);
            }
            Step::Upload(t) => {
                // queue.write_buffer lands before the next submission: flush the GPU work
                // recorded so far first, since it may still read this buffer's previous value.
                if dirty {
                    let done = std::mem::replace(&mut enc, encoder(ctx));
                    ctx.queue.submit([done.finish()]);
                    dirty = false;
                }
                let data = host_value(t.value, graph, inputs, &host)?.data();
                if !data.is_empty() {
                    ctx.queue
                        .write_buffer(&t.buffer, 0, bytemuck::cast_slice(data));
                }
            }
        }
    }

    let gpu_outputs: Vec<&Transfer> = plan
        .outputs
        .iter()
        .filter_map(|o| {
            if let OutputSrc::Gpu(t) = o {
                Some(t)
            } else {
                None
            }
        })
        .collect();
    let mut read = if gpu_outputs.is_empty() {
        if dirty {
            ctx.queue.submit([enc.finish()]);
            ctx.wait()?;
        }
        Vec::new()
    } else {
        let owned: Vec<Transfer> = gpu_outputs
            .iter()
            .map(|t| Transfer {
                value: t.value,
                buffer: t.buffer.clone(),
                bytes: t.bytes,
                decode: t.decode.clone(),
            })
            .collect();
        readback(ctx, enc, &owned).await?
    }
    .into_iter();
    ctx.take_errors()?;

    plan.outputs
        .iter()
        .map(|o| match o {
            OutputSrc::Host(v) => Ok(host_value(*v, graph, inputs, &host)?.clone()),
            OutputSrc::Gpu(t) => {
                let data = read
                    .next()
                    .ok_or_else(|| GpuError::Internal("readback count".into()))?;
                Tensor::new(plan.shapes[t.value].clone(), data)
                    .map_err(|e| GpuError::Internal(e.to_string()))
            }
        })
        .collect()
}

/// Copy `items` into one staging buffer at the end of `enc`, submit, and map it.
async fn readback(
    ctx: &Ctx,
    mut enc: wgpu::CommandEncoder,
    items: &[Transfer],
) -> Result<Vec<Vec<f32>>> {
    let mut offsets = Vec::with_capacity(items.len());
    let mut total = 0u64;
    for t in items {
        offsets.push(total);
        total += t.bytes;
    }
    // Destroyed when this function returns, on every path (counted in `gpu_memory` until then).
    let staging = OwnedBuffer::new(
        &ctx.device,
        &wgpu::BufferDescriptor {
            label: Some("webinfer readback"),
            size: total.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        },
    );
    for (t, &off) in items.iter().zip(&offsets) {
        if t.bytes > 0 {
            enc.copy_buffer_to_buffer(&t.buffer, 0, &staging, off, t.bytes);
        }
    }
    ctx.queue.submit([enc.finish()]);
    let (tx, rx) = futures::channel::oneshot::channel();
    staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    if ctx
        .lose_in_next_readback
        .swap(false, std::sync::atomic::Ordering::Relaxed)
    {
        // Test switch: the device goes away while this run's results are on their way.
        ctx.device.destroy();
    }
    ctx.wait()?;
    match rx.await {
        Ok(Ok(())) => {}
        _ => {
            ctx.take_errors()?;
            return Err(GpuError::DeviceLost(
                "mapping the readback buffer failed".into(),
            ));
        }
    }
    let out = {
        let view = staging.slice(..).get_mapped_range().map_err(|e| {
            // A device lost while the mapping was pending can still report success.
            match ctx.check_lost() {
                Err(GpuError::DeviceLost(why)) => {
                    GpuError::DeviceLost(format!("{why}, while reading back results"))
                }
                _ => GpuError::Internal(format!("readback: {e}")),
            }
        })?;
        items
            .iter()
            .zip(&offsets)
            .map(|(t, &off)| {
                let bytes = &view[off as usize..(off + t.bytes) as usize];
                match &t.decode {
                    Some(d) => d.decode(bytes),
                    None => bytemuck::pod_collect_to_vec::<u8, f32>(bytes),
                }
            })
            .collect()
    };
    staging.unmap();
    Ok(out)
}
