//! Execution context and a minimal row-parallel loop over scoped threads.
//!
//! GEMMs are threaded by matrixmultiply itself (its pool, sized by `MATMUL_NUM_THREADS`, at
//! most 4). The direct kernels (depthwise convolution, pooling, col2im...) split their output
//! rows over `std::thread::scope` threads when the work is large enough to pay for the spawn.
//! On wasm32 everything runs on the calling thread.

/// Per-run settings the kernels read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx {
    /// Threads the direct kernels may use (1 = run on the calling thread only).
    pub threads: usize,
}

impl Default for Ctx {
    fn default() -> Self {
        Ctx { threads: default_threads() }
    }
}

/// The machine's parallelism (cached), 1 on wasm32.
pub(crate) fn default_threads() -> usize {
    #[cfg(target_arch = "wasm32")]
    {
        1
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

/// Work (in multiply-adds or element visits) below which a kernel stays on one thread:
/// spawning a scoped thread costs some tens of microseconds.
const MIN_WORK_PER_THREAD: usize = 1 << 17;

/// Calls `f(first_row, rows)` over `data` cut into contiguous runs of whole rows of
/// `row_len` elements, on up to `ctx.threads` threads when `cost_per_row * rows` is worth
/// it. `f` must only write its own rows (it gets them as a disjoint `&mut` slice).
pub(crate) fn for_rows<F>(ctx: Ctx, data: &mut [f32], row_len: usize, cost_per_row: usize, f: F)
where
    F: Fn(usize, &mut [f32]) + Sync,
{
    if row_len == 0 || data.is_empty() {
        return;
    }
    let rows = data.len() / row_len;
    let work = rows.saturating_mul(cost_per_row.max(1));
    let threads = ctx.threads.min(rows).min(work / MIN_WORK_PER_THREAD).max(1);
    if cfg!(target_arch = "wasm32") || threads <= 1 {
        f(0, data);
        return;
    }
    let per = rows.div_ceil(threads);
    // A shared queue of chunks: if the OS refuses a thread, the others take its share.
    let queue = std::sync::Mutex::new(data.chunks_mut(per * row_len).enumerate().collect::<Vec<_>>());
    let work = || loop {
        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match next {
            Some((i, chunk)) => f(i * per, chunk),
            None => break,
        }
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            let _ = std::thread::Builder::new().spawn_scoped(s, &work);
        }
        work();
    });
}
