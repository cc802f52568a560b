//! graph-model topology: the converter's GraphDef in JSON (`modelTopology.node`), and the
//! signature naming the model's inputs and outputs.
//!
//! Facts from the format: string attributes are base64, integers are JSON strings, a node's
//! input `"name:1"` is output 1 of `name`, and `"^name"` is a control dependency (ignored at
//! inference). The signature sits in `signature` or `userDefinedMetadata.signature`; when it is
//! absent, inputs are the `Placeholder`s and outputs the nodes no other node reads.

use serde_json::{Map, Value};

use crate::error::{FormatError, Result};
use crate::limits::Limits;
use crate::model_json::ModelJson;

/// One GraphDef node.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphNode {
    pub name: String,
    pub op: String,
    /// Data inputs as `(node, output index)`; control inputs dropped.
    pub inputs: Vec<(String, usize)>,
    pub attrs: Map<String, Value>,
}

/// A model input or output as the signature declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphTensor {
    /// The signature key without `:0` (e.g. `input`), used as the user-facing name.
    pub name: String,
    /// The node and output index that carry the value.
    pub node: String,
    pub index: usize,
    pub dtype: String,
    /// `None` for `-1` / unknown dims; `None` overall when the rank is unknown.
    pub shape: Option<Vec<Option<usize>>>,
}

/// A parsed graph-model.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphModel {
    pub nodes: Vec<GraphNode>,
    pub inputs: Vec<GraphTensor>,
    pub outputs: Vec<GraphTensor>,
}

/// Split `"name:1"` into `("name", 1)`; `"name"` is output 0.
fn tensor_ref(s: &str) -> (String, usize) {
    match s.rsplit_once(':') {
        Some((n, i)) if !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()) => {
            (n.to_string(), i.parse().unwrap_or(0))
        }
        _ => (s.to_string(), 0),
    }
}

/// Decode standard base64 (with or without padding); `None` if malformed.
// The arithmetic is on bounded values: `c` within its matched range, `i < 4`, `n <= 3`.
#[allow(clippy::arithmetic_side_effects, clippy::indexing_slicing)]
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|&b| b != b'=' && !b.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let n = chunk.len() - 1;
        out.extend_from_slice(&acc.to_be_bytes()[1..1 + n]);
    }
    Some(out)
}

fn tensor_shape(v: &Value) -> Option<Vec<Option<usize>>> {
    if v.get("unknownRank").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    let dims = match v.get("dim") {
        Some(Value::Array(d)) => d,
        _ => return Some(vec![]),
    };
    Some(
        dims.iter()
            .map(|d| {
                let size = match d.get("size") {
                    Some(Value::String(s)) => s.parse::<i64>().ok(),
                    Some(Value::Number(n)) => n.as_i64(),
                    _ => None,
                };
                size.filter(|&s| s >= 0).map(|s| s as usize)
            })
            .collect(),
    )
}

fn dtype_name(v: Option<&Value>) -> String {
    match v.and_then(Value::as_str) {
        Some("DT_FLOAT") => "float32".into(),
        Some("DT_INT32") => "int32".into(),
        Some("DT_BOOL") => "bool".into(),
        Some(other) => other.trim_start_matches("DT_").to_ascii_lowercase(),
        None => "float32".into(),
    }
}

impl GraphNode {
    fn attr(&self, key: &str) -> Option<&Value> {
        self.attrs.get(key)
    }
    fn bad(&self, key: &str, message: impl std::fmt::Display) -> FormatError {
        FormatError::invalid(
            format!("node \"{}\" ({}) attr.{key}", self.name, self.op),
            message.to_string(),
        )
    }

    /// A string attribute (`{"s": base64}`), decoded.
    pub fn attr_str(&self, key: &str) -> Result<Option<String>> {
        match self.attr(key).and_then(|a| a.get("s")) {
            None => Ok(None),
            Some(Value::String(b64)) => {
                let bytes = base64_decode(b64).ok_or_else(|| self.bad(key, "malformed base64"))?;
                String::from_utf8(bytes)
                    .map(Some)
                    .map_err(|_| self.bad(key, "not UTF-8"))
            }
            Some(_) => Err(self.bad(key, "expected a base64 string")),
        }
    }

    /// A list of strings (`{"list": {"s": [...]}}`), decoded.
    pub fn attr_strs(&self, key: &str) -> Result<Vec<String>> {
        let Some(list) = self
            .attr(key)
            .and_then(|a| a.get("list"))
            .and_then(|l| l.get("s"))
        else {
            return Ok(vec![]);
        };
        let arr = list
            .as_array()
            .ok_or_else(|| self.bad(key, "expected a list"))?;
        arr.iter()
            .map(|v| {
                let b = v
                    .as_str()
                    .and_then(base64_decode)
                    .ok_or_else(|| self.bad(key, "malformed base64"))?;
                String::from_utf8(b).map_err(|_| self.bad(key, "not UTF-8"))
            })
            .collect()
    }

    /// An integer (`{"i": "3"}`).
    pub fn attr_int(&self, key: &str) -> Result<Option<i64>> {
        match self.attr(key).and_then(|a| a.get("i")) {
            None => Ok(None),
            Some(Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| self.bad(key, format!("not an integer: {s}"))),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.bad(key, "not an integer")),
            Some(_) => Err(self.bad(key, "expected an integer")),
        }
    }

    /// A list of integers (`{"list": {"i": ["1", "2"]}}`).
    pub fn attr_ints(&self, key: &str) -> Result<Option<Vec<i64>>> {
        let Some(a) = self.attr(key) else {
            return Ok(None);
        };
        let Some(list) = a.get("list") else {
            return Ok(None);
        };
        let Some(items) = list.get("i") else {
            return Ok(Some(vec![]));
        };
        let arr = items
            .as_array()
            .ok_or_else(|| self.bad(key, "expected a list of integers"))?;
        arr.iter()
            .map(|v| match v {
                Value::String(s) => s
                    .parse()
                    .map_err(|_| self.bad(key, format!("not an integer: {s}"))),
                Value::Number(n) => n.as_i64().ok_or_else(|| self.bad(key, "not an integer")),
                _ => Err(self.bad(key, "not an integer")),
            })
            .collect::<Result<Vec<i64>>>()
            .map(Some)
    }

    /// A float (`{"f": 0.1}`).
    pub fn attr_f32(&self, key: &str) -> Result<Option<f32>> {
        match self.attr(key).and_then(|a| a.get("f")) {
            None => Ok(None),
            Some(v) => v
                .as_number()
                .and_then(crate::json::number_f64)
                .map(|f| Some(f as f32))
                .ok_or_else(|| self.bad(key, "expected a number")),
        }
    }

    /// A bool (`{"b": true}`).
    pub fn attr_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.attr(key).and_then(|a| a.get("b")) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.bad(key, "expected a bool")),
        }
    }

    /// The `shape` attribute of a Placeholder.
    pub fn attr_shape(&self, key: &str) -> Option<Vec<Option<usize>>> {
        self.attr(key)
            .and_then(|a| a.get("shape"))
            .and_then(tensor_shape)
    }
}

fn signature_tensors(sig: &Value, key: &str) -> Option<Vec<GraphTensor>> {
    let map = sig.get(key)?.as_object()?;
    // In the order the file lists them, as tfjs does (Object.keys order; serde_json's
    // `preserve_order` keeps it).
    let v: Vec<GraphTensor> = map
        .iter()
        .map(|(k, t)| {
            let full = t.get("name").and_then(Value::as_str).unwrap_or(k);
            let (node, index) = tensor_ref(full);
            GraphTensor {
                name: tensor_ref(k).0,
                node,
                index,
                dtype: dtype_name(t.get("dtype")),
                shape: t.get("tensorShape").and_then(tensor_shape),
            }
        })
        .collect();
    Some(v)
}

/// Parse a graph-model's topology and signature.
pub fn parse_graph_model(mj: &ModelJson, limits: &Limits) -> Result<GraphModel> {
    let nodes_json = mj
        .topology
        .get("node")
        .and_then(Value::as_array)
        .ok_or_else(|| FormatError::MissingField {
            path: "modelTopology.node".into(),
        })?;
    if nodes_json.len() > limits.max_layers {
        return Err(FormatError::limit(
            "graph nodes",
            nodes_json.len() as u64,
            limits.max_layers as u64,
        ));
    }
    let mut nodes = Vec::with_capacity(nodes_json.len());
    for (i, n) in nodes_json.iter().enumerate() {
        let path = format!("modelTopology.node[{i}]");
        let name =
            n.get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| FormatError::MissingField {
                    path: format!("{path}.name"),
                })?;
        let op = n
            .get("op")
            .and_then(Value::as_str)
            .ok_or_else(|| FormatError::MissingField {
                path: format!("{path}.op"),
            })?;
        let inputs = match n.get("input") {
            None => vec![],
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_str().ok_or_else(|| {
                        FormatError::invalid(format!("{path}.input"), "expected strings")
                    })
                })
                .collect::<Result<Vec<&str>>>()?
                .into_iter()
                .filter(|s| !s.starts_with('^'))
                .map(tensor_ref)
                .collect(),
            Some(_) => {
                return Err(FormatError::invalid(
                    format!("{path}.input"),
                    "expected an array",
                ))
            }
        };
        let attrs = match n.get("attr") {
            None => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => {
                return Err(FormatError::invalid(
                    format!("{path}.attr"),
                    "expected an object",
                ))
            }
        };
        nodes.push(GraphNode {
            name: name.to_string(),
            op: op.to_string(),
            inputs,
            attrs,
        });
    }

    let sig = mj.signature.clone().or_else(|| {
        mj.user_defined_metadata
            .as_ref()
            .and_then(|m| m.get("signature").cloned())
    });
    let from_sig = |key| {
        sig.as_ref()
            .and_then(|s| signature_tensors(s, key))
            .filter(|v: &Vec<GraphTensor>| !v.is_empty())
    };
    let inputs = match from_sig("inputs") {
        Some(v) => v,
        None => nodes
            .iter()
            .filter(|n| n.op == "Placeholder")
            .map(|n| GraphTensor {
                name: n.name.clone(),
                node: n.name.clone(),
                index: 0,
                dtype: "float32".into(),
                shape: n.attr_shape("shape"),
            })
            .collect(),
    };
    let outputs = match from_sig("outputs") {
        Some(v) => v,
        None => {
            let read: std::collections::HashSet<&str> = nodes
                .iter()
                .flat_map(|n| n.inputs.iter().map(|(s, _)| s.as_str()))
                .collect();
            nodes
                .iter()
                .filter(|n| !read.contains(n.name.as_str()) && n.op != "Const" && n.op != "NoOp")
                .map(|n| GraphTensor {
                    name: n.name.clone(),
                    node: n.name.clone(),
                    index: 0,
                    dtype: "float32".into(),
                    shape: None,
                })
                .collect()
        }
    };
    // Fill input shapes from the Placeholders where the signature has none.
    let inputs = inputs
        .into_iter()
        .map(|mut t| {
            if t.shape.is_none() {
                t.shape = nodes
                    .iter()
                    .find(|n| n.name == t.node)
                    .and_then(|n| n.attr_shape("shape"));
            }
            t
        })
        .collect();
    Ok(GraphModel {
        nodes,
        inputs,
        outputs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_tf_strings() {
        assert_eq!(base64_decode("TkhXQw==").unwrap(), b"NHWC");
        assert_eq!(base64_decode("VkFMSUQ=").unwrap(), b"VALID");
        assert_eq!(base64_decode("Qmlhc0FkZA==").unwrap(), b"BiasAdd");
        assert_eq!(base64_decode("UmVsdTY").unwrap(), b"Relu6");
        assert!(base64_decode("a").is_none());
        assert!(base64_decode("!!!!").is_none());
    }

    #[test]
    fn tensor_refs() {
        assert_eq!(tensor_ref("a/b:1"), ("a/b".to_string(), 1));
        assert_eq!(tensor_ref("a/b"), ("a/b".to_string(), 0));
        assert_eq!(tensor_ref("a:b"), ("a:b".to_string(), 0));
    }
}
