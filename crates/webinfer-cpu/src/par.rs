//! Execution context and the row-parallel loop of the direct kernels.
//!
//! GEMMs are threaded by matrixmultiply itself (its own pool, sized by `MATMUL_NUM_THREADS`,
//! at most 4). The direct kernels (depthwise convolution, pooling, epilogues, resize...) split
//! their output rows into chunks that a small persistent pool of worker threads and the
//! calling thread claim one by one. A pool, not `std::thread::scope`: spawning and joining a
//! thread measured 0.2-1.3 ms on the CI-like VMs, more than many whole ops take.
//! On wasm32 everything runs on the calling thread.

/// Per-run settings the kernels read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx {
    /// Threads the direct kernels may use (1 = run on the calling thread only).
    pub threads: usize,
}

impl Default for Ctx {
    fn default() -> Self {
        Ctx {
            threads: default_threads(),
        }
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

/// Work (multiply-adds or element visits) below which a chunk is not worth handing out.
const MIN_WORK_PER_CHUNK: usize = 1 << 15;
/// Chunks per thread: more than one, so that a late-waking worker does not hold up the rest.
const CHUNKS_PER_THREAD: usize = 4;

/// Calls `f(first_row, rows)` over `data` cut into contiguous runs of whole rows of
/// `row_len` elements (the last row may be shorter), in parallel when `ctx.threads > 1` and
/// `cost_per_row * rows` is worth it. `f` gets its rows as a disjoint `&mut` slice.
pub(crate) fn for_rows<F>(ctx: Ctx, data: &mut [f32], row_len: usize, cost_per_row: usize, f: F)
where
    F: Fn(usize, &mut [f32]) + Sync,
{
    if row_len == 0 || data.is_empty() {
        return;
    }
    let rows = data.len().div_ceil(row_len);
    let work = rows.saturating_mul(cost_per_row.max(1));
    let chunks = ctx
        .threads
        .saturating_mul(CHUNKS_PER_THREAD)
        .min(rows)
        .min(work / MIN_WORK_PER_CHUNK);
    if cfg!(target_arch = "wasm32") || ctx.threads <= 1 || chunks <= 1 {
        f(0, data);
        return;
    }
    let per = rows.div_ceil(chunks);
    let queue = std::sync::Mutex::new(
        data.chunks_mut(per * row_len)
            .enumerate()
            .collect::<Vec<_>>(),
    );
    let count = queue.lock().map_or(0, |q| q.len());
    pool::run(count, &|_| {
        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop();
        if let Some((i, chunk)) = next {
            f(i * per, chunk);
        }
    });
}

#[cfg(target_arch = "wasm32")]
mod pool {
    /// Runs `task(0) .. task(count - 1)` on the calling thread.
    pub fn run(count: usize, task: &(dyn Fn(usize) + Sync)) {
        (0..count).for_each(task);
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod pool {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};

    /// A task as the workers see it (lifetime erased, see [`run`]).
    type Task = dyn Fn(usize) + Sync + 'static;

    /// The job being run: a task and the indices handed out and finished so far.
    struct Job {
        /// Lifetime-erased: valid until `done == count` (see [`run`]).
        task: *const Task,
        next: usize,
        count: usize,
        done: usize,
        panicked: bool,
    }

    // SAFETY: the pointer is only dereferenced by the thread that claimed an index, while
    // `run` keeps the task alive; `Task` itself is `Sync`.
    unsafe impl Send for Job {}

    struct Pool {
        job: Mutex<Option<Job>>,
        /// Signalled when a job is posted (workers wait here).
        posted: Condvar,
        /// Signalled when a job's last index finishes (the poster waits here).
        finished: Condvar,
        /// Bumped, under the `job` lock, every time a job is posted.
        epoch: AtomicUsize,
        /// Held by the thread whose job is running; other callers run inline.
        busy: AtomicBool,
        workers: usize,
    }

    fn lock(m: &Mutex<Option<Job>>) -> MutexGuard<'_, Option<Job>> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The process-wide pool: one worker fewer than the machine's threads (the caller works
    /// too), started on first use.
    fn pool() -> &'static Pool {
        static POOL: OnceLock<Pool> = OnceLock::new();
        static STARTED: std::sync::Once = std::sync::Once::new();
        let p = POOL.get_or_init(|| Pool {
            job: Mutex::new(None),
            posted: Condvar::new(),
            finished: Condvar::new(),
            epoch: AtomicUsize::new(0),
            busy: AtomicBool::new(false),
            workers: super::default_threads().saturating_sub(1),
        });
        STARTED.call_once(|| {
            for i in 0..p.workers {
                // A worker that cannot start only means less parallelism.
                let _ = std::thread::Builder::new()
                    .name(format!("webinfer-cpu-{i}"))
                    .spawn(move || worker(p));
            }
        });
        p
    }

    /// Runs `task(0) .. task(count - 1)`, each exactly once, on the calling thread and the
    /// pool's workers; returns when all have finished. Runs inline when the pool is already
    /// busy (another caller, or a nested call).
    pub fn run(count: usize, task: &(dyn Fn(usize) + Sync)) {
        let p = pool();
        if p.workers == 0 || count <= 1 || p.busy.swap(true, Ordering::Acquire) {
            (0..count).for_each(task);
            return;
        }
        // SAFETY: only the lifetime is erased. This function does not return before every
        // index has finished (`done == count`), and it removes the job under the lock, so
        // no thread dereferences the pointer after `task` goes out of scope.
        let erased: *const Task =
            unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), &'static Task>(task) };
        {
            let mut job = lock(&p.job);
            *job = Some(Job {
                task: erased,
                next: 0,
                count,
                done: 0,
                panicked: false,
            });
            p.epoch.fetch_add(1, Ordering::Release);
        }
        p.posted.notify_all();
        work_on(p);
        let mut job = lock(&p.job);
        while job.as_ref().is_some_and(|j| j.done < j.count) {
            job = p.finished.wait(job).unwrap_or_else(|e| e.into_inner());
        }
        let panicked = job.take().is_some_and(|j| j.panicked);
        drop(job);
        p.busy.store(false, Ordering::Release);
        if panicked {
            panic!("a webinfer-cpu kernel panicked on a worker thread");
        }
    }

    /// Claims and runs indices of the current job until none are left.
    fn work_on(p: &Pool) {
        loop {
            let (task, i) = {
                let mut job = lock(&p.job);
                match job.as_mut() {
                    Some(j) if j.next < j.count => {
                        j.next += 1;
                        (j.task, j.next - 1)
                    }
                    _ => return,
                }
            };
            // SAFETY: index `i` is claimed and unfinished, so `run` is still waiting and
            // the task is alive (see `run`).
            let result = catch_unwind(AssertUnwindSafe(|| unsafe { (*task)(i) }));
            let mut job = lock(&p.job);
            if let Some(j) = job.as_mut() {
                j.done += 1;
                j.panicked |= result.is_err();
                if j.done == j.count {
                    p.finished.notify_all();
                }
            }
        }
    }

    /// Spins this many times for the next job before sleeping: ops come back to back, but a
    /// long spin would steal the core from matrixmultiply's GEMM threads.
    const SPINS: usize = 256;

    fn worker(p: &'static Pool) {
        let mut seen = 0;
        loop {
            for _ in 0..SPINS {
                if p.epoch.load(Ordering::Acquire) != seen {
                    break;
                }
                std::hint::spin_loop();
            }
            let mut job = lock(&p.job);
            while p.epoch.load(Ordering::Acquire) == seen {
                job = p.posted.wait(job).unwrap_or_else(|e| e.into_inner());
            }
            seen = p.epoch.load(Ordering::Acquire);
            drop(job);
            work_on(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn for_rows_visits_every_row_once_in_parallel() {
        let ctx = Ctx { threads: 4 };
        for rows in [1usize, 2, 7, 64, 1000] {
            let row_len = 33;
            let mut data = vec![0.0f32; rows * row_len - 5];
            for_rows(ctx, &mut data, row_len, 1 << 14, |first, part| {
                for (i, v) in part.iter_mut().enumerate() {
                    *v += (first * row_len + i) as f32 + 1.0;
                }
            });
            for (i, v) in data.iter().enumerate() {
                assert_eq!(*v, i as f32 + 1.0, "rows {rows}, element {i}");
            }
        }
    }

    #[test]
    fn concurrent_callers_share_the_pool() {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let mut data = vec![t as f32; 4096];
                        for_rows(Ctx { threads: 3 }, &mut data, 64, 1 << 14, |_, part| {
                            part.iter_mut().for_each(|v| *v += 1.0)
                        });
                        assert!(data.iter().all(|&v| v == t as f32 + 1.0));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
}
