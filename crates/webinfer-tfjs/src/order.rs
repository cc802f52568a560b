//! One sort for the whole program.
//!
//! Every `slice::sort*` call on its own element type and comparator instantiates the standard
//! library's sort afresh: in the browser module 2-3.5 KB of code each, 9.9 KB of the CPU-only
//! module's gzip for the eight it had. The crates of webinfer sort small lists off the hot
//! paths (names for messages, axes, cache entries), so they share this one: positions are
//! sorted through a `dyn` comparator (one small merge sort over `usize`), then the elements
//! are moved into place.

use std::cmp::Ordering;

/// Sorts `v` by `cmp`, stably (equal elements keep their order).
pub fn sort_by<T>(v: &mut [T], mut cmp: impl FnMut(&T, &T) -> Ordering) {
    let mut order: Vec<usize> = (0..v.len()).collect();
    {
        let v: &[T] = v;
        sort_positions(&mut order, &mut |a, b| match (v.get(a), v.get(b)) {
            (Some(x), Some(y)) => cmp(x, y),
            _ => Ordering::Equal,
        });
    }
    permute(v, &mut order);
}

/// Sorts `v` in ascending order, stably.
pub fn sort<T: Ord>(v: &mut [T]) {
    sort_by(v, T::cmp);
}

/// Sorts `v` by `key`, stably.
pub fn sort_by_key<T, K: Ord>(v: &mut [T], mut key: impl FnMut(&T) -> K) {
    sort_by(v, |a, b| key(a).cmp(&key(b)));
}

/// Sorts positions by `cmp`, stably: a bottom-up merge sort, O(n log n). (Not the standard
/// library's sort: even one instance of it is ~3 KB of code in the browser module, for lists
/// of a few hundred names at most.)
fn sort_positions(order: &mut [usize], cmp: &mut dyn FnMut(usize, usize) -> Ordering) {
    let mut from = order.to_vec();
    let mut to = from.clone();
    let mut width = 1;
    while width < from.len() {
        let pair = width.saturating_mul(2);
        // Each pair of sorted runs of `width` merged into one of `pair`.
        for (src, dst) in from.chunks(pair).zip(to.chunks_mut(pair)) {
            let (left, right) = src.split_at(width.min(src.len()));
            let (mut l, mut r) = (left.iter().peekable(), right.iter().peekable());
            for slot in dst {
                // The left run wins ties: equal elements keep their order.
                let take_left = match (l.peek(), r.peek()) {
                    (Some(&&a), Some(&&b)) => cmp(a, b) != Ordering::Greater,
                    (Some(_), None) => true,
                    _ => false,
                };
                let next = if take_left { l.next() } else { r.next() };
                *slot = next.copied().unwrap_or_default();
            }
        }
        std::mem::swap(&mut from, &mut to);
        width = pair;
    }
    order.copy_from_slice(&from);
}

/// Reorders `v` so that position `i` holds what was at `order[i]` (a permutation), one
/// cycle at a time; `order` is used up.
fn permute<T>(v: &mut [T], order: &mut [usize]) {
    for i in 0..order.len() {
        let mut j = i;
        while let Some(slot) = order.get_mut(j) {
            let k = std::mem::replace(slot, usize::MAX);
            if k == usize::MAX || k == i || k >= v.len() {
                break;
            }
            v.swap(j, k);
            j = k;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A xorshift generator, for lists with many ties.
    fn numbers(seed: u64, n: usize, range: u64) -> Vec<u64> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % range
            })
            .collect()
    }

    #[test]
    fn sorts_like_the_standard_stable_sort() {
        for n in [0usize, 1, 2, 3, 7, 20, 33, 100, 1000] {
            for range in [1u64, 3, 10, 1 << 40] {
                // (key, original position): stability shows in the positions.
                let v: Vec<(u64, usize)> = numbers(n as u64 * 31 + range, n, range)
                    .into_iter()
                    .enumerate()
                    .map(|(i, k)| (k, i))
                    .collect();
                let mut want = v.clone();
                want.sort_by_key(|a| a.0);
                let mut got = v.clone();
                sort_by(&mut got, |a, b| a.0.cmp(&b.0));
                assert_eq!(got, want, "n {n} range {range}");
                let mut got = v.clone();
                sort_by_key(&mut got, |a| a.0);
                assert_eq!(got, want, "by key, n {n} range {range}");
                let mut got = v;
                sort(&mut got);
                want.sort();
                assert_eq!(got, want, "ord, n {n} range {range}");
            }
        }
        let mut words = vec!["pear", "apple", "fig", "apple"];
        sort(&mut words);
        assert_eq!(words, ["apple", "apple", "fig", "pear"]);
        let mut rev = vec![3, 1, 2];
        sort_by(&mut rev, |a, b| b.cmp(a));
        assert_eq!(rev, [3, 2, 1]);
    }
}
