//! Small helpers for reading untyped JSON without panicking.

use serde_json::{Number, Value};

/// Largest integer a JSON number can carry exactly once JavaScript has parsed
/// it (2^53). Integral floats above it are not trusted as integers.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_992.0;

/// The JSON type of `v`, for error messages ("expected an array, got a string").
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A short rendering of `v` for error messages, cut to about 60 characters.
pub(crate) fn preview(v: &Value) -> String {
    let mut s = match v {
        Value::Array(a) if a.len() > 8 => format!("an array of {} items", a.len()),
        Value::Object(o) if o.len() > 4 => format!("an object with {} keys", o.len()),
        _ => v.to_string(),
    };
    if s.len() > 60 {
        let mut cut = 57;
        while !s.is_char_boundary(cut) {
            cut = cut.saturating_sub(1);
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// A JSON number as JavaScript's `JSON.parse` reads it: the nearest `f64` to the decimal as
/// written (`None` beyond the `f64` range). In the browser module (feature `js-numbers`) the JS
/// engine's own parser reads it; elsewhere Rust's, which rounds alike.
pub fn number_f64(n: &Number) -> Option<f64> {
    #[cfg(all(feature = "js-numbers", target_arch = "wasm32"))]
    let f = js_sys::parse_float(n.as_str());
    #[cfg(not(all(feature = "js-numbers", target_arch = "wasm32")))]
    let f = n.as_str().parse::<f64>().ok()?;
    Some(f).filter(|f| f.is_finite())
}

/// `v` as a non-negative integer. Integral floats (`3.0`) are accepted, as
/// JavaScript makes no difference between them.
pub(crate) fn as_uint(v: &Value) -> Option<u64> {
    let n = match v {
        Value::Number(n) => n,
        _ => return None,
    };
    if let Some(u) = n.as_u64() {
        return Some(u);
    }
    let f = number_f64(n)?;
    if f.fract() == 0.0 && (0.0..=MAX_SAFE_INTEGER).contains(&f) {
        // Exact: f is integral and below 2^53.
        Some(f as u64)
    } else {
        None
    }
}

/// `v` as a non-negative integer that fits a `usize`.
pub(crate) fn as_usize(v: &Value) -> Option<usize> {
    as_uint(v).and_then(|u| usize::try_from(u).ok())
}

/// `v` as a (possibly negative) integer; integral floats accepted.
pub(crate) fn as_int(v: &Value) -> Option<i64> {
    let n = match v {
        Value::Number(n) => n,
        _ => return None,
    };
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = number_f64(n)?;
    if f.fract() == 0.0 && (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&f) {
        Some(f as i64)
    } else {
        None
    }
}

/// `map[key]`, with an explicit `null` read as absent.
pub(crate) fn get_non_null<'a>(
    map: &'a serde_json::Map<String, Value>,
    key: &str,
) -> Option<&'a Value> {
    match map.get(key) {
        None | Some(Value::Null) => None,
        Some(v) => Some(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers() {
        assert_eq!(as_uint(&json!(3)), Some(3));
        assert_eq!(as_uint(&json!(3.0)), Some(3));
        assert_eq!(as_uint(&json!(3.5)), None);
        assert_eq!(as_uint(&json!(-1)), None);
        assert_eq!(as_uint(&json!(1e300)), None);
        assert_eq!(as_uint(&json!("3")), None);
        assert_eq!(as_int(&json!(-1)), Some(-1));
        assert_eq!(as_int(&json!(-2.0)), Some(-2));
        assert_eq!(as_int(&json!(f64::MAX)), None);
    }

    #[test]
    fn preview_is_short_and_utf8_safe() {
        let long = Value::String("é".repeat(100));
        let p = preview(&long);
        assert!(p.len() <= 60, "{p}");
        assert!(p.ends_with("..."));
        assert_eq!(preview(&json!([1, 2])), "[1,2]");
    }
}
