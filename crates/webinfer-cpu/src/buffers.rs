//! Output buffers: the buffers of freed intermediates are handed to later ops instead of new
//! allocations, within a run and across the runs of one [`CpuBackend`](crate::CpuBackend).
//!
//! A fresh multi-megabyte allocation is fresh pages that the OS zero-fills on first touch,
//! and the allocator gives such blocks back to the OS when they are freed. On MobileNetV2
//! that was ~2,600 page faults and a quarter of the CPU time per prediction; keeping the
//! buffers between runs removes nearly all of it. The backend owns the idle buffers
//! ([`Idle`], bounded by [`MAX_IDLE`] and [`MAX_IDLE_BYTES`]); during a run they sit in a
//! thread-local ([`RunPool`]) where the kernels' [`buffer`] calls find them. Outside a run (a
//! bare [`eval_op`](crate::eval_op)) [`buffer`] simply allocates.

use std::cell::RefCell;

/// Buffers smaller than this (in `f32`s) come and go through the allocator's own bins.
const MIN_POOLED: usize = 16 * 1024;
/// At most this many idle buffers are kept (the smallest go first).
pub(crate) const MAX_IDLE: usize = 64;
/// At most this many bytes of idle buffers are kept between runs (the largest go first).
pub(crate) const MAX_IDLE_BYTES: usize = 512 << 20;
/// A buffer is only reused for a request at least `1 / MAX_WASTE` of its capacity.
const MAX_WASTE: usize = 4;

/// Idle buffers between runs.
pub(crate) type Idle = Vec<Vec<f32>>;

thread_local! {
    /// `Some` while a run is in progress on this thread.
    static IDLE: RefCell<Option<Idle>> = const { RefCell::new(None) };
}

/// An idle buffer of the current run that fits `len` (best fit), if any.
fn take(len: usize) -> Option<Vec<f32>> {
    if len < MIN_POOLED {
        return None;
    }
    IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        let idle = idle.as_mut()?;
        let (i, _) = idle
            .iter()
            .enumerate()
            .filter(|(_, v)| v.capacity() >= len && v.capacity() / MAX_WASTE <= len)
            .min_by_key(|(_, v)| v.capacity())?;
        let mut v = idle.swap_remove(i);
        v.clear();
        Some(v)
    })
}

/// A buffer of `len` elements, all `fill`: an idle one of the current run when one fits.
pub(crate) fn buffer(len: usize, fill: f32) -> Vec<f32> {
    match take(len) {
        Some(mut v) => {
            v.resize(len, fill);
            v
        }
        None => vec![fill; len],
    }
}

/// A copy of `data`, in an idle buffer of the current run when one fits.
pub(crate) fn copied(data: &[f32]) -> Vec<f32> {
    match take(data.len()) {
        Some(mut v) => {
            v.extend_from_slice(data);
            v
        }
        None => data.to_vec(),
    }
}

/// Hand a no-longer-needed buffer to the current run (or drop it when there is none).
pub(crate) fn recycle(v: Vec<f32>) {
    if v.capacity() < MIN_POOLED {
        return;
    }
    IDLE.with(|idle| {
        if let Some(idle) = idle.borrow_mut().as_mut() {
            idle.push(v);
            if idle.len() > MAX_IDLE {
                // Let the smallest go.
                if let Some((i, _)) = idle.iter().enumerate().min_by_key(|(_, v)| v.capacity()) {
                    idle.swap_remove(i);
                }
            }
        }
    });
}

/// Makes `idle` available to this thread's [`buffer`] calls until [`RunPool::finish`] (or
/// drop, which frees them). A nested guard leaves the outer run's buffers in place.
pub(crate) struct RunPool {
    installed: bool,
}

impl RunPool {
    pub fn install(idle: Idle) -> Self {
        let installed = IDLE.with(|cell| {
            let mut cell = cell.borrow_mut();
            if cell.is_some() {
                return false;
            }
            *cell = Some(idle);
            true
        });
        RunPool { installed }
    }

    /// Ends the run: its idle buffers, trimmed to [`MAX_IDLE_BYTES`], to keep for the next.
    pub fn finish(self) -> Idle {
        if !self.installed {
            return Idle::new();
        }
        let mut idle = IDLE
            .with(|cell| cell.borrow_mut().take())
            .unwrap_or_default();
        webinfer_core::order::sort_by_key(&mut idle, |v| v.capacity());
        let mut bytes: usize = idle.iter().map(|v| v.capacity() * 4).sum();
        while bytes > MAX_IDLE_BYTES {
            bytes -= idle.pop().map_or(0, |v| v.capacity() * 4);
        }
        idle
    }
}

impl Drop for RunPool {
    fn drop(&mut self) {
        if self.installed {
            IDLE.with(|cell| cell.borrow_mut().take());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_only_inside_a_run() {
        // A reused buffer keeps its capacity; a fresh one has exactly the requested length.
        recycle(Vec::with_capacity(MIN_POOLED * 2));
        assert_eq!(
            buffer(MIN_POOLED + 3, 0.0).capacity(),
            MIN_POOLED + 3,
            "no run: nothing kept"
        );
        let kept = {
            let run = RunPool::install(Idle::new());
            recycle(Vec::with_capacity(MIN_POOLED * 8));
            // Too small a request for that buffer.
            assert_eq!(buffer(MIN_POOLED, 0.0).capacity(), MIN_POOLED);
            recycle(Vec::with_capacity(MIN_POOLED * 2));
            // Best fit.
            let w = buffer(MIN_POOLED + 3, 7.0);
            assert_eq!(w.capacity(), MIN_POOLED * 2);
            assert!(w.len() == MIN_POOLED + 3 && w.iter().all(|&x| x == 7.0));
            recycle(w);
            let c = copied(&vec![2.5; MIN_POOLED * 3]);
            assert_eq!(c.capacity(), MIN_POOLED * 8);
            assert!(c.len() == MIN_POOLED * 3 && c.iter().all(|&x| x == 2.5));
            recycle(c);
            run.finish()
        };
        assert!(IDLE.with(|i| i.borrow().is_none()));
        // What the run left idle carries over to the next one.
        assert_eq!(
            kept.iter().map(Vec::capacity).collect::<Vec<_>>(),
            [MIN_POOLED * 2, MIN_POOLED * 8]
        );
        let run = RunPool::install(kept);
        assert_eq!(buffer(MIN_POOLED * 5, 0.0).capacity(), MIN_POOLED * 8);
        drop(run);
        assert!(IDLE.with(|i| i.borrow().is_none()));
    }
}
