//! Progress and warning events, and the rate limiter that emits them.
//!
//! # The contract of progress events
//!
//! - **No event before `model.json` is parsed.** Until then only `model.json`'s
//!   own `Content-Length` is known, not the model's size, and a total that
//!   jumps would make the bar go backwards. The first event (phase
//!   [`Phase::ModelJson`]) comes right after parsing with `loaded_bytes` =
//!   `model.json`'s length and the exact `total_bytes`.
//! - **`total_bytes` never changes** during a load: `model.json`'s length plus
//!   the stored bytes of every weight in the manifest (exactly the sum of the
//!   shard files). `loaded_bytes` never decreases and never exceeds it; bytes
//!   count once they are received and pass their length checks, whether they
//!   came from the network or from the cache.
//! - **Rate-limited**: a [`Phase::Weights`] event is emitted when at least
//!   [`ProgressThrottle::min_interval_ms`] have passed *or* at least
//!   [`ProgressThrottle::min_step`] of the total has arrived since the last
//!   event, so a load emits at most about `1/min_step + duration/min_interval`
//!   of them (100 + one per 50 ms by default).
//! - **The final event always fires** on success: phase [`Phase::Done`],
//!   `loaded_bytes == total_bytes`, `fraction == 1.0`. A failed load ends with
//!   its error instead, and no `Done`.
//! - Warnings are never rate-limited.

use crate::transport::Clock;

/// Which part of the load an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// `model.json` has been fetched and parsed (one event).
    ModelJson,
    /// Shard bytes arriving.
    Weights,
    /// Everything is loaded and checked (one event, the last progress event).
    /// Warnings about cache writes still being committed
    /// ([`Loader::load_into_ready`](crate::Loader::load_into_ready)) may follow it.
    Done,
}

impl Phase {
    /// `"model-json"`, `"weights"` or `"done"` (the strings the JS API uses).
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::ModelJson => "model-json",
            Phase::Weights => "weights",
            Phase::Done => "done",
        }
    }
}

/// A progress event.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub loaded_bytes: u64,
    /// Exact from the first event on; constant during a load.
    pub total_bytes: u64,
    /// `loaded_bytes / total_bytes` in `[0, 1]` (1 when the total is 0).
    pub fraction: f64,
    /// The file the latest bytes belong to; the model URL for `model-json` and `done`.
    pub url: String,
    /// Whether the latest bytes came from the cache; for `done`, whether the
    /// whole model did (no network request at all).
    pub from_cache: bool,
    pub phase: Phase,
}

/// What a warning is about. The load goes on after each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WarningKind {
    /// A file could not be stored in the cache (quota, storage error). It was
    /// loaded from memory and will be downloaded again next time.
    NotCached,
    /// A cache entry failed its checks (length, manifest, SHA-256, JSON) and
    /// was deleted; the file is fetched again.
    CacheEntryEvicted,
    /// The cache could not be read at all; this load runs without it.
    CacheUnavailable,
}

impl WarningKind {
    /// `"not-cached"`, `"cache-entry-evicted"` or `"cache-unavailable"`.
    pub fn as_str(self) -> &'static str {
        match self {
            WarningKind::NotCached => "not-cached",
            WarningKind::CacheEntryEvicted => "cache-entry-evicted",
            WarningKind::CacheUnavailable => "cache-unavailable",
        }
    }
}

/// Something went wrong that the load recovered from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub kind: WarningKind,
    pub url: String,
    /// A sentence for a log or a console.
    pub message: String,
}

/// What a load reports while it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadEvent {
    Progress(Progress),
    Warning(Warning),
}

/// How often [`Phase::Weights`] events may fire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProgressThrottle {
    /// Emit when this many milliseconds have passed since the last event. Default 50.
    pub min_interval_ms: f64,
    /// ... or when this fraction of the total has arrived since. Default 0.01.
    pub min_step: f64,
}

impl Default for ProgressThrottle {
    fn default() -> Self {
        ProgressThrottle {
            min_interval_ms: 50.0,
            min_step: 0.01,
        }
    }
}

impl ProgressThrottle {
    /// Every chunk gets an event (for tests and debugging).
    pub fn unthrottled() -> Self {
        ProgressThrottle {
            min_interval_ms: 0.0,
            min_step: 0.0,
        }
    }
}

/// Counts bytes and emits events. Lives in a `RefCell` shared by the
/// concurrent downloads of one load; never borrowed across an `.await`.
pub(crate) struct Reporter<'a> {
    sink: &'a mut dyn FnMut(&LoadEvent),
    clock: &'a dyn Clock,
    throttle: ProgressThrottle,
    total: u64,
    loaded: u64,
    last_ms: f64,
    last_loaded: u64,
    pub(crate) warnings: Vec<Warning>,
}

impl<'a> Reporter<'a> {
    pub(crate) fn new(
        sink: &'a mut dyn FnMut(&LoadEvent),
        clock: &'a dyn Clock,
        throttle: ProgressThrottle,
    ) -> Self {
        Reporter {
            sink,
            clock,
            throttle,
            total: 0,
            loaded: 0,
            last_ms: 0.0,
            last_loaded: 0,
            warnings: Vec::new(),
        }
    }

    /// `model.json` is parsed: the total is known. Emits the first event.
    pub(crate) fn start(&mut self, total: u64, json_len: u64, url: &str, from_cache: bool) {
        self.total = total;
        self.loaded = json_len.min(total);
        self.emit(url, from_cache, Phase::ModelJson);
    }

    /// `n` more bytes of `url` arrived and passed their checks.
    pub(crate) fn advance(&mut self, n: u64, url: &str, from_cache: bool) {
        // The loader checks every group's running length against the manifest
        // before calling this, so the clamp never bites; it keeps the
        // invariant loaded <= total even if that ever changes.
        self.loaded = self.loaded.saturating_add(n).min(self.total);
        let now = self.clock.now_ms();
        let step = self.loaded.saturating_sub(self.last_loaded) as f64;
        if n > 0
            && (now - self.last_ms >= self.throttle.min_interval_ms
                || step >= self.throttle.min_step * self.total as f64)
        {
            self.emit(url, from_cache, Phase::Weights);
        }
    }

    /// The last event: loaded == total.
    pub(crate) fn finish(&mut self, url: &str, from_cache: bool) {
        self.loaded = self.total;
        self.emit(url, from_cache, Phase::Done);
    }

    pub(crate) fn warn(&mut self, kind: WarningKind, url: &str, message: String) {
        let warning = Warning {
            kind,
            url: url.to_owned(),
            message,
        };
        (self.sink)(&LoadEvent::Warning(warning.clone()));
        self.warnings.push(warning);
    }

    fn emit(&mut self, url: &str, from_cache: bool, phase: Phase) {
        self.last_ms = self.clock.now_ms();
        self.last_loaded = self.loaded;
        let fraction = if self.total == 0 {
            1.0
        } else {
            self.loaded as f64 / self.total as f64
        };
        (self.sink)(&LoadEvent::Progress(Progress {
            loaded_bytes: self.loaded,
            total_bytes: self.total,
            fraction,
            url: url.to_owned(),
            from_cache,
            phase,
        }));
    }
}
