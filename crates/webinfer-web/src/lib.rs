//! webinfer's JavaScript API: a wasm-bindgen module built with
//! `wasm-pack build crates/webinfer-web --target web`. A page that used
//! `tf.loadLayersModel(url)` and `model.predict(x)` swaps tfjs for this.
//!
//! ```js
//! import init, { loadLayersModel, listCachedModels, deleteCachedModel } from './pkg/webinfer_web.js';
//! await init();
//! const model = await loadLayersModel('https://example.com/model/model.json', {
//!   onProgress: (e) => { bar.value = e * 100; },   // e.fraction, e.loadedBytes, e.totalBytes, ...
//!   backend: 'auto',                               // 'auto' | 'webgpu' | 'cpu'
//! });
//! model.backend;                                   // 'webgpu' or 'cpu': what it really runs on
//! model.inputs;                                    // [{ name, shape: [null, 224, 224, 3], dtype }]
//! const y = await model.predict(pixels, [1, 224, 224, 3]);   // { name, data: Float32Array, shape }
//! model.dispose();
//! ```
//!
//! # Contract
//!
//! - **Loading** goes through `webinfer-loader` (fetch + Cache API): exact byte progress
//!   from the first event, every file checked, stored in the Cache API once complete, a
//!   cached model loads with no network request, an interrupted load resumes with the
//!   files still missing, and a refused cache write is a warning, never a failure.
//! - **Progress events** are plain objects `{loadedBytes, totalBytes, fraction, url,
//!   fromCache, phase}` that also act as the number `fraction` (tfjs passes a number):
//!   `valueOf()` and `Symbol.toPrimitive` return `fraction`, so `e * 100` and `e.fraction`
//!   both work (see `src/events.js`).
//! - **Errors**: every function returns a promise, and every failure — a bad argument
//!   included — rejects it with a JavaScript `Error` whose message says what failed and
//!   where (URL and HTTP status, layer, expected and actual shapes); nothing throws
//!   synchronously. After any failure the module stays usable.
//! - **No panic crosses the boundary**: the code avoids panicking paths (clippy denies
//!   `unwrap`, `expect`, `panic!` here, and JavaScript calls that can throw are made
//!   through `catch` bindings); if one happens anyway, a panic hook (installed by the first
//!   call) writes it to `console.error` before WebAssembly traps.
//! - **Backends**: `backend: 'webgpu'` asks `webinfer` for its GPU engine (an error when no
//!   WebGPU adapter is usable), `'cpu'` for the CPU engine, `'auto'` for the best available
//!   (a hardware GPU, else the CPU); `model.backend` reports what the model really runs on.
//!
//! The CPU engine runs on the calling thread: in a page, long predictions block it, so
//! run the module in a worker for large models (loading and the cache work there too).
//!
//! Natively this crate holds only its platform-independent logic ([`shapes`]).

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod shapes;

#[cfg(target_arch = "wasm32")]
mod cache;
#[cfg(target_arch = "wasm32")]
mod js;
#[cfg(target_arch = "wasm32")]
mod load;
#[cfg(target_arch = "wasm32")]
mod model;

#[cfg(target_arch = "wasm32")]
pub use cache::{delete_cached_model, list_cached_models};
#[cfg(target_arch = "wasm32")]
pub use load::load_layers_model;
#[cfg(target_arch = "wasm32")]
pub use model::LayersModel;

/// Routes panic messages to `console.error`, so that a bug shows its message rather than
/// only `RuntimeError: unreachable`. Every exported function calls this first (a
/// `#[wasm_bindgen(start)]` function would add a `start` export to the JS API).
#[cfg(target_arch = "wasm32")]
pub(crate) fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            web_sys::console::error_1(
                &format!("webinfer panicked (this is a bug in webinfer): {info}").into(),
            );
        }));
    });
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(typescript_custom_section)]
const TYPES: &str = include_str!("types.d.ts");
