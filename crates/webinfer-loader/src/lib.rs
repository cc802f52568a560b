//! Fetches a TensorFlow.js model's bytes (`model.json` and its weight shards)
//! with exact byte-level progress, caching, integrity checks and resume.
//!
//! # Contract
//!
//! - **One policy, any platform.** [`Loader::load`] is written once over two
//!   traits: [`Transport`] (GET a URL, stream the body) and [`CacheStore`]
//!   (get / put / delete / list complete files). Implementations: the browser's
//!   `fetch` + `ReadableStream` and Cache API (`browser`, wasm32 only), files and
//!   a directory (`fs`, native only), and in-memory fakes with fault injection
//!   ([`memory`], everywhere). No `Send` bounds and no runtime: the futures run
//!   on the browser's single thread or under any `block_on`.
//! - **Output**: [`Loader::load`] returns a [`LoadedModel`]: the `model.json`
//!   bytes (and the parsed [`ModelJson`](webinfer_tfjs::ModelJson)) and every
//!   shard's bytes in manifest order, ready for `webinfer::Model::from_memory`
//!   ([`LoadedModel::into_parts`]). [`Loader::load_into`] instead hands every
//!   shard chunk to a [`ShardSink`] as it arrives (with
//!   `webinfer_tfjs::StreamDecoder`, decoded straight into the weights: no
//!   shard is ever held whole, from the network or from the cache), and
//!   [`Loader::load_into_ready`] hands the sink over as soon as the last byte
//!   is in and checked, then finishes the cache writes still running.
//! - **Streamed caching**: with a transport that can copy a body
//!   ([`Transport::get_with_copy`], the browser's `Response.clone()`) and a
//!   cache that stores one ([`CacheStore::put_copy`], the Cache API), a shard
//!   is stored from a tee of its own download instead of from a second copy
//!   of its bytes; a copy whose body then fails a check is deleted, one whose
//!   transfer breaks off is never committed.
//! - **Exact progress** ([`progress`] has the full contract): no event until
//!   `model.json` is parsed; from then on `total_bytes` is exact and constant
//!   (`model.json`'s length + every weight's stored bytes), `loaded_bytes`
//!   only grows, events are rate-limited, and the last one (`done`) has
//!   `loaded_bytes == total_bytes`.
//! - **Nothing unchecked is used, nothing incomplete is cached.** A shard is
//!   checked against the manifest while it streams (a single-shard group's
//!   exact length; a multi-shard group's running total), against its
//!   `Content-Length` (early mismatch, truncation), and against a caller's
//!   SHA-256 when given; every group must add up exactly. Only a complete,
//!   checked file is stored, and all-or-nothing. A cache entry that fails the
//!   same checks is evicted and fetched again.
//! - **Resume**: each file is stored as soon as it is complete, so after an
//!   interrupted load the next one fetches only what is missing, and a second
//!   load of a cached model makes no network request at all.
//! - **The cache is an optimisation, never a failure**: a refused put (quota)
//!   or an unreadable cache becomes a [`Warning`] and the model still loads.
//!
//! # URLs and query strings
//!
//! Shards resolve as in tfjs: the directory of the model URL (or
//! [`LoadOptions::weight_path_prefix`]) followed by the manifest path as
//! written. tfjs also appends the model URL's query string to every shard URL,
//! which breaks presigned URLs (S3, GCS, Azure SAS): the signature of
//! `model.json` is not valid for another object. webinfer therefore **drops the
//! query by default** ([`ShardQuery::Drop`]). For servers that want a token on
//! every request, [`ShardQuery::Inherit`] restores tfjs's behaviour; for
//! per-file signatures, [`LoadOptions::rewrite_url`] maps each resolved URL
//! to the URL requested. Cache keys, events and errors use the resolved URL,
//! never the rewritten one. When the model URL itself carries a signature that
//! changes between visits, set [`CacheKeyQuery::Strip`] so the cache still
//! hits. The query and fragment are split off before the directory is taken,
//! so a `/` inside the query does not confuse resolution (it does in tfjs).
//!
//! # Caching
//!
//! One cache named [`cache_name`]: `"webinfer-v1"` (the version of this
//! crate's entry layout) plus an optional `":namespace"`; one entry per file,
//! keyed by its resolved URL. A cached `model.json` is trusted until evicted:
//! when the files behind a URL change, bump [`CachePolicy::namespace`], set
//! [`CachePolicy::force_reload`], or call [`Loader::delete_cached`].
//! [`Loader::list_cached`] lists cached models with their files and sizes.
//!
//! # Example
//!
//! ```
//! use webinfer_loader::{Loader, LoadOptions, LoadEvent, memory::{MemoryTransport, MemoryCache}};
//! let net = MemoryTransport::new();
//! net.insert("https://example.com/m/model.json", br#"{"modelTopology": {},
//!     "weightsManifest": [{"paths": ["w.bin"], "weights": [
//!     {"name": "w", "shape": [2], "dtype": "float32"}]}]}"#.to_vec());
//! net.insert("https://example.com/m/w.bin", vec![0u8; 8]);
//! let loader = Loader::new(net.clone()).with_cache(MemoryCache::new());
//! let mut last = None;
//! let model = futures::executor::block_on(loader.load(
//!     "https://example.com/m/model.json", &LoadOptions::default(),
//!     &mut |e| if let LoadEvent::Progress(p) = e { last = Some(p.clone()) }))?;
//! assert_eq!(model.shards[0].bytes.len(), 8);
//! let last = last.unwrap();
//! assert_eq!((last.loaded_bytes, last.fraction), (last.total_bytes, 1.0));
//! // A second load is served by the cache.
//! net.clear_requests();
//! let again = futures::executor::block_on(loader.load(
//!     "https://example.com/m/model.json", &LoadOptions::default(), &mut |_| {}))?;
//! assert!(again.from_cache && net.request_count() == 0);
//! # Ok::<(), webinfer_loader::LoadError>(())
//! ```

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![warn(missing_debug_implementations)]

mod bounded;
pub mod cache;
pub mod error;
mod load;
pub mod memory;
pub mod progress;
pub mod transport;
pub mod url;

#[cfg(target_arch = "wasm32")]
pub mod browser;
#[cfg(not(target_arch = "wasm32"))]
pub mod fs;

pub use cache::{
    cache_name, CacheBody, CacheEntry, CacheStore, CachedFile, CachedModel, EntryKind, EntryMeta,
    CACHE_FORMAT,
};
pub use error::{CacheError, LengthSource, LoadError, TransportError};
pub use load::{
    hex, sha256, CachePolicy, LoadIntoError, LoadOptions, LoadStats, LoadedModel, Loader,
    Sha256Hashes, ShardBytes, ShardSink, UrlRewrite,
};
pub use progress::{LoadEvent, Phase, Progress, ProgressThrottle, Warning, WarningKind};
pub use transport::{Clock, Response, SystemClock, Transport};
pub use url::{cache_key, model_dir, resolve_shard_url, CacheKeyQuery, ShardQuery};
