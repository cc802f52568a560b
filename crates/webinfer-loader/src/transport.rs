//! The two things a platform provides: [`Transport`] (GET a URL, stream the
//! body) and [`Clock`] (milliseconds, for rate-limiting progress events).
//!
//! Futures and streams here are not `Send`: the browser's are tied to one
//! JavaScript thread, and the loader drives every download from one task
//! (`buffer_unordered`), so nothing needs to cross threads. Natively, drive a
//! load with any executor's `block_on` or a local task.

use futures::future::LocalBoxFuture;
use futures::stream::LocalBoxStream;

use crate::error::TransportError;

/// A second copy of a response body that a cache can store as it streams in,
/// while the loader reads the first (the browser's `Response.clone()`, a tee
/// of one network transfer). Dropping it unused cancels it. Native transports
/// have none: this type has no values there.
#[cfg(target_arch = "wasm32")]
pub use crate::browser::BodyCopy;
/// A second copy of a response body that a cache can store as it streams in,
/// while the loader reads the first (the browser's `Response.clone()`, a tee
/// of one network transfer). Native transports have none: this type has no
/// values here.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug)]
pub enum BodyCopy {}

/// A response whose body has not been read yet.
pub struct Response<'a> {
    /// The HTTP status (a transport without statuses answers 200 or 404).
    pub status: u16,
    /// The reason phrase, when the transport has one ("" otherwise).
    pub status_text: String,
    /// How many bytes `body` will yield, when the transport can vouch for it.
    ///
    /// This is the *decoded* length: a transport that sees a
    /// `Content-Encoding` other than `identity` must report `None`, because
    /// `Content-Length` then counts compressed bytes.
    pub content_length: Option<u64>,
    /// The body, in chunks as they arrive. An `Err` item means the transfer
    /// broke off; the stream is not polled again after it. Dropping the stream
    /// cancels the transfer.
    pub body: LocalBoxStream<'a, Result<Vec<u8>, TransportError>>,
}

impl std::fmt::Debug for Response<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("status_text", &self.status_text)
            .field("content_length", &self.content_length)
            .finish_non_exhaustive()
    }
}

/// Fetches URLs. Implementations: `browser::BrowserTransport`
/// (wasm32: `fetch` + `ReadableStream`), `fs::FileTransport`
/// (native: files), [`MemoryTransport`](crate::memory::MemoryTransport) (a fake
/// with fault injection, for tests).
pub trait Transport {
    /// Starts a GET of `url` and resolves once the status and headers are in.
    ///
    /// `Err` only when no response came at all; an HTTP error status is an
    /// `Ok` response (the loader reports it with the status).
    fn get<'a>(&'a self, url: &'a str) -> LocalBoxFuture<'a, Result<Response<'a>, TransportError>>;

    /// Like [`Transport::get`], plus a [`BodyCopy`] of a successful (2xx)
    /// response for [`CacheStore::put_copy`](crate::CacheStore::put_copy), when
    /// the transport can make one. Default: no copy.
    fn get_with_copy<'a>(
        &'a self,
        url: &'a str,
    ) -> LocalBoxFuture<'a, Result<(Response<'a>, Option<BodyCopy>), TransportError>> {
        Box::pin(async move { Ok((self.get(url).await?, None)) })
    }

    /// The canonical form of a model URL as given by the user, before any shard
    /// URL is derived from it. The browser resolves a relative URL against the
    /// page (or worker) location, so cache keys, events and errors carry the
    /// absolute URL the Cache API stores. Default: `url` unchanged.
    fn canonical_url(&self, url: &str) -> String {
        url.to_owned()
    }

    /// Starts a GET of `url` now, for a later [`Transport::get`] or
    /// [`Transport::get_with_copy`] of the same URL to take up: the loader calls it for the
    /// first shards of a model none of whose files are cached, as soon as it has read the
    /// weights manifest, so the requests are under way while it parses the topology.
    /// Default: nothing (the later call starts the request).
    fn prefetch(&self, url: &str) {
        let _ = url;
    }

    /// Drops the prefetched requests nothing took up (a load that failed before its
    /// shards), ending their transfers. Default: nothing.
    fn cancel_prefetches(&self) {}
}

impl<T: Transport + ?Sized> Transport for &T {
    fn get<'a>(&'a self, url: &'a str) -> LocalBoxFuture<'a, Result<Response<'a>, TransportError>> {
        (**self).get(url)
    }
    fn get_with_copy<'a>(
        &'a self,
        url: &'a str,
    ) -> LocalBoxFuture<'a, Result<(Response<'a>, Option<BodyCopy>), TransportError>> {
        (**self).get_with_copy(url)
    }
    fn canonical_url(&self, url: &str) -> String {
        (**self).canonical_url(url)
    }
    fn prefetch(&self, url: &str) {
        (**self).prefetch(url)
    }
    fn cancel_prefetches(&self) {
        (**self).cancel_prefetches()
    }
}

impl<T: Transport + ?Sized> Transport for std::rc::Rc<T> {
    fn get<'a>(&'a self, url: &'a str) -> LocalBoxFuture<'a, Result<Response<'a>, TransportError>> {
        (**self).get(url)
    }
    fn get_with_copy<'a>(
        &'a self,
        url: &'a str,
    ) -> LocalBoxFuture<'a, Result<(Response<'a>, Option<BodyCopy>), TransportError>> {
        (**self).get_with_copy(url)
    }
    fn canonical_url(&self, url: &str) -> String {
        (**self).canonical_url(url)
    }
    fn prefetch(&self, url: &str) {
        (**self).prefetch(url)
    }
    fn cancel_prefetches(&self) {
        (**self).cancel_prefetches()
    }
}

/// A monotonic clock in milliseconds. Only differences matter.
pub trait Clock {
    fn now_ms(&self) -> f64;
}

/// The platform clock: `std::time::Instant` natively, `Date.now()` on wasm32
/// (`Instant` panics there).
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    #[cfg(not(target_arch = "wasm32"))]
    start: std::time::Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        SystemClock {
            #[cfg(not(target_arch = "wasm32"))]
            start: std::time::Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    #[cfg(not(target_arch = "wasm32"))]
    fn now_ms(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * 1000.0
    }
    #[cfg(target_arch = "wasm32")]
    fn now_ms(&self) -> f64 {
        js_sys::Date::now()
    }
}
