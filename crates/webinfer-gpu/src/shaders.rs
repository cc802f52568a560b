//! The WGSL sources, one file per kernel family in `shaders/`, compiled into the crate with
//! `include_str!` as `build.rs` compacted them (no comments or indentation, the same lines).
//! Each family is compiled as `common.wgsl` (shared helpers, activations) followed by the
//! family file; a plain `cargo test` validates every composed module with naga.

/// A kernel family: one file in `shaders/`, one wgpu shader module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Shader {
    Conv2d,
    Depthwise,
    MatMul,
    Pool,
    Elementwise,
    Copy,
    Resize,
    Softmax,
    Reduce,
}

/// Prepended to every family: `flat_workgroup`, `activate` (code and alpha from the params;
/// `FULL_ACT` pipeline constant for the costly ones) and math helpers.
pub(crate) const COMMON: &str = include_str!(concat!(env!("OUT_DIR"), "/common.wgsl"));

/// How a weighted family (conv2d, depthwise, matmul) reads its packed weights: `weight4(i, q)`
/// and the weight bindings, composed between `COMMON` and the family file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Weights {
    /// float32 vec4s at binding 3.
    F32,
    /// uint8 codes at binding 3, their values and per-channel factors at binding 5.
    U8,
    /// float16 values at binding 3, per-channel factors at binding 5.
    F16,
}

impl Weights {
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn file(self) -> &'static str {
        match self {
            Weights::F32 => "weights_f32.wgsl",
            Weights::U8 => "weights_u8.wgsl",
            Weights::F16 => "weights_f16.wgsl",
        }
    }

    fn source(self) -> &'static str {
        match self {
            Weights::F32 => include_str!(concat!(env!("OUT_DIR"), "/weights_f32.wgsl")),
            Weights::U8 => include_str!(concat!(env!("OUT_DIR"), "/weights_u8.wgsl")),
            Weights::F16 => include_str!(concat!(env!("OUT_DIR"), "/weights_f16.wgsl")),
        }
    }
}

impl Shader {
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) const ALL: [Shader; 9] = [
        Shader::Conv2d,
        Shader::Depthwise,
        Shader::MatMul,
        Shader::Pool,
        Shader::Elementwise,
        Shader::Copy,
        Shader::Resize,
        Shader::Softmax,
        Shader::Reduce,
    ];

    /// The file under `shaders/`.
    pub(crate) fn file(self) -> &'static str {
        match self {
            Shader::Conv2d => "conv2d.wgsl",
            Shader::Depthwise => "depthwise.wgsl",
            Shader::MatMul => "matmul.wgsl",
            Shader::Pool => "pool.wgsl",
            Shader::Elementwise => "elementwise.wgsl",
            Shader::Copy => "copy.wgsl",
            Shader::Resize => "resize.wgsl",
            Shader::Softmax => "softmax.wgsl",
            Shader::Reduce => "reduce.wgsl",
        }
    }

    fn body(self) -> &'static str {
        match self {
            Shader::Conv2d => include_str!(concat!(env!("OUT_DIR"), "/conv2d.wgsl")),
            Shader::Depthwise => include_str!(concat!(env!("OUT_DIR"), "/depthwise.wgsl")),
            Shader::MatMul => include_str!(concat!(env!("OUT_DIR"), "/matmul.wgsl")),
            Shader::Pool => include_str!(concat!(env!("OUT_DIR"), "/pool.wgsl")),
            Shader::Elementwise => include_str!(concat!(env!("OUT_DIR"), "/elementwise.wgsl")),
            Shader::Copy => include_str!(concat!(env!("OUT_DIR"), "/copy.wgsl")),
            Shader::Resize => include_str!(concat!(env!("OUT_DIR"), "/resize.wgsl")),
            Shader::Softmax => include_str!(concat!(env!("OUT_DIR"), "/softmax.wgsl")),
            Shader::Reduce => include_str!(concat!(env!("OUT_DIR"), "/reduce.wgsl")),
        }
    }

    /// Whether the family reads packed weights (through a [`Weights`] variant).
    pub(crate) fn has_weights(self) -> bool {
        matches!(self, Shader::Conv2d | Shader::Depthwise | Shader::MatMul)
    }

    /// The module source exactly as the device compiles it: `weights` is ignored by the
    /// families without weights.
    pub(crate) fn source(self, weights: Weights) -> String {
        if self.has_weights() {
            format!("{COMMON}\n{}\n{}", weights.source(), self.body())
        } else {
            format!("{COMMON}\n{}", self.body())
        }
    }

    /// The entry points the Rust side dispatches (checked against the module in tests).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn entries(self) -> &'static [&'static str] {
        match self {
            Shader::Conv2d => &["conv2d_vec4", "conv2d_scalar"],
            Shader::Depthwise => &["depthwise_vec4", "depthwise_scalar"],
            Shader::MatMul => &["matmul_tiled", "matmul_rows"],
            Shader::Pool => &["pool2d"],
            Shader::Elementwise => &["unary", "binary", "channel_affine"],
            Shader::Copy => &["strided_copy"],
            Shader::Resize => &["resize_nearest", "resize_bilinear"],
            Shader::Softmax => &["softmax"],
            Shader::Reduce => &["reduce"],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(name: &str, src: &str) -> naga::Module {
        let module = match naga::front::wgsl::parse_str(src) {
            Ok(m) => m,
            Err(e) => panic!("{name}: WGSL parse error:\n{}", e.emit_to_string(src)),
        };
        let mut validator = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        );
        if let Err(e) = validator.validate(&module) {
            panic!("{name}: WGSL validation error:\n{}", e.emit_to_string(src));
        }
        module
    }

    #[test]
    fn common_prelude_validates_alone() {
        validate("common.wgsl", COMMON);
    }

    #[test]
    fn every_family_validates_with_its_entry_points() {
        for (s, w) in Shader::ALL
            .into_iter()
            .flat_map(|s| [Weights::F32, Weights::U8, Weights::F16].map(|w| (s, w)))
            .filter(|&(s, w)| s.has_weights() || w == Weights::F32)
        {
            let module = validate(&format!("{} ({w:?})", s.file()), &s.source(w));
            for e in s.entries() {
                let ep = module.entry_points.iter().find(|ep| ep.name == *e);
                assert!(ep.is_some(), "{}: entry point {e} not found", s.file());
                assert_eq!(
                    ep.unwrap().stage,
                    naga::ShaderStage::Compute,
                    "{}: {e} is not a compute entry point",
                    s.file()
                );
            }
            assert_eq!(
                module.entry_points.len(),
                s.entries().len(),
                "{}: entry points not listed in Shader::entries",
                s.file()
            );
        }
    }

    #[test]
    fn compacted_sources_keep_every_line_and_drop_only_comments_and_indentation() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shaders");
        let mut files: Vec<(&str, &str)> = vec![("common.wgsl", COMMON)];
        files.extend([Weights::F32, Weights::U8, Weights::F16].map(|w| (w.file(), w.source())));
        files.extend(Shader::ALL.iter().map(|s| (s.file(), s.body())));
        for (file, compact) in files {
            let original = std::fs::read_to_string(dir.join(file)).unwrap();
            assert_eq!(
                compact.lines().count(),
                original.lines().count(),
                "{file}: line numbers must match the file's"
            );
            for (n, (c, o)) in compact.lines().zip(original.lines()).enumerate() {
                let code = o.find("//").map_or(o, |i| &o[..i]).trim();
                assert_eq!(c, code, "{file}:{}", n + 1);
            }
        }
    }

    #[test]
    fn every_file_in_shaders_dir_is_compiled() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shaders");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("shaders/ directory")
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".wgsl"))
            .collect();
        files.sort();
        let mut known: Vec<String> = Shader::ALL.iter().map(|s| s.file().to_string()).collect();
        known.extend(
            [
                "common.wgsl",
                "weights_f32.wgsl",
                "weights_u8.wgsl",
                "weights_f16.wgsl",
            ]
            .map(String::from),
        );
        known.sort();
        assert_eq!(
            files, known,
            "every shaders/*.wgsl must be a Shader or Weights variant (so that it is validated)"
        );
    }
}
