//! The errors of this crate: [`LoadError`] for a load, [`TransportError`] from a
//! [`Transport`](crate::Transport), [`CacheError`] from a [`CacheStore`](crate::CacheStore).

use thiserror::Error;
use webinfer_tfjs::FormatError;

/// A transport could not deliver a response (DNS, refused connection, CORS,
/// offline, a stream that broke off). HTTP error statuses are *not* transport
/// errors: the transport returns them as a [`Response`](crate::Response) and
/// the loader turns them into [`LoadError::Http`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct TransportError {
    pub message: String,
}

impl TransportError {
    pub fn new(message: impl Into<String>) -> Self {
        TransportError {
            message: message.into(),
        }
    }
}

/// A cache store refused an operation. During a load these never fail the
/// load: they become [`Warning`](crate::Warning)s and the bytes stay in memory.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The store is full (the browser's `QuotaExceededError`).
    #[error("storage quota exceeded: {0}")]
    Quota(String),
    /// There is no store here at all (no `caches` in an insecure context or an
    /// opaque origin, an unwritable directory).
    #[error("cache storage is unavailable: {0}")]
    Unavailable(String),
    /// Anything else the store reports.
    #[error("cache storage error: {0}")]
    Other(String),
}

/// Where a length that disagrees with the manifest was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthSource {
    /// The response's `Content-Length` header (checked before the body is read).
    ContentLength,
    /// The bytes actually received.
    Body,
}

impl LengthSource {
    fn describe(self) -> &'static str {
        match self {
            LengthSource::ContentLength => "the response's Content-Length is",
            LengthSource::Body => "the response body has",
        }
    }
}

/// Why a load failed. Every variant names the URL (or the URLs of a weight
/// group) at fault; messages are complete sentences for a user.
///
/// URLs here are the *resolved* URLs (see the crate docs), never the output of
/// a [`UrlRewrite`](crate::UrlRewrite), so a signature added by a rewrite does
/// not end up in logs.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The server answered with a status outside 200..=299.
    #[error("GET {url} failed: HTTP {status}{}", status_suffix(.status_text))]
    Http {
        url: String,
        status: u16,
        status_text: String,
    },

    /// No response at all (offline, DNS, refused, CORS, file not readable).
    #[error("GET {url} failed: network error: {message}")]
    Network { url: String, message: String },

    /// The body broke off with an error after `received` bytes.
    #[error("GET {url}: the download broke off after {received} bytes: {message}")]
    Interrupted {
        url: String,
        received: u64,
        message: String,
    },

    /// A cached file streamed into a sink turned out different from its
    /// record (length, or SHA-256) after part of it was used. The entry has
    /// been deleted: loading again fetches the file from the network.
    #[error("the cached copy of {url} was corrupt ({reason}); it has been removed, load again to fetch it")]
    CacheCorrupt { url: String, reason: String },

    /// The body ended cleanly but short of the `expected` bytes (from
    /// `Content-Length` or the manifest).
    #[error("GET {url}: body truncated: received {received} of {expected} bytes")]
    Truncated {
        url: String,
        received: u64,
        expected: u64,
    },

    /// A shard's length cannot be what the manifest describes. `expected` is
    /// the shard's exact length when its group has a single shard, otherwise
    /// the most the shard can hold (its group's total).
    #[error(
        "{url}: {} {actual} bytes, but the weights manifest {} {expected}{}",
        .origin.describe(),
        if *.exact { "says exactly" } else { "allows this shard at most" },
        content_length_hint(*.origin)
    )]
    ShardLength {
        url: String,
        expected: u64,
        actual: u64,
        exact: bool,
        origin: LengthSource,
    },

    /// The shards of one weight group do not add up to the group's bytes in
    /// the manifest. Every cache entry of the group has been deleted.
    #[error("weight group {group} [{}]: the shards hold {actual} bytes, the weights manifest describes exactly {expected}", .urls.join(", "))]
    GroupLength {
        group: usize,
        urls: Vec<String>,
        expected: u64,
        actual: u64,
    },

    /// A file's SHA-256 differs from the one the caller supplied.
    #[error("{url}: SHA-256 mismatch: expected {expected}, got {actual}")]
    Integrity {
        url: String,
        expected: String,
        actual: String,
    },

    /// The model URL answered with an HTML page, not `model.json`: usually a
    /// wrong URL served by a single-page-app fallback, or a login page.
    #[error("GET {url} returned an HTML page, not a model.json (wrong URL? a web server that answers unknown paths with its index page, or a login page?)")]
    Html { url: String },

    /// `model.json` is not a valid TensorFlow.js model file.
    #[error("{url}: {source}")]
    Format { url: String, source: FormatError },

    /// The options are unusable (e.g. a malformed SHA-256 string).
    #[error("invalid load options: {0}")]
    Options(String),
}

impl LoadError {
    /// The URL at fault (the first of a group's for [`LoadError::GroupLength`]).
    pub fn url(&self) -> Option<&str> {
        match self {
            LoadError::Http { url, .. }
            | LoadError::Network { url, .. }
            | LoadError::Interrupted { url, .. }
            | LoadError::Truncated { url, .. }
            | LoadError::CacheCorrupt { url, .. }
            | LoadError::ShardLength { url, .. }
            | LoadError::Integrity { url, .. }
            | LoadError::Html { url }
            | LoadError::Format { url, .. } => Some(url),
            LoadError::GroupLength { urls, .. } => urls.first().map(String::as_str),
            LoadError::Options(_) => None,
        }
    }
}

fn status_suffix(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(" {text}")
    }
}

fn content_length_hint(source: LengthSource) -> &'static str {
    match source {
        LengthSource::ContentLength => {
            " (if the server compresses this file, serve it uncompressed, expose \
             Content-Encoding to CORS, or turn off LoadOptions::check_content_length)"
        }
        LengthSource::Body => "",
    }
}
