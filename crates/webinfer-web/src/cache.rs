//! `listCachedModels()` and `deleteCachedModel(url)`: the models in the Cache API.

use js_sys::{Array, Promise};
use wasm_bindgen::prelude::*;
use webinfer_loader::{CachePolicy, CachedModel};

use crate::js;

use std::cell::RefCell;
use std::future::Future;

use futures::future::{FutureExt, LocalBoxFuture, Shared};

thread_local! {
    /// Loads still committing their cache writes.
    static PENDING: RefCell<Vec<Shared<LocalBoxFuture<'static, ()>>>> = const { RefCell::new(Vec::new()) };
}

/// Tracks `writes` (cache writes a load is still committing) until it ends.
pub(crate) fn track(writes: impl Future<Output = ()> + 'static) {
    let shared = writes.boxed_local().shared();
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        p.retain(|f| f.peek().is_none());
        p.push(shared.clone());
    });
    wasm_bindgen_futures::spawn_local(shared);
}

/// Waits for every tracked task started so far.
pub(crate) async fn settle_writes() {
    let pending: Vec<_> = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        p.retain(|f| f.peek().is_none());
        p.clone()
    });
    for task in pending {
        task.await;
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
