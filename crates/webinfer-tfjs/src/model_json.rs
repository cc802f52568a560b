//! `model.json`: the entry file of every TensorFlow.js model.
//!
//! ```json
//! {"format": "layers-model", "generatedBy": "...", "convertedBy": null,
//!  "modelTopology": {...}, "weightsManifest": [{"paths": [...], "weights": [...]}],
//!  "signature": {...}, "userDefinedMetadata": {...}}
//! ```
//!
//! The topology is kept as raw JSON; [`parse_layers_topology`](crate::parse_layers_topology)
//! reads a layers-model's. The weights manifest is parsed and checked here.

use serde_json::{Map, Value};

use crate::error::{FormatError, Result};
use crate::json::{get_non_null, type_name};
use crate::json_parser;
use crate::limits::Limits;
use crate::manifest::{parse_weights_manifest, DType, QuantDType, WeightGroup};

/// Which kind of model a `model.json` describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelFormat {
    /// A Keras model (`tf.LayersModel`): `modelTopology` is Keras JSON.
    LayersModel,
    /// A converted TensorFlow graph (`tf.GraphModel`): `modelTopology` is a GraphDef as JSON.
    GraphModel,
}

impl ModelFormat {
    /// `layers-model` or `graph-model`, as in the `format` field.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelFormat::LayersModel => "layers-model",
            ModelFormat::GraphModel => "graph-model",
        }
    }
}

/// A parsed `model.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelJson {
    /// From `format`; when absent, `GraphModel` if the topology has a `node`,
    /// `versions` or `library` key (a GraphDef), `LayersModel` otherwise.
    pub format: ModelFormat,
    pub generated_by: Option<String>,
    pub converted_by: Option<String>,
    /// `modelTopology`, as written; shared, so that a copy of a `ModelJson` (a loader hands
    /// one to the model it builds) does not copy the tree.
    pub topology: std::sync::Arc<Value>,
    /// `weightsManifest`; empty when absent (a topology-only model).
    pub weights_manifest: Vec<WeightGroup>,
    pub signature: Option<Value>,
    pub user_defined_metadata: Option<Value>,
}

impl ModelJson {
    /// Exact number of stored bytes over all weight groups, i.e. the total
    /// size of the shard files. Saturates at `u64::MAX`.
    pub fn total_weight_bytes(&self) -> u64 {
        self.weights_manifest
            .iter()
            .fold(0u64, |acc, g| acc.saturating_add(g.byte_len()))
    }

    /// Every shard path, group by group, in the order the decoder wants them.
    pub fn shard_paths(&self) -> impl Iterator<Item = &str> {
        self.weights_manifest
            .iter()
            .flat_map(|g| g.paths.iter().map(String::as_str))
    }
}

/// The text of a `model.json` within the size limit, without a leading UTF-8 byte-order mark
/// (browsers' `response.json()` skips one too).
fn json_text<'b>(bytes: &'b [u8], limits: &Limits) -> Result<&'b [u8]> {
    if bytes.len() > limits.max_model_json_bytes {
        return Err(FormatError::limit(
            "model.json size in bytes",
            bytes.len() as u64,
            limits.max_model_json_bytes as u64,
        ));
    }
    Ok(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes))
}

/// Parses a `model.json` file.
///
/// Rejects texts over `limits.max_model_json_bytes` before parsing. A leading
/// UTF-8 byte-order mark is skipped (browsers' `response.json()` does too).
pub fn parse_model_json(bytes: &[u8], limits: &Limits) -> Result<ModelJson> {
    let text = json_text(bytes, limits)?;
    let value = json_parser::parse(text).map_err(|e| FormatError::Json {
        line: e.line,
        column: e.column,
        message: e.message.into(),
    })?;
    let root = match value {
        Value::Object(map) => map,
        other => {
            return Err(FormatError::invalid(
                "(top level)",
                format!("expected a JSON object, got {}", type_name(&other)),
            ))
        }
    };
    from_object(root, limits)
}

/// The first `max` shard paths of a `model.json`'s weights manifest, in the order
/// [`ModelJson::shard_paths`] lists them, found without parsing the file into values: what a
/// loader needs to start downloading the shards while it parses the rest (MobileNetV2's
/// 118 KB `model.json` is scanned in well under a millisecond; parsing its manifest alone took
/// ~1 ms in Chromium).
///
/// One pass over the bytes that follows strings and nesting finds the top-level
/// `"weightsManifest"`; within it, each group's `"paths"` and each weight's `"shape"`,
/// `"dtype"` and quantization `"dtype"` (the last of a repeated key, as the full parse reads
/// them). Paths come back only when the manifest is within `limits` (shard and weight counts,
/// rank, elements per tensor, total bytes: a model over a limit is refused before any shard is
/// requested). Empty wherever the scan is unsure what the full parse would find: a string
/// spelled with escapes, a dimension not written as plain digits, anything not shaped as a
/// manifest. Nothing else is checked: the caller parses the whole file next, with every
/// check, before it reads any shard byte. Where the file is not valid JSON the paths may be
/// ones the full parse never reaches; it reports the error.
pub fn peek_shard_paths(bytes: &[u8], limits: &Limits, max: usize) -> Result<Vec<String>> {
    let text = json_text(bytes, limits)?;
    let mut scan = Scan {
        text,
        limits,
        max,
        paths: Vec::new(),
        shards: 0,
        weights: 0,
        bytes: 0,
    };
    if let Some(at) = top_level_value(text, b"weightsManifest") {
        if scan.manifest(at).is_none() {
            scan.paths.clear();
        }
    }
    Ok(scan.paths)
}

/// [`peek_shard_paths`]' walk: `None` wherever it is unsure or a limit is exceeded.
struct Scan<'t> {
    text: &'t [u8],
    limits: &'t Limits,
    max: usize,
    paths: Vec<String>,
    shards: usize,
    weights: usize,
    bytes: u64,
}

impl Scan<'_> {
    /// The manifest array at `at`.
    fn manifest(&mut self, at: usize) -> Option<()> {
        let text = self.text;
        array(text, at, |i| {
            // A group: the last "paths" (plain strings) and "weights" of an object.
            let mut paths = None;
            let mut weights = None;
            let end = object(text, i, |key, v| match key {
                b"paths" => {
                    let (list, end) = plain_strings(text, v)?;
                    paths = Some(list);
                    Some(end)
                }
                b"weights" => {
                    let mut entries = Vec::new();
                    let end = array(text, v, |e| {
                        let (entry, end) = entry(text, e, self.limits)?;
                        entries.push(entry);
                        Some(end)
                    })?;
                    weights = Some(entries);
                    Some(end)
                }
                _ => skip_value(text, v),
            })?;
            self.group(paths?, weights?)?;
            Some(end)
        })?;
        Some(())
    }

    /// One group's paths and weights `(rank, elements, stored bytes)`, against the limits.
    fn group(&mut self, paths: Vec<String>, weights: Vec<(usize, u64, u64)>) -> Option<()> {
        let limits = self.limits;
        self.shards = self.shards.checked_add(paths.len())?;
        self.weights = self.weights.checked_add(weights.len())?;
        if self.shards > limits.max_shards || self.weights > limits.max_weights {
            return None;
        }
        for (rank, elements, bytes) in weights {
            self.bytes = self.bytes.checked_add(bytes)?;
            if rank > limits.max_rank
                || elements > limits.max_tensor_elements
                || self.bytes > limits.max_total_weight_bytes
            {
                return None;
            }
        }
        let room = self.max.saturating_sub(self.paths.len());
        self.paths.extend(paths.into_iter().take(room));
        Some(())
    }
}

/// A weight entry at `i`: `(rank, elements, stored bytes)` from its last "shape" (plain
/// digits, none over the element limit), "dtype" and quantization "dtype", and the index
/// after it.
fn entry(text: &[u8], i: usize, limits: &Limits) -> Option<((usize, u64, u64), usize)> {
    let mut shape: Option<(usize, u64)> = None;
    let mut dtype = None;
    let mut quantized = None;
    let end = object(text, i, |key, v| match key {
        b"shape" => {
            let mut rank = 0usize;
            let mut elements = 1u64;
            let end = array(text, v, |d| {
                let digits = text
                    .get(d..)?
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .count();
                let n = crate::json::parse_digits(text.get(d..d.checked_add(digits)?)?)
                    .filter(|&n| n <= limits.max_tensor_elements)?;
                rank = rank.checked_add(1)?;
                elements = elements.checked_mul(n)?;
                d.checked_add(digits)
            })?;
            shape = Some((rank, elements));
            Some(end)
        }
        b"dtype" => {
            let (raw, end) = string_at(text, v)?;
            dtype = Some(DType::parse(std::str::from_utf8(raw).ok()?)?);
            Some(end)
        }
        b"quantization" if text.get(v..)?.starts_with(b"null") => {
            quantized = None;
            v.checked_add(4)
        }
        b"quantization" => {
            let mut q = None;
            let end = object(text, v, |key, v| match key {
                b"dtype" => {
                    let (raw, end) = string_at(text, v)?;
                    q = Some(QuantDType::parse(std::str::from_utf8(raw).ok()?)?);
                    Some(end)
                }
                _ => skip_value(text, v),
            })?;
            quantized = Some(q?);
            Some(end)
        }
        _ => skip_value(text, v),
    })?;
    let (rank, elements) = shape?;
    let size = match quantized {
        Some(q) => q.byte_size(),
        None => dtype?.byte_size(),
    };
    dtype?;
    Some(((rank, elements, elements.checked_mul(size)?), end))
}

/// The array at `i`: `item` is called at each element's first byte and returns the index
/// after it. Returns the index after the array.
fn array(text: &[u8], i: usize, mut item: impl FnMut(usize) -> Option<usize>) -> Option<usize> {
    let mut i = skip_ws(text, i);
    if text.get(i) != Some(&b'[') {
        return None;
    }
    i = skip_ws(text, i.checked_add(1)?);
    if text.get(i) == Some(&b']') {
        return i.checked_add(1);
    }
    loop {
        i = skip_ws(text, item(i)?);
        match text.get(i)? {
            b',' => i = skip_ws(text, i.checked_add(1)?),
            b']' => return i.checked_add(1),
            _ => return None,
        }
    }
}

/// The object at `i`: `member` is called with each raw key and its value's first byte and
/// returns the index after the value. Returns the index after the object.
fn object(
    text: &[u8],
    i: usize,
    mut member: impl FnMut(&[u8], usize) -> Option<usize>,
) -> Option<usize> {
    let mut i = skip_ws(text, i);
    if text.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(text, i.checked_add(1)?);
    if text.get(i) == Some(&b'}') {
        return i.checked_add(1);
    }
    loop {
        let (key, after) = string_at(text, i)?;
        if key.contains(&b'\\') {
            // A key spelled with escapes: the scan cannot tell which it is.
            return None;
        }
        i = skip_ws(text, after);
        if text.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(text, member(key, skip_ws(text, i.checked_add(1)?))?);
        match text.get(i)? {
            b',' => i = skip_ws(text, i.checked_add(1)?),
            b'}' => return i.checked_add(1),
            _ => return None,
        }
    }
}

fn skip_ws(text: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = text.get(i) {
        i = i.saturating_add(1);
    }
    i
}

/// The raw bytes of the string starting at `i` (a `"`), escapes left as written, and the
/// index after its closing quote.
fn string_at(text: &[u8], i: usize) -> Option<(&[u8], usize)> {
    if text.get(i) != Some(&b'"') {
        return None;
    }
    let start = i.checked_add(1)?;
    let mut j = start;
    loop {
        match text.get(j)? {
            b'"' => return Some((text.get(start..j)?, j.checked_add(1)?)),
            b'\\' => j = j.checked_add(2)?,
            _ => j = j.checked_add(1)?,
        }
    }
}

/// The array of strings at `i`, each without escapes and valid UTF-8, and the index after it.
fn plain_strings(text: &[u8], i: usize) -> Option<(Vec<String>, usize)> {
    let mut list = Vec::new();
    let end = array(text, i, |i| {
        let (raw, after) = string_at(text, i)?;
        if raw.contains(&b'\\') {
            return None;
        }
        list.push(std::str::from_utf8(raw).ok()?.to_owned());
        Some(after)
    })?;
    Some((list, end))
}

/// The index after the JSON value at `i` (nesting followed without recursion).
fn skip_value(text: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 0usize;
    loop {
        match text.get(i)? {
            b'"' => i = string_at(text, i)?.1,
            b'{' | b'[' => {
                depth = depth.checked_add(1)?;
                i = i.checked_add(1)?;
            }
            b'}' | b']' if depth == 0 => return Some(i),
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                i = i.checked_add(1)?;
            }
            b',' if depth == 0 => return Some(i),
            _ => i = i.checked_add(1)?,
        }
        if depth == 0 && matches!(text.get(i.checked_sub(1)?), Some(b'"' | b'}' | b']')) {
            return Some(i);
        }
    }
}

/// Where the value of the top-level object's last key `key` starts (a later duplicate
/// replaces an earlier one, as in the full parse). Keys are compared as written (a key
/// spelled with escapes is not found).
fn top_level_value(text: &[u8], key: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut found = None;
    let mut bytes = text.iter().enumerate();
    while let Some((i, &b)) = bytes.next() {
        match b {
            b'{' | b'[' => depth = depth.checked_add(1)?,
            b'}' | b']' => depth = depth.checked_sub(1)?,
            b'"' => {
                let start = i.checked_add(1)?;
                let end = loop {
                    match bytes.next()? {
                        (_, b'\\') => {
                            bytes.next()?;
                        }
                        (j, b'"') => break j,
                        _ => {}
                    }
                };
                if depth == 1 && text.get(start..end) == Some(key) {
                    // A key when a colon follows.
                    let after = end.checked_add(1)?;
                    let colon = text
                        .get(after..)?
                        .iter()
                        .position(|c| !c.is_ascii_whitespace())
                        .and_then(|k| after.checked_add(k))?;
                    if text.get(colon) == Some(&b':') {
                        found = colon.checked_add(1);
                    }
                }
            }
            _ => {}
        }
    }
    found
}

/// Parses an already-decoded `model.json` object (for hosts that hold the
/// JSON as a value already).
pub fn parse_model_json_value(value: Value, limits: &Limits) -> Result<ModelJson> {
    match value {
        Value::Object(map) => from_object(map, limits),
        other => Err(FormatError::invalid(
            "(top level)",
            format!("expected a JSON object, got {}", type_name(&other)),
        )),
    }
}

fn from_object(mut root: Map<String, Value>, limits: &Limits) -> Result<ModelJson> {
    let topology = match root.remove("modelTopology") {
        None | Some(Value::Null) => {
            return Err(FormatError::MissingField {
                path: "modelTopology".into(),
            })
        }
        Some(t @ Value::Object(_)) => t,
        Some(other) => {
            return Err(FormatError::invalid(
                "modelTopology",
                format!("expected an object, got {}", type_name(&other)),
            ))
        }
    };

    // tfjs itself never reads `format` (the caller picks loadLayersModel or
    // loadGraphModel), so an unknown value falls back to detection.
    let format = match get_non_null(&root, "format").and_then(Value::as_str) {
        Some("layers-model") => ModelFormat::LayersModel,
        Some("graph-model") => ModelFormat::GraphModel,
        _ => detect_format(&topology),
    };

    // Informational only: a non-string is dropped, not an error.
    let generated_by = root
        .get("generatedBy")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let converted_by = root
        .get("convertedBy")
        .and_then(Value::as_str)
        .map(str::to_owned);

    let weights_manifest = match get_non_null(&root, "weightsManifest") {
        None => Vec::new(),
        Some(m) => parse_weights_manifest(m, limits)?,
    };

    let mut take = |key: &str| match root.remove(key) {
        None | Some(Value::Null) => None,
        Some(v) => Some(v),
    };
    let signature = take("signature");
    let user_defined_metadata = take("userDefinedMetadata");

    Ok(ModelJson {
        format,
        generated_by,
        converted_by,
        topology: std::sync::Arc::new(topology),
        weights_manifest,
        signature,
        user_defined_metadata,
    })
}

/// tfjs writes `format` since 1.0; older files need a guess. A GraphDef in
/// JSON has `node` (and usually `versions`, sometimes `library`).
fn detect_format(topology: &Value) -> ModelFormat {
    let is_graph = topology.as_object().is_some_and(|t| {
        t.contains_key("node") || t.contains_key("versions") || t.contains_key("library")
    });
    if is_graph {
        ModelFormat::GraphModel
    } else {
        ModelFormat::LayersModel
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ModelJson> {
        parse_model_json(s.as_bytes(), &Limits::default())
    }

    const LAYERS: &str = r#"{
        "format": "layers-model",
        "generatedBy": "TensorFlow.js tfjs-layers v4.22.0",
        "convertedBy": null,
        "modelTopology": {"class_name": "Sequential", "config": {"name": "s", "layers": []}},
        "weightsManifest": [{"paths": ["group1-shard1of2.bin", "group1-shard2of2.bin"], "weights": [
            {"name": "dense/kernel", "shape": [4, 2], "dtype": "float32"},
            {"name": "dense/bias", "shape": [2], "dtype": "float32"}]},
            {"paths": ["group2-shard1of1.bin"], "weights": [
            {"name": "q", "shape": [3], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 1, "min": 0}}]}],
        "userDefinedMetadata": {"k": "v"}
    }"#;

    #[test]
    fn fields() {
        let m = parse(LAYERS).unwrap();
        assert_eq!(m.format, ModelFormat::LayersModel);
        assert_eq!(
            m.generated_by.as_deref(),
            Some("TensorFlow.js tfjs-layers v4.22.0")
        );
        assert_eq!(m.converted_by, None);
        assert_eq!(m.topology["class_name"], "Sequential");
        assert_eq!(m.weights_manifest.len(), 2);
        assert_eq!(m.total_weight_bytes(), 32 + 8 + 3);
        assert_eq!(
            m.shard_paths().collect::<Vec<_>>(),
            [
                "group1-shard1of2.bin",
                "group1-shard2of2.bin",
                "group2-shard1of1.bin"
            ]
        );
        assert_eq!(m.user_defined_metadata, Some(serde_json::json!({"k": "v"})));
        assert_eq!(m.signature, None);
    }

    #[test]
    fn format_detection() {
        let graph = parse(r#"{"modelTopology": {"node": [], "versions": {"producer": 1}}, "weightsManifest": []}"#).unwrap();
        assert_eq!(graph.format, ModelFormat::GraphModel);
        let graph = parse(r#"{"modelTopology": {"library": {}}}"#).unwrap();
        assert_eq!(graph.format, ModelFormat::GraphModel);
        let layers =
            parse(r#"{"modelTopology": {"keras_version": "2.2.4", "model_config": {}}}"#).unwrap();
        assert_eq!(layers.format, ModelFormat::LayersModel);
        assert!(layers.weights_manifest.is_empty());
        let explicit = parse(r#"{"format": "graph-model", "modelTopology": {}}"#).unwrap();
        assert_eq!(explicit.format, ModelFormat::GraphModel);
        // Unknown or mistyped `format` values are ignored, as tfjs ignores them.
        let unknown = parse(r#"{"format": "onnx", "modelTopology": {"node": []}}"#).unwrap();
        assert_eq!(unknown.format, ModelFormat::GraphModel);
        let mistyped = parse(r#"{"format": 1, "modelTopology": {}}"#).unwrap();
        assert_eq!(mistyped.format, ModelFormat::LayersModel);
    }

    #[test]
    fn required_and_typed_fields() {
        assert_eq!(
            parse(r#"{"weightsManifest": []}"#).unwrap_err(),
            FormatError::MissingField {
                path: "modelTopology".into()
            }
        );
        assert!(parse(r#"{"modelTopology": []}"#).is_err());
        assert_eq!(
            parse(r#"{"modelTopology": {}, "generatedBy": 3}"#)
                .unwrap()
                .generated_by,
            None
        );
        assert!(parse(r#"[]"#).is_err());
        let e = parse(r#"{"modelTopology": {}, "weightsManifest": [{"paths": [], "weights": [{"name": "s", "shape": [], "dtype": "string"}]}]}"#)
            .unwrap_err();
        assert_eq!(
            e,
            FormatError::UnsupportedDType {
                weight: "s".into(),
                dtype: "string".into()
            }
        );
    }

    #[test]
    fn malformed_json_reports_line_and_column() {
        let e = parse("{\n  \"modelTopology\": {},\n  \"weightsManifest\": [,]\n}").unwrap_err();
        match e {
            FormatError::Json {
                line,
                column,
                ref message,
            } => {
                assert_eq!((line, column), (3, 23), "{message}");
                assert!(!message.contains("at line"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(""),
            Err(FormatError::Json {
                line: 1,
                column: 0,
                ..
            })
        ));
        assert!(matches!(
            parse_model_json(b"\xff\xfe{}", &Limits::default()),
            Err(FormatError::Json { .. })
        ));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!(
            "{{\"modelTopology\": {}{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(matches!(parse(&deep), Err(FormatError::Json { .. })));
    }

    /// Every path of the full parse, in its order (`ModelJson::shard_paths`).
    fn all_paths(text: &str) -> Vec<String> {
        parse(text)
            .unwrap()
            .shard_paths()
            .map(str::to_owned)
            .collect()
    }

    fn peek(text: &str, max: usize) -> Vec<String> {
        peek_shard_paths(text.as_bytes(), &Limits::default(), max).unwrap()
    }

    #[test]
    fn the_peeked_paths_are_the_first_of_the_parsed_ones() {
        let all = all_paths(LAYERS);
        assert!(!all.is_empty());
        for max in 0..=all.len() + 1 {
            assert_eq!(peek(LAYERS, max), all[..max.min(all.len())], "max {max}");
        }
        // Several groups, several paths each, other keys before and after, whitespace.
        let groups = r#"{"modelTopology": {},
            "weightsManifest" : [ {"weights": [{"name": "w", "shape": [1], "dtype": "float32"}],
              "paths" : [ "g1-a" , "g1-b" ] },
             {"paths": ["g2-a"], "weights": [{"name": "v", "x": [1, {"y": "]"}], "shape": [], "dtype": "int32"}]},
             {"paths": ["g3-a", "g3-b", "g3-c"], "weights": []}]}"#;
        let want = ["g1-a", "g1-b", "g2-a", "g3-a", "g3-b", "g3-c"];
        assert_eq!(peek(groups, 100), want);
        assert_eq!(peek(groups, 4), want[..4]);
        // Only the top level's key counts (the last of duplicates, as in the full parse); a
        // key in the topology, or the name in a string, does not. Within a group, the last
        // "paths" counts.
        let decoy = r#"{"modelTopology": {"weightsManifest": [{"paths": ["x"], "weights": []}],
            "s": "\"weightsManifest\": [", "a": ["weightsManifest", {"weightsManifest": 1}]},
            "weightsManifest": [{"paths": ["a"], "weights": []}],
            "weightsManifest" : [{"paths": ["c"], "weights": [], "paths": ["b"]}]}"#;
        assert_eq!(all_paths(decoy), ["b"]);
        assert_eq!(peek(decoy, 4), ["b"]);
        // Where the scan cannot be sure, nothing: a path spelled with escapes, a "paths"
        // key spelled with escapes, a group without paths, a manifest that is not an array.
        for unsure in [
            r#"{"modelTopology": {}, "weightsManifest": [{"paths": ["a\u0062"], "weights": []}]}"#,
            r#"{"modelTopology": {}, "weightsManifest": [{"p\u0061ths": ["a"], "weights": []}]}"#,
            r#"{"modelTopology": {}, "weightsManifest": [{"weights": []}]}"#,
            r#"{"modelTopology": {}, "weightsManifest": {"paths": ["a"]}}"#,
        ] {
            assert_eq!(peek(unsure, 4), Vec::<String>::new(), "{unsure}");
        }
        // No manifest: empty. Deep nesting in the skipped topology: no stack overflow.
        assert!(peek(r#"{"modelTopology": {"class_name": "Sequential"}}"#, 4).is_empty());
        let deep = format!(
            "{{\"modelTopology\": {}{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        // (The skip is iterative: no stack to overflow; the full parse reports the depth.)
        assert!(peek(&deep, 4).is_empty());
        assert!(parse(&deep).is_err());
        // The size limit applies.
        let limits = Limits {
            max_model_json_bytes: 10,
            ..Limits::default()
        };
        assert!(matches!(
            peek_shard_paths(LAYERS.as_bytes(), &limits, 4),
            Err(FormatError::Limit { limit: 10, .. })
        ));
    }

    /// Sets one limit.
    type SetLimit = fn(&mut Limits, u64);

    #[test]
    fn no_path_is_peeked_from_a_manifest_over_a_limit() {
        // Two groups: 3 shards, 3 weights; the largest tensor has 6 elements and rank 2;
        // stored bytes 24 (float32) + 6 (uint8-quantized) + 8 (float16) = 38.
        let text = r#"{"modelTopology": {}, "weightsManifest": [
            {"paths": ["a", "b"], "weights": [
                {"name": "w", "shape": [2, 3], "dtype": "float32", "quantization": null},
                {"name": "q", "shape": [6], "dtype": "float32",
                 "quantization": {"min": -1.5, "scale": 0.01, "dtype": "uint8"}}]},
            {"paths": ["c"], "weights": [
                {"name": "h", "shape": [4], "dtype": "float32", "quantization": {"dtype": "float16"}}]}]}"#;
        let parsed = parse(text).unwrap();
        assert_eq!(parsed.total_weight_bytes(), 38);
        let peek_with = |limits: Limits| peek_shard_paths(text.as_bytes(), &limits, 8).unwrap();
        assert_eq!(peek_with(Limits::default()), ["a", "b", "c"]);
        // Each limit at the manifest's own figure lets it through; one less, neither the
        // full parse nor the peek does.
        let at = |f: SetLimit, n: u64| {
            let mut l = Limits::default();
            f(&mut l, n);
            l
        };
        let limits: [(SetLimit, u64); 5] = [
            (|l, n| l.max_shards = n as usize, 3),
            (|l, n| l.max_weights = n as usize, 3),
            (|l, n| l.max_rank = n as usize, 2),
            (|l, n| l.max_tensor_elements = n, 6),
            (|l, n| l.max_total_weight_bytes = n, 38),
        ];
        for (k, &(f, n)) in limits.iter().enumerate() {
            assert_eq!(peek_with(at(f, n)), ["a", "b", "c"], "limit {k} at {n}");
            assert!(
                parse_model_json(text.as_bytes(), &at(f, n - 1)).is_err(),
                "limit {k}"
            );
            assert!(peek_with(at(f, n - 1)).is_empty(), "limit {k} at {}", n - 1);
        }
        // A dimension over the element limit although the tensor is empty.
        let empty = text.replace("[2, 3]", "[0, 7]");
        let l = at(|l, n| l.max_tensor_elements = n, 6);
        assert!(parse_model_json(empty.as_bytes(), &l).is_err());
        assert!(peek_shard_paths(empty.as_bytes(), &l, 8)
            .unwrap()
            .is_empty());
        // What the scan does not read with certainty: a dimension written as a float, an
        // unknown dtype, a quantization without a dtype.
        for unsure in [
            text.replace("[2, 3]", "[2.0, 3]"),
            text.replace("\"float32\", \"quantization\": null", "\"float64\""),
            text.replace("\"dtype\": \"float16\"", "\"scale\": 1"),
        ] {
            assert!(
                peek_shard_paths(unsure.as_bytes(), &Limits::default(), 8)
                    .unwrap()
                    .is_empty(),
                "{unsure}"
            );
        }
        // Every prefix (not JSON, which the full parse reports): no panic, and no path that
        // is not the whole file's, in its place.
        let all = all_paths(LAYERS);
        let text = LAYERS.trim_end().as_bytes();
        for cut in 0..text.len() {
            let got = peek_shard_paths(&text[..cut], &Limits::default(), 100).unwrap();
            assert!(all.starts_with(&got), "{cut}: {got:?}");
        }
    }

    #[test]
    fn byte_order_mark_and_size_limit() {
        let mut with_bom = b"\xEF\xBB\xBF".to_vec();
        with_bom.extend_from_slice(LAYERS.as_bytes());
        assert!(parse_model_json(&with_bom, &Limits::default()).is_ok());
        let limits = Limits {
            max_model_json_bytes: 10,
            ..Limits::default()
        };
        let e = parse_model_json(LAYERS.as_bytes(), &limits).unwrap_err();
        assert!(matches!(e, FormatError::Limit { limit: 10, .. }), "{e}");
    }

    #[test]
    fn every_prefix_is_an_error_not_a_panic() {
        let text = LAYERS.trim_end().as_bytes();
        for cut in 0..text.len() {
            assert!(
                parse_model_json(&text[..cut], &Limits::default()).is_err(),
                "prefix of {cut} bytes parsed"
            );
        }
        assert!(parse_model_json(text, &Limits::default()).is_ok());
    }

    #[test]
    fn value_entry_point() {
        let v: Value = serde_json::from_str(LAYERS).unwrap();
        assert_eq!(
            parse_model_json_value(v, &Limits::default()).unwrap(),
            parse(LAYERS).unwrap()
        );
        assert!(parse_model_json_value(Value::Null, &Limits::default()).is_err());
    }
}
