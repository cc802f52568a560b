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
    const MAX: usize = 60;
    let mut s = match v {
        Value::Array(a) if a.len() > 8 => format!("an array of {} items", a.len()),
        Value::Object(o) if o.len() > 4 => format!("an object with {} keys", o.len()),
        _ => {
            let mut text = String::new();
            write_compact(v, &mut text, MAX);
            text
        }
    };
    if s.len() > MAX {
        let mut cut = MAX - 3;
        while !s.is_char_boundary(cut) {
            cut = cut.saturating_sub(1);
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// `v` as compact JSON text (what `JSON.stringify` writes), appended to `out`; stops adding
/// once `out` is longer than `max` bytes (a preview is cut there anyway). Written here
/// rather than by serde_json's serializer: that one brings its own number formatting and
/// I/O error machinery into the browser module for these messages alone (~3 KB of gzip).
fn write_compact(v: &Value, out: &mut String, max: usize) {
    use std::fmt::Write;
    if out.len() > max {
        return;
    }
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            // Writing into a String cannot fail.
            let _ = match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => write!(out, "{u}"),
                (_, Some(i), _) => write!(out, "{i}"),
                (_, _, Some(x)) => write!(out, "{}", Num::F64(x)),
                _ => Ok(()),
            };
        }
        Value::String(text) => write_quoted(text, out, max),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_compact(item, out, max);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_quoted(key, out, max);
                out.push(':');
                write_compact(item, out, max);
            }
            out.push('}');
        }
    }
}

/// `text` as a JSON string literal (JSON.stringify's escapes), appended to `out` (see
/// [`write_compact`]).
fn write_quoted(text: &str, out: &mut String, max: usize) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c < ' ' => {
                // Writing into a String cannot fail.
                let _ = std::fmt::Write::write_fmt(out, format_args!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
        if out.len() > max {
            return;
        }
    }
    out.push('"');
}

/// The value of a run of ASCII digits (`None` if empty, not all digits, or over `u64::MAX`).
/// By hand: `str::parse` for each integer type is its own ~0.4 KB of code in the module.
pub(crate) fn parse_digits(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &c| {
        let d = c.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// A JSON number as an `f64` (`None` if not finite). A number of model.json holds what
/// JavaScript's `JSON.parse` reads, the nearest `f64` to the decimal as written: the parser
/// reads it with [`parse_f64`].
pub fn number_f64(n: &Number) -> Option<f64> {
    n.as_f64().filter(|f| f.is_finite())
}

/// The nearest `f64` to the decimal `text` (a JSON number), `None` beyond the `f64` range. In
/// the browser module (feature `js-numbers`) the JS engine's own parser reads it (no float
/// parsing tables in the module); elsewhere Rust's, which rounds alike.
pub(crate) fn parse_f64(text: &str) -> Option<f64> {
    #[cfg(all(feature = "js-numbers", target_arch = "wasm32"))]
    let f = js_sys::parse_float(text);
    #[cfg(not(all(feature = "js-numbers", target_arch = "wasm32")))]
    let f = text.parse::<f64>().ok()?;
    Some(f).filter(|f| f.is_finite())
}

/// A number in a message, written as JavaScript writes it (`String(x)`; an `f32` with the
/// fewest digits that read back as the same `f32`, as Rust's `{}` writes one). In the browser
/// module (feature `js-numbers`) the JS engine writes it: formatting floats in Rust would put
/// its float-printing tables and algorithms (~18 KB) in the module for messages alone.
/// Elsewhere Rust's `{}` writes it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    F64(f64),
    F32(f32),
}

impl std::fmt::Display for Num {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        #[cfg(all(feature = "js-numbers", target_arch = "wasm32"))]
        {
            f.write_str(&js_number(*self))
        }
        #[cfg(not(all(feature = "js-numbers", target_arch = "wasm32")))]
        match self {
            Num::F64(x) => write!(f, "{x}"),
            Num::F32(x) => write!(f, "{x}"),
        }
    }
}

/// [`Num`] as the JS engine writes it.
#[cfg(all(feature = "js-numbers", target_arch = "wasm32"))]
fn js_number(n: Num) -> String {
    let text = |s: Result<js_sys::JsString, _>| s.map(String::from).unwrap_or_default();
    let write = |x: f64| text(js_sys::Number::from(x).to_string_with_radix(10));
    match n {
        Num::F64(x) => write(x),
        Num::F32(x) if !x.is_finite() => write(f64::from(x)),
        Num::F32(x) => {
            let wide = js_sys::Number::from(f64::from(x));
            // The fewest significant digits that read back as `x` (9 always do).
            (1..=9u8)
                .map(|p| js_sys::parse_float(&text(wide.to_precision(p))))
                .find(|&v| v as f32 == x)
                .map(write)
                .unwrap_or_default()
        }
    }
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

    #[test]
    fn preview_writes_compact_json() {
        // What serde_json (and JSON.stringify) write for the same values.
        for v in [
            json!(null),
            json!([true, false, -3, 18446744073709551615u64, 0.5]),
            json!({"a": [1, {"b": "x\"y\\z\n\u{1}\u{8}\u{c}"}], "c": null}),
        ] {
            assert_eq!(preview(&v), v.to_string(), "{v}");
        }
        assert_eq!(
            preview(&json!([1, 2, 3, 4, 5, 6, 7, 8, 9])),
            "an array of 9 items"
        );
    }
}
