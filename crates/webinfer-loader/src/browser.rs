//! Browser implementations (wasm32 only): [`BrowserTransport`] (`fetch` with
//! the body read through a `ReadableStream` reader) and [`BrowserCache`] (the
//! Cache API). Both work in a window and in a worker.

use std::cell::RefCell;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::LocalBoxFuture;
use futures::{Future, Stream};
use js_sys::{Array, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    AbortController, AbortSignal, Cache, CacheStorage, Headers, ReadableStreamDefaultReader,
    RequestCredentials, RequestInit, ResponseInit, WorkerGlobalScope,
};

use crate::cache::{CacheEntry, CacheStore, EntryKind, EntryMeta};
use crate::error::{CacheError, TransportError};
use crate::transport::{Response, Transport};

/// A [`Loader`](crate::Loader) over `fetch` and the Cache API: what a page or a worker uses.
pub fn browser_loader() -> crate::Loader {
    crate::Loader::new(BrowserTransport::new()).with_cache(BrowserCache::new())
}

/// The global scope: a window or a worker.
enum Global {
    Window(web_sys::Window),
    Worker(WorkerGlobalScope),
}

fn global() -> Option<Global> {
    let g = js_sys::global();
    if let Some(w) = g.dyn_ref::<web_sys::Window>() {
        return Some(Global::Window(w.clone()));
    }
    g.dyn_into::<WorkerGlobalScope>().ok().map(Global::Worker)
}

/// A readable message for a rejected promise or thrown value.
pub(crate) fn js_message(value: &JsValue) -> String {
    if let Some(e) = value.dyn_ref::<web_sys::DomException>() {
        return format!("{}: {}", e.name(), e.message());
    }
    if let Some(e) = value.dyn_ref::<js_sys::Error>() {
        return format!("{}: {}", String::from(e.name()), String::from(e.message()));
    }
    value.as_string().unwrap_or_else(|| format!("{value:?}"))
}

/// GETs with `fetch()` and streams the body with `ReadableStreamDefaultReader`.
///
/// `content_length` is the `Content-Length` header unless the response
/// visibly carries a `Content-Encoding` other than `identity` (then `None`:
/// the header counts compressed bytes). Cross-origin responses hide
/// `Content-Encoding` unless the server exposes it; see
/// [`LoadOptions::check_content_length`](crate::LoadOptions::check_content_length).
#[derive(Debug, Clone, Default)]
pub struct BrowserTransport {
    credentials: Option<RequestCredentials>,
    /// Requests started by [`Transport::prefetch`], by URL, until a `get` takes them up.
    /// (A list: a scan of a model's shard URLs costs nothing next to a fetch, and a hash map
    /// of this type was its own ~0.5 KB of code in the module.)
    prefetched: std::rc::Rc<RefCell<Vec<(String, Prefetched)>>>,
}

thread_local! {
    /// A rejection handler that does nothing (one for the module's life: a handler may run
    /// after the transport that attached it is gone).
    static IGNORE: wasm_bindgen::closure::Closure<dyn FnMut(JsValue)> =
        wasm_bindgen::closure::Closure::new(|_: JsValue| {});
}

/// A `fetch()` under way that no `get` has taken up yet; dropped so, it is aborted.
#[derive(Debug)]
struct Prefetched {
    promise: Promise,
    abort: Option<AbortController>,
}

impl Drop for Prefetched {
    fn drop(&mut self) {
        if let Some(abort) = self.abort.take() {
            abort.abort();
        }
    }
}

impl BrowserTransport {
    pub fn new() -> Self {
        Self::default()
    }

    /// The `credentials` mode of every request (default: the browser's, `same-origin`).
    pub fn with_credentials(mut self, credentials: RequestCredentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// `fetch(url)` with an AbortController of its own.
    fn start(&self, url: &str) -> Result<(AbortController, Promise), TransportError> {
        let abort = AbortController::new().map_err(|e| TransportError::new(js_message(&e)))?;
        let promise = self.start_fetch(url, &abort.signal())?;
        Ok((abort, promise))
    }

    fn start_fetch(&self, url: &str, signal: &AbortSignal) -> Result<Promise, TransportError> {
        let init = RequestInit::new();
        init.set_method("GET");
        init.set_signal(Some(signal));
        if let Some(c) = self.credentials {
            init.set_credentials(c);
        }
        match global() {
            Some(Global::Window(w)) => Ok(w.fetch_with_str_and_init(url, &init)),
            Some(Global::Worker(w)) => Ok(w.fetch_with_str_and_init(url, &init)),
            None => Err(TransportError::new(
                "fetch() is not available in this JavaScript context",
            )),
        }
    }
}

impl BrowserTransport {
    /// `fetch(url)`, the body behind a reader; with `copy`, also a `clone()` of
    /// a successful response for the cache to store as the body streams in.
    async fn fetch_response(
        &self,
        url: &str,
        copy: bool,
    ) -> Result<(Response<'static>, Option<BodyCopy>), TransportError> {
        // Aborted when the body is dropped unfinished, which also stops a copy.
        let prefetched = {
            let mut list = self.prefetched.borrow_mut();
            let at = list.iter().position(|(u, _)| u == url);
            at.map(|at| list.swap_remove(at).1)
        };
        let (abort, promise) = match prefetched {
            Some(mut p) => match p.abort.take() {
                Some(abort) => (abort, p.promise.clone()),
                None => self.start(url)?,
            },
            None => self.start(url)?,
        };
        {
            let response: web_sys::Response = JsFuture::from(promise)
                .await
                .map_err(|e| TransportError::new(js_message(&e)))?
                .dyn_into()
                .map_err(|_| TransportError::new("fetch() did not resolve to a Response"))?;
            let headers = response.headers();
            let header = |name: &str| headers.get(name).ok().flatten();
            let encoded = header("content-encoding")
                .is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity"));
            let content_length = if encoded {
                None
            } else {
                header("content-length").and_then(|v| v.trim().parse::<u64>().ok())
            };
            let copy = if copy && (200..=299).contains(&response.status()) {
                response
                    .clone()
                    .ok()
                    .map(|r| BodyCopy { response: Some(r) })
            } else {
                None
            };
            let body: futures::stream::LocalBoxStream<'static, Result<Vec<u8>, TransportError>> =
                match response.body() {
                    None => Box::pin(futures::stream::empty()),
                    Some(stream) => {
                        let reader: ReadableStreamDefaultReader =
                            stream.get_reader().dyn_into().map_err(|_| {
                                TransportError::new("the response body has no default reader")
                            })?;
                        Box::pin(ReaderStream::new(reader, Some(abort)))
                    }
                };
            Ok((
                Response {
                    status: response.status(),
                    status_text: response.status_text(),
                    content_length,
                    body,
                },
                copy,
            ))
        }
    }
}

impl Transport for BrowserTransport {
    fn prefetch(&self, url: &str) {
        if self.prefetched.borrow().iter().any(|(u, _)| u == url) {
            return;
        }
        // A request that cannot start now is started (and its error reported) by the `get`.
        if let Ok((abort, promise)) = self.start(url) {
            // Handled, so that a failure (or the abort of one never taken up) before a `get`
            // takes it up is not reported to the console as an unhandled rejection; the
            // `get` sees the failure all the same.
            IGNORE.with(|ignore| {
                let _ = promise.catch(ignore);
            });
            self.prefetched.borrow_mut().push((
                url.to_owned(),
                Prefetched {
                    promise,
                    abort: Some(abort),
                },
            ));
        }
    }

    fn cancel_prefetches(&self) {
        // Dropped outside the borrow: each aborts its fetch.
        let dropped = std::mem::take(&mut *self.prefetched.borrow_mut());
        drop(dropped);
    }

    fn get<'a>(&'a self, url: &'a str) -> LocalBoxFuture<'a, Result<Response<'a>, TransportError>> {
        Box::pin(async move { Ok(self.fetch_response(url, false).await?.0) })
    }

    fn get_with_copy<'a>(
        &'a self,
        url: &'a str,
    ) -> LocalBoxFuture<'a, Result<(Response<'a>, Option<BodyCopy>), TransportError>> {
        Box::pin(async move {
            let (response, copy) = self.fetch_response(url, true).await?;
            Ok((response, copy))
        })
    }

    fn canonical_url(&self, url: &str) -> String {
        let base = match global() {
            Some(Global::Window(w)) => w.location().href().ok(),
            Some(Global::Worker(w)) => Some(w.location().href()),
            None => None,
        };
        base.and_then(|base| web_sys::Url::new_with_base(url, &base).ok())
            .map(|u| u.href())
            .unwrap_or_else(|| url.to_owned())
    }
}

/// The most bytes of a body copied into WebAssembly memory at once. A browser hands over
/// chunks of up to a few MiB (Chromium, from a local server: 2 MB); each is copied in pieces
/// of at most this size, so a load holds one short piece besides the weights (dense_heavy on
/// the CPU, Chromium: Rust heap peak 21.6 MiB whole, 19.9 in 256 KiB pieces, 19.7 in 64 KiB
/// pieces, for 19.6 MiB of weights; WASM memory 24.3 -> 20.2-21.9 MiB), and the pieces, all of
/// one size, reuse one block instead of leaving holes between the weights. 64 KiB is also the
/// size of a diverted weight's decoding scratch (webinfer-tfjs).
const PIECE: u32 = 64 * 1024;

/// A response body read chunk by chunk. Dropping it before the end cancels the
/// stream, which aborts the download.
struct ReaderStream {
    reader: ReadableStreamDefaultReader,
    /// The fetch to abort when dropped unfinished (none for a cached body).
    abort: Option<AbortController>,
    pending: Option<JsFuture>,
    /// The rest of the chunk being handed over, from this offset.
    rest: Option<(Uint8Array, u32)>,
    done: bool,
}

impl ReaderStream {
    fn new(reader: ReadableStreamDefaultReader, abort: Option<AbortController>) -> Self {
        ReaderStream {
            reader,
            abort,
            pending: None,
            rest: None,
            done: false,
        }
    }

    /// The next piece of the current chunk, if any is left.
    fn next_piece(&mut self) -> Option<Vec<u8>> {
        let (chunk, at) = self.rest.take()?;
        let len = chunk.length();
        let end = at.saturating_add(PIECE).min(len);
        let piece = chunk.subarray(at, end).to_vec();
        if end < len {
            self.rest = Some((chunk, end));
        }
        Some(piece)
    }
}

impl Stream for ReaderStream {
    type Item = Result<Vec<u8>, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(piece) = self.next_piece() {
                return Poll::Ready(Some(Ok(piece)));
            }
            if self.done {
                return Poll::Ready(None);
            }
            let reader = self.reader.clone();
            let pending = self
                .pending
                .get_or_insert_with(|| JsFuture::from(reader.read()));
            let result = match Pin::new(pending).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => r,
            };
            self.pending = None;
            let result = match result {
                Ok(r) => r,
                Err(e) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(TransportError::new(js_message(&e)))));
                }
            };
            let done = Reflect::get(&result, &"done".into())
                .ok()
                .and_then(|d| d.as_bool())
                .unwrap_or(true);
            if done {
                self.done = true;
                return Poll::Ready(None);
            }
            let value = Reflect::get(&result, &"value".into()).unwrap_or(JsValue::UNDEFINED);
            match value.dyn_into::<Uint8Array>() {
                Ok(chunk) if chunk.length() == 0 => continue,
                Ok(chunk) => self.rest = Some((chunk, 0)),
                Err(_) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(TransportError::new(
                        "the response body yielded a chunk that is not a Uint8Array",
                    ))));
                }
            }
        }
    }
}

impl Drop for ReaderStream {
    fn drop(&mut self) {
        if !self.done {
            // The returned promise settles on its own; nothing to wait for.
            let _ = self.reader.cancel();
            // Ends the transfer, and with it a copy still being stored.
            if let Some(abort) = &self.abort {
                abort.abort();
            }
        }
    }
}

/// The other branch of a response body (`Response.clone()`), for
/// [`BrowserCache`] to store while the loader reads the first. Dropped unused,
/// its body is cancelled so the browser does not buffer it.
#[derive(Debug)]
pub struct BodyCopy {
    response: Option<web_sys::Response>,
}

impl Drop for BodyCopy {
    fn drop(&mut self) {
        if let Some(body) = self.response.take().and_then(|r| r.body()) {
            let _ = body.cancel();
        }
    }
}

const H_MODEL: &str = "x-webinfer-model";
const H_KIND: &str = "x-webinfer-kind";
const H_LENGTH: &str = "x-webinfer-length";
const H_FILES: &str = "x-webinfer-model-files";

/// A stream of one chunk, `bytes` (copied into JS memory once; the Rust bytes stay with the
/// caller): the body of a stored entry. `put` with a stream body hands the bytes to the
/// browser asynchronously, where a byte-array body is copied while `put` runs (measured in
/// Chromium, 118 KB: 0.3 ms of the page's thread against 0.8-2.4 ms, which on a first visit
/// were spent while the shards were arriving).
fn stream_of(bytes: &[u8]) -> Result<web_sys::ReadableStream, CacheError> {
    let pipe = web_sys::TransformStream::new().map_err(cache_error)?;
    let writer = pipe.writable().get_writer().map_err(cache_error)?;
    // Settled once `put` has read the chunk, or rejected when it gave up (its own rejection
    // says why): handled, so neither reaches the console as an unhandled rejection.
    IGNORE.with(|ignore| {
        let _ = writer
            .write_with_chunk(&Uint8Array::from(bytes))
            .catch(ignore);
        let _ = writer.close().catch(ignore);
    });
    Ok(pipe.readable())
}

/// The Cache API (`caches`): one `Cache` per cache name, one `Response` per
/// entry, the [`EntryMeta`] in `x-webinfer-*` headers.
///
/// Keys must be `http(s)` URLs (the Cache API refuses others); the
/// [`BrowserTransport`] makes model URLs absolute for this reason. A
/// `QuotaExceededError` from `put` becomes [`CacheError::Quota`]; `put` is
/// atomic in the Cache API, so a refused entry leaves nothing behind.
#[derive(Debug, Default)]
pub struct BrowserCache {
    /// `caches.open(name)` of each cache used, started once.
    /// (A list: a page uses one or two caches.)
    opened: RefCell<Vec<(String, Promise)>>,
}

impl BrowserCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The stored response for `key`, if any.
    ///
    /// The first lookup in a cache asks `caches.match(key, {cacheName})` while the cache is
    /// opened for what follows: one round trip to the browser's storage before a first
    /// visit's model.json is requested instead of two (open, then match; ~0.5 ms each in
    /// Chromium here).
    async fn lookup(
        &self,
        cache: &str,
        key: &str,
    ) -> Result<Option<web_sys::Response>, CacheError> {
        let opened = self.opened.borrow().iter().any(|(n, _)| n == cache);
        let found = if opened {
            let cache = self.open(cache).await?;
            cache.match_with_str(key)
        } else {
            let _ = self.open_promise(cache)?;
            let options = web_sys::CacheQueryOptions::new();
            options.set_cache_name(cache);
            storage()?.match_with_str_and_options(key, &options)
        };
        let found = JsFuture::from(found).await.map_err(cache_error)?;
        Ok(found.dyn_into::<web_sys::Response>().ok())
    }

    /// Whether `caches` exists here (it does not in insecure contexts).
    pub fn is_available() -> bool {
        storage().is_ok()
    }

    /// `caches.open(name)`, started on first use.
    fn open_promise(&self, name: &str) -> Result<Promise, CacheError> {
        if let Some((_, p)) = self.opened.borrow().iter().find(|(n, _)| n == name) {
            return Ok(p.clone());
        }
        let p = storage()?.open(name);
        // Awaited by whoever needs the cache; a lookup alone may never await it.
        IGNORE.with(|ignore| {
            let _ = p.catch(ignore);
        });
        self.opened.borrow_mut().push((name.to_owned(), p.clone()));
        Ok(p)
    }

    async fn open(&self, name: &str) -> Result<Cache, CacheError> {
        let opened = JsFuture::from(self.open_promise(name)?).await;
        let cache = opened.map_err(cache_error).and_then(|c| {
            c.dyn_into::<Cache>()
                .map_err(|_| CacheError::Other("caches.open() did not resolve to a Cache".into()))
        });
        if cache.is_err() {
            // Asked again next time.
            self.opened.borrow_mut().retain(|(n, _)| n != name);
        }
        cache
    }

    /// Deletes a whole cache, e.g. one of an older webinfer layout version.
    pub async fn delete_cache(name: &str) -> Result<bool, CacheError> {
        let deleted = JsFuture::from(storage()?.delete(name))
            .await
            .map_err(cache_error)?;
        Ok(deleted.as_bool().unwrap_or(false))
    }

    /// Names of every cache of this origin (`caches.keys()`).
    pub async fn cache_names() -> Result<Vec<String>, CacheError> {
        let keys = JsFuture::from(storage()?.keys())
            .await
            .map_err(cache_error)?;
        Ok(Array::from(&keys)
            .iter()
            .filter_map(|v| v.as_string())
            .collect())
    }
}

fn storage() -> Result<CacheStorage, CacheError> {
    let result = match global() {
        Some(Global::Window(w)) => w.caches(),
        Some(Global::Worker(w)) => w.caches(),
        None => return Err(CacheError::Unavailable("no window or worker global".into())),
    };
    result.map_err(|e| CacheError::Unavailable(js_message(&e)))
}

fn cache_error(e: JsValue) -> CacheError {
    let message = js_message(&e);
    match e.dyn_ref::<web_sys::DomException>().map(|d| d.name()) {
        Some(name) if name == "QuotaExceededError" => CacheError::Quota(message),
        Some(name) if name == "SecurityError" => CacheError::Unavailable(message),
        _ => CacheError::Other(message),
    }
}

/// Status and `x-webinfer-*` headers of a stored entry.
fn entry_init(meta: &EntryMeta) -> Result<ResponseInit, CacheError> {
    let headers = Headers::new().map_err(cache_error)?;
    let set = |name: &str, value: &str| headers.set(name, value).map_err(cache_error);
    set("content-type", "application/octet-stream")?;
    set(H_MODEL, &meta.model_url)?;
    set(H_KIND, meta.kind.as_str())?;
    set(H_LENGTH, &meta.length.to_string())?;
    if let Some(n) = meta.model_files {
        set(H_FILES, &n.to_string())?;
    }
    let init = ResponseInit::new();
    init.set_status(200);
    init.set_headers(&headers);
    Ok(init)
}

/// The record given to an entry this layout did not write: it fails every check, so the
/// loader evicts it.
fn foreign_meta() -> EntryMeta {
    EntryMeta {
        model_url: String::new(),
        kind: EntryKind::Shard,
        length: u64::MAX,
        model_files: None,
    }
}

fn meta_of(headers: &Headers) -> Option<EntryMeta> {
    let get = |name: &str| headers.get(name).ok().flatten();
    Some(EntryMeta {
        model_url: get(H_MODEL)?,
        kind: EntryKind::parse(&get(H_KIND)?)?,
        length: get(H_LENGTH)?.parse().ok()?,
        model_files: get(H_FILES).and_then(|n| n.parse().ok()),
    })
}

impl CacheStore for BrowserCache {
    fn get<'a>(
        &'a self,
        cache: &'a str,
        key: &'a str,
    ) -> LocalBoxFuture<'a, Result<Option<CacheEntry>, CacheError>> {
        Box::pin(async move {
            let Some(response) = self.lookup(cache, key).await? else {
                return Ok(None);
            };
            let Some(meta) = meta_of(&response.headers()) else {
                // Not written by this layout: let the loader evict it.
                return Ok(Some(CacheEntry {
                    meta: foreign_meta(),
                    bytes: Vec::new(),
                }));
            };
            let buffer = JsFuture::from(response.array_buffer().map_err(cache_error)?)
                .await
                .map_err(cache_error)?;
            Ok(Some(CacheEntry {
                meta,
                bytes: Uint8Array::new(&buffer).to_vec(),
            }))
        })
    }

    fn put<'a>(
        &'a self,
        cache: &'a str,
        key: &'a str,
        meta: &'a EntryMeta,
        bytes: &'a [u8],
    ) -> LocalBoxFuture<'a, Result<(), CacheError>> {
        Box::pin(async move {
            let cache = self.open(cache).await?;
            let init = entry_init(meta)?;
            let response = web_sys::Response::new_with_opt_readable_stream_and_init(
                Some(&stream_of(bytes)?),
                &init,
            )
            .map_err(cache_error)?;
            JsFuture::from(cache.put_with_str(key, &response))
                .await
                .map_err(cache_error)?;
            Ok(())
        })
    }

    fn get_stream<'a>(
        &'a self,
        cache: &'a str,
        key: &'a str,
    ) -> LocalBoxFuture<'a, Result<Option<(EntryMeta, crate::cache::CacheBody<'a>)>, CacheError>>
    {
        Box::pin(async move {
            let Some(response) = self.lookup(cache, key).await? else {
                return Ok(None);
            };
            // An entry not written by this layout gets a record the loader evicts.
            let meta = meta_of(&response.headers()).unwrap_or_else(foreign_meta);
            let body: crate::cache::CacheBody<'a> = match response.body() {
                None => Box::pin(futures::stream::empty()),
                Some(stream) => {
                    let reader: ReadableStreamDefaultReader = stream
                        .get_reader()
                        .dyn_into()
                        .map_err(|_| CacheError::Other("a cached body has no reader".into()))?;
                    Box::pin(futures::StreamExt::map(
                        ReaderStream::new(reader, None),
                        |chunk| chunk.map_err(|e| CacheError::Other(e.message)),
                    ))
                }
            };
            Ok(Some((meta, body)))
        })
    }

    fn put_copy<'a>(
        &'a self,
        cache: &'a str,
        key: &'a str,
        meta: &'a EntryMeta,
        mut copy: BodyCopy,
    ) -> LocalBoxFuture<'a, Result<(), CacheError>> {
        Box::pin(async move {
            let cache = self.open(cache).await?;
            let init = entry_init(meta)?;
            let Some(source) = copy.response.take() else {
                return Err(CacheError::Other("the copy was already used".into()));
            };
            let response = web_sys::Response::new_with_opt_readable_stream_and_init(
                source.body().as_ref(),
                &init,
            )
            .map_err(cache_error)?;
            // Resolves once the browser has stored the whole body; rejects (storing
            // nothing) when the transfer breaks off or is aborted. Handled here too, so that
            // a copy given up with its load (the future dropped) never reaches the console
            // as an unhandled rejection.
            let put = cache.put_with_str(key, &response);
            IGNORE.with(|ignore| {
                let _ = put.catch(ignore);
            });
            JsFuture::from(put).await.map_err(cache_error)?;
            Ok(())
        })
    }

    fn takes_copies(&self) -> bool {
        true
    }

    fn delete<'a>(
        &'a self,
        cache: &'a str,
        key: &'a str,
    ) -> LocalBoxFuture<'a, Result<bool, CacheError>> {
        Box::pin(async move {
            let cache = self.open(cache).await?;
            let deleted = JsFuture::from(cache.delete_with_str(key))
                .await
                .map_err(cache_error)?;
            Ok(deleted.as_bool().unwrap_or(false))
        })
    }

    fn list<'a>(
        &'a self,
        cache: &'a str,
    ) -> LocalBoxFuture<'a, Result<Vec<(String, EntryMeta)>, CacheError>> {
        Box::pin(async move {
            let cache = self.open(cache).await?;
            let requests = JsFuture::from(cache.keys()).await.map_err(cache_error)?;
            let mut out = Vec::new();
            for request in Array::from(&requests).iter() {
                let Ok(request) = request.dyn_into::<web_sys::Request>() else {
                    continue;
                };
                let found = JsFuture::from(cache.match_with_request(&request))
                    .await
                    .map_err(cache_error)?;
                let Ok(response) = found.dyn_into::<web_sys::Response>() else {
                    continue;
                };
                if let Some(meta) = meta_of(&response.headers()) {
                    out.push((request.url(), meta));
                }
            }
            webinfer_tfjs::order::sort_by(&mut out, |a, b| a.0.cmp(&b.0));
            Ok(out)
        })
    }
}
