//! The weights manifest: which tensors live in which shard files, and how
//! their bytes are laid out.
//!
//! A manifest is a list of *groups*. A group's `paths` are concatenated in
//! order into one byte string, and its `weights` follow each other in that
//! string with no padding, so a tensor may straddle two shard files. Each
//! weight stores `element_count × size(stored dtype)` bytes, where the stored
//! dtype is the quantization dtype when there is one.
//!
//! Parsing validates every entry (name, shape, dtype, quantization), computes
//! each weight's byte range with overflow-checked arithmetic and applies the
//! [`Limits`] before anything proportional to a declared size is allocated.

use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::error::{FormatError, Result};
use crate::json::{as_uint, get_non_null, preview, type_name};
use crate::limits::Limits;

/// Element type of a weight once decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    Float32,
    Int32,
    Bool,
}

impl DType {
    /// Reads a manifest dtype string. `None` for anything unsupported,
    /// including tfjs's `string` and `complex64`.
    pub fn parse(s: &str) -> Option<DType> {
        match s {
            "float32" => Some(DType::Float32),
            "int32" => Some(DType::Int32),
            "bool" => Some(DType::Bool),
            _ => None,
        }
    }

    /// The name tfjs uses: `float32`, `int32`, `bool`.
    pub fn as_str(self) -> &'static str {
        match self {
            DType::Float32 => "float32",
            DType::Int32 => "int32",
            DType::Bool => "bool",
        }
    }

    /// Bytes per element when stored unquantized.
    pub fn byte_size(self) -> u64 {
        match self {
            DType::Float32 | DType::Int32 => 4,
            DType::Bool => 1,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Storage type of a quantized weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuantDType {
    Uint8,
    Uint16,
    Float16,
}

impl QuantDType {
    /// Reads a `quantization.dtype` string.
    pub fn parse(s: &str) -> Option<QuantDType> {
        match s {
            "uint8" => Some(QuantDType::Uint8),
            "uint16" => Some(QuantDType::Uint16),
            "float16" => Some(QuantDType::Float16),
            _ => None,
        }
    }

    /// The name tfjs uses: `uint8`, `uint16`, `float16`.
    pub fn as_str(self) -> &'static str {
        match self {
            QuantDType::Uint8 => "uint8",
            QuantDType::Uint16 => "uint16",
            QuantDType::Float16 => "float16",
        }
    }

    /// Bytes per stored element.
    pub fn byte_size(self) -> u64 {
        match self {
            QuantDType::Uint8 => 1,
            QuantDType::Uint16 | QuantDType::Float16 => 2,
        }
    }
}

impl fmt::Display for QuantDType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a quantized weight is stored.
///
/// For `uint8`/`uint16` a stored value `q` decodes to `q * scale + min`.
/// `scale` and `min` are kept as the JSON's double-precision numbers because
/// tfjs computes in doubles and rounds to float32 only once at the end; using
/// f32 here would change the last bit of some weights. For `float16` both are 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantization {
    pub dtype: QuantDType,
    pub scale: f64,
    pub min: f64,
    /// The converter's `original_dtype`, informational only: tfjs decodes to
    /// the entry's own `dtype` and ignores this field.
    pub original_dtype: Option<DType>,
}

/// One tensor of the manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightEntry {
    pub name: String,
    pub shape: Vec<usize>,
    /// The decoded dtype (the entry's `dtype`, even when quantized).
    pub dtype: DType,
    pub quantization: Option<Quantization>,
    /// Index of the group in the manifest.
    pub group: usize,
    /// Start of this weight within the group's concatenated shard bytes.
    pub byte_offset: u64,
    /// Number of stored bytes, equal to [`WeightEntry::stored_bytes`].
    pub byte_len: u64,
}

impl WeightEntry {
    /// Product of the shape (1 for a scalar), saturating at `u64::MAX`.
    pub fn element_count(&self) -> u64 {
        checked_element_count(&self.shape).unwrap_or(u64::MAX)
    }

    /// Bytes per stored element: the quantization dtype's when quantized.
    pub fn stored_element_size(&self) -> u64 {
        match &self.quantization {
            Some(q) => q.dtype.byte_size(),
            None => self.dtype.byte_size(),
        }
    }

    /// Bytes this weight occupies in the shards, saturating at `u64::MAX`.
    pub fn stored_bytes(&self) -> u64 {
        self.checked_stored_bytes().unwrap_or(u64::MAX)
    }

    pub(crate) fn checked_stored_bytes(&self) -> Option<u64> {
        checked_element_count(&self.shape)?.checked_mul(self.stored_element_size())
    }
}

/// A set of weights stored together in one or more shard files.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WeightGroup {
    /// Shard file names, relative to `model.json`, in concatenation order.
    pub paths: Vec<String>,
    pub weights: Vec<WeightEntry>,
}

impl WeightGroup {
    /// Total stored bytes of the group's weights, which is exactly the sum of
    /// its shard lengths. Saturates at `u64::MAX`.
    pub fn byte_len(&self) -> u64 {
        self.checked_byte_len().unwrap_or(u64::MAX)
    }

    pub(crate) fn checked_byte_len(&self) -> Option<u64> {
        self.weights
            .iter()
            .try_fold(0u64, |acc, w| acc.checked_add(w.checked_stored_bytes()?))
    }
}

/// Product of `shape`, `None` on overflow. An empty shape is a scalar: 1.
pub(crate) fn checked_element_count(shape: &[usize]) -> Option<u64> {
    shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(u64::try_from(d).ok()?))
}

/// Checks that no two weights of the manifest share a name.
pub(crate) fn check_unique_names(manifest: &[WeightGroup]) -> Result<()> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (g, group) in manifest.iter().enumerate() {
        for w in &group.weights {
            if let Some(&first) = seen.get(w.name.as_str()) {
                return Err(FormatError::DuplicateWeight {
                    name: w.name.clone(),
                    first_group: first,
                    second_group: g,
                });
            }
            seen.insert(w.name.clone(), g);
        }
    }
    Ok(())
}

/// Parses a `weightsManifest` array (the field of `model.json`, or the whole
/// of an old-style `weights_manifest.json`).
///
/// Checks every entry, computes byte offsets, rejects duplicate names and
/// applies `limits` (shard count, weight count, rank, per-tensor elements,
/// total bytes).
pub fn parse_weights_manifest(value: &Value, limits: &Limits) -> Result<Vec<WeightGroup>> {
    const ROOT: &str = "weightsManifest";
    let groups = value.as_array().ok_or_else(|| {
        FormatError::invalid(
            ROOT,
            format!("expected an array of groups, got {}", type_name(value)),
        )
    })?;

    let mut total_shards = 0usize;
    let mut total_weights = 0usize;
    let mut total_bytes = 0u64;
    let mut out = Vec::with_capacity(groups.len().min(limits.max_shards));

    for (g, group) in groups.iter().enumerate() {
        let gpath = format!("{ROOT}[{g}]");
        let obj = group.as_object().ok_or_else(|| {
            FormatError::invalid(
                &gpath,
                format!("expected an object, got {}", type_name(group)),
            )
        })?;

        let paths_v = obj.get("paths").ok_or_else(|| FormatError::MissingField {
            path: format!("{gpath}.paths"),
        })?;
        let paths_a = paths_v.as_array().ok_or_else(|| {
            FormatError::invalid(
                format!("{gpath}.paths"),
                format!("expected an array of strings, got {}", type_name(paths_v)),
            )
        })?;
        total_shards = total_shards.saturating_add(paths_a.len());
        if total_shards > limits.max_shards {
            return Err(FormatError::limit(
                "weights manifest: number of shard files",
                total_shards as u64,
                limits.max_shards as u64,
            ));
        }
        let paths = paths_a
            .iter()
            .enumerate()
            .map(|(i, p)| {
                p.as_str().map(str::to_owned).ok_or_else(|| {
                    FormatError::invalid(
                        format!("{gpath}.paths[{i}]"),
                        format!("expected a string, got {}", type_name(p)),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;

        let weights_v = obj
            .get("weights")
            .ok_or_else(|| FormatError::MissingField {
                path: format!("{gpath}.weights"),
            })?;
        let weights_a = weights_v.as_array().ok_or_else(|| {
            FormatError::invalid(
                format!("{gpath}.weights"),
                format!(
                    "expected an array of weight entries, got {}",
                    type_name(weights_v)
                ),
            )
        })?;
        total_weights = total_weights.saturating_add(weights_a.len());
        if total_weights > limits.max_weights {
            return Err(FormatError::limit(
                "weights manifest: number of weights",
                total_weights as u64,
                limits.max_weights as u64,
            ));
        }

        let mut weights = Vec::with_capacity(weights_a.len());
        let mut offset = 0u64;
        for (i, entry) in weights_a.iter().enumerate() {
            let epath = format!("{gpath}.weights[{i}]");
            let mut w = parse_entry(entry, &epath, g, limits)?;
            w.byte_offset = offset;
            offset = offset.checked_add(w.byte_len).ok_or_else(|| {
                FormatError::limit(
                    format!("weight group {g}: total bytes"),
                    u64::MAX,
                    limits.max_total_weight_bytes,
                )
            })?;
            total_bytes = total_bytes.saturating_add(w.byte_len);
            if total_bytes > limits.max_total_weight_bytes {
                return Err(FormatError::limit(
                    "weights manifest: total weight bytes",
                    total_bytes,
                    limits.max_total_weight_bytes,
                ));
            }
            weights.push(w);
        }
        out.push(WeightGroup { paths, weights });
    }

    check_unique_names(&out)?;
    Ok(out)
}

fn parse_entry(entry: &Value, epath: &str, group: usize, limits: &Limits) -> Result<WeightEntry> {
    let obj = entry.as_object().ok_or_else(|| {
        FormatError::invalid(
            epath,
            format!("expected an object, got {}", type_name(entry)),
        )
    })?;

    let name = match obj.get("name") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(FormatError::invalid(
                format!("{epath}.name"),
                format!("expected a string, got {}", type_name(other)),
            ))
        }
        None => {
            return Err(FormatError::MissingField {
                path: format!("{epath}.name"),
            })
        }
    };

    let shape = parse_shape(obj, epath, &name, limits)?;

    let dtype_s = match obj.get("dtype") {
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(FormatError::invalid(
                format!("{epath}.dtype"),
                format!(
                    "weight \"{name}\": expected a dtype string, got {}",
                    preview(other)
                ),
            ))
        }
        None => {
            return Err(FormatError::MissingField {
                path: format!("{epath}.dtype"),
            })
        }
    };
    let dtype = DType::parse(dtype_s).ok_or_else(|| FormatError::UnsupportedDType {
        weight: name.clone(),
        dtype: dtype_s.to_owned(),
    })?;

    let quantization = match get_non_null(obj, "quantization") {
        None => None,
        Some(q) => Some(parse_quantization(q, &name, dtype)?),
    };

    let mut w = WeightEntry {
        name,
        shape,
        dtype,
        quantization,
        group,
        byte_offset: 0,
        byte_len: 0,
    };
    let elements = checked_element_count(&w.shape).unwrap_or(u64::MAX);
    if elements > limits.max_tensor_elements {
        return Err(FormatError::limit(
            format!(
                "weight \"{}\" (shape {:?}): number of elements",
                w.name, w.shape
            ),
            elements,
            limits.max_tensor_elements,
        ));
    }
    w.byte_len = w.checked_stored_bytes().ok_or_else(|| {
        FormatError::limit(
            format!("weight \"{}\": stored bytes", w.name),
            u64::MAX,
            limits.max_total_weight_bytes,
        )
    })?;
    Ok(w)
}

fn parse_shape(
    obj: &Map<String, Value>,
    epath: &str,
    name: &str,
    limits: &Limits,
) -> Result<Vec<usize>> {
    let spath = format!("{epath}.shape");
    let v = obj.get("shape").ok_or_else(|| FormatError::MissingField {
        path: spath.clone(),
    })?;
    let dims = v.as_array().ok_or_else(|| {
        FormatError::invalid(
            &spath,
            format!(
                "weight \"{name}\": expected an array of integers, got {}",
                type_name(v)
            ),
        )
    })?;
    if dims.len() > limits.max_rank {
        return Err(FormatError::limit(
            format!("weight \"{name}\": rank"),
            dims.len() as u64,
            limits.max_rank as u64,
        ));
    }
    dims.iter()
        .enumerate()
        .map(|(i, d)| {
            // Reject before converting: a dimension above usize::MAX (wasm32)
            // or above the element limit can never be valid.
            match as_uint(d) {
                Some(u) if u > limits.max_tensor_elements => Err(FormatError::limit(
                    format!("weight \"{name}\": dimension {i}"),
                    u,
                    limits.max_tensor_elements,
                )),
                Some(u) => usize::try_from(u).map_err(|_| {
                    FormatError::limit(
                        format!("weight \"{name}\": dimension {i}"),
                        u,
                        usize::MAX as u64,
                    )
                }),
                None => Err(FormatError::invalid(
                    format!("{spath}[{i}]"),
                    format!(
                        "weight \"{name}\": expected a non-negative integer, got {}",
                        preview(d)
                    ),
                )),
            }
        })
        .collect()
}

fn parse_quantization(q: &Value, name: &str, dtype: DType) -> Result<Quantization> {
    let qerr = |message: String| FormatError::Quantization {
        weight: name.to_owned(),
        message,
    };
    let obj = q
        .as_object()
        .ok_or_else(|| qerr(format!("expected an object, got {}", type_name(q))))?;
    let qdtype = match obj.get("dtype") {
        Some(Value::String(s)) => QuantDType::parse(s).ok_or_else(|| {
            qerr(format!(
                "unknown quantization dtype \"{s}\" (supported: uint8, uint16, float16)"
            ))
        })?,
        Some(other) => {
            return Err(qerr(format!(
                "dtype: expected a string, got {}",
                preview(other)
            )))
        }
        None => return Err(qerr("missing `dtype`".to_owned())),
    };
    // tfjs ignores original_dtype; keep it when readable, never fail on it.
    let original_dtype = obj
        .get("original_dtype")
        .and_then(Value::as_str)
        .and_then(DType::parse);

    match qdtype {
        QuantDType::Float16 => {
            if dtype != DType::Float32 {
                return Err(qerr(format!(
                    "float16 quantization only supports float32 weights, not {dtype}"
                )));
            }
            Ok(Quantization {
                dtype: qdtype,
                scale: 0.0,
                min: 0.0,
                original_dtype,
            })
        }
        QuantDType::Uint8 | QuantDType::Uint16 => {
            if dtype == DType::Bool {
                return Err(qerr(format!(
                    "{qdtype} quantization is not supported for bool weights"
                )));
            }
            let number = |key: &str| -> Result<f64> {
                match obj.get(key) {
                    Some(Value::Number(n)) => crate::json::number_f64(n)
                        .ok_or_else(|| qerr(format!("`{key}` is not a finite number"))),
                    Some(other) => Err(qerr(format!(
                        "`{key}`: expected a number, got {}",
                        preview(other)
                    ))),
                    None => Err(qerr(format!(
                        "{qdtype} quantization needs `scale` and `min`, but `{key}` is missing"
                    ))),
                }
            };
            let scale = number("scale")?;
            let min = number("min")?;
            Ok(Quantization {
                dtype: qdtype,
                scale,
                min,
                original_dtype,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Vec<WeightGroup>> {
        parse_weights_manifest(&v, &Limits::default())
    }

    #[test]
    fn offsets_and_byte_accounting() {
        let m = parse(json!([
            {"paths": ["a.bin", "b.bin"], "weights": [
                {"name": "k", "shape": [2, 3], "dtype": "float32"},
                {"name": "q", "shape": [5], "dtype": "float32",
                 "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0, "original_dtype": "float32"}},
                {"name": "h", "shape": [3], "dtype": "float32", "quantization": {"dtype": "float16"}},
                {"name": "i", "shape": [], "dtype": "int32"},
                {"name": "b", "shape": [3], "dtype": "bool", "group": "model"}
            ]},
            {"paths": ["c.bin"], "weights": [
                {"name": "u", "shape": [2, 2], "dtype": "int32",
                 "quantization": {"dtype": "uint16", "scale": 1, "min": 0}}
            ]}
        ]))
        .unwrap();
        let g0 = &m[0].weights;
        let spans: Vec<(u64, u64)> = g0.iter().map(|w| (w.byte_offset, w.byte_len)).collect();
        assert_eq!(spans, vec![(0, 24), (24, 5), (29, 6), (35, 4), (39, 3)]);
        assert_eq!(m[0].byte_len(), 42);
        assert_eq!(m[1].byte_len(), 8);
        assert_eq!(m[1].weights[0].group, 1);
        assert_eq!(g0[3].element_count(), 1);
        let q = g0[1].quantization.unwrap();
        assert_eq!(
            (q.dtype, q.scale, q.min, q.original_dtype),
            (QuantDType::Uint8, 0.5, -1.0, Some(DType::Float32))
        );
        assert_eq!(g0[2].quantization.unwrap().scale, 0.0);
    }

    #[test]
    fn scale_and_min_are_parsed_correctly_rounded() {
        // Values from the nsfwjs mobilenet_v2 / inception_v3 manifests that serde_json's own
        // number parsing reads 1 ULP off; tfjs (JSON.parse) reads them correctly rounded, and
        // de-quantized weights would differ. model.json's parser reads them correctly rounded
        // (in the browser module the JS engine's parser does, which the browser suite's
        // real-model comparisons cover).
        for text in [
            "0.40248510241508484",
            "0.023198612531026206",
            "-1.1432858060388003",
            "-14.455297470092773",
        ] {
            let json = format!(
                r#"[{{"paths": [], "weights": [{{"name": "w", "shape": [1], "dtype": "float32",
                    "quantization": {{"dtype": "uint8", "scale": {text}, "min": {text}}}}}]}}]"#
            );
            let m = parse(crate::json_parser::parse(json.as_bytes()).unwrap()).unwrap();
            let q = m[0].weights[0].quantization.unwrap();
            let want: f64 = text.parse().unwrap();
            assert_eq!(
                (q.scale.to_bits(), q.min.to_bits()),
                (want.to_bits(), want.to_bits()),
                "{text}"
            );
        }
    }

    #[test]
    fn unsupported_dtypes_name_the_weight() {
        for dt in ["string", "complex64", "float64"] {
            let e = parse(
                json!([{"paths": [], "weights": [{"name": "w/x", "shape": [1], "dtype": dt}]}]),
            )
            .unwrap_err();
            assert_eq!(
                e,
                FormatError::UnsupportedDType {
                    weight: "w/x".into(),
                    dtype: dt.into()
                }
            );
            assert!(e.to_string().contains("w/x"));
        }
    }

    #[test]
    fn quantization_rules() {
        let bad = |q: Value, dtype: &str| {
            parse(json!([{"paths": [], "weights": [{"name": "w", "shape": [1], "dtype": dtype, "quantization": q}]}]))
                .unwrap_err()
        };
        assert!(matches!(
            bad(json!({"dtype": "uint8", "min": 0}), "float32"),
            FormatError::Quantization { .. }
        ));
        assert!(matches!(
            bad(json!({"dtype": "uint16", "scale": 1}), "float32"),
            FormatError::Quantization { .. }
        ));
        assert!(matches!(
            bad(json!({"dtype": "int4"}), "float32"),
            FormatError::Quantization { .. }
        ));
        assert!(matches!(
            bad(json!({"dtype": "float16"}), "int32"),
            FormatError::Quantization { .. }
        ));
        assert!(matches!(
            bad(json!({"dtype": "uint8", "scale": 1, "min": 0}), "bool"),
            FormatError::Quantization { .. }
        ));
        assert!(matches!(
            bad(json!({"scale": 1, "min": 0}), "float32"),
            FormatError::Quantization { .. }
        ));
        assert!(matches!(
            bad(json!("uint8"), "float32"),
            FormatError::Quantization { .. }
        ));
        // quantization: null is the same as absent.
        let m = parse(json!([{"paths": [], "weights": [{"name": "w", "shape": [1], "dtype": "float32", "quantization": null}]}]))
            .unwrap();
        assert_eq!(m[0].weights[0].quantization, None);
    }

    #[test]
    fn bad_entries_give_json_paths() {
        let e = parse(json!([{"paths": ["a"], "weights": [{"name": "w", "shape": [2, -1], "dtype": "float32"}]}]))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("weightsManifest[0].weights[0].shape[1]"),
            "{e}"
        );
        let e = parse(json!([{"paths": ["a"], "weights": [{"shape": [2], "dtype": "float32"}]}]))
            .unwrap_err();
        assert_eq!(
            e,
            FormatError::MissingField {
                path: "weightsManifest[0].weights[0].name".into()
            }
        );
        let e = parse(json!([{"weights": []}])).unwrap_err();
        assert_eq!(
            e,
            FormatError::MissingField {
                path: "weightsManifest[0].paths".into()
            }
        );
        let e = parse(json!([{"paths": [3], "weights": []}])).unwrap_err();
        assert!(e.to_string().contains("weightsManifest[0].paths[0]"), "{e}");
        let e = parse(json!({"paths": []})).unwrap_err();
        assert!(e.to_string().contains("expected an array"), "{e}");
    }

    #[test]
    fn duplicate_names_rejected() {
        let e = parse(json!([
            {"paths": ["a"], "weights": [{"name": "w", "shape": [1], "dtype": "float32"}]},
            {"paths": ["b"], "weights": [{"name": "w", "shape": [1], "dtype": "float32"}]}
        ]))
        .unwrap_err();
        assert_eq!(
            e,
            FormatError::DuplicateWeight {
                name: "w".into(),
                first_group: 0,
                second_group: 1
            }
        );
    }

    #[test]
    fn absurd_sizes_rejected_before_allocation() {
        let e = parse(json!([{"paths": ["a"], "weights": [{"name": "huge", "shape": [1e12, 1e12], "dtype": "float32"}]}]))
            .unwrap_err();
        assert!(matches!(e, FormatError::Limit { .. }), "{e}");
        assert!(e.to_string().contains("huge"), "{e}");
        // Overflowing u64 in the product.
        let big = u64::MAX / 2;
        let limits = Limits {
            max_tensor_elements: u64::MAX,
            ..Limits::default()
        };
        let e = parse_weights_manifest(
            &json!([{"paths": ["a"], "weights": [{"name": "o", "shape": [big, big, big], "dtype": "float32"}]}]),
            &limits,
        )
        .unwrap_err();
        assert!(matches!(e, FormatError::Limit { .. }), "{e}");
        // Many small tensors that add up past the total.
        let limits = Limits {
            max_total_weight_bytes: 100,
            ..Limits::default()
        };
        let e = parse_weights_manifest(
            &json!([{"paths": ["a"], "weights": [
                {"name": "a", "shape": [20], "dtype": "float32"},
                {"name": "b", "shape": [20], "dtype": "float32"}]}]),
            &limits,
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                FormatError::Limit {
                    value: 160,
                    limit: 100,
                    ..
                }
            ),
            "{e}"
        );
        let limits = Limits {
            max_rank: 2,
            ..Limits::default()
        };
        let e = parse_weights_manifest(
            &json!([{"paths": ["a"], "weights": [{"name": "r", "shape": [1, 1, 1], "dtype": "float32"}]}]),
            &limits,
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                FormatError::Limit {
                    value: 3,
                    limit: 2,
                    ..
                }
            ),
            "{e}"
        );
        let limits = Limits {
            max_shards: 1,
            ..Limits::default()
        };
        assert!(
            parse_weights_manifest(&json!([{"paths": ["a", "b"], "weights": []}]), &limits)
                .is_err()
        );
        let limits = Limits {
            max_weights: 1,
            ..Limits::default()
        };
        assert!(parse_weights_manifest(
            &json!([{"paths": ["a"], "weights": [
                {"name": "a", "shape": [], "dtype": "bool"}, {"name": "b", "shape": [], "dtype": "bool"}]}]),
            &limits
        )
        .is_err());
    }

    #[test]
    fn hand_built_entries_saturate() {
        let w = WeightEntry {
            name: "x".into(),
            shape: vec![usize::MAX, usize::MAX],
            dtype: DType::Float32,
            quantization: None,
            group: 0,
            byte_offset: 0,
            byte_len: 0,
        };
        assert_eq!(w.element_count(), u64::MAX);
        assert_eq!(w.stored_bytes(), u64::MAX);
        let g = WeightGroup {
            paths: vec![],
            weights: vec![w.clone(), w],
        };
        assert_eq!(g.byte_len(), u64::MAX);
    }
}
