//! Shader modules, bind group layouts and compute pipelines, each created once per device and
//! cached: pipelines by (family, weights variant, entry point, override constants).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::shaders::{Shader, Weights};

/// A compute pipeline's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PipelineKey {
    pub shader: Shader,
    /// How a weighted family reads its weights ([`Weights::F32`] for the others).
    pub weights: Weights,
    pub entry: &'static str,
    /// WGSL `override` values (bools as 0 / 1).
    pub constants: Vec<(&'static str, u32)>,
    /// Number of input bindings (2 ..) after the uniform (0) and the output (1).
    pub inputs: usize,
}

#[derive(Default)]
pub(crate) struct PipelineCache {
    modules: Mutex<HashMap<(Shader, Weights), wgpu::ShaderModule>>,
    layouts: Mutex<HashMap<usize, (wgpu::BindGroupLayout, wgpu::PipelineLayout)>>,
    pipelines: Mutex<HashMap<PipelineKey, (wgpu::ComputePipeline, wgpu::BindGroupLayout)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PipelineCache {
    /// The number of pipelines created so far.
    pub(crate) fn len(&self) -> usize {
        lock(&self.pipelines).len()
    }

    fn module(
        &self,
        device: &wgpu::Device,
        shader: Shader,
        weights: Weights,
    ) -> wgpu::ShaderModule {
        lock(&self.modules)
            .entry((shader, weights))
            .or_insert_with(|| {
                device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(shader.file()),
                    source: wgpu::ShaderSource::Wgsl(shader.source(weights).into()),
                })
            })
            .clone()
    }

    /// The layout shared by every kernel with `inputs` inputs: binding 0 the uniform params,
    /// 1 the output (read-write storage), 2.. the inputs (read-only storage).
    fn layout(
        &self,
        device: &wgpu::Device,
        inputs: usize,
    ) -> (wgpu::BindGroupLayout, wgpu::PipelineLayout) {
        lock(&self.layouts)
            .entry(inputs)
            .or_insert_with(|| {
                let storage = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
                    binding,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                };
                let mut entries = vec![
                    wgpu::BindGroupLayoutEntry {
                        binding: 0,
                        visibility: wgpu::ShaderStages::COMPUTE,
                        ty: wgpu::BindingType::Buffer {
                            ty: wgpu::BufferBindingType::Uniform,
                            has_dynamic_offset: false,
                            min_binding_size: None,
                        },
                        count: None,
                    },
                    storage(1, false),
                ];
                entries.extend((0..inputs).map(|i| storage(2 + i as u32, true)));
                let bgl = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some("webinfer kernel"),
                    entries: &entries,
                });
                let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                    label: Some("webinfer kernel"),
                    bind_group_layouts: &[Some(&bgl)],
                    immediate_size: 0,
                });
                (bgl, pl)
            })
            .clone()
    }

    /// The pipeline for `key` and the layout its bind groups must use.
    pub(crate) fn get(
        &self,
        device: &wgpu::Device,
        key: &PipelineKey,
    ) -> (wgpu::ComputePipeline, wgpu::BindGroupLayout) {
        if let Some(p) = lock(&self.pipelines).get(key) {
            return p.clone();
        }
        let module = self.module(device, key.shader, key.weights);
        let (bgl, layout) = self.layout(device, key.inputs);
        let constants: Vec<(&str, f64)> =
            key.constants.iter().map(|&(n, v)| (n, v as f64)).collect();
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(key.entry),
            layout: Some(&layout),
            module: &module,
            entry_point: Some(key.entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &constants,
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        let entry = (pipeline, bgl);
        lock(&self.pipelines).insert(key.clone(), entry.clone());
        entry
    }
}
