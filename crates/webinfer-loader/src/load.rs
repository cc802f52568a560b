//! The loading policy, written once for every platform: [`Loader::load`].
//!
//! 1. `model.json`: from the cache (checked: recorded length, SHA-256 when
//!    given, and it must parse) or from the network; parsed with
//!    `webinfer_tfjs::parse_model_json`. A freshly fetched one is stored at
//!    once, so an interrupted load resumes without fetching it again.
//! 2. The first progress event: the exact total is now known.
//! 3. The cache is asked for every shard (concurrently). Each entry must hold
//!    its recorded length, fit the manifest (a single-shard group's exact
//!    length; at most its group's length otherwise; a fully cached group must
//!    add up exactly) and match its SHA-256 when given. A failing entry is
//!    deleted, a warning says so, and the shard counts as missing.
//! 4. The missing shards are downloaded, at most `concurrency` at a time, each
//!    body streamed chunk by chunk, each chunk checked against the manifest
//!    before it counts. A complete shard that passes every check is stored.
//!    The first error cancels the downloads still running.
//! 5. Every weight group must add up to its manifest length; if one does not,
//!    every cache entry of that group is deleted and the load fails.
//! 6. The final event, then the bytes in manifest order.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;

use futures::future::{Either, LocalBoxFuture};
use futures::stream::{LocalBoxStream, StreamExt};
use webinfer_tfjs::{FormatError, Limits, ModelJson, WeightGroup};

use crate::bounded::bounded;
use crate::cache::{
    cache_name, group_models, CacheEntry, CacheStore, CachedModel, EntryKind, EntryMeta,
};
use crate::error::{CacheError, LengthSource, LoadError, TransportError};
use crate::progress::{LoadEvent, ProgressThrottle, Reporter, Warning, WarningKind};
use crate::transport::{Clock, SystemClock, Transport};
use crate::url::{cache_key, resolve_shard_url, CacheKeyQuery, ShardQuery};

/// Maps a resolved URL (the model URL or a shard URL) to the URL actually
/// requested, e.g. to presign each file. Cache keys, events and errors keep
/// the resolved URL.
#[cfg(not(target_arch = "wasm32"))]
pub type UrlRewrite = std::sync::Arc<dyn Fn(&str) -> String + Send + Sync>;
/// Maps a resolved URL (the model URL or a shard URL) to the URL actually
/// requested, e.g. to presign each file. Cache keys, events and errors keep
/// the resolved URL.
#[cfg(target_arch = "wasm32")]
pub type UrlRewrite = std::rc::Rc<dyn Fn(&str) -> String>;

/// How a load uses the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachePolicy {
    /// Read and write the cache. Default `true`. When `false` the cache is not
    /// touched at all (and no cache warning is emitted).
    pub enabled: bool,
    /// Ignore what is cached, download everything, and store it again.
    pub force_reload: bool,
    /// Appended to the cache name ([`cache_name`]): an app name, or a model
    /// version to bump when the files behind a URL change.
    pub namespace: Option<String>,
    /// How URLs become cache keys. Default [`CacheKeyQuery::Keep`].
    pub key_query: CacheKeyQuery,
}

impl Default for CachePolicy {
    fn default() -> Self {
        CachePolicy {
            enabled: true,
            force_reload: false,
            namespace: None,
            key_query: CacheKeyQuery::Keep,
        }
    }
}

impl CachePolicy {
    /// The name of the cache this policy reads and writes.
    pub fn cache_name(&self) -> String {
        cache_name(self.namespace.as_deref())
    }
}

/// Expected SHA-256 digests (64 hex digits), checked on download and on every
/// cache read. Files without one are checked by length only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sha256Hashes {
    pub model_json: Option<String>,
    /// By manifest path, as written in `model.json` (`"group1-shard1of2.bin"`).
    pub shards: HashMap<String, String>,
}

/// Everything a load can be told.
#[derive(Clone)]
pub struct LoadOptions {
    pub cache: CachePolicy,
    /// tfjs's `weightPathPrefix`: where the shards are, instead of next to
    /// `model.json`. A `/` is added when missing.
    pub weight_path_prefix: Option<String>,
    /// Whether shard URLs carry the model URL's query. Default [`ShardQuery::Drop`].
    pub shard_query: ShardQuery,
    /// Rewrites each URL just before it is requested.
    pub rewrite_url: Option<UrlRewrite>,
    /// How many shards download at once. Default 4; 0 counts as 1.
    pub concurrency: usize,
    pub progress: ProgressThrottle,
    /// Compare `Content-Length` with the manifest before reading a body, and
    /// treat a body shorter than its `Content-Length` as truncated. Default
    /// `true`. Turn off for servers that compress shards without letting the
    /// page see `Content-Encoding`; the manifest checks still apply.
    pub check_content_length: bool,
    pub sha256: Sha256Hashes,
    /// Passed to `webinfer_tfjs::parse_model_json`; `max_model_json_bytes`
    /// also stops a download of an oversized `model.json` early.
    pub limits: Limits,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            cache: CachePolicy::default(),
            weight_path_prefix: None,
            shard_query: ShardQuery::Drop,
            rewrite_url: None,
            concurrency: 4,
            progress: ProgressThrottle::default(),
            check_content_length: true,
            sha256: Sha256Hashes::default(),
            limits: Limits::default(),
        }
    }
}

impl fmt::Debug for LoadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadOptions")
            .field("cache", &self.cache)
            .field("weight_path_prefix", &self.weight_path_prefix)
            .field("shard_query", &self.shard_query)
            .field("rewrite_url", &self.rewrite_url.as_ref().map(|_| "Fn"))
            .field("concurrency", &self.concurrency)
            .field("progress", &self.progress)
            .field("check_content_length", &self.check_content_length)
            .field("sha256", &self.sha256)
            .field("limits", &self.limits)
            .finish()
    }
}

/// One shard file of a [`LoadedModel`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardBytes {
    /// The path as written in the manifest (what `Model::from_memory` looks up).
    pub path: String,
    /// The resolved URL.
    pub url: String,
    pub bytes: Vec<u8>,
    pub from_cache: bool,
}

/// What a load did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadStats {
    /// Network requests made (0 when everything came from the cache).
    pub requests: usize,
    pub files_from_network: usize,
    pub files_from_cache: usize,
    pub bytes_from_network: u64,
    pub bytes_from_cache: u64,
    /// Cache entries that failed their checks and were deleted.
    pub evicted: usize,
    /// Every warning emitted, in order.
    pub warnings: Vec<Warning>,
}

/// A model's files, checked, in manifest order.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedModel {
    /// The model URL as loaded (after [`Transport::canonical_url`]).
    pub model_url: String,
    pub model_json: Vec<u8>,
    /// `model_json`, parsed.
    pub model: ModelJson,
    /// One per manifest path, group by group, in the order the decoder wants.
    pub shards: Vec<ShardBytes>,
    /// Every file came from the cache: no network request was made.
    pub from_cache: bool,
    pub stats: LoadStats,
}

impl LoadedModel {
    /// `(model.json bytes, manifest path → shard bytes)`, the shape
    /// `webinfer::Model::from_memory` takes.
    pub fn into_parts(self) -> (Vec<u8>, HashMap<String, Vec<u8>>) {
        let shards = self.shards.into_iter().map(|s| (s.path, s.bytes)).collect();
        (self.model_json, shards)
    }

    /// Total bytes: `model.json` plus every shard.
    pub fn total_bytes(&self) -> u64 {
        self.shards
            .iter()
            .fold(self.model_json.len() as u64, |acc, s| {
                acc.saturating_add(s.bytes.len() as u64)
            })
    }
}

/// Receives shard bytes as they arrive ([`Loader::load_into`]). Files are
/// numbered in manifest order, group by group. Every byte of a file is written
/// exactly once, in order within the file; files interleave.
pub trait ShardSink {
    /// `bytes` of file `file`, starting `offset` bytes into it.
    fn write(&mut self, file: usize, offset: u64, bytes: &[u8]) -> Result<(), FormatError>;
    /// File `file`'s length: from the manifest or a trusted `Content-Length`
    /// before its body, and once it is complete (the same value again).
    fn set_length(&mut self, file: usize, length: u64) -> Result<(), FormatError>;
}

impl ShardSink for webinfer_tfjs::StreamDecoder {
    fn write(&mut self, file: usize, offset: u64, bytes: &[u8]) -> Result<(), FormatError> {
        webinfer_tfjs::StreamDecoder::write(self, file, offset, bytes)
    }
    fn set_length(&mut self, file: usize, length: u64) -> Result<(), FormatError> {
        self.set_file_length(file, length)
    }
}

impl<S: ShardSink + ?Sized> ShardSink for &mut S {
    fn write(&mut self, file: usize, offset: u64, bytes: &[u8]) -> Result<(), FormatError> {
        (**self).write(file, offset, bytes)
    }
    fn set_length(&mut self, file: usize, length: u64) -> Result<(), FormatError> {
        (**self).set_length(file, length)
    }
}

/// The sink of a plain [`Loader::load`]: there is none, the bytes are kept.
struct NoSink;

impl ShardSink for NoSink {
    fn write(&mut self, _: usize, _: u64, _: &[u8]) -> Result<(), FormatError> {
        Ok(())
    }
    fn set_length(&mut self, _: usize, _: u64) -> Result<(), FormatError> {
        Ok(())
    }
}

/// Why [`Loader::load_into`] failed: the load, or the sink's constructor.
#[derive(Debug)]
pub enum LoadIntoError<E> {
    Load(LoadError),
    Sink(E),
}

impl<E> From<LoadError> for LoadIntoError<E> {
    fn from(e: LoadError) -> Self {
        LoadIntoError::Load(e)
    }
}

/// One shard as obtained.
#[derive(Debug, Default)]
struct Slot {
    /// Empty when the bytes went to a sink.
    bytes: Vec<u8>,
    len: u64,
    from_cache: bool,
}

/// What [`Loader::fetch`] does with a body.
#[derive(Clone, Copy)]
struct Body<'s, 'k> {
    /// The most bytes the body may have (pre-allocation bound).
    max: u64,
    /// Keep the bytes.
    keep: bool,
    /// Hand every chunk to the sink (as file `file`).
    sink: Option<&'s RefCell<dyn ShardSink + 's>>,
    /// The shard file this body is (none for model.json).
    file: Option<usize>,
    /// Compute the SHA-256 (compared by the caller).
    sha: Option<[u8; 32]>,
    /// Stream a copy into the cache under this key.
    tee: Option<&'k str>,
    /// The body's length, when the manifest fixes it (a single-file group).
    exact: Option<u64>,
}

/// A body read by [`Loader::fetch`].
struct Fetched<'x> {
    /// Empty unless kept.
    bytes: Vec<u8>,
    len: u64,
    sha256: Option<[u8; 32]>,
    /// Streaming a copy into the cache, if one was.
    stored: Stored<'x>,
}

/// Reads a body to its end; how many bytes it still had.
async fn drain(mut rest: LocalBoxStream<'_, Result<Vec<u8>, TransportError>>) -> u64 {
    let mut extra = 0u64;
    while let Some(Ok(chunk)) = rest.next().await {
        extra = extra.saturating_add(chunk.len() as u64);
    }
    extra
}

/// A failed [`Loader::fetch`], with the copy it may have been storing.
struct FetchError<'x> {
    error: LoadError,
    stored: Stored<'x>,
}

impl From<LoadError> for FetchError<'_> {
    fn from(error: LoadError) -> Self {
        FetchError {
            error,
            stored: Stored::No,
        }
    }
}

/// A cache write that may still be running.
type Store<'x> = LocalBoxFuture<'x, Result<(), CacheError>>;

/// Where a copy streamed into the cache stands once the body has been read.
enum Stored<'x> {
    /// No copy was streamed.
    No,
    Done(Result<(), CacheError>),
    /// Still being written (the browser commits a cache entry after its last byte).
    Pending(Store<'x>),
}

impl Stored<'_> {
    /// Waits for the write; `None` when there was none.
    async fn settle(self) -> Option<Result<(), CacheError>> {
        match self {
            Stored::No => None,
            Stored::Done(r) => Some(r),
            Stored::Pending(f) => Some(f.await),
        }
    }
}

/// A shard's cache write left running when its bytes were complete and checked.
struct Deferred<'x> {
    store: Store<'x>,
    key: String,
    url: String,
}

/// Called once every byte is in and checked, before the cache writes still
/// running have finished: the load's result so far, and the sink.
pub type OnReady<'r, S> = &'r mut dyn FnMut(&LoadedModel, S);

impl From<FetchError<'_>> for LoadError {
    fn from(e: FetchError<'_>) -> Self {
        e.error
    }
}

/// Loads models through a [`Transport`], optionally with a [`CacheStore`].
pub struct Loader {
    transport: Box<dyn Transport>,
    cache: Option<Box<dyn CacheStore>>,
    clock: Box<dyn Clock>,
}

impl fmt::Debug for Loader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loader")
            .field("cache", &self.cache.is_some())
            .finish_non_exhaustive()
    }
}

/// One shard file to obtain.
struct FilePlan {
    path: String,
    url: String,
    request_url: String,
    key: String,
    group: usize,
    /// The exact length when the group has one shard.
    exact: Option<u64>,
    /// The group's length: no shard of it can be longer.
    max: u64,
    sha256: Option<[u8; 32]>,
}

/// Where a load's model.json came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonFrom {
    /// The cache: the shards are looked for there too.
    Cache,
    /// The network, the cache holding no entry for it at all: no earlier load of this
    /// model got as far as its shards (a load stores model.json before any shard), so
    /// none are looked for, which saves a cache round trip before the downloads start.
    NetworkNoEntry,
    /// The network otherwise (no cache, an entry evicted, a cache error): cached shards
    /// are still looked for and used.
    Network,
}

/// State shared by the concurrent parts of one load. Never borrowed across an `.await`.
struct Ctx<'a> {
    options: &'a LoadOptions,
    reporter: RefCell<Reporter<'a>>,
    stats: RefCell<LoadStats>,
    /// `None` when caching is off or the store failed.
    cache: Cell<Option<&'a dyn CacheStore>>,
    cache_name: String,
    model_key: String,
    group_len: Vec<u64>,
    /// Bytes of each group received or taken from the cache so far.
    group_seen: RefCell<Vec<u64>>,
    /// The group of each shard file.
    file_group: Vec<usize>,
    /// Per file: its response head has been seen, or it came from the cache. A streamed body
    /// is read once every earlier file of its group is so: its place in the group then comes
    /// from their lengths, instead of its bytes being held until it does (downloads run
    /// together, and a later file's response may come first).
    headed: RefCell<Vec<bool>>,
    head_wakers: RefCell<Vec<std::task::Waker>>,
    /// Per file: the length its response announced (the manifest's or a Content-Length the
    /// sink took), once headed.
    announced: RefCell<Vec<Option<u64>>>,
}

impl Ctx<'_> {
    fn mark_headed(&self, file: usize) {
        if let Some(h) = self.headed.borrow_mut().get_mut(file) {
            *h = true;
        }
        for waker in self.head_wakers.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    /// Whether every file of `file`'s group has announced its length and together they make
    /// the group's length, which the manifest fixes: each file's length is then certain from
    /// two sources, as a single-file group's is from the manifest and the Content-Length.
    fn group_announced(&self, file: usize) -> bool {
        let Some(&group) = self.file_group.get(file) else {
            return false;
        };
        let announced = self.announced.borrow();
        let mut sum = 0u64;
        for (j, &g) in self.file_group.iter().enumerate() {
            if g == group {
                match announced.get(j).copied().flatten() {
                    Some(n) => sum = sum.saturating_add(n),
                    None => return false,
                }
            }
        }
        self.group_len.get(group) == Some(&sum)
    }

    /// Resolves once every file before `file` in its group has been headed.
    async fn earlier_headed(&self, file: usize) {
        futures::future::poll_fn(move |cx| {
            let group = self.file_group.get(file).copied();
            let headed = self.headed.borrow();
            let ready = (0..file).all(|j| {
                self.file_group.get(j).copied() != group || headed.get(j).copied().unwrap_or(true)
            });
            if ready {
                std::task::Poll::Ready(())
            } else {
                self.head_wakers.borrow_mut().push(cx.waker().clone());
                std::task::Poll::Pending
            }
        })
        .await
    }

    fn readable_cache(&self) -> Option<&dyn CacheStore> {
        if self.options.cache.force_reload {
            None
        } else {
            self.cache.get()
        }
    }

    fn warn(&self, kind: WarningKind, url: &str, message: String) {
        self.reporter.borrow_mut().warn(kind, url, message);
    }

    /// A read failed: go on without the cache for the rest of this load.
    fn cache_failed(&self, url: &str, error: &CacheError) {
        self.cache.set(None);
        self.warn(
            WarningKind::CacheUnavailable,
            url,
            format!("the cache could not be read ({error}); loading without it"),
        );
    }

    async fn evict(&self, key: &str, url: &str, reason: &str) {
        if let Some(cache) = self.cache.get() {
            // Best effort: a failed delete leaves an entry that fails its checks again next time.
            let _ = cache.delete(&self.cache_name, key).await;
        }
        self.stats.borrow_mut().evicted += 1;
        self.warn(
            WarningKind::CacheEntryEvicted,
            url,
            format!("the cached copy of {url} was discarded ({reason}); fetching it again"),
        );
    }

    /// Stores a complete, checked file. A refusal is a warning, never an error.
    async fn store(&self, key: &str, url: &str, meta: EntryMeta, bytes: &[u8]) {
        let Some(cache) = self.cache.get() else {
            return;
        };
        if let Err(error) = cache.put(&self.cache_name, key, &meta, bytes).await {
            self.not_cached(key, url, &error).await;
        }
    }

    /// A put failed: make sure nothing half-written stays (the store promises
    /// all-or-nothing), and warn.
    async fn not_cached(&self, key: &str, url: &str, error: &CacheError) {
        if let Some(cache) = self.cache.get() {
            let _ = cache.delete(&self.cache_name, key).await;
        }
        self.warn(
            WarningKind::NotCached,
            url,
            format!(
                "{url} was loaded but not cached ({error}); it will be downloaded again next time"
            ),
        );
    }

    /// A cached shard counts: group total, statistics, progress.
    fn credit_cached(&self, f: &FilePlan, n: u64) {
        self.group_seen.borrow_mut()[f.group] += n;
        let mut stats = self.stats.borrow_mut();
        stats.files_from_cache += 1;
        stats.bytes_from_cache += n;
        drop(stats);
        self.reporter.borrow_mut().advance(n, &f.url, true);
    }

    fn shard_meta(&self, length: u64) -> EntryMeta {
        EntryMeta {
            model_url: self.model_key.clone(),
            kind: EntryKind::Shard,
            length,
            model_files: None,
        }
    }
}

impl Loader {
    /// A loader without a cache, on the platform clock.
    pub fn new(transport: impl Transport + 'static) -> Self {
        Loader {
            transport: Box::new(transport),
            cache: None,
            clock: Box::new(SystemClock::new()),
        }
    }

    pub fn with_cache(mut self, cache: impl CacheStore + 'static) -> Self {
        self.cache = Some(Box::new(cache));
        self
    }

    /// Replaces the clock that rate-limits progress events (tests use a manual one).
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    pub fn transport(&self) -> &dyn Transport {
        &*self.transport
    }

    pub fn cache(&self) -> Option<&dyn CacheStore> {
        self.cache.as_deref()
    }

    /// Loads the model at `model_url`: `model.json` and every shard, checked,
    /// from the cache where possible. `on_event` receives progress and warnings
    /// (see [`crate::progress`] for the contract).
    pub async fn load(
        &self,
        model_url: &str,
        options: &LoadOptions,
        on_event: &mut dyn FnMut(&LoadEvent),
    ) -> Result<LoadedModel, LoadError> {
        let no_sink = |_: &[u8], _: &ModelJson| Ok::<Option<NoSink>, LoadError>(None);
        match self.run(model_url, options, on_event, no_sink, None).await {
            Ok((model, _)) => Ok(model),
            Err(LoadIntoError::Load(e) | LoadIntoError::Sink(e)) => Err(e),
        }
    }

    /// Like [`Loader::load`], but every shard byte goes to a [`ShardSink`] as it
    /// arrives instead of being collected: `make_sink` is called once
    /// `model.json` is parsed (before any shard is read; its error ends the
    /// load), and the returned [`LoadedModel`]'s shards hold no bytes. With
    /// `webinfer_tfjs::StreamDecoder` as the sink no shard is ever held whole,
    /// on a cache that takes [`BodyCopy`](crate::transport::BodyCopy)s (the browser's) not even for caching.
    pub async fn load_into<S: ShardSink, E>(
        &self,
        model_url: &str,
        options: &LoadOptions,
        on_event: &mut dyn FnMut(&LoadEvent),
        make_sink: impl FnOnce(&[u8], &ModelJson) -> Result<S, E>,
    ) -> Result<(LoadedModel, S), LoadIntoError<E>> {
        let make = |json: &[u8], model: &ModelJson| make_sink(json, model).map(Some);
        let (model, sink) = self.run(model_url, options, on_event, make, None).await?;
        match sink {
            Some(sink) => Ok((model, sink)),
            // `make` always returns a sink.
            None => Err(LoadIntoError::Load(LoadError::Options(
                "internal error: no sink".into(),
            ))),
        }
    }

    /// Like [`Loader::load_into`], but hands the sink to `on_ready` as soon as
    /// every byte is in and checked, then waits for the cache writes still
    /// running (a browser commits an entry a little after its last byte) and
    /// reports any that fails as a warning. A caller that builds its model in
    /// `on_ready` (or from what it sends from there) need not wait for the
    /// cache. Returns the final [`LoadedModel`] (all warnings) once the writes
    /// are done; `on_ready` is not called when the load fails.
    pub async fn load_into_ready<S: ShardSink, E>(
        &self,
        model_url: &str,
        options: &LoadOptions,
        on_event: &mut dyn FnMut(&LoadEvent),
        make_sink: impl FnOnce(&[u8], &ModelJson) -> Result<S, E>,
        on_ready: OnReady<'_, S>,
    ) -> Result<LoadedModel, LoadIntoError<E>> {
        let make = |json: &[u8], model: &ModelJson| make_sink(json, model).map(Some);
        let (model, _) = self
            .run(model_url, options, on_event, make, Some(on_ready))
            .await?;
        Ok(model)
    }

    async fn run<S: ShardSink, E>(
        &self,
        model_url: &str,
        options: &LoadOptions,
        on_event: &mut dyn FnMut(&LoadEvent),
        make_sink: impl FnOnce(&[u8], &ModelJson) -> Result<Option<S>, E>,
        on_ready: Option<OnReady<'_, S>>,
    ) -> Result<(LoadedModel, Option<S>), LoadIntoError<E>> {
        let model_json_sha = options
            .sha256
            .model_json
            .as_deref()
            .map(|h| parse_sha256("model.json", h))
            .transpose()?;
        let model_url = self.transport.canonical_url(model_url);
        let model_key = cache_key(&model_url, options.cache.key_query);
        let ctx = Ctx {
            options,
            reporter: RefCell::new(Reporter::new(on_event, &*self.clock, options.progress)),
            stats: RefCell::new(LoadStats::default()),
            cache: Cell::new(if options.cache.enabled {
                self.cache.as_deref()
            } else {
                None
            }),
            cache_name: options.cache.cache_name(),
            model_key,
            group_len: Vec::new(),
            group_seen: RefCell::new(Vec::new()),
            file_group: Vec::new(),
            headed: RefCell::new(Vec::new()),
            head_wakers: RefCell::new(Vec::new()),
            announced: RefCell::new(Vec::new()),
        };

        // Prefetched shard requests nothing took up end with the load.
        struct Prefetches<'t>(&'t dyn Transport);
        impl Drop for Prefetches<'_> {
            fn drop(&mut self) {
                self.0.cancel_prefetches();
            }
        }
        let _prefetches = Prefetches(&*self.transport);

        // 1. model.json
        let (model_json, model, json_from) =
            self.model_json(&ctx, &model_url, model_json_sha).await?;
        let json_from_cache = json_from == JsonFrom::Cache;
        let files = plan_files(&model.weights_manifest, &model_url, options)?;
        let sink = make_sink(&model_json, &model)
            .map_err(LoadIntoError::Sink)?
            .map(RefCell::new);
        let ctx = Ctx {
            group_len: model
                .weights_manifest
                .iter()
                .map(|g| g.byte_len())
                .collect(),
            group_seen: RefCell::new(vec![0; model.weights_manifest.len()]),
            file_group: files.iter().map(|f| f.group).collect(),
            headed: RefCell::new(vec![false; files.len()]),
            announced: RefCell::new(vec![None; files.len()]),
            ..ctx
        };
        // A fresh model.json is stored while the shards load.
        let store_json: LocalBoxFuture<'_, ()> = Box::pin(async {
            if !json_from_cache {
                // Sorted, not hashed: one hash-map type less in the browser module.
                let mut distinct: Vec<&str> = files.iter().map(|f| f.key.as_str()).collect();
                webinfer_tfjs::order::sort(&mut distinct);
                distinct.dedup();
                let meta = EntryMeta {
                    model_url: ctx.model_key.clone(),
                    kind: EntryKind::ModelJson,
                    length: model_json.len() as u64,
                    model_files: u32::try_from(distinct.len().saturating_add(1)).ok(),
                };
                ctx.store(&ctx.model_key, &model_url, meta, &model_json)
                    .await;
            }
        });

        // 2. The total is known.
        let total = (model_json.len() as u64).saturating_add(model.total_weight_bytes());
        ctx.reporter.borrow_mut().start(
            total,
            model_json.len() as u64,
            &model_url,
            json_from_cache,
        );

        // 3.-5. The shards.
        let sink_ref: Option<&RefCell<dyn ShardSink + '_>> =
            sink.as_ref().map(|c| c as &RefCell<dyn ShardSink + '_>);
        let look_in_cache = json_from != JsonFrom::NetworkNoEntry;
        let shards = Box::pin(self.shards(&ctx, &files, &model, sink_ref, look_in_cache));
        let (result, store_json) = match futures::future::select(shards, store_json).await {
            Either::Left((result, store_json)) => (result, Some(store_json)),
            Either::Right(((), shards)) => (shards.await, None),
        };
        let (slots, deferred) = match result {
            Ok(done) => done,
            Err(error) => {
                // model.json is stored even so: the next load resumes.
                if let Some(store_json) = store_json {
                    store_json.await;
                }
                // A cached model.json that names shards the server no longer
                // has (or no longer has at that length) is stale: drop it so
                // the next load fetches a fresh one.
                if json_from_cache && suggests_stale_model_json(&error) {
                    if let Some(cache) = ctx.cache.get() {
                        let _ = cache.delete(&ctx.cache_name, &ctx.model_key).await;
                    }
                }
                return Err(error.into());
            }
        };

        // 6. Done: every byte is in and checked.
        let from_cache = json_from_cache
            && slots
                .iter()
                .all(|s| s.as_ref().is_some_and(|s| s.from_cache));
        ctx.reporter.borrow_mut().finish(&model_url, from_cache);
        let shards = files
            .iter()
            .zip(slots)
            .map(|(f, slot)| {
                let slot = slot.unwrap_or_default();
                ShardBytes {
                    path: f.path.clone(),
                    url: f.url.clone(),
                    bytes: slot.bytes,
                    from_cache: slot.from_cache,
                }
            })
            .collect();
        let mut loaded = LoadedModel {
            model_url: model_url.clone(),
            model_json: model_json.clone(),
            model: model.clone(),
            shards,
            from_cache,
            stats: ctx.stats.borrow().clone(),
        };
        let mut sink = sink.map(RefCell::into_inner);
        if let Some(ready) = on_ready {
            if let Some(s) = sink.take() {
                loaded.stats.warnings = ctx.reporter.borrow().warnings.clone();
                ready(&loaded, s);
            }
        }

        // 7. The cache writes still running (the browser commits an entry a
        //    little after its last byte): a failed one is a warning.
        if let Some(store_json) = store_json {
            store_json.await;
        }
        for d in deferred {
            if let Err(error) = d.store.await {
                ctx.not_cached(&d.key, &d.url, &error).await;
            }
        }
        let warnings = std::mem::take(&mut ctx.reporter.borrow_mut().warnings);
        loaded.stats = std::mem::take(&mut *ctx.stats.borrow_mut());
        loaded.stats.warnings = warnings;
        Ok((loaded, sink))
    }

    /// Steps 3 to 5: every shard from the cache or the network, checked.
    async fn shards<'s, 'x>(
        &'x self,
        ctx: &'x Ctx<'_>,
        files: &'x [FilePlan],
        model: &ModelJson,
        sink: Option<&'s RefCell<dyn ShardSink + 's>>,
        look_in_cache: bool,
    ) -> Result<(Vec<Option<Slot>>, Vec<Deferred<'x>>), LoadError> {
        // 3. The cache, group by group (a sink takes each group's cached
        //    shards once the group is checked, and they are dropped).
        let concurrency = ctx.options.concurrency.max(1);
        let mut slots: Vec<Option<Slot>> = (0..files.len()).map(|_| None).collect();
        if look_in_cache && ctx.readable_cache().is_some() {
            for g in 0..ctx.group_len.len() {
                let members: Vec<usize> =
                    (0..files.len()).filter(|&i| files[i].group == g).collect();
                match sink {
                    Some(sink) => {
                        stream_cached_group(ctx, g, files, &members, &mut slots, sink).await?
                    }
                    None => read_cached_group(ctx, g, files, &members, &mut slots).await,
                }
            }
        }

        // 4. The network.
        for (i, slot) in slots.iter().enumerate() {
            if slot.is_some() {
                ctx.mark_headed(i);
            }
        }
        let missing: Vec<usize> = (0..files.len()).filter(|&i| slots[i].is_none()).collect();
        let mut downloads = bounded(missing, concurrency, |i| async move {
            self.fetch_shard(ctx, i, &files[i], sink)
                .await
                .map(|slot| (i, slot))
        });
        let mut deferred: Vec<Deferred<'_>> = Vec::new();
        while let Some(done) = downloads.next().await {
            match done {
                Ok((i, (slot, store))) => {
                    slots[i] = Some(slot);
                    deferred.extend(store);
                }
                Err(error) => {
                    // The downloads under way end here; the copies of the shards already
                    // whole are finished first (a body complete at its last byte is still
                    // being read to its end for its copy, which dropping it would abort), so
                    // that the next load resumes from them.
                    drop(downloads);
                    for d in deferred {
                        let _ = d.store.await;
                    }
                    return Err(error);
                }
            }
        }
        drop(downloads);

        // 5. Every group adds up.
        for (g, group) in model.weights_manifest.iter().enumerate() {
            let members = files.iter().zip(&slots).filter(|(f, _)| f.group == g);
            let actual = members
                .clone()
                .map(|(_, s)| s.as_ref().map_or(0, |s| s.len))
                .fold(0u64, u64::saturating_add);
            if actual != group.byte_len() {
                // The group's copies still being committed first, so that the
                // deletes below come after them.
                for d in deferred.drain(..) {
                    let _ = d.store.await;
                }
                if let Some(cache) = ctx.cache.get() {
                    for (f, _) in members.clone() {
                        let _ = cache.delete(&ctx.cache_name, &f.key).await;
                    }
                }
                return Err(LoadError::GroupLength {
                    group: g,
                    urls: members.map(|(f, _)| f.url.clone()).collect(),
                    expected: group.byte_len(),
                    actual,
                });
            }
        }

        Ok((slots, deferred))
    }

    /// `model.json`: cached (and valid) or fetched. Returns (bytes, parsed, from_cache).
    async fn model_json(
        &self,
        ctx: &Ctx<'_>,
        model_url: &str,
        sha: Option<[u8; 32]>,
    ) -> Result<(Vec<u8>, ModelJson, JsonFrom), LoadError> {
        let limits = &ctx.options.limits;
        let mut from = JsonFrom::Network;
        if let Some(cache) = ctx.readable_cache() {
            match cache.get(&ctx.cache_name, &ctx.model_key).await {
                Ok(Some(entry)) => {
                    let max = limits.max_model_json_bytes as u64;
                    let checked = check_entry(&entry, EntryKind::ModelJson, None, max, sha)
                        .and_then(|()| {
                            webinfer_tfjs::parse_model_json(&entry.bytes, limits)
                                .map_err(|e| e.to_string())
                        });
                    match checked {
                        Ok(model) => return Ok((entry.bytes, model, JsonFrom::Cache)),
                        Err(reason) => ctx.evict(&ctx.model_key, model_url, &reason).await,
                    }
                }
                Ok(None) => from = JsonFrom::NetworkNoEntry,
                Err(error) => ctx.cache_failed(model_url, &error),
            }
        }

        let max = limits.max_model_json_bytes as u64;
        let too_big = |size: u64| LoadError::Format {
            url: model_url.to_owned(),
            source: FormatError::Limit {
                what: "model.json size in bytes".into(),
                value: size,
                limit: max,
            },
        };
        let request_url = request_url(model_url, ctx.options);
        let fetched = self
            .fetch(
                ctx,
                model_url,
                &request_url,
                Body {
                    max,
                    keep: true,
                    sink: None,
                    file: None,
                    sha,
                    tee: None,
                    exact: None,
                },
                |content_length| match content_length {
                    Some(n) if n > max => Err(too_big(n)),
                    _ => Ok(()),
                },
                &mut |new_len, _| {
                    if new_len > max {
                        Err(too_big(new_len))
                    } else {
                        Ok(())
                    }
                },
            )
            .await?;
        let bytes = fetched.bytes;
        check_digest(model_url, fetched.sha256, sha)?;
        // No shard will come from the cache: the first ones are requested now, so that they
        // are under way while model.json is parsed and the model prepared.
        if from == JsonFrom::NetworkNoEntry || ctx.readable_cache().is_none() {
            self.prefetch_shards(ctx, model_url, &bytes);
        }
        let model = webinfer_tfjs::parse_model_json(&bytes, limits).map_err(|source| {
            if looks_like_html(&bytes) {
                LoadError::Html {
                    url: model_url.to_owned(),
                }
            } else {
                LoadError::Format {
                    url: model_url.to_owned(),
                    source,
                }
            }
        })?;
        Ok((bytes, model, from))
    }

    /// Starts the requests of the first shards (as many as the load downloads at once), their
    /// paths read from `model_json` without parsing it (`peek_shard_paths`, which finds none
    /// in a manifest over a limit). The full parse follows at once; if it refuses the file,
    /// the requests are aborted unread with the load (`Prefetches` in `run`).
    fn prefetch_shards(&self, ctx: &Ctx<'_>, model_url: &str, model_json: &[u8]) {
        let max = ctx.options.concurrency.max(1);
        let Ok(paths) = webinfer_tfjs::peek_shard_paths(model_json, &ctx.options.limits, max)
        else {
            return;
        };
        for path in &paths {
            self.transport.prefetch(&request_url(
                &shard_url(model_url, path, ctx.options),
                ctx.options,
            ));
        }
    }

    /// Downloads one shard, checking it against the manifest chunk by chunk
    /// (and handing each chunk to `sink` when there is one), and stores it
    /// once complete: streamed into the cache alongside the download when the
    /// transport and the cache can, else from the bytes kept.
    async fn fetch_shard<'s, 'x>(
        &'x self,
        ctx: &'x Ctx<'_>,
        index: usize,
        f: &'x FilePlan,
        sink: Option<&'s RefCell<dyn ShardSink + 's>>,
    ) -> Result<(Slot, Option<Deferred<'x>>), LoadError> {
        let g = f.group;
        let group_len = ctx.group_len[g];
        let length_error = |actual: u64, origin: LengthSource| LoadError::ShardLength {
            url: f.url.clone(),
            expected: f.exact.unwrap_or(f.max),
            actual,
            exact: f.exact.is_some(),
            origin,
        };
        let cache = ctx.cache.get();
        let tee = cache.filter(|c| c.takes_copies()).map(|_| f.key.as_str());
        let fetched = self
            .fetch(
                ctx,
                &f.url,
                &f.request_url,
                Body {
                    max: f.max,
                    // Kept for the caller, or for a cache that cannot stream.
                    keep: sink.is_none() || (cache.is_some() && tee.is_none()),
                    sink,
                    file: Some(index),
                    sha: f.sha256,
                    tee,
                    exact: f.exact,
                },
                |content_length| match (content_length, f.exact) {
                    (Some(n), Some(exact)) if n != exact => {
                        Err(length_error(n, LengthSource::ContentLength))
                    }
                    (Some(n), None) if n > f.max => {
                        Err(length_error(n, LengthSource::ContentLength))
                    }
                    _ => Ok(()),
                },
                &mut |new_len, chunk_len| {
                    if new_len > f.max {
                        return Err(length_error(new_len, LengthSource::Body));
                    }
                    let seen = {
                        let mut seen = ctx.group_seen.borrow_mut();
                        seen[g] = seen[g].saturating_add(chunk_len);
                        seen[g]
                    };
                    if seen > group_len {
                        return Err(LoadError::GroupLength {
                            group: g,
                            urls: vec![f.url.clone()],
                            expected: group_len,
                            actual: seen,
                        });
                    }
                    ctx.reporter.borrow_mut().advance(chunk_len, &f.url, false);
                    Ok(())
                },
            )
            .await;
        let fetched = match fetched {
            Ok(fetched) => fetched,
            Err(FetchError { error, stored }) => {
                if let Some(Ok(())) = stored.settle().await {
                    // The copy was stored but the body failed its checks.
                    if let Some(cache) = cache {
                        let _ = cache.delete(&ctx.cache_name, &f.key).await;
                    }
                }
                return Err(error);
            }
        };
        let len = fetched.len;
        let checked = match f.exact {
            Some(exact) if len < exact => Err(LoadError::Truncated {
                url: f.url.clone(),
                received: len,
                expected: exact,
            }),
            _ => check_digest(&f.url, fetched.sha256, f.sha256),
        };
        if let Err(error) = checked {
            if let Some(Ok(())) = fetched.stored.settle().await {
                if let Some(cache) = cache {
                    let _ = cache.delete(&ctx.cache_name, &f.key).await;
                }
            }
            return Err(error);
        }
        {
            let mut stats = ctx.stats.borrow_mut();
            stats.files_from_network += 1;
            stats.bytes_from_network += len;
        }
        let mut deferred = None;
        match fetched.stored {
            Stored::Done(Ok(())) => {}
            Stored::Done(Err(error)) => ctx.not_cached(&f.key, &f.url, &error).await,
            Stored::Pending(store) => {
                deferred = Some(Deferred {
                    store,
                    key: f.key.clone(),
                    url: f.url.clone(),
                })
            }
            Stored::No => {
                ctx.store(&f.key, &f.url, ctx.shard_meta(len), &fetched.bytes)
                    .await
            }
        }
        let bytes = if sink.is_some() {
            Vec::new()
        } else {
            fetched.bytes
        };
        Ok((
            Slot {
                bytes,
                len,
                from_cache: false,
            },
            deferred,
        ))
    }

    /// GET `request_url` and read the whole body. `on_head` sees the
    /// (trusted) Content-Length before the body is read; `on_chunk` sees the
    /// new length and the chunk's length before a chunk is used. Errors name `url`.
    async fn fetch<'x>(
        &'x self,
        ctx: &'x Ctx<'_>,
        url: &str,
        request_url: &'x str,
        body: Body<'_, 'x>,
        on_head: impl FnOnce(Option<u64>) -> Result<(), LoadError>,
        on_chunk: &mut dyn FnMut(u64, u64) -> Result<(), LoadError>,
    ) -> Result<Fetched<'x>, FetchError<'x>> {
        ctx.stats.borrow_mut().requests += 1;
        let got = if body.tee.is_some() {
            self.transport.get_with_copy(request_url).await
        } else {
            self.transport.get(request_url).await.map(|r| (r, None))
        };
        let (response, copy) = got.map_err(|e| LoadError::Network {
            url: url.to_owned(),
            message: e.message,
        })?;
        if !(200..=299).contains(&response.status) {
            return Err(LoadError::Http {
                url: url.to_owned(),
                status: response.status,
                status_text: response.status_text,
            }
            .into());
        }
        let content_length = response
            .content_length
            .filter(|_| ctx.options.check_content_length);
        on_head(content_length)?;
        // The length the cache entry will record: known before the body only
        // from the manifest (a single-shard group) or a trusted Content-Length.
        let put = match (body.tee, copy, ctx.cache.get()) {
            (Some(key), Some(copy), Some(cache)) => {
                // Without a length `copy` is dropped: cancelled.
                body.exact
                    .or(content_length)
                    .map(|length| (cache, key, ctx.shard_meta(length), copy))
            }
            _ => None,
        };
        let put_len = put.as_ref().map(|p| p.2.length);
        let keep = body.keep || (put.is_none() && body.tee.is_some());
        let announced = body.exact.or(content_length);
        if let (Some(file), Some(length)) = (body.file, announced) {
            if let Some(a) = ctx.announced.borrow_mut().get_mut(file) {
                *a = Some(length);
            }
        }
        if let (Some(sink), Some(file)) = (body.sink, body.file) {
            // A trusted Content-Length places a later shard of a group before
            // the earlier ones complete (a body longer than it is then an error).
            if let Some(length) = announced {
                sink.borrow_mut()
                    .set_length(file, length)
                    .map_err(|source| sink_error(url, source))?;
            }
            ctx.mark_headed(file);
            ctx.earlier_headed(file).await;
        }
        // A shard is complete at its Content-Length once every file of its group has announced
        // a length and together they make the group's length, which the manifest fixes (for a
        // one-file group: the manifest's length, which the Content-Length matches): each
        // file's length is then certain from two sources. The end of the stream, which a
        // browser reports up to a few milliseconds later, is not waited for (the rest is read
        // alongside the cache's copy, which needs the stream to end normally). Asked at that
        // byte, when the later files of the group have usually answered.
        let whole = |received: u64| {
            content_length == Some(received)
                && body.file.is_some_and(|file| ctx.group_announced(file))
        };
        let max = body.max;
        let (sink, file) = (body.sink, body.file);
        let mut hasher = body.sha.map(|_| <sha2::Sha256 as sha2::Digest>::new());
        let read = async {
            // Pre-allocate what the server announced, never more than the manifest allows.
            let capacity = if keep {
                content_length.unwrap_or(0).min(max)
            } else {
                0
            };
            let mut bytes = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
            let mut received = 0u64;
            let mut stream = response.body;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| LoadError::Interrupted {
                    url: url.to_owned(),
                    received,
                    message: e.message,
                })?;
                if chunk.is_empty() {
                    continue;
                }
                let new_len = received.saturating_add(chunk.len() as u64);
                on_chunk(new_len, chunk.len() as u64)?;
                if let (Some(sink), Some(file)) = (sink, file) {
                    sink.borrow_mut()
                        .write(file, received, &chunk)
                        .map_err(|source| sink_error(url, source))?;
                }
                if let Some(h) = hasher.as_mut() {
                    sha2::Digest::update(h, &chunk);
                }
                if keep {
                    bytes.extend_from_slice(&chunk);
                }
                received = new_len;
                if whole(received) {
                    break;
                }
            }
            let rest = whole(received).then_some(stream);
            if let Some(expected) = content_length {
                // Longer than Content-Length is left to the manifest checks: a
                // transport that cannot see Content-Encoding may report the
                // compressed length.
                if received < expected {
                    return Err(LoadError::Truncated {
                        url: url.to_owned(),
                        received,
                        expected,
                    });
                }
            }
            // The final length, unless it contradicts the announced one: the
            // caller's checks then name the problem (truncation, a wrong length).
            if let (Some(sink), Some(file)) = (sink, file) {
                if announced.is_none_or(|a| a == received) {
                    sink.borrow_mut()
                        .set_length(file, received)
                        .map_err(|source| sink_error(url, source))?;
                }
            }
            Ok((bytes, received, rest))
        };
        let (read, stored) = match put {
            Some((cache, key, meta, copy)) => {
                let store: Store<'x> =
                    Box::pin(
                        async move { cache.put_copy(&ctx.cache_name, key, &meta, copy).await },
                    );
                match futures::future::select(Box::pin(read), store).await {
                    Either::Left((read, store)) => (read, Stored::Pending(store)),
                    Either::Right((stored, read)) => (read.await, Stored::Done(stored)),
                }
            }
            None => (read.await, Stored::No),
        };
        // The rest of a body complete before its stream ended: nothing more may come, and a
        // copy still being stored needs the stream to end (dropping it would abort the copy).
        let (read, stored) = match (read, stored) {
            (Ok((bytes, len, Some(rest))), Stored::Pending(store)) => {
                let store: Store<'x> = Box::pin(async move {
                    let (extra, stored) = futures::future::join(drain(rest), store).await;
                    match extra {
                        0 => stored,
                        n => Err(CacheError::Other(format!(
                            "the body went on for {n} bytes past its Content-Length"
                        ))),
                    }
                });
                (Ok((bytes, len)), Stored::Pending(store))
            }
            (read, stored) => (read.map(|(bytes, len, _)| (bytes, len)), stored),
        };
        // A copy stored under a length the body did not have is no good.
        let stored = match (&read, put_len) {
            (Ok((_, len)), Some(announced)) if *len != announced => {
                if let Some(Ok(())) = stored.settle().await {
                    if let Some(cache) = ctx.cache.get() {
                        let _ = cache
                            .delete(&ctx.cache_name, body.tee.unwrap_or_default())
                            .await;
                    }
                }
                Stored::Done(Err(CacheError::Other(format!(
                    "the body has {len} bytes, not the {announced} announced"
                ))))
            }
            _ => stored,
        };
        match read {
            Ok((bytes, len)) => Ok(Fetched {
                bytes,
                len,
                sha256: hasher.map(|h| sha2::Digest::finalize(h).into()),
                stored,
            }),
            Err(error) => Err(FetchError { error, stored }),
        }
    }

    /// Every model with entries in the policy's cache. Empty without a cache.
    pub async fn list_cached(&self, policy: &CachePolicy) -> Result<Vec<CachedModel>, CacheError> {
        let Some(cache) = self.cache.as_deref() else {
            return Ok(Vec::new());
        };
        Ok(group_models(cache.list(&policy.cache_name()).await?))
    }

    /// Deletes every cache entry of the model at `model_url` (its `model.json`
    /// and shards). Returns how many entries were deleted.
    pub async fn delete_cached(
        &self,
        model_url: &str,
        policy: &CachePolicy,
    ) -> Result<usize, CacheError> {
        let Some(cache) = self.cache.as_deref() else {
            return Ok(0);
        };
        let name = policy.cache_name();
        let key = cache_key(&self.transport.canonical_url(model_url), policy.key_query);
        let mut deleted = 0;
        for (entry_key, meta) in cache.list(&name).await? {
            if meta.model_url == key && cache.delete(&name, &entry_key).await? {
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

/// A body that starts like an HTML document (after whitespace and a BOM).
fn looks_like_html(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let head: Vec<u8> = bytes[start..]
        .iter()
        .take(15)
        .map(u8::to_ascii_lowercase)
        .collect();
    head.starts_with(b"<!doctype html")
        || head.starts_with(b"<html")
        || head.starts_with(b"<head")
        || head.starts_with(b"<!--")
}

/// Errors that a cached `model.json` out of date with the server would cause.
fn suggests_stale_model_json(error: &LoadError) -> bool {
    matches!(
        error,
        LoadError::Http {
            status: 404 | 410,
            ..
        } | LoadError::ShardLength { .. }
            | LoadError::GroupLength { .. }
    )
}

/// The shard files of a weights manifest, in its order.
fn plan_files(
    manifest: &[WeightGroup],
    model_url: &str,
    options: &LoadOptions,
) -> Result<Vec<FilePlan>, LoadError> {
    let mut files = Vec::new();
    for (g, group) in manifest.iter().enumerate() {
        let max = group.byte_len();
        let exact = (group.paths.len() == 1).then_some(max);
        for path in &group.paths {
            let url = shard_url(model_url, path, options);
            let sha256 = options
                .sha256
                .shards
                .get(path)
                .map(|h| parse_sha256(path, h))
                .transpose()?;
            files.push(FilePlan {
                path: path.clone(),
                request_url: request_url(&url, options),
                key: cache_key(&url, options.cache.key_query),
                url,
                group: g,
                exact,
                max,
                sha256,
            });
        }
    }
    Ok(files)
}

/// Where the shard at `path` (as the manifest writes it) is, for the cache's key and messages.
fn shard_url(model_url: &str, path: &str, options: &LoadOptions) -> String {
    resolve_shard_url(
        model_url,
        path,
        options.weight_path_prefix.as_deref(),
        options.shard_query,
    )
}

/// What is requested for `url` (`rewrite_url` applied).
fn request_url(url: &str, options: &LoadOptions) -> String {
    match &options.rewrite_url {
        Some(rewrite) => rewrite(url),
        None => url.to_owned(),
    }
}

/// A sink's refusal of shard bytes, as a load error naming the file: bytes
/// beyond what a weight group can hold are the group's length error (so a
/// cached model.json out of date with the server is recognised as stale), a
/// file longer than announced is a shard length error.
fn sink_error(url: &str, source: FormatError) -> LoadError {
    match source {
        FormatError::ShardLength {
            group,
            expected,
            actual,
            ..
        } => LoadError::GroupLength {
            group,
            urls: vec![url.to_owned()],
            expected,
            actual,
        },
        FormatError::FileLength {
            expected, actual, ..
        } => LoadError::ShardLength {
            url: url.to_owned(),
            expected,
            actual,
            exact: true,
            origin: LengthSource::Body,
        },
        source => LoadError::Format {
            url: url.to_owned(),
            source,
        },
    }
}

/// Step 3 without a sink: a group's cached shards, read whole and checked.
async fn read_cached_group(
    ctx: &Ctx<'_>,
    g: usize,
    files: &[FilePlan],
    members: &[usize],
    slots: &mut [Option<Slot>],
) {
    let concurrency = ctx.options.concurrency.max(1);
    let found: Vec<(usize, Option<Vec<u8>>)> =
        bounded(members.iter().copied(), concurrency, |i| async move {
            (i, cached_shard(ctx, &files[i]).await)
        })
        .collect()
        .await;
    for (i, bytes) in found {
        if let Some(bytes) = bytes {
            slots[i] = Some(Slot {
                len: bytes.len() as u64,
                bytes,
                from_cache: true,
            });
        }
    }
    check_cached_group(ctx, g, files, members, slots).await;
    for &i in members {
        if let Some(slot) = &slots[i] {
            ctx.credit_cached(&files[i], slot.len);
        }
    }
}

/// Step 3 with a sink: a group's cached shards, checked by their records
/// first (kind, length against the manifest, the group's total), then
/// streamed into the sink chunk by chunk, so no shard is held whole. A body
/// that turns out different from its record (or its SHA-256) once part of it
/// was used is evicted and fails the load with [`LoadError::CacheCorrupt`].
async fn stream_cached_group(
    ctx: &Ctx<'_>,
    g: usize,
    files: &[FilePlan],
    members: &[usize],
    slots: &mut [Option<Slot>],
    sink: &RefCell<dyn ShardSink + '_>,
) -> Result<(), LoadError> {
    let Some(cache) = ctx.readable_cache() else {
        return Ok(());
    };
    let mut opened = Vec::new();
    for &i in members {
        let f = &files[i];
        match cache.get_stream(&ctx.cache_name, &f.key).await {
            Ok(Some((meta, body))) => match check_record(&meta, EntryKind::Shard, f.exact, f.max) {
                Ok(()) => {
                    slots[i] = Some(Slot {
                        bytes: Vec::new(),
                        len: meta.length,
                        from_cache: true,
                    });
                    opened.push((i, body));
                }
                Err(reason) => {
                    drop(body);
                    ctx.evict(&f.key, &f.url, &reason).await;
                }
            },
            Ok(None) => {}
            Err(error) => {
                if ctx.cache.get().is_some() {
                    ctx.cache_failed(&f.url, &error);
                }
                for (i, _) in opened {
                    slots[i] = None;
                }
                return Ok(());
            }
        }
    }
    check_cached_group(ctx, g, files, members, slots).await;
    for (i, mut body) in opened {
        let Some(len) = slots[i].as_ref().map(|s| s.len) else {
            continue; // evicted with its group
        };
        let f = &files[i];
        let format = |source| sink_error(&f.url, source);
        sink.borrow_mut().set_length(i, len).map_err(format)?;
        let mut hasher = f.sha256.map(|_| <sha2::Sha256 as sha2::Digest>::new());
        let mut received = 0u64;
        let mut broken = None;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(error) => {
                    broken = Some(format!("reading it failed after {received} bytes: {error}"));
                    break;
                }
            };
            let new_len = received.saturating_add(chunk.len() as u64);
            if new_len > len {
                broken = Some(format!(
                    "it holds more than the {len} bytes its record says"
                ));
                break;
            }
            sink.borrow_mut()
                .write(i, received, &chunk)
                .map_err(format)?;
            if let Some(h) = hasher.as_mut() {
                sha2::Digest::update(h, &chunk);
            }
            received = new_len;
        }
        drop(body);
        if broken.is_none() && received != len {
            broken = Some(format!("it holds {received} bytes, its record says {len}"));
        }
        if broken.is_none() {
            if let (Some(h), Some(expected)) = (hasher, f.sha256) {
                broken = sha_reason(sha2::Digest::finalize(h).into(), expected);
            }
        }
        if let Some(reason) = broken {
            ctx.evict(&f.key, &f.url, &reason).await;
            return Err(LoadError::CacheCorrupt {
                url: f.url.clone(),
                reason,
            });
        }
        ctx.credit_cached(f, len);
    }
    Ok(())
}

/// The shard from the cache if it passes its own checks; evicted otherwise.
async fn cached_shard(ctx: &Ctx<'_>, f: &FilePlan) -> Option<Vec<u8>> {
    let cache = ctx.readable_cache()?;
    match cache.get(&ctx.cache_name, &f.key).await {
        Ok(Some(entry)) => match check_entry(&entry, EntryKind::Shard, f.exact, f.max, f.sha256) {
            Ok(()) => Some(entry.bytes),
            Err(reason) => {
                ctx.evict(&f.key, &f.url, &reason).await;
                None
            }
        },
        Ok(None) => None,
        Err(error) => {
            if ctx.cache.get().is_some() {
                ctx.cache_failed(&f.url, &error);
            }
            None
        }
    }
}

/// Cached shards must not exceed their group, and a fully cached group must
/// add up exactly; otherwise the group's cached shards are evicted.
async fn check_cached_group(
    ctx: &Ctx<'_>,
    g: usize,
    files: &[FilePlan],
    members: &[usize],
    slots: &mut [Option<Slot>],
) {
    let group_len = ctx.group_len.get(g).copied().unwrap_or(0);
    let cached = members
        .iter()
        .filter_map(|&i| slots[i].as_ref())
        .fold(0u64, |acc, s| acc.saturating_add(s.len));
    let all_cached = members.iter().all(|&i| slots[i].is_some());
    if cached > group_len || (all_cached && cached != group_len) {
        let reason = format!(
            "the cached shards of weight group {g} hold {cached} bytes, the manifest says {} {group_len}",
            if all_cached { "exactly" } else { "at most" }
        );
        for &i in members {
            if slots[i].take().is_some() {
                ctx.evict(&files[i].key, &files[i].url, &reason).await;
            }
        }
    }
}

/// Why an entry's record rules it out, if it does: its kind, and its
/// recorded length against the manifest.
fn check_record(
    meta: &EntryMeta,
    kind: EntryKind,
    exact: Option<u64>,
    max: u64,
) -> Result<(), String> {
    if meta.kind != kind {
        return Err(format!(
            "the entry is a {}, not a {}",
            meta.kind.as_str(),
            kind.as_str()
        ));
    }
    let len = meta.length;
    match exact {
        Some(exact) if len != exact => Err(format!(
            "it holds {len} bytes, the manifest says exactly {exact}"
        )),
        None if len > max => Err(format!("it holds {len} bytes, more than the {max} allowed")),
        _ => Ok(()),
    }
}

/// Why a cache entry cannot be used, if it cannot.
fn check_entry(
    entry: &CacheEntry,
    kind: EntryKind,
    exact: Option<u64>,
    max: u64,
    sha: Option<[u8; 32]>,
) -> Result<(), String> {
    check_record(&entry.meta, kind, exact, max)?;
    let len = entry.bytes.len() as u64;
    if len != entry.meta.length {
        return Err(format!(
            "the entry holds {len} bytes, its record says {}",
            entry.meta.length
        ));
    }
    match sha {
        Some(expected) => sha_reason(sha256(&entry.bytes), expected).map_or(Ok(()), Err),
        None => Ok(()),
    }
}

/// Why a body with SHA-256 `actual` is not the file expected, if it is not.
fn sha_reason(actual: [u8; 32], expected: [u8; 32]) -> Option<String> {
    (actual != expected).then(|| format!("SHA-256 {} instead of {}", hex(&actual), hex(&expected)))
}

fn check_digest(
    url: &str,
    actual: Option<[u8; 32]>,
    expected: Option<[u8; 32]>,
) -> Result<(), LoadError> {
    match (actual, expected) {
        (Some(actual), Some(expected)) if actual != expected => Err(LoadError::Integrity {
            url: url.to_owned(),
            expected: hex(&expected),
            actual: hex(&actual),
        }),
        _ => Ok(()),
    }
}

/// The SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_sha256(what: &str, s: &str) -> Result<[u8; 32], LoadError> {
    let bad = || {
        LoadError::Options(format!(
            "SHA-256 of {what}: expected 64 hex digits, got \"{s}\""
        ))
    };
    let s = s.trim();
    if s.len() != 64 || !s.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(s.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
    }
    Ok(out)
}
