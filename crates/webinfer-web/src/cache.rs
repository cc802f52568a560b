//! `listCachedModels()` and `deleteCachedModel(url)`: the models in the Cache API.

use js_sys::{Array, Promise};
use wasm_bindgen::prelude::*;
use webinfer_loader::{CachePolicy, CachedModel};

use crate::js;

use std::cell::{Cell, RefCell};

thread_local! {
    /// Loads still committing their cache writes: each one's id and a promise that resolves
    /// when they end.
    static PENDING: RefCell<Vec<(u64, Promise)>> = const { RefCell::new(Vec::new()) };
    static NEXT_ID: Cell<u64> = const { Cell::new(0) };
}

/// The cache writes of one load. Once [`Writes::track`]ed, `whenCached()` and later loads wait
/// for them; dropping this ends them (the load's task holds it to its end). A JS promise
/// ([`js::Done`]) rather than a shared Rust future: futures' `Shared` and its waker
/// bookkeeping were ~1.5 KB of gzip in the module for this alone.
pub(crate) struct Writes {
    id: u64,
    done: js::Done,
}

impl Writes {
    pub(crate) fn new() -> Writes {
        let id = NEXT_ID.with(|n| {
            let id = n.get();
            n.set(id.wrapping_add(1));
            id
        });
        Writes {
            id,
            done: js::Done::new(),
        }
    }

    /// From now on, [`settle_writes`] waits for these writes (once is enough).
    pub(crate) fn track(&self) {
        PENDING.with(|p| {
            let mut p = p.borrow_mut();
            if !p.iter().any(|(id, _)| *id == self.id) {
                p.push((self.id, self.done.promise().clone()));
            }
        });
    }
}

impl Drop for Writes {
    fn drop(&mut self) {
        // `done` resolves right after, as the field is dropped.
        PENDING.with(|p| p.borrow_mut().retain(|(id, _)| *id != self.id));
    }
}

/// Waits for every load's writes tracked so far.
pub(crate) async fn settle_writes() {
    let pending: Vec<Promise> = PENDING.with(|p| {
        p.borrow()
            .iter()
            .map(|(_, promise)| promise.clone())
            .collect()
    });
    for promise in pending {
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }
}

/// Resolves once every model loaded so far is in the cache: `loadLayersModel` resolves as
/// soon as the model can predict, while the browser may still be committing its files to
/// the Cache API (a failed write is reported to that load's `onWarning`). Loads,
/// `listCachedModels` and `deleteCachedModel` wait for those writes on their own; call this
/// before relying on the cache from elsewhere (another tab, a service worker) or to show
/// "available offline".
#[wasm_bindgen(js_name = whenCached, unchecked_return_type = "Promise<void>")]
pub fn when_cached() -> Promise {
    crate::install_panic_hook();
    crate::guard::promise("whenCached", async move {
        settle_writes().await;
        Ok(JsValue::UNDEFINED)
    })
}

/// The models with files in the cache: `[{url, bytes, files: [{url, kind, bytes}], complete}]`.
/// `options.namespace` selects the cache a `loadLayersModel` namespace wrote to.
#[wasm_bindgen(js_name = listCachedModels, unchecked_return_type = "Promise<CachedModelInfo[]>")]
pub fn list_cached_models(
    #[wasm_bindgen(unchecked_optional_param_type = "CacheOptions")] options: JsValue,
) -> Promise {
    crate::install_panic_hook();
    crate::guard::promise("listCachedModels", async move {
        let policy = policy(&options, "listCachedModels").map_err(js::error)?;
        settle_writes().await;
        let loader = webinfer_loader::browser::browser_loader();
        let models = loader
            .list_cached(&policy)
            .await
            .map_err(|e| js::error(format!("listCachedModels: {e}")))?;
        Ok(models.iter().map(model_js).collect::<Array>().into())
    })
}

/// Deletes every cached file of the model at `url` (its model.json and shards); resolves to
/// the number of files deleted (0 when nothing was cached).
#[wasm_bindgen(js_name = deleteCachedModel, unchecked_return_type = "Promise<number>")]
pub fn delete_cached_model(
    #[wasm_bindgen(unchecked_param_type = "string")] url: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "CacheOptions")] options: JsValue,
) -> Promise {
    crate::install_panic_hook();
    crate::guard::promise("deleteCachedModel", async move {
        let Some(url) = url.as_string() else {
            return Err(js::error(format!(
                "deleteCachedModel: the first argument must be the model URL (a string), got {}",
                js::describe(&url)
            )));
        };
        let policy = policy(&options, "deleteCachedModel").map_err(js::error)?;
        settle_writes().await;
        let loader = webinfer_loader::browser::browser_loader();
        let deleted = loader.delete_cached(&url, &policy).await.map_err(|e| {
            js::error_at(format!("deleteCachedModel({url}): {e}"), Some(&url), None)
        })?;
        Ok(JsValue::from_f64(deleted as f64))
    })
}

fn policy(options: &JsValue, function: &str) -> Result<CachePolicy, String> {
    js::check_options(options, "options").map_err(|m| format!("{function}: {m}"))?;
    let mut policy = CachePolicy::default();
    if options.is_object() {
        policy.namespace = js::string_field(options, "namespace", "options")
            .map_err(|m| format!("{function}: {m}"))?;
    }
    Ok(policy)
}

fn model_js(m: &CachedModel) -> JsValue {
    let files: Array = m
        .files
        .iter()
        .map(|f| {
            js::object(&[
                ("url", f.url.as_str().into()),
                ("kind", f.kind.as_str().into()),
                ("bytes", JsValue::from_f64(f.bytes as f64)),
            ])
        })
        .collect();
    js::object(&[
        ("url", m.model_url.as_str().into()),
        ("bytes", JsValue::from_f64(m.total_bytes as f64)),
        ("files", files.into()),
        ("complete", m.complete.into()),
    ])
}
