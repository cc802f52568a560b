//! Packed weights kept between runs: the direct convolution kernel (`igemm.rs`) reads its
//! weights as panels of `NR` output channels, and copying them there cost 20-30% of a call on
//! layers with large weights. A [`CpuBackend`](crate::CpuBackend) keeps the panels of its
//! graphs' *constant* weights in a [`PackCache`] and packs each weight once.
//!
//! Entries are keyed by the weight's address and length (and the layout parameters): graph
//! constants do not move while the graph lives. The graph may be dropped and a new one
//! allocated at the same address, so an entry also holds [`SAMPLES`] of the original values,
//! compared (bit for bit) on every use; a mismatch repacks. Entries not used for [`KEEP_RUNS`]
//! runs are dropped (a backend that moves on to another graph does not keep the old one's
//! panels), and at most [`MAX_BYTES`] are kept (beyond that, weights are packed per call as
//! before). [`CpuBackend::release_memory`](crate::CpuBackend::release_memory) drops all.
//!
//! Nothing is cached for a bare [`eval_op`](crate::eval_op) or for weights that are not graph
//! constants (an input or a computed value may change between calls at the same address).

use std::sync::{Arc, Mutex, MutexGuard};

/// Values of the original weight stored with an entry and checked on each use.
const SAMPLES: usize = 64;
/// An entry unused for this many runs of the backend is dropped.
const KEEP_RUNS: u64 = 4;
/// At most this many bytes of packed weights are kept.
pub(crate) const MAX_BYTES: usize = 256 << 20;

/// Identifies a packed weight: the original's address and length, and the layout parameters
/// the packing depends on.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) struct Key {
    ptr: usize,
    len: usize,
    /// Output channels (the weight's last dimension) and groups.
    cout: usize,
    groups: usize,
}

impl Key {
    pub fn new(w: &[f32], cout: usize, groups: usize) -> Key {
        Key {
            ptr: w.as_ptr() as usize,
            len: w.len(),
            cout,
            groups,
        }
    }
}

struct Entry {
    panels: Arc<Vec<f32>>,
    /// `w[sample_index(i)]` as bits, for `i < SAMPLES`.
    samples: [u32; SAMPLES],
    /// The run counter when the entry was last used.
    last_used: u64,
}

#[derive(Default)]
struct Inner {
    /// Sorted by key (a binary search per lookup: a model has a few hundred weights at most,
    /// and a hash map of its own type was ~1.4 KB of gzip in the browser module).
    map: Vec<(Key, Entry)>,
    /// Bytes of all panels in `map`.
    bytes: usize,
    /// Finished runs of the backend.
    runs: u64,
}

/// The packed constant weights of a backend (see the module docs).
#[derive(Default)]
pub(crate) struct PackCache {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for PackCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("PackCache")
            .field("entries", &inner.map.len())
            .field("bytes", &inner.bytes)
            .finish()
    }
}

/// The index of sample `i` of a weight of `len > 0` values (first and last included).
fn sample_index(i: usize, len: usize) -> usize {
    i * (len - 1) / (SAMPLES - 1)
}

fn samples_of(w: &[f32]) -> [u32; SAMPLES] {
    std::array::from_fn(|i| w[sample_index(i, w.len())].to_bits())
}

impl Inner {
    /// Where `key` is in `map`, or where it would go.
    fn find(&self, key: &Key) -> Result<usize, usize> {
        self.map.binary_search_by(|(k, _)| k.cmp(key))
    }
}

impl PackCache {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The panels of `w` (packed by `pack` into `len` zeroed floats, on first use or when the
    /// cached ones were packed from other values), or `None` when they would not fit in
    /// [`MAX_BYTES`]. `pack` runs without the lock held.
    pub fn get_or_pack(
        &self,
        key: Key,
        w: &[f32],
        len: usize,
        pack: impl FnOnce(&mut [f32]),
    ) -> Option<Arc<Vec<f32>>> {
        if w.is_empty() {
            return None;
        }
        let samples = samples_of(w);
        {
            let mut inner = self.lock();
            let runs = inner.runs;
            if let Ok(at) = inner.find(&key) {
                let e = &mut inner.map[at].1;
                if e.samples == samples && e.panels.len() == len {
                    e.last_used = runs;
                    return Some(e.panels.clone());
                }
                // Other values at the same address: a different weight.
                let old = inner.map.remove(at).1.panels.len();
                inner.bytes -= old * 4;
            }
            if inner.bytes + len * 4 > MAX_BYTES {
                return None;
            }
        }
        let mut panels = vec![0.0; len];
        pack(&mut panels);
        let panels = Arc::new(panels);
        let mut inner = self.lock();
        let runs = inner.runs;
        let at = match inner.find(&key) {
            Err(at) if inner.bytes + len * 4 <= MAX_BYTES => at,
            // Another run filled the room (or this entry) meanwhile: use these panels once.
            _ => return Some(panels),
        };
        inner.bytes += len * 4;
        inner.map.insert(
            at,
            (
                key,
                Entry {
                    panels: panels.clone(),
                    samples,
                    last_used: runs,
                },
            ),
        );
        Some(panels)
    }

    /// Counts a finished run and drops the entries unused for [`KEEP_RUNS`] runs.
    pub fn end_run(&self) {
        let mut inner = self.lock();
        inner.runs += 1;
        let runs = inner.runs;
        let mut freed = 0;
        inner.map.retain(|(_, e)| {
            let keep = runs - e.last_used <= KEEP_RUNS;
            if !keep {
                freed += e.panels.len() * 4;
            }
            keep
        });
        inner.bytes -= freed;
    }

    /// Drops every entry.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.map.clear();
        inner.bytes = 0;
    }

    /// Bytes of packed weights held.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack_doubled(w: &[f32]) -> impl FnOnce(&mut [f32]) + '_ {
        move |p: &mut [f32]| {
            for (d, s) in p.iter_mut().zip(w) {
                *d = 2.0 * s;
            }
        }
    }

    #[test]
    fn packs_once_repacks_changed_values_and_evicts_unused() {
        let cache = PackCache::default();
        let mut w: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        let key = Key::new(&w, 10, 1);
        let a = cache.get_or_pack(key, &w, 1000, pack_doubled(&w)).unwrap();
        assert_eq!(a[999], 1998.0);
        assert_eq!(cache.bytes(), 4000);
        // A hit does not pack again.
        let b = cache
            .get_or_pack(key, &w, 1000, |_| panic!("packed twice"))
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        // Same address and length, other values (a sampled one changed): repacked.
        w[999] = -1.0;
        let c = cache.get_or_pack(key, &w, 1000, pack_doubled(&w)).unwrap();
        assert_eq!(c[999], -2.0);
        assert_eq!(cache.bytes(), 4000);
        // Another layout of the same weight is another entry.
        let key2 = Key::new(&w, 100, 1);
        cache.get_or_pack(key2, &w, 1000, pack_doubled(&w)).unwrap();
        assert_eq!(cache.bytes(), 8000);
        // Used in the runs that follow, `key` stays; `key2` goes after KEEP_RUNS runs.
        for _ in 0..=KEEP_RUNS {
            cache.get_or_pack(key, &w, 1000, |_| panic!("packed twice"));
            cache.end_run();
        }
        assert_eq!(cache.bytes(), 4000);
        cache.clear();
        assert_eq!(cache.bytes(), 0);
        // Too large to keep: None (the caller packs per call).
        let big = vec![1.0f32; 4];
        assert!(cache
            .get_or_pack(Key::new(&big, 4, 1), &big, MAX_BYTES / 4 + 1, |_| {})
            .is_none());
    }
}
