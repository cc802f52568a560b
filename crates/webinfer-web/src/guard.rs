//! No panic reaches JavaScript: every exported function runs its work through this module,
//! which turns a panic into a rejected promise (or an `Err`) with the panic's message, and
//! keeps the module usable.
//!
//! wasm32 builds abort on panic: the panic hook runs (it records the message here and writes
//! it to `console.error`), then the module executes `unreachable`, which throws a
//! `RuntimeError` to the nearest JavaScript frame. The work runs inside `callGuarded`
//! (`src/guard.js`), a JavaScript frame that catches it, so only the frames of the failed
//! work are abandoned: the caller's frames (and wasm-bindgen-futures' task queue) are intact.
//! The shadow stack pointer is restored when those caller frames return. What the abandoned
//! frames owned is leaked (bounded: one call's state), and a future that panicked is never
//! polled or dropped again.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use js_sys::Promise;
use wasm_bindgen::prelude::*;

use crate::js;

#[wasm_bindgen(module = "/src/guard.js")]
extern "C" {
    #[wasm_bindgen(js_name = callGuarded)]
    fn call_guarded(f: &mut dyn FnMut()) -> JsValue;
    /// A promise resolved by the next macrotask (`setTimeout(0)`).
    pub(crate) fn macrotask() -> Promise;
}

thread_local! {
    /// The message of the latest panic, taken by the guard that catches its trap.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Called by the panic hook.
pub(crate) fn record_panic(message: String) {
    LAST_PANIC.with(|p| {
        if let Ok(mut p) = p.try_borrow_mut() {
            *p = Some(message);
        }
    });
}

/// The `Error` for a failure caught by a guard: the panic's message, or the exception.
fn internal_error(what: &str, thrown: &JsValue) -> JsValue {
    let panic = LAST_PANIC.with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.take()));
    let detail = match panic {
        Some(m) => m,
        None => format!(
            "a JavaScript exception crossed webinfer: {}",
            js::message(thrown)
        ),
    };
    js::error(format!(
        "{what}: internal error in webinfer (a bug; the module is still usable): {detail}"
    ))
}

/// Runs `f`; a panic (or a JavaScript exception) inside becomes `Err(Error)`.
pub(crate) fn sync<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, JsValue> {
    let mut f = Some(f);
    let mut out = None;
    let thrown = call_guarded(&mut || {
        if let Some(f) = f.take() {
            out = Some(f());
        }
    });
    match out {
        Some(v) if thrown.is_undefined() => Ok(v),
        _ => Err(internal_error(what, &thrown)),
    }
}

/// A future whose every poll runs guarded; a panic resolves it with `Err(Error)`.
struct Guarded<F> {
    inner: Option<Pin<Box<F>>>,
    what: &'static str,
}

impl<F: Future<Output = Result<JsValue, JsValue>>> Future for Guarded<F> {
    type Output = Result<JsValue, JsValue>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(Err(js::error(format!(
                "{}: polled after it finished (a bug in webinfer)",
                this.what
            ))));
        };
        let mut result = None;
        let thrown = call_guarded(&mut || result = Some(inner.as_mut().poll(cx)));
        match result {
            Some(Poll::Pending) if thrown.is_undefined() => Poll::Pending,
            Some(Poll::Ready(r)) if thrown.is_undefined() => {
                this.inner = None;
                Poll::Ready(r)
            }
            _ => {
                // Its state is whatever the panic left: never touch it again.
                if let Some(inner) = this.inner.take() {
                    std::mem::forget(inner);
                }
                Poll::Ready(Err(internal_error(this.what, &thrown)))
            }
        }
    }
}

/// `future_to_promise`, with a panic in `future` rejecting the promise.
pub(crate) fn promise<F>(what: &'static str, future: F) -> Promise
where
    F: Future<Output = Result<JsValue, JsValue>> + 'static,
{
    wasm_bindgen_futures::future_to_promise(Guarded {
        inner: Some(Box::pin(future)),
        what,
    })
}
