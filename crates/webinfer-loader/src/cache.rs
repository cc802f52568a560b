//! The cache interface: [`CacheStore`], what an entry holds, the cache name,
//! and the listing of cached models.
//!
//! # Layout
//!
//! A store holds named caches (the browser's `CacheStorage` of `Cache`s). The
//! loader uses one cache, [`cache_name`]: `"webinfer-v1"` or
//! `"webinfer-v1:<namespace>"`. The `v1` is the version of *this* layout: a
//! webinfer that stores entries differently uses a new name and never reads
//! old entries. The namespace is the user's (an app name, a model version).
//!
//! Each file of a model (its `model.json`, every shard) is one entry keyed by
//! its resolved URL (see [`CacheKeyQuery`](crate::CacheKeyQuery)), stored only
//! once the file is complete and checked. Its [`EntryMeta`] records which
//! model it belongs to and its length, so entries can be listed and deleted
//! per model and a truncated or foreign entry is recognised.

use futures::future::LocalBoxFuture;

use crate::error::CacheError;
use crate::transport::BodyCopy;

/// A cached body read chunk by chunk ([`CacheStore::get_stream`]).
pub type CacheBody<'a> = futures::stream::LocalBoxStream<'a, Result<Vec<u8>, CacheError>>;

/// Version of the cache layout, the first part of every cache name.
pub const CACHE_FORMAT: &str = "webinfer-v1";

/// The name of the cache a load uses: `"webinfer-v1"` or `"webinfer-v1:ns"`.
pub fn cache_name(namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() => format!("{CACHE_FORMAT}:{ns}"),
        _ => CACHE_FORMAT.to_owned(),
    }
}

/// What kind of file an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    ModelJson,
    Shard,
}

impl EntryKind {
    /// `"model-json"` or `"shard"`.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::ModelJson => "model-json",
            EntryKind::Shard => "shard",
        }
    }

    pub fn parse(s: &str) -> Option<EntryKind> {
        match s {
            "model-json" => Some(EntryKind::ModelJson),
            "shard" => Some(EntryKind::Shard),
            _ => None,
        }
    }
}

/// What the loader records beside an entry's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntryMeta {
    /// The cache key of the model's `model.json`: the model this file belongs to.
    pub model_url: String,
    pub kind: EntryKind,
    /// The number of bytes stored. An entry whose body differs is corrupt.
    pub length: u64,
    /// `model.json` entries only: how many distinct files the model has,
    /// `model.json` included (to tell a complete model from a partial one).
    pub model_files: Option<u32>,
}

/// An entry as read back from a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    pub meta: EntryMeta,
    pub bytes: Vec<u8>,
}

/// Persistent storage for complete files.
///
/// Contract, which the loader relies on for "nothing half-written stays":
/// - `put` is all-or-nothing: after an `Err`, the key holds nothing or its
///   previous entry, never part of the new one (the loader also deletes the key
///   after a failed put, best effort). A full store answers [`CacheError::Quota`].
/// - `get` returns exactly what a successful `put` stored, or `None`.
/// - `list` returns the key and meta of every entry without reading bodies.
///
/// Implementations: `browser::BrowserCache` (Cache API),
/// `fs::DirCache` (a directory),
/// [`MemoryCache`](crate::memory::MemoryCache) (in memory, with a quota).
pub trait CacheStore {
    fn get<'a>(
        &'a self,
        cache: &'a str,
        key: &'a str,
    ) -> LocalBoxFuture<'a, Result<Option<CacheEntry>, CacheError>>;

    fn put<'a>(
        &'a self,
        cache: &'a str,
        key: &'a str,
        meta: &'a EntryMeta,
        bytes: &'a [u8],
    ) -> LocalBoxFuture<'a, Result<(), CacheError>>;

    /// An entry's record and its body as a stream of chunks, without reading the
    /// body first (`None` when absent), so a large file never has to be held
    /// whole. Default: [`CacheStore::get`], in one chunk.
    fn get_stream<'a>(
        &'a self,
        cache: &'a str,
        key: &'a str,
    ) -> LocalBoxFuture<'a, Result<Option<(EntryMeta, CacheBody<'a>)>, CacheError>> {
        Box::pin(async move {
            Ok(self.get(cache, key).await?.map(|entry| {
                let body: CacheBody<'a> =
                    Box::pin(futures::stream::once(async move { Ok(entry.bytes) }));
                (entry.meta, body)
            }))
        })
    }

    /// Stores a response body as it streams in (see [`BodyCopy`]): resolves once
    /// the whole body is stored, fails (storing nothing) when the transfer
    /// breaks off. Same all-or-nothing contract as `put`; `meta.length` is the
    /// length the body is expected to have, and the loader deletes the entry if
    /// the body turns out different. Default: unsupported (the loader then
    /// keeps the bytes and calls `put`); only stores that can take a
    /// transport's copies implement it.
    fn put_copy<'a>(
        &'a self,
        _cache: &'a str,
        _key: &'a str,
        _meta: &'a EntryMeta,
        copy: BodyCopy,
    ) -> LocalBoxFuture<'a, Result<(), CacheError>> {
        let _unused = copy;
        Box::pin(async {
            Err(CacheError::Other(
                "this store cannot store a streamed body".into(),
            ))
        })
    }

    /// Whether [`CacheStore::put_copy`] is implemented.
    fn takes_copies(&self) -> bool {
        false
    }

    /// Removes `key`; `Ok(false)` when it was not there.
    fn delete<'a>(
        &'a self,
        cache: &'a str,
        key: &'a str,
    ) -> LocalBoxFuture<'a, Result<bool, CacheError>>;

    fn list<'a>(
        &'a self,
        cache: &'a str,
    ) -> LocalBoxFuture<'a, Result<Vec<(String, EntryMeta)>, CacheError>>;
}

impl<T: CacheStore + ?Sized> CacheStore for &T {
    fn get<'a>(
        &'a self,
        cache: &'a str,
        key: &'a str,
    ) -> LocalBoxFuture<'a, Result<Option<CacheEntry>, CacheError>> {
        (**self).get(cache, key)
    }
    fn put<'a>(
        &'a self,
        cache: &'a str,
        key: &'a str,
        meta: &'a EntryMeta,
        bytes: &'a [u8],
    ) -> LocalBoxFuture<'a, Result<(), CacheError>> {
        (**self).put(cache, key, meta, bytes)
    }
    fn get_stream<'a>(
        &'a self,
        cache: &'a str,
        key: &'a str,
    ) -> LocalBoxFuture<'a, Result<Option<(EntryMeta, CacheBody<'a>)>, CacheError>> {
        (**self).get_stream(cache, key)
    }
    fn put_copy<'a>(
        &'a self,
        cache: &'a str,
        key: &'a str,
        meta: &'a EntryMeta,
        copy: BodyCopy,
    ) -> LocalBoxFuture<'a, Result<(), CacheError>> {
        (**self).put_copy(cache, key, meta, copy)
    }
    fn takes_copies(&self) -> bool {
        (**self).takes_copies()
    }
    fn delete<'a>(
        &'a self,
        cache: &'a str,
        key: &'a str,
    ) -> LocalBoxFuture<'a, Result<bool, CacheError>> {
        (**self).delete(cache, key)
    }
    fn list<'a>(
        &'a self,
        cache: &'a str,
    ) -> LocalBoxFuture<'a, Result<Vec<(String, EntryMeta)>, CacheError>> {
        (**self).list(cache)
    }
}

impl<T: CacheStore + ?Sized> CacheStore for std::rc::Rc<T> {
    fn get<'a>(
        &'a self,
        cache: &'a str,
        key: &'a str,
    ) -> LocalBoxFuture<'a, Result<Option<CacheEntry>, CacheError>> {
        (**self).get(cache, key)
    }
    fn put<'a>(
        &'a self,
        cache: &'a str,
        key: &'a str,
        meta: &'a EntryMeta,
        bytes: &'a [u8],
    ) -> LocalBoxFuture<'a, Result<(), CacheError>> {
        (**self).put(cache, key, meta, bytes)
    }
    fn get_stream<'a>(
        &'a self,
        cache: &'a str,
        key: &'a str,
    ) -> LocalBoxFuture<'a, Result<Option<(EntryMeta, CacheBody<'a>)>, CacheError>> {
        (**self).get_stream(cache, key)
    }
    fn put_copy<'a>(
        &'a self,
        cache: &'a str,
        key: &'a str,
        meta: &'a EntryMeta,
        copy: BodyCopy,
    ) -> LocalBoxFuture<'a, Result<(), CacheError>> {
        (**self).put_copy(cache, key, meta, copy)
    }
    fn takes_copies(&self) -> bool {
        (**self).takes_copies()
    }
    fn delete<'a>(
        &'a self,
        cache: &'a str,
        key: &'a str,
    ) -> LocalBoxFuture<'a, Result<bool, CacheError>> {
        (**self).delete(cache, key)
    }
    fn list<'a>(
        &'a self,
        cache: &'a str,
    ) -> LocalBoxFuture<'a, Result<Vec<(String, EntryMeta)>, CacheError>> {
        (**self).list(cache)
    }
}

/// One cached file of a [`CachedModel`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedFile {
    /// The cache key (the resolved URL).
    pub url: String,
    pub kind: EntryKind,
    pub bytes: u64,
}

/// A model with entries in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedModel {
    /// The cache key of its `model.json`.
    pub model_url: String,
    /// `model.json` first, then the shards by URL.
    pub files: Vec<CachedFile>,
    /// Sum of the files' lengths: the storage the model takes.
    pub total_bytes: u64,
    /// Every file of the model is cached: the next load needs no network.
    pub complete: bool,
}

/// Groups a cache's entries by model.
pub(crate) fn group_models(mut entries: Vec<(String, EntryMeta)>) -> Vec<CachedModel> {
    webinfer_tfjs::order::sort_by(&mut entries, |a, b| {
        (&a.1.model_url, a.1.kind != EntryKind::ModelJson, &a.0).cmp(&(
            &b.1.model_url,
            b.1.kind != EntryKind::ModelJson,
            &b.0,
        ))
    });
    let mut models: Vec<CachedModel> = Vec::new();
    let mut expected: Vec<Option<u32>> = Vec::new();
    for (key, meta) in entries {
        if models.last().is_none_or(|m| m.model_url != meta.model_url) {
            models.push(CachedModel {
                model_url: meta.model_url.clone(),
                files: Vec::new(),
                total_bytes: 0,
                complete: false,
            });
            expected.push(None);
        }
        let (Some(model), Some(exp)) = (models.last_mut(), expected.last_mut()) else {
            continue;
        };
        if meta.kind == EntryKind::ModelJson && key == model.model_url {
            *exp = meta.model_files;
        }
        model.total_bytes = model.total_bytes.saturating_add(meta.length);
        model.files.push(CachedFile {
            url: key,
            kind: meta.kind,
            bytes: meta.length,
        });
    }
    for (model, exp) in models.iter_mut().zip(expected) {
        model.complete =
            exp.is_some_and(|n| usize::try_from(n).is_ok_and(|n| n == model.files.len()));
    }
    models
}
