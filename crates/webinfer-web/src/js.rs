//! Small JavaScript helpers: building objects and `Error`s, reading option fields,
//! describing a value for an error message. Every JavaScript call that can throw goes
//! through a `catch` binding (`Reflect`), so no exception unwinds through Rust frames.

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use webinfer_tfjs::Num;

/// A JavaScript `Error` with `message`.
pub(crate) fn error(message: impl AsRef<str>) -> JsValue {
    js_sys::Error::new(message.as_ref()).into()
}

/// A JavaScript `Error` that also carries the URL at fault and the HTTP status.
pub(crate) fn error_at(
    message: impl AsRef<str>,
    url: Option<&str>,
    status: Option<u16>,
) -> JsValue {
    let e = error(message);
    if let Some(url) = url {
        set(&e, "url", url.into());
    }
    if let Some(status) = status {
        set(&e, "status", status.into());
    }
    e
}

/// Sets `target[key] = value`; a refusal (a frozen object) is ignored.
pub(crate) fn set(target: &JsValue, key: &str, value: JsValue) {
    let _ = Reflect::set(target, &key.into(), &value);
}

/// A plain object with these fields.
pub(crate) fn object(fields: &[(&str, JsValue)]) -> JsValue {
    let o: JsValue = Object::new().into();
    for (key, value) in fields {
        set(&o, key, value.clone());
    }
    o
}

/// An array of numbers.
pub(crate) fn numbers(values: impl IntoIterator<Item = f64>) -> JsValue {
    values
        .into_iter()
        .map(JsValue::from_f64)
        .collect::<Array>()
        .into()
}

/// `obj[key]`, with `undefined` and `null` as `None`. `what` names the object in errors.
pub(crate) fn field(obj: &JsValue, key: &str, what: &str) -> Result<Option<JsValue>, String> {
    let value = Reflect::get(obj, &key.into())
        .map_err(|e| format!("reading {what}.{key} threw: {}", message(&e)))?;
    Ok(if value.is_undefined() || value.is_null() {
        None
    } else {
        Some(value)
    })
}

pub(crate) fn string_field(obj: &JsValue, key: &str, what: &str) -> Result<Option<String>, String> {
    match field(obj, key, what)? {
        None => Ok(None),
        Some(v) => v
            .as_string()
            .map(Some)
            .ok_or_else(|| format!("{what}.{key} must be a string, got {}", describe(&v))),
    }
}

pub(crate) fn bool_field(obj: &JsValue, key: &str, what: &str) -> Result<Option<bool>, String> {
    match field(obj, key, what)? {
        None => Ok(None),
        Some(v) => v
            .as_bool()
            .map(Some)
            .ok_or_else(|| format!("{what}.{key} must be a boolean, got {}", describe(&v))),
    }
}

pub(crate) fn function_field(
    obj: &JsValue,
    key: &str,
    what: &str,
) -> Result<Option<js_sys::Function>, String> {
    match field(obj, key, what)? {
        None => Ok(None),
        Some(v) => v
            .dyn_into::<js_sys::Function>()
            .map(Some)
            .map_err(|v| format!("{what}.{key} must be a function, got {}", describe(&v))),
    }
}

/// `options` is `undefined`, `null` or an object; `what` names it in the error.
pub(crate) fn check_options(options: &JsValue, what: &str) -> Result<(), String> {
    if options.is_undefined() || options.is_null() || options.is_object() {
        Ok(())
    } else {
        Err(format!(
            "{what} must be an object, got {}",
            describe(options)
        ))
    }
}

/// The message of a thrown value: an `Error`'s `name: message`, or the value itself.
pub(crate) fn message(value: &JsValue) -> String {
    if let Some(e) = value.dyn_ref::<js_sys::Error>() {
        return format!("{}: {}", String::from(e.name()), String::from(e.message()));
    }
    value.as_string().unwrap_or_else(|| describe(value))
}

/// A short description of a value for "got ..." in messages.
pub(crate) fn describe(value: &JsValue) -> String {
    if value.is_undefined() {
        return "undefined".into();
    }
    if value.is_null() {
        return "null".into();
    }
    if let Some(s) = value.as_string() {
        let short: String = s.chars().take(60).collect();
        let more = if short.len() < s.len() { "..." } else { "" };
        return format!("the string \"{short}{more}\"");
    }
    if let Some(n) = value.as_f64() {
        return format!("the number {}", Num::F64(n));
    }
    if let Some(b) = value.as_bool() {
        return format!("{b}");
    }
    if let Some(a) = value.dyn_ref::<Array>() {
        return format!("an array of {} elements", a.length());
    }
    if value.is_function() {
        return "a function".into();
    }
    if value.is_object() {
        let ctor = Reflect::get(value, &"constructor".into())
            .ok()
            .and_then(|c| Reflect::get(&c, &"name".into()).ok())
            .and_then(|n| n.as_string())
            .filter(|n| !n.is_empty() && n != "Object");
        return match ctor {
            Some(name) => format!("a {name}"),
            None => "an object".into(),
        };
    }
    value
        .js_typeof()
        .as_string()
        .unwrap_or_else(|| "a value".into())
}

/// A promise that resolves when this value is dropped: how one task tells others it has
/// ended, without futures' channels and shared futures in the module.
pub(crate) struct Done {
    promise: Promise,
    resolve: Option<Function>,
}

impl Done {
    pub(crate) fn new() -> Done {
        let mut resolve = None;
        let promise = Promise::new(&mut |res, _| resolve = Some(res));
        Done { promise, resolve }
    }

    /// Resolves (to `undefined`) once this is dropped.
    pub(crate) fn promise(&self) -> &Promise {
        &self.promise
    }
}

impl Drop for Done {
    fn drop(&mut self) {
        if let Some(resolve) = self.resolve.take() {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    }
}
