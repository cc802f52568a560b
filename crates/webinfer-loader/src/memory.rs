//! In-memory implementations for tests, on every platform: a
//! [`MemoryTransport`] that serves files from memory and injects faults, a
//! [`MemoryCache`] that can refuse puts, and a [`ManualClock`].
//!
//! Each is a cheap handle (`Clone` shares the state), so a test keeps one
//! copy to inspect while the [`Loader`](crate::Loader) owns another.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures::future::LocalBoxFuture;
use futures::Stream;

use crate::cache::{CacheEntry, CacheStore, EntryMeta};
use crate::error::{CacheError, TransportError};
use crate::transport::{Clock, Response, Transport};

/// A clock that moves only when told to.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Rc<Cell<f64>>);

impl ManualClock {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn advance(&self, ms: f64) {
        self.0.set(self.0.get() + ms);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> f64 {
        self.0.get()
    }
}

/// A fault [`MemoryTransport`] injects for one URL until cleared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this HTTP status and an empty body.
    Status(u16),
    /// No response at all (like an offline network or a CORS failure).
    Unreachable,
    /// Announce the full `Content-Length`, then end the body cleanly after this many bytes.
    Truncate(usize),
    /// Like `Truncate`, but without a `Content-Length` header.
    TruncateSilently(usize),
    /// Send this many bytes, then fail the stream (a dropped connection).
    FailAfter(usize),
    /// Announce this `Content-Length` instead of the real one.
    ContentLength(u64),
    /// Send no `Content-Length` header.
    NoContentLength,
    /// Serve these bytes instead of the file's.
    Body(Vec<u8>),
    /// Send every byte, then never end the body (a connection the server keeps open),
    /// announcing the `Content-Length` or not.
    NeverEnds { content_length: bool },
    /// Answer only after this many polls of the request (a response head that comes late).
    SlowHead(u32),
}

#[derive(Debug, Default)]
struct TransportState {
    files: HashMap<String, Vec<u8>>,
    faults: HashMap<String, Fault>,
    requests: Vec<String>,
    /// Requested by `prefetch` and not yet taken up by a `get`.
    prefetched: Vec<String>,
    in_flight: usize,
    max_in_flight: usize,
}

/// Serves files from memory, counting requests, with throttling and faults.
///
/// Throttling: bodies are cut into `chunk_size` chunks and each chunk is
/// preceded by one `Poll::Pending` (with an immediate wake-up), so concurrent
/// downloads interleave on a single-threaded executor; a [`ManualClock`]
/// given to [`MemoryTransport::with_clock`] advances per chunk.
#[derive(Debug, Clone)]
pub struct MemoryTransport {
    state: Rc<RefCell<TransportState>>,
    chunk_size: usize,
    clock: Option<(ManualClock, f64)>,
}

impl Default for MemoryTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryTransport {
    pub fn new() -> Self {
        MemoryTransport {
            state: Rc::default(),
            chunk_size: 64 * 1024,
            clock: None,
        }
    }

    /// Bodies arrive in chunks of at most `bytes` (default 64 KiB).
    pub fn with_chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes.max(1);
        self
    }

    /// Advance `clock` by `ms_per_chunk` for every chunk delivered.
    pub fn with_clock(mut self, clock: ManualClock, ms_per_chunk: f64) -> Self {
        self.clock = Some((clock, ms_per_chunk));
        self
    }

    pub fn insert(&self, url: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.state
            .borrow_mut()
            .files
            .insert(url.into(), bytes.into());
    }

    pub fn set_fault(&self, url: impl Into<String>, fault: Fault) {
        self.state.borrow_mut().faults.insert(url.into(), fault);
    }

    pub fn clear_faults(&self) {
        self.state.borrow_mut().faults.clear();
    }

    /// Every URL requested so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.state.borrow().requests.clone()
    }

    pub fn request_count(&self) -> usize {
        self.state.borrow().requests.len()
    }

    pub fn clear_requests(&self) {
        self.state.borrow_mut().requests.clear();
    }

    /// Bodies open now (started and neither finished nor dropped).
    pub fn in_flight(&self) -> usize {
        self.state.borrow().in_flight
    }

    /// The most bodies that were open at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.state.borrow().max_in_flight
    }
}

impl Transport for MemoryTransport {
    fn prefetch(&self, url: &str) {
        let mut state = self.state.borrow_mut();
        state.requests.push(url.to_owned());
        state.prefetched.push(url.to_owned());
    }

    fn cancel_prefetches(&self) {
        self.state.borrow_mut().prefetched.clear();
    }

    fn get<'a>(&'a self, url: &'a str) -> LocalBoxFuture<'a, Result<Response<'a>, TransportError>> {
        Box::pin(async move {
            let (data, fault) = {
                let mut state = self.state.borrow_mut();
                // A prefetched request reached the server when it was made.
                match state.prefetched.iter().position(|u| u == url) {
                    Some(i) => {
                        state.prefetched.swap_remove(i);
                    }
                    None => state.requests.push(url.to_owned()),
                }
                (
                    state.files.get(url).cloned(),
                    state.faults.get(url).cloned(),
                )
            };
            let status = |status: u16, text: &str| Response {
                status,
                status_text: text.to_owned(),
                content_length: Some(0),
                body: Box::pin(futures::stream::empty()),
            };
            if let Some(Fault::SlowHead(polls)) = fault {
                for _ in 0..polls {
                    let mut yielded = false;
                    futures::future::poll_fn(|cx| {
                        if yielded {
                            Poll::Ready(())
                        } else {
                            yielded = true;
                            cx.waker().wake_by_ref();
                            Poll::Pending
                        }
                    })
                    .await;
                }
            }
            let mut data = match (fault.clone(), data) {
                (Some(Fault::Unreachable), _) => {
                    return Err(TransportError::new(format!("cannot connect to {url}")))
                }
                (Some(Fault::Status(code)), _) => return Ok(status(code, reason(code))),
                (Some(Fault::Body(bytes)), _) => bytes,
                (_, Some(data)) => data,
                (_, None) => return Ok(status(404, "Not Found")),
            };
            let mut content_length = Some(data.len() as u64);
            let mut fail_at = None;
            let mut never_ends = false;
            match fault {
                Some(Fault::Truncate(n)) => data.truncate(n),
                Some(Fault::TruncateSilently(n)) => {
                    data.truncate(n);
                    content_length = None;
                }
                Some(Fault::FailAfter(n)) => fail_at = Some(n.min(data.len())),
                Some(Fault::ContentLength(n)) => content_length = Some(n),
                Some(Fault::NoContentLength) => content_length = None,
                Some(Fault::NeverEnds {
                    content_length: announced,
                }) => {
                    never_ends = true;
                    if !announced {
                        content_length = None;
                    }
                }
                _ => {}
            }
            {
                let mut state = self.state.borrow_mut();
                state.in_flight += 1;
                state.max_in_flight = state.max_in_flight.max(state.in_flight);
            }
            let body = Body {
                data,
                pos: 0,
                fail_at,
                never_ends,
                chunk_size: self.chunk_size,
                ready: false,
                done: false,
                state: self.state.clone(),
                clock: self.clock.clone(),
            };
            Ok(Response {
                status: 200,
                status_text: "OK".into(),
                content_length,
                body: Box::pin(body),
            })
        })
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

struct Body {
    data: Vec<u8>,
    pos: usize,
    fail_at: Option<usize>,
    /// After the last byte, stay pending (never woken).
    never_ends: bool,
    chunk_size: usize,
    /// A Pending has been returned since the last chunk.
    ready: bool,
    done: bool,
    state: Rc<RefCell<TransportState>>,
    clock: Option<(ManualClock, f64)>,
}

impl Body {
    fn finish(&mut self) {
        if !self.done {
            self.done = true;
            self.state.borrow_mut().in_flight -= 1;
        }
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Stream for Body {
    type Item = Result<Vec<u8>, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if !self.ready {
            self.ready = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.ready = false;
        let end = self.fail_at.unwrap_or(self.data.len());
        if self.pos >= end && self.never_ends {
            return Poll::Pending;
        }
        if self.pos >= end {
            self.finish();
            if self.fail_at.is_some() {
                return Poll::Ready(Some(Err(TransportError::new("connection reset"))));
            }
            return Poll::Ready(None);
        }
        let next = end.min(self.pos.saturating_add(self.chunk_size));
        let chunk = self.data.get(self.pos..next).unwrap_or_default().to_vec();
        self.pos = next;
        if let Some((clock, ms)) = &self.clock {
            clock.advance(*ms);
        }
        Poll::Ready(Some(Ok(chunk)))
    }
}

#[derive(Debug, Default)]
struct CacheState {
    entries: BTreeMap<(String, String), CacheEntry>,
    quota: Option<u64>,
    fail_reads: bool,
    gets: usize,
    puts: usize,
    refused_puts: usize,
}

/// A cache in memory. With a quota, a put that would exceed it is refused
/// with [`CacheError::Quota`] and stores nothing.
#[derive(Debug, Clone, Default)]
pub struct MemoryCache {
    state: Rc<RefCell<CacheState>>,
}

impl MemoryCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuse puts that would take the stored bytes (over all caches) above `bytes`.
    pub fn set_quota(&self, bytes: Option<u64>) {
        self.state.borrow_mut().quota = bytes;
    }

    /// Make every `get` and `list` fail (storage unavailable).
    pub fn set_fail_reads(&self, fail: bool) {
        self.state.borrow_mut().fail_reads = fail;
    }

    /// Bytes stored over all caches.
    pub fn used_bytes(&self) -> u64 {
        self.state
            .borrow()
            .entries
            .values()
            .map(|e| e.bytes.len() as u64)
            .sum()
    }

    /// Keys of one cache, sorted.
    pub fn keys(&self, cache: &str) -> Vec<String> {
        self.state
            .borrow()
            .entries
            .keys()
            .filter(|(c, _)| c == cache)
            .map(|(_, k)| k.clone())
            .collect()
    }

    /// Names of the caches holding entries.
    pub fn cache_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .state
            .borrow()
            .entries
            .keys()
            .map(|(c, _)| c.clone())
            .collect();
        names.dedup();
        names
    }

    pub fn entry(&self, cache: &str, key: &str) -> Option<CacheEntry> {
        self.state
            .borrow()
            .entries
            .get(&(cache.to_owned(), key.to_owned()))
            .cloned()
    }

    /// Stores an entry as is, bypassing the quota (to plant corrupt entries).
    pub fn insert_raw(&self, cache: &str, key: &str, entry: CacheEntry) {
        self.state
            .borrow_mut()
            .entries
            .insert((cache.to_owned(), key.to_owned()), entry);
    }

    /// Lookups (`get`, and `get_stream`, which reads through it) so far.
    pub fn get_count(&self) -> usize {
        self.state.borrow().gets
    }

    /// Successful puts so far.
    pub fn put_count(&self) -> usize {
        self.state.borrow().puts
    }

    pub fn refused_put_count(&self) -> usize {
        self.state.borrow().refused_puts
    }
}

impl CacheStore for MemoryCache {
    fn get<'a>(
        &'a self,
        cache: &'a str,
        key: &'a str,
    ) -> LocalBoxFuture<'a, Result<Option<CacheEntry>, CacheError>> {
        Box::pin(async move {
            self.state.borrow_mut().gets += 1;
            if self.state.borrow().fail_reads {
                return Err(CacheError::Unavailable("reads disabled".into()));
            }
            Ok(self.entry(cache, key))
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
            let mut state = self.state.borrow_mut();
            let id = (cache.to_owned(), key.to_owned());
            if let Some(quota) = state.quota {
                let used: u64 = state
                    .entries
                    .iter()
                    .filter(|(k, _)| **k != id)
                    .map(|(_, e)| e.bytes.len() as u64)
                    .sum();
                if used.saturating_add(bytes.len() as u64) > quota {
                    state.refused_puts += 1;
                    return Err(CacheError::Quota(format!(
                        "{} bytes do not fit: {used} of {quota} used",
                        bytes.len()
                    )));
                }
            }
            state.puts += 1;
            state.entries.insert(
                id,
                CacheEntry {
                    meta: meta.clone(),
                    bytes: bytes.to_vec(),
                },
            );
            Ok(())
        })
    }

    fn delete<'a>(
        &'a self,
        cache: &'a str,
        key: &'a str,
    ) -> LocalBoxFuture<'a, Result<bool, CacheError>> {
        Box::pin(async move {
            Ok(self
                .state
                .borrow_mut()
                .entries
                .remove(&(cache.to_owned(), key.to_owned()))
                .is_some())
        })
    }

    fn list<'a>(
        &'a self,
        cache: &'a str,
    ) -> LocalBoxFuture<'a, Result<Vec<(String, EntryMeta)>, CacheError>> {
        Box::pin(async move {
            let state = self.state.borrow();
            if state.fail_reads {
                return Err(CacheError::Unavailable("reads disabled".into()));
            }
            Ok(state
                .entries
                .iter()
                .filter(|((c, _), _)| c == cache)
                .map(|((_, k), e)| (k.clone(), e.meta.clone()))
                .collect())
        })
    }
}
