//! `options.limits` of `loadLayersModel`: the JavaScript names of `webinfer_tfjs::Limits`'
//! fields, reading them, and naming the option to raise in a limit error.
//! Platform-independent (no JavaScript types), so it is unit-tested natively.

use webinfer_tfjs::{Limits, Num};

/// One field of [`Limits`] as JavaScript sees it.
pub struct LimitField {
    /// The key in `options.limits` (camelCase).
    pub js: &'static str,
    /// The Rust field (snake_case), as limit errors from the engine name it.
    pub rust: &'static str,
    get: fn(&Limits) -> u64,
    set: fn(&mut Limits, u64),
}

impl LimitField {
    pub fn get(&self, limits: &Limits) -> u64 {
        (self.get)(limits)
    }
}

fn usize_of(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// Every limit a page can set, in the order the types document them.
pub const FIELDS: &[LimitField] = &[
    LimitField {
        js: "maxTotalWeightBytes",
        rust: "max_total_weight_bytes",
        get: |l| l.max_total_weight_bytes,
        set: |l, v| l.max_total_weight_bytes = v,
    },
    LimitField {
        js: "maxTensorElements",
        rust: "max_tensor_elements",
        get: |l| l.max_tensor_elements,
        set: |l, v| l.max_tensor_elements = v,
    },
    LimitField {
        js: "maxActivationElements",
        rust: "max_activation_elements",
        get: |l| l.max_activation_elements,
        set: |l, v| l.max_activation_elements = v,
    },
    LimitField {
        js: "maxRank",
        rust: "max_rank",
        get: |l| l.max_rank as u64,
        set: |l, v| l.max_rank = usize_of(v),
    },
    LimitField {
        js: "maxShards",
        rust: "max_shards",
        get: |l| l.max_shards as u64,
        set: |l, v| l.max_shards = usize_of(v),
    },
    LimitField {
        js: "maxWeights",
        rust: "max_weights",
        get: |l| l.max_weights as u64,
        set: |l, v| l.max_weights = usize_of(v),
    },
    LimitField {
        js: "maxLayers",
        rust: "max_layers",
        get: |l| l.max_layers as u64,
        set: |l, v| l.max_layers = usize_of(v),
    },
    LimitField {
        js: "maxModelJsonBytes",
        rust: "max_model_json_bytes",
        get: |l| l.max_model_json_bytes as u64,
        set: |l, v| l.max_model_json_bytes = usize_of(v),
    },
];

/// Sets `options.limits[key] = value`: a non-negative integer (`Infinity`: no limit).
pub fn set(limits: &mut Limits, key: &str, value: f64) -> Result<(), String> {
    let Some(field) = FIELDS.iter().find(|f| f.js == key) else {
        let mut known = String::new();
        for f in FIELDS {
            if !known.is_empty() {
                known.push_str(", ");
            }
            known.push_str(f.js);
        }
        return Err(format!(
            "options.limits.{key} is not a limit webinfer knows (the limits are {known})"
        ));
    };
    let v = if value == f64::INFINITY {
        u64::MAX
    } else if value.is_finite() && value >= 0.0 && value.fract() == 0.0 {
        // Integers above 2^64 saturate; a JavaScript number is exact up to 2^53 anyway.
        value as u64
    } else {
        return Err(format!(
            "options.limits.{key} must be a non-negative integer (or Infinity), got {}",
            Num::F64(value)
        ));
    };
    (field.set)(limits, v);
    Ok(())
}

/// The option that governs a limit error: the field whose value is `limit`; when several
/// have that value, the one the message names (`what`: e.g. `weights manifest: number of
/// shard files`, or the engine's own `max_activation_elements`).
pub fn field_for_error(limits: &Limits, what: &str, limit: u64) -> Option<&'static LimitField> {
    let what = what.to_ascii_lowercase();
    if let Some(f) = FIELDS.iter().find(|f| mentions(&what, f.rust)) {
        return Some(f);
    }
    let candidates: Vec<&LimitField> = FIELDS.iter().filter(|f| f.get(limits) == limit).collect();
    if candidates.len() <= 1 {
        return candidates.first().copied();
    }
    // Words of each limit as the parsers' messages put them.
    let hint = |f: &LimitField| -> &[&str] {
        match f.js {
            "maxTotalWeightBytes" => &["weight bytes", "total bytes", "stored bytes"],
            "maxTensorElements" => &["number of elements", "dimension"],
            "maxActivationElements" => &["activation"],
            "maxRank" => &["rank"],
            "maxShards" => &["shard"],
            "maxWeights" => &["number of weights"],
            "maxLayers" => &["layers", "nodes"],
            "maxModelJsonBytes" => &["model.json size"],
            _ => &[],
        }
    };
    candidates
        .into_iter()
        .find(|f| hint(f).iter().any(|w| mentions(&what, w)))
}

/// Whether `text` contains `word` (a byte search: `str::contains` with a `&str` pattern links
/// core's substring searcher and its panic message machinery into the module).
fn mentions(text: &str, word: &str) -> bool {
    word.is_empty()
        || text
            .as_bytes()
            .windows(word.len())
            .any(|w| w == word.as_bytes())
}

/// A limit error's message, with the option to raise appended: `..., raise it with
/// options.limits.maxShards (now 1)`.
pub fn explain(message: &str, field: Option<&LimitField>, limits: &Limits) -> String {
    match field {
        Some(f) => format!(
            "{message} (a load option: raise options.limits.{}, now {})",
            f.js,
            f.get(limits)
        ),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_limits_field_has_a_js_name() {
        // Debug-print a Limits and check every field appears in FIELDS: a field added to
        // webinfer_tfjs::Limits without a JavaScript name fails here.
        let text = format!("{:?}", Limits::default());
        let fields: Vec<&str> = text
            .trim_start_matches("Limits {")
            .trim_end_matches('}')
            .split(',')
            .filter_map(|kv| kv.split(':').next())
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .collect();
        assert!(fields.len() >= 7, "{text}");
        for f in fields {
            assert!(
                FIELDS.iter().any(|x| x.rust == f),
                "Limits::{f} has no options.limits name"
            );
        }
    }

    #[test]
    fn set_reads_integers_and_infinity_and_refuses_the_rest() {
        let mut l = Limits::default();
        set(&mut l, "maxShards", 3.0).unwrap();
        assert_eq!(l.max_shards, 3);
        set(&mut l, "maxTotalWeightBytes", f64::INFINITY).unwrap();
        assert_eq!(l.max_total_weight_bytes, u64::MAX);
        set(&mut l, "maxActivationElements", 1e6).unwrap();
        assert_eq!(l.max_activation_elements, 1_000_000);
        for bad in [-1.0, 2.5, f64::NAN, f64::NEG_INFINITY] {
            let e = set(&mut l, "maxRank", bad).unwrap_err();
            assert!(
                e.contains("options.limits.maxRank must be a non-negative integer"),
                "{e}"
            );
        }
        let e = set(&mut l, "maxWeightBytes", 1.0).unwrap_err();
        assert!(
            e.contains("maxWeightBytes is not a limit") && e.contains("maxTotalWeightBytes"),
            "{e}"
        );
    }

    #[test]
    fn limit_errors_name_the_option() {
        let mut l = Limits::default();
        let f = |l: &Limits, what: &str, limit: u64| field_for_error(l, what, limit).map(|f| f.js);
        // Unique values: found by value.
        assert_eq!(
            f(&l, "weights manifest: number of shard files", 10_000),
            Some("maxShards")
        );
        assert_eq!(
            f(&l, "model.json size in bytes", 64 << 20),
            Some("maxModelJsonBytes")
        );
        // max_weights and max_layers are both 100 000 by default: told apart by the words.
        assert_eq!(
            f(&l, "weights manifest: number of weights", 100_000),
            Some("maxWeights")
        );
        assert_eq!(
            f(&l, "model topology: number of layers", 100_000),
            Some("maxLayers")
        );
        assert_eq!(f(&l, "graph nodes", 100_000), Some("maxLayers"));
        // The engine's activation check names its field.
        assert_eq!(
            f(
                &l,
                "layer \"c\": over the limit max_activation_elements = 5",
                5
            ),
            Some("maxActivationElements")
        );
        l.max_rank = 2;
        assert_eq!(f(&l, "weight \"k\": rank", 2), Some("maxRank"));
        assert_eq!(f(&l, "something else", 12345), None);
        let msg = explain(
            "x: 9 exceeds the limit of 2",
            field_for_error(&l, "weight \"k\": rank", 2),
            &l,
        );
        assert_eq!(
            msg,
            "x: 9 exceeds the limit of 2 (a load option: raise options.limits.maxRank, now 2)"
        );
    }
}
