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
//!   through `catch` bindings); if one happens anyway, the work of every exported function
//!   runs inside a guard ([`guard`]) that turns it into a rejected promise whose message is
//!   the panic's, and the module stays usable. A panic hook (installed by the first call)
//!   also writes the message to `console.error`.
//! - **Memory** is observable for leak checks: `memoryStats()` (WebAssembly memory, heap in
//!   use, GPU buffer bytes and devices, live models). A disposed model releases its GPU
//!   buffers and destroys its device at once (not at garbage collection).
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

pub mod limits;
pub mod shapes;

#[cfg(target_arch = "wasm32")]
mod cache;
#[cfg(target_arch = "wasm32")]
mod guard;
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

/// The heap in use, counted by the global allocator (for `memoryStats().heapBytes`).
#[cfg(target_arch = "wasm32")]
mod heap {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering};

    static IN_USE: AtomicUsize = AtomicUsize::new(0);
    static PEAK: AtomicUsize = AtomicUsize::new(0);

    /// Bytes allocated and not freed (what the program holds, unlike the size of the
    /// WebAssembly memory, which never shrinks).
    pub(crate) fn in_use() -> usize {
        IN_USE.load(Ordering::Relaxed)
    }

    /// The most [`in_use`] has been since the module started: set against the size of the
    /// WebAssembly memory, what is left is the allocator's fragmentation.
    pub(crate) fn peak() -> usize {
        PEAK.load(Ordering::Relaxed)
    }

    fn grew(by: usize) {
        let now = IN_USE.fetch_add(by, Ordering::Relaxed).saturating_add(by);
        PEAK.fetch_max(now, Ordering::Relaxed);
    }

    struct Counting;

    // SAFETY: every call forwards to `System` with the caller's arguments unchanged.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let p = unsafe { System.alloc(layout) };
            if !p.is_null() {
                grew(layout.size());
            }
            p
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            let p = unsafe { System.alloc_zeroed(layout) };
            if !p.is_null() {
                grew(layout.size());
            }
            p
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) };
            IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let p = unsafe { System.realloc(ptr, layout, new_size) };
            if !p.is_null() {
                grew(new_size);
                IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
            }
            p
        }
    }

    #[global_allocator]
    static ALLOCATOR: Counting = Counting;
}

/// Models loaded and not yet released (disposed, with no predict still running).
#[cfg(target_arch = "wasm32")]
pub(crate) static LIVE_MODELS: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// What the module holds now, for leak checks and memory reports:
/// `{wasmMemoryBytes, heapBytes, heapPeakBytes, gpuBufferBytes, gpuDevices, liveModels}`.
/// Never throws.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(js_name = memoryStats, unchecked_return_type = "MemoryStats")]
pub fn memory_stats() -> wasm_bindgen::JsValue {
    use std::sync::atomic::Ordering;
    let gpu = webinfer::gpu_memory();
    let wasm_bytes = core::arch::wasm32::memory_size(0) as f64 * 65536.0;
    js::object(&[
        ("wasmMemoryBytes", wasm_bytes.into()),
        ("heapBytes", (heap::in_use() as f64).into()),
        ("heapPeakBytes", (heap::peak() as f64).into()),
        ("gpuBufferBytes", (gpu.buffer_bytes as f64).into()),
        ("gpuDevices", (gpu.devices as f64).into()),
        (
            "liveModels",
            (LIVE_MODELS.load(Ordering::Relaxed) as f64).into(),
        ),
    ])
}

/// Testing only: panics inside webinfer, to check that a panic becomes a rejected promise
/// and leaves the module usable. `kind`: `"sync"` (default; in the synchronous part of a
/// call) or `"async"` (in a future, after it has waited once on the event loop).
#[cfg(target_arch = "wasm32")]
#[allow(clippy::panic)]
#[wasm_bindgen::prelude::wasm_bindgen(js_name = __debugPanic, unchecked_return_type = "Promise<never>")]
pub fn debug_panic(
    #[wasm_bindgen(unchecked_optional_param_type = "\"sync\" | \"async\"")]
    kind: wasm_bindgen::JsValue,
) -> js_sys::Promise {
    install_panic_hook();
    let kind = kind.as_string().unwrap_or_else(|| "sync".into());
    match kind.as_str() {
        "sync" => match guard::sync("__debugPanic", || -> () {
            panic!("__debugPanic(\"sync\"): a deliberate panic for testing")
        }) {
            Ok(()) => js_sys::Promise::resolve(&wasm_bindgen::JsValue::UNDEFINED),
            Err(e) => js_sys::Promise::reject(&e),
        },
        "async" => guard::promise("__debugPanic", async {
            // Wait for a macrotask, so that the panic happens in a later poll.
            let _ = wasm_bindgen_futures::JsFuture::from(guard::macrotask()).await;
            panic!("__debugPanic(\"async\"): a deliberate panic for testing")
        }),
        other => js_sys::Promise::reject(&js::error(format!(
            "__debugPanic: kind must be \"sync\" or \"async\", got \"{other}\""
        ))),
    }
}

/// Routes panic messages to `console.error`, so that a bug shows its message rather than
/// only `RuntimeError: unreachable`. Every exported function calls this first (a
/// `#[wasm_bindgen(start)]` function would add a `start` export to the JS API).
#[cfg(target_arch = "wasm32")]
pub(crate) fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            guard::record_panic(info.to_string());
            web_sys::console::error_1(
                &format!("webinfer panicked (this is a bug in webinfer): {info}").into(),
            );
        }));
    });
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(typescript_custom_section)]
const TYPES: &str = include_str!("types.d.ts");
