//! Helpers shared by the fuzz targets: how one fuzz input becomes a `model.json` and its shards.
//!
//! An input is `JSON \0 BYTES`. JSON text cannot hold a raw NUL byte (control characters must
//! be escaped inside strings), so the first NUL ends the JSON and the rest is the shard data.
//! The seeds (`fuzz/seed.mjs`) are written in that form from the fixtures.

use webinfer_tfjs::{Limits, WeightGroup};

/// Split an input at its first NUL: `(json, shard bytes)`; no NUL means no shard bytes.
pub fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// Cut `bytes` into shards, one list per group and one slice per path, in manifest order.
///
/// Group `g` takes the bytes its manifest declares (or what is left), split as evenly as can
/// be between its paths, so tensors straddle shard boundaries; the last group also takes any
/// bytes left over, so shards longer than declared are explored too (shorter ones come from
/// inputs that run out).
pub fn shards<'a>(groups: &[WeightGroup], mut bytes: &'a [u8]) -> Vec<Vec<&'a [u8]>> {
    let mut out = Vec::with_capacity(groups.len());
    for (g, group) in groups.iter().enumerate() {
        let want = usize::try_from(group.byte_len()).unwrap_or(usize::MAX);
        let take = if g + 1 == groups.len() {
            bytes.len()
        } else {
            want.min(bytes.len())
        };
        let (mut mine, rest) = bytes.split_at(take);
        bytes = rest;
        let n = group.paths.len();
        let mut pieces = Vec::with_capacity(n);
        for k in 0..n {
            let len = if k + 1 == n {
                mine.len()
            } else {
                mine.len() / (n - k)
            };
            let (piece, rest) = mine.split_at(len);
            pieces.push(piece);
            mine = rest;
        }
        out.push(pieces);
    }
    out
}

/// Limits for the targets that build and run models.
///
/// Tighter than the defaults so that a model at the limit still runs in milliseconds and stays
/// far below libFuzzer's 2 GiB malloc / RSS limits: an allocation that is *not* governed by a
/// limit then shows up as a crash ("out-of-memory (malloc(...))") or a timeout, which is what
/// these targets are looking for.
pub fn fuzz_limits() -> Limits {
    Limits {
        max_activation_elements: 1 << 16,
        max_tensor_elements: 1 << 20,
        max_total_weight_bytes: 16 << 20,
        ..Limits::default()
    }
}

/// Numbers a model file may hold that shape arithmetic gets wrong: zero, negatives, powers of
/// two around the 32- and 64-bit limits, values past what f64 holds exactly.
const INTERESTING: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "-1",
    "-2",
    "255",
    "65536",
    "1048576",
    "100000",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "9007199254740993",
    "4611686018427387904",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "1e300",
    "0.5",
];

/// A mutator for `JSON \0 BYTES` inputs: half the time it replaces one number of the JSON
/// (digits inside strings too: graph-models write integers as strings) by an
/// [`INTERESTING`] one, which byte-level mutation reaches only rarely; otherwise libFuzzer's
/// own mutation.
pub fn mutate(data: &mut [u8], size: usize, max_size: usize, seed: u32) -> usize {
    let mut rng = u64::from(seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let size = size.min(data.len());
    let json_end = data[..size].iter().position(|&b| b == 0).unwrap_or(size);
    let mut spans = Vec::new();
    let mut i = 0;
    while i < json_end {
        if data[i].is_ascii_digit()
            || (data[i] == b'-' && i + 1 < json_end && data[i + 1].is_ascii_digit())
        {
            let start = i;
            i += 1;
            while i < json_end
                && (data[i].is_ascii_digit() || matches!(data[i], b'.' | b'e' | b'E' | b'+' | b'-'))
            {
                i += 1;
            }
            spans.push((start, i));
        } else {
            i += 1;
        }
    }
    if spans.is_empty() || next() % 2 == 0 {
        return libfuzzer_sys::fuzzer_mutate(data, size, max_size);
    }
    let (start, end) = spans[(next() % spans.len() as u64) as usize];
    let new = INTERESTING[(next() % INTERESTING.len() as u64) as usize].as_bytes();
    let new_size = size - (end - start) + new.len();
    if new_size > max_size || new_size > data.len() {
        return libfuzzer_sys::fuzzer_mutate(data, size, max_size);
    }
    data.copy_within(end..size, start + new.len());
    data[start..start + new.len()].copy_from_slice(new);
    new_size
}
