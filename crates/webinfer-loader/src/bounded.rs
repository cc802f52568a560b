//! [`bounded`]: run futures made from a list, at most `n` at a time, yielding each output as
//! it completes (what `futures`' `buffer_unordered` does).
//!
//! Written here because the loader runs at most a handful at once (its `concurrency`): a wake
//! polls each running future again, which at that size costs nothing, where `futures`'
//! `FuturesUnordered` (a waker per future, a ready queue) was ~10 KB of the browser module.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::Stream;

/// Runs `make(item)` for each item of `items`, at most `n` (at least 1) at a time; the stream
/// yields their outputs in the order they complete. Items are taken in order as places free
/// up. Dropping the stream drops the futures still running.
pub(crate) fn bounded<I, F, Fut>(items: I, n: usize, make: F) -> Bounded<I::IntoIter, F, Fut>
where
    I: IntoIterator,
    F: FnMut(I::Item) -> Fut,
    Fut: Future,
{
    Bounded {
        items: items.into_iter(),
        make,
        running: Vec::new(),
        n: n.max(1),
    }
}

pub(crate) struct Bounded<It, F, Fut> {
    items: It,
    make: F,
    running: Vec<Pin<Box<Fut>>>,
    n: usize,
}

// The futures are boxed (pinned on the heap): the stream itself may move.
impl<It, F, Fut> Unpin for Bounded<It, F, Fut> {}

impl<It, F, Fut> Stream for Bounded<It, F, Fut>
where
    It: Iterator,
    F: FnMut(It::Item) -> Fut,
    Fut: Future,
{
    type Item = Fut::Output;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Fut::Output>> {
        let this = self.get_mut();
        while this.running.len() < this.n {
            match this.items.next() {
                Some(item) => this.running.push(Box::pin((this.make)(item))),
                None => break,
            }
        }
        if this.running.is_empty() {
            return Poll::Ready(None);
        }
        for i in 0..this.running.len() {
            if let Some(Poll::Ready(out)) = this.running.get_mut(i).map(|f| f.as_mut().poll(cx)) {
                // Its place goes to the next item at the next poll (the caller polls again
                // for the next output).
                drop(this.running.swap_remove(i));
                return Poll::Ready(Some(out));
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::oneshot;
    use futures::StreamExt;
    use std::cell::Cell;
    use std::rc::Rc;

    #[test]
    fn at_most_n_run_and_outputs_come_as_they_complete() {
        futures::executor::block_on(async {
            let (senders, receivers): (Vec<_>, Vec<_>) =
                (0..5).map(|_| oneshot::channel::<u32>()).unzip();
            let running = Rc::new(Cell::new(0usize));
            let most = Rc::new(Cell::new(0usize));
            let mut s = bounded(receivers.into_iter().enumerate(), 2, |(i, rx)| {
                let (running, most) = (running.clone(), most.clone());
                async move {
                    running.set(running.get() + 1);
                    most.set(most.get().max(running.get()));
                    let v = rx.await.unwrap();
                    running.set(running.get() - 1);
                    (i, v)
                }
            });
            let mut senders: Vec<Option<oneshot::Sender<u32>>> =
                senders.into_iter().map(Some).collect();
            // Complete the second before the first: it comes out first.
            let poll_once = |s: &mut Bounded<_, _, _>| futures::FutureExt::now_or_never(s.next());
            assert!(poll_once(&mut s).is_none());
            senders[1].take().unwrap().send(11).unwrap();
            assert_eq!(s.next().await, Some((1, 11)));
            senders[0].take().unwrap().send(10).unwrap();
            assert_eq!(s.next().await, Some((0, 10)));
            for (i, tx) in senders.iter_mut().enumerate().skip(2) {
                tx.take().unwrap().send(i as u32 * 10).unwrap();
            }
            let mut rest: Vec<(usize, u32)> = s.collect().await;
            rest.sort();
            assert_eq!(rest, vec![(2, 20), (3, 30), (4, 40)]);
            assert_eq!(most.get(), 2, "more than n ran at once");
        });
    }

    #[test]
    fn empty_and_zero() {
        futures::executor::block_on(async {
            let out: Vec<u32> = bounded(Vec::<u32>::new(), 3, |x| async move { x })
                .collect()
                .await;
            assert!(out.is_empty());
            // n = 0 runs one at a time.
            let out: Vec<u32> = bounded(vec![1, 2, 3], 0, |x| async move { x })
                .collect()
                .await;
            assert_eq!(out, vec![1, 2, 3]);
        });
    }
}
