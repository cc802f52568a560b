//! Decoding weights while their shards stream in: [`StreamDecoder`].
//!
//! A download hands over each shard's bytes in chunks, as they arrive and in
//! any order across shards; the decoder writes every chunk straight into the
//! final tensors (de-quantizing on the way), so no shard is ever held whole.
//! Peak memory is the decoded weights plus what cannot be placed yet.
//!
//! Placing a chunk needs its offset within its weight group, which is the
//! file's offset plus the lengths of the group's earlier files. The first file
//! of every group starts at 0; a later file's offset is known once the lengths
//! of the files before it are ([`StreamDecoder::set_file_length`], from a
//! trusted `Content-Length` or on completion). Until then its chunks wait,
//! copied, and are placed as soon as the offset is known.
//!
//! Values are decoded exactly as [`decode_weight`](crate::decode_weight) does
//! (tfjs's rules); an element split between two chunks (or two shards) is
//! assembled first. [`StreamDecoder::finish`] checks that every byte of every
//! weight arrived exactly once.

use crate::decode::{Codec, DecodedWeight, TensorData};
use crate::error::{FormatError, Result};
use crate::manifest::{check_unique_names, WeightGroup};

/// Decodes the weights of a manifest from chunks of its shard files.
///
/// Files are numbered in manifest order, group by group (the order of
/// [`StreamDecoder::file_paths`]).
#[derive(Debug)]
pub struct StreamDecoder {
    groups: Vec<GroupState>,
    files: Vec<FileState>,
    weights: Vec<WeightState>,
    /// The weights were taken: no byte may arrive any more.
    taken: bool,
    /// The codes kept ([`StreamDecoder::keep_codes`]) of the weights taken.
    codes: Vec<KeptCodes>,
}

/// The stored bytes of a uint8-quantized or float16 weight, kept besides its decoded values
/// ([`StreamDecoder::keep_codes`]).
#[derive(Debug, Clone)]
pub struct KeptCodes {
    pub name: String,
    /// One byte per element (uint8), or two, little-endian (float16).
    pub codes: Vec<u8>,
    pub format: CodeFormat,
}

/// How [`KeptCodes`] decode.
#[derive(Debug, Clone)]
pub enum CodeFormat {
    /// `lut[code]` is the value a code decodes to, bit for bit.
    U8 { lut: Box<[f32; 256]> },
    /// IEEE half precision, which widens to float32 exactly.
    F16,
}

#[derive(Debug)]
struct GroupState {
    paths: Vec<String>,
    len: u64,
    /// Range of this group's weights in `weights`.
    weights: std::ops::Range<usize>,
    /// Range of this group's files in `files`.
    files: std::ops::Range<usize>,
    /// Bytes of the group known to exist: the lengths of its first files, up
    /// to the first one whose length is not known yet.
    known: u64,
    /// Weights (index in `weights`) before this one have their output.
    next_alloc: usize,
    /// A file's length turned out other than the one inferred for it (the group fails):
    /// its path, the length inferred and the bytes it has (at least).
    conflict: Option<(String, u64, u64)>,
}

#[derive(Debug)]
struct FileState {
    group: usize,
    path: String,
    length: Option<u64>,
    /// Offset within the group, once every earlier file's length is known.
    offset: Option<u64>,
    /// `length` was inferred (the group's length less every other file's), not given.
    inferred: bool,
    /// Chunks that arrived before `offset` was known: (offset in file, bytes).
    pending: Vec<(u64, Vec<u8>)>,
    received: u64,
}

/// Where the values of a diverted weight go ([`StreamDecoder::divert`]): a buffer the host
/// does not hold, such as GPU memory.
pub trait ValueSink {
    /// The decoded values from element `first` on. An error stops the load; its message
    /// should say what failed.
    fn write(&mut self, first: usize, values: &[f32]) -> std::result::Result<(), String>;
}

/// Where the stored bytes of a weight diverted as stored go ([`StreamDecoder::divert_stored`]).
pub trait StoredSink {
    /// `bytes` of the weight's stored form, starting `offset` bytes into it: whole elements,
    /// each byte once, in the order the shards deliver them (not always ascending, when the
    /// weight straddles shards). An error stops the load; its message should say what failed.
    fn write(&mut self, offset: usize, bytes: &[u8]) -> std::result::Result<(), String>;
}

/// Where a diverted weight goes.
enum Diverted {
    /// Its decoded values, through a scratch ([`StreamDecoder::divert`]).
    Values {
        sink: Box<dyn ValueSink>,
        scratch: TensorData,
    },
    /// Its stored bytes ([`StreamDecoder::divert_stored`]).
    Stored(Box<dyn StoredSink>),
}

impl std::fmt::Debug for Diverted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Diverted").finish_non_exhaustive()
    }
}

/// Elements decoded at a time for a diverted weight (its scratch: 64 KiB).
const DIVERT_RUN: usize = 16 * 1024;

#[derive(Debug)]
struct WeightState {
    name: String,
    shape: Vec<usize>,
    codec: Codec,
    /// Start within the group's bytes, and stored length.
    offset: u64,
    len: u64,
    count: usize,
    /// Allocated when the weight's first byte arrives, fallibly.
    out: Option<TensorData>,
    /// Set for a weight whose values go to a sink instead of `out`.
    diverted: Option<Diverted>,
    /// The stored bytes, kept as they arrive ([`StreamDecoder::keep_codes`]).
    codes: Option<Vec<u8>>,
    filled: u64,
    /// Elements whose bytes arrived in pieces: (element, bytes, bit mask of bytes present).
    partial: Vec<(u64, [u8; 4], u8)>,
}

impl StreamDecoder {
    /// A decoder for every weight of `manifest`. A weight's output is allocated
    /// (fallibly: a refused allocation is an error, never an abort) once some of
    /// its bytes are sure to come, so a manifest that declares more than ever
    /// arrives costs nothing: when a byte of its group is placed and the weight
    /// starts before that byte's end or within the files whose lengths are
    /// known. Outputs are allocated in manifest order, before the chunk being
    /// placed is decoded, which keeps the large blocks together instead of
    /// interleaved with the short-lived chunk buffers (dense_heavy, 19.6 MiB of
    /// weights, CPU backend in Chromium: WASM memory after load 25.0-27.4 MiB
    /// over 5 loads before, 23.9-25.6 after). Fails on duplicate
    /// names and unsupported quantizations, as decoding would.
    pub fn new(manifest: &[WeightGroup]) -> Result<Self> {
        check_unique_names(manifest)?;
        let mut groups = Vec::with_capacity(manifest.len());
        let mut files = Vec::new();
        let mut weights = Vec::new();
        for (g, group) in manifest.iter().enumerate() {
            let len = group.checked_byte_len().ok_or(FormatError::ShardLength {
                group: g,
                paths: group.paths.clone(),
                expected: u64::MAX,
                actual: 0,
            })?;
            let first_weight = weights.len();
            let mut offset = 0u64;
            for entry in &group.weights {
                let codec = Codec::of(entry)?;
                let n = entry
                    .checked_stored_bytes()
                    .ok_or_else(|| too_large(&entry.name))?;
                let count =
                    usize::try_from(entry.element_count()).map_err(|_| too_large(&entry.name))?;
                weights.push(WeightState {
                    name: entry.name.clone(),
                    shape: entry.shape.clone(),
                    count,
                    out: None,
                    diverted: None,
                    codes: None,
                    codec,
                    offset,
                    len: n,
                    filled: 0,
                    partial: Vec::new(),
                });
                offset = offset
                    .checked_add(n)
                    .ok_or_else(|| too_large(&entry.name))?;
            }
            let first_file = files.len();
            for (k, path) in group.paths.iter().enumerate() {
                files.push(FileState {
                    group: g,
                    path: path.clone(),
                    length: None,
                    inferred: false,
                    offset: (k == 0).then_some(0),
                    pending: Vec::new(),
                    received: 0,
                });
            }
            groups.push(GroupState {
                paths: group.paths.clone(),
                len,
                weights: first_weight..weights.len(),
                files: first_file..files.len(),
                known: 0,
                next_alloc: first_weight,
                conflict: None,
            });
        }
        Ok(StreamDecoder {
            groups,
            files,
            weights,
            taken: false,
            codes: Vec::new(),
        })
    }

    /// Sends weight `name`'s values to `sink` as they are decoded, instead of holding them:
    /// [`StreamDecoder::take_weights`] then gives the weight with no data (its shape only).
    /// Only float32 weights (stored as float32, float16, or quantized to uint8 / uint16) can
    /// be diverted, and only before any of their bytes arrived.
    pub fn divert(&mut self, name: &str, sink: Box<dyn ValueSink>) -> Result<()> {
        let Some(w) = self.weights.iter_mut().find(|w| w.name == name) else {
            return Err(FormatError::Weight {
                weight: name.to_owned(),
                message: "cannot divert a weight the manifest does not have".into(),
            });
        };
        let float = matches!(w.codec, Codec::F32 | Codec::F16 | Codec::AffineF32 { .. });
        if !float || w.filled > 0 || w.out.is_some() || self.taken {
            return Err(FormatError::Weight {
                weight: name.to_owned(),
                message: "only a float32 weight none of whose bytes arrived yet can be diverted"
                    .into(),
            });
        }
        w.diverted = Some(Diverted::Values {
            sink,
            scratch: TensorData::F32(Vec::new()),
        });
        Ok(())
    }

    /// How weight `name` is stored, when it is a uint8-quantized or a float16 float weight
    /// (the forms [`StreamDecoder::divert_stored`] and [`StreamDecoder::keep_codes`] take).
    pub fn stored_format(&self, name: &str) -> Option<CodeFormat> {
        self.weights
            .iter()
            .find(|w| w.name == name)
            .and_then(|w| code_format(w.codec))
    }

    /// Sends weight `name`'s stored bytes to `sink` as they arrive, undecoded (a GPU that
    /// decodes them as it reads them holds the weight at its stored size):
    /// [`StreamDecoder::take_weights`] then gives the weight with no data. Only a weight with a
    /// [`StreamDecoder::stored_format`], before any of its bytes arrived.
    pub fn divert_stored(&mut self, name: &str, sink: Box<dyn StoredSink>) -> Result<()> {
        let Some(w) = self.weights.iter_mut().find(|w| w.name == name) else {
            return Err(FormatError::Weight {
                weight: name.to_owned(),
                message: "cannot divert a weight the manifest does not have".into(),
            });
        };
        if !has_stored_form(w.codec)
            || w.filled > 0
            || w.out.is_some()
            || w.diverted.is_some()
            || self.taken
        {
            return Err(FormatError::Weight {
                weight: name.to_owned(),
                message: "only a uint8-quantized or float16 weight none of whose bytes arrived \
                          yet can be diverted as stored"
                    .into(),
            });
        }
        w.diverted = Some(Diverted::Stored(sink));
        Ok(())
    }

    /// Keeps the stored bytes of weight `name` too, as they arrive, when it is a
    /// uint8-quantized or a float16 float weight none of whose bytes arrived yet (returns
    /// whether it is); [`StreamDecoder::take_codes`] gives them once the weights are taken.
    /// A GPU can hold such a weight as it is stored and decode it as it reads it.
    pub fn keep_codes(&mut self, name: &str) -> Result<bool> {
        let Some(w) = self.weights.iter_mut().find(|w| w.name == name) else {
            return Err(FormatError::Weight {
                weight: name.to_owned(),
                message: "cannot keep the codes of a weight the manifest does not have".into(),
            });
        };
        if !has_stored_form(w.codec) || w.filled > 0 || w.diverted.is_some() || self.taken {
            return Ok(false);
        }
        let bytes = w.count.saturating_mul(w.codec.element_size());
        let mut codes = Vec::new();
        codes
            .try_reserve_exact(bytes)
            .map_err(|_| FormatError::Weight {
                weight: name.to_owned(),
                message: format!("could not allocate {bytes} bytes for its codes"),
            })?;
        codes.resize(bytes, 0);
        w.codes = Some(codes);
        Ok(true)
    }

    /// The codes kept by [`StreamDecoder::keep_codes`], once the weights were taken
    /// (each weight's once).
    pub fn take_codes(&mut self) -> Vec<KeptCodes> {
        std::mem::take(&mut self.codes)
    }

    /// The shard paths in file order.
    pub fn file_paths(&self) -> impl Iterator<Item = &str> {
        self.files.iter().map(|f| f.path.as_str())
    }

    /// Records file `file`'s length: announced before its body (a trusted
    /// `Content-Length`) or found at its end. A second call must agree.
    pub fn set_file_length(&mut self, file: usize, length: u64) -> Result<()> {
        let f = self.files.get_mut(file).ok_or_else(|| no_file(file))?;
        if f.inferred && f.length != Some(length) {
            // The group's other lengths are wrong (a downloader that checks them says which
            // file lied); the bytes placed after this file's are misplaced: the group can
            // only fail now.
            let conflict = (f.path.clone(), f.length.unwrap_or(0), length);
            f.length = Some(length);
            f.inferred = false;
            let g = f.group;
            if let Some(g) = self.groups.get_mut(g) {
                g.conflict.get_or_insert(conflict);
            }
            return Ok(());
        }
        match f.length {
            Some(known) if known != length => {
                return Err(FormatError::FileLength {
                    path: f.path.clone(),
                    expected: known,
                    actual: length,
                })
            }
            Some(_) => return Ok(()),
            None if f.received > length => {
                return Err(FormatError::FileLength {
                    path: f.path.clone(),
                    expected: length,
                    actual: f.received,
                })
            }
            None => f.length = Some(length),
        }
        let g = f.group;
        self.resolve_offsets(g)
    }

    /// `bytes` of file `file`, starting `offset` bytes into it. A file's bytes
    /// arrive in order, each exactly once: `offset` must be where the file's
    /// previous bytes ended.
    pub fn write(&mut self, file: usize, offset: u64, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let taken = self.taken;
        let f = self.files.get_mut(file).ok_or_else(|| no_file(file))?;
        if offset != f.received {
            return Err(FormatError::ShardFile {
                path: f.path.clone(),
                message: format!(
                    "bytes at offset {offset} after {} bytes: a gap or an overlap",
                    f.received
                ),
            });
        }
        let end = offset.saturating_add(bytes.len() as u64);
        if let Some(length) = f.length {
            if end > length && f.inferred && !taken {
                // Longer than the others' lengths leave room for (as above): not placed.
                f.received = end;
                let conflict = (f.path.clone(), length, end);
                let g = f.group;
                if let Some(g) = self.groups.get_mut(g) {
                    g.conflict.get_or_insert(conflict);
                }
                return Ok(());
            }
            if end > length {
                return Err(FormatError::FileLength {
                    path: f.path.clone(),
                    expected: length,
                    actual: end,
                });
            }
        }
        // After the weights were taken every file was complete: a byte too many is the
        // length error above (what a body longer than announced is), anything else this.
        if taken {
            return Err(FormatError::ShardFile {
                path: f.path.clone(),
                message: "bytes arrived after the weights were complete".into(),
            });
        }
        let g = f.group;
        match f.offset {
            Some(start) => {
                let at = start.saturating_add(offset);
                self.place(g, at, bytes)?;
            }
            None => f.pending.push((offset, bytes.to_vec())),
        }
        if let Some(f) = self.files.get_mut(file) {
            f.received = end;
        }
        Ok(())
    }

    /// Whether every byte of every file has arrived and been placed (so
    /// [`StreamDecoder::finish`] can only fail on a manifest inconsistency).
    pub fn is_complete(&self) -> bool {
        (0..self.groups.len()).all(|g| {
            self.group_files(g)
                .iter()
                .all(|f| f.length == Some(f.received))
                && self.group_error(g).is_none()
        })
    }

    /// The decoded weights in manifest order, once every byte has arrived.
    pub fn finish(mut self) -> Result<Vec<DecodedWeight>> {
        self.take_weights()
    }

    /// Like [`StreamDecoder::finish`], but keeps the file table: later calls
    /// that only confirm what is known (a file's length again) still succeed,
    /// so the weights can be taken as soon as [`StreamDecoder::is_complete`]
    /// while concurrent downloads are still closing. Any further byte is an error.
    pub fn take_weights(&mut self) -> Result<Vec<DecodedWeight>> {
        if let Some(e) = (0..self.groups.len()).find_map(|g| self.group_error(g)) {
            return Err(e);
        }
        let mut out = Vec::with_capacity(self.weights.len());
        for w in &self.weights {
            if w.filled != w.len || !w.partial.is_empty() {
                return Err(FormatError::WeightLength {
                    weight: w.name.clone(),
                    expected: w.len,
                    actual: w.filled,
                });
            }
        }
        self.taken = true;
        for mut w in std::mem::take(&mut self.weights) {
            if let Some(codes) = w.codes.take() {
                if let Some(format) = code_format(w.codec) {
                    self.codes.push(KeptCodes {
                        name: w.name.clone(),
                        codes,
                        format,
                    });
                }
            }
            // A weight with no bytes (no elements) was never allocated.
            let data = match w.out.take() {
                Some(data) => data,
                None if w.diverted.is_some() => TensorData::F32(Vec::new()),
                None => try_alloc(w.codec, w.count, &w.name)?,
            };
            out.push(DecodedWeight {
                name: w.name,
                shape: w.shape,
                data,
            });
        }
        for g in &mut self.groups {
            g.weights = 0..0;
        }
        Ok(out)
    }

    fn group_files(&self, group: usize) -> &[FileState] {
        self.groups
            .get(group)
            .and_then(|g| self.files.get(g.files.clone()))
            .unwrap_or(&[])
    }

    /// Why group `group` is not complete: bytes missing or extra, or bytes not
    /// placed yet (an earlier file's length unknown).
    fn group_error(&self, group: usize) -> Option<FormatError> {
        let g = self.groups.get(group)?;
        if let Some((path, inferred, actual)) = &g.conflict {
            return Some(FormatError::ShardFile {
                path: path.clone(),
                message: format!(
                    "{actual} bytes, where the other shards of its group leave room for \
                     exactly {inferred}"
                ),
            });
        }
        let files = self.group_files(group);
        let received = files
            .iter()
            .fold(0u64, |acc, f| acc.saturating_add(f.received));
        let placed = files
            .iter()
            .all(|f| f.offset.is_some() && f.pending.is_empty());
        (received != g.len || !placed).then(|| self.group_length_error(group, g.len, received))
    }

    fn group_length_error(&self, group: usize, expected: u64, actual: u64) -> FormatError {
        FormatError::ShardLength {
            group,
            paths: self
                .groups
                .get(group)
                .map(|g| g.paths.clone())
                .unwrap_or_default(),
            expected,
            actual,
        }
    }

    /// Gives every file of `group` whose predecessors' lengths are all known its
    /// offset, and places what it had waiting. When every length but one is known, that
    /// one is the group's length less the others (the shards of a group hold exactly its
    /// bytes): a shard whose response is late then holds up none of the others' bytes,
    /// which would otherwise wait, copied, in memory (Chromium, dense_heavy, 5 shards: 1
    /// load in 4 had ~0.8 MiB waiting, and WASM memory 25.4 MiB instead of 21.3).
    fn resolve_offsets(&mut self, group: usize) -> Result<()> {
        let Some((range, len)) = self.groups.get(group).map(|g| (g.files.clone(), g.len)) else {
            return Ok(());
        };
        if let Some(files) = self.files.get_mut(range.clone()) {
            let unknown = files.iter().filter(|f| f.length.is_none()).count();
            let only = files.iter().position(|f| f.length.is_none());
            let known = files
                .iter()
                .filter_map(|f| f.length)
                .fold(0u64, u64::saturating_add);
            if let (1, Some(f)) = (unknown, only.and_then(|i| files.get_mut(i))) {
                // A rest smaller than what already arrived: the lengths are wrong, and the
                // group's check says so when the files end.
                if let Some(rest) = len.checked_sub(known).filter(|&r| r >= f.received) {
                    f.length = Some(rest);
                    f.inferred = true;
                }
            }
        }
        let mut offset = 0u64;
        for i in range {
            let Some(f) = self.files.get_mut(i) else {
                break;
            };
            if f.offset.is_none() {
                f.offset = Some(offset);
                let pending = std::mem::take(&mut f.pending);
                for (at, bytes) in pending {
                    let at = offset.checked_add(at).ok_or_else(|| no_file(i))?;
                    self.place(group, at, &bytes)?;
                }
            }
            let Some(len) = self.files.get(i).and_then(|f| f.length) else {
                break;
            };
            offset = offset.saturating_add(len);
        }
        if let Some(g) = self.groups.get_mut(group) {
            g.known = g.known.max(offset);
        }
        Ok(())
    }

    /// Allocates, in manifest order, the output of every weight of `group`
    /// that starts before `end` (bytes sure to arrive) and has none yet.
    fn allocate_before(&mut self, group: usize, end: u64) -> Result<()> {
        let Some(g) = self.groups.get_mut(group) else {
            return Ok(());
        };
        while g.next_alloc < g.weights.end {
            let Some(w) = self.weights.get_mut(g.next_alloc) else {
                break;
            };
            if w.offset >= end {
                break;
            }
            if w.out.is_none() && w.diverted.is_none() && w.count > 0 {
                w.out = Some(try_alloc(w.codec, w.count, &w.name)?);
            }
            g.next_alloc = g.next_alloc.saturating_add(1);
        }
        Ok(())
    }

    /// Decodes `bytes`, which start `at` bytes into `group`, into the weights they cover.
    fn place(&mut self, group: usize, at: u64, bytes: &[u8]) -> Result<()> {
        let Some(g) = self.groups.get(group) else {
            return Ok(());
        };
        let end = at.saturating_add(bytes.len() as u64);
        if end > g.len {
            return Err(self.group_length_error(group, g.len, end));
        }
        self.allocate_before(group, end.max(g.known).min(g.len))?;
        let Some(g) = self.groups.get(group) else {
            return Ok(());
        };
        let weights = self.weights.get_mut(g.weights.clone()).unwrap_or_default();
        // The first weight that ends after `at`.
        let first = weights.partition_point(|w| w.offset.saturating_add(w.len) <= at);
        for w in weights.iter_mut().skip(first) {
            if w.offset >= end {
                break;
            }
            let from = at.max(w.offset);
            let to = end.min(w.offset.saturating_add(w.len));
            let lo = usize::try_from(from.saturating_sub(at)).unwrap_or(usize::MAX);
            let hi = usize::try_from(to.saturating_sub(at)).unwrap_or(usize::MAX);
            if let Some(piece) = bytes.get(lo..hi) {
                w.write(from.saturating_sub(w.offset), piece)?;
            }
        }
        Ok(())
    }
}

impl WeightState {
    /// `bytes` at `rel` bytes into this weight's stored bytes (within bounds).
    /// The output was allocated by [`StreamDecoder::allocate_before`] (bytes that find none
    /// are not counted, and `take_weights` then reports the weight short).
    fn write(&mut self, rel: u64, bytes: &[u8]) -> Result<()> {
        if self.out.is_none() && self.diverted.is_none() {
            return Ok(());
        }
        self.filled = self.filled.saturating_add(bytes.len() as u64);
        let size = self.codec.element_size();
        let size64 = size as u64;
        let mut rel = rel;
        let mut bytes = bytes;
        // A leading piece of an element.
        let within = rel.checked_rem(size64).unwrap_or(0);
        let head = size64
            .saturating_sub(within)
            .checked_rem(size64)
            .unwrap_or(0);
        if head > 0 {
            let k = usize::try_from(head).unwrap_or(0).min(bytes.len());
            let (piece, rest) = bytes.split_at(k);
            if let Some((element, raw)) = piece_of(self.codec, &mut self.partial, rel, piece) {
                self.decode(element, raw.get(..size).unwrap_or(&[]))?;
            }
            rel = rel.saturating_add(k as u64);
            bytes = rest;
        }
        // Whole elements, then a trailing piece.
        let whole = bytes
            .len()
            .checked_div(size)
            .unwrap_or(0)
            .saturating_mul(size);
        let (body, tail) = bytes.split_at(whole);
        let first = usize::try_from(rel.checked_div(size64).unwrap_or(0)).unwrap_or(usize::MAX);
        self.decode(first, body)?;
        if !tail.is_empty() {
            let at = rel.saturating_add(whole as u64);
            if let Some((element, raw)) = piece_of(self.codec, &mut self.partial, at, tail) {
                self.decode(element, raw.get(..size).unwrap_or(&[]))?;
            }
        }
        // A diverted weight's scratch goes with its last byte: weights complete one after
        // the other, so a load holds one scratch per file in flight, not one per weight.
        if self.filled >= self.len {
            if let Some(Diverted::Values { scratch, .. }) = self.diverted.as_mut() {
                *scratch = TensorData::F32(Vec::new());
            }
        }
        Ok(())
    }

    /// Decodes whole elements `bytes`, the first being element `first`: into the output, or
    /// through the scratch to the sink of a diverted weight.
    fn decode(&mut self, first: usize, bytes: &[u8]) -> Result<()> {
        if let Some(codes) = self.codes.as_mut() {
            let start = first.saturating_mul(self.codec.element_size());
            let end = start.saturating_add(bytes.len()).min(codes.len());
            if let (Some(dst), Some(src)) = (
                codes.get_mut(start..end),
                bytes.get(..end.saturating_sub(start)),
            ) {
                dst.copy_from_slice(src);
            }
        }
        if let Some(out) = self.out.as_mut() {
            self.codec.decode_run(out, first, bytes);
            return Ok(());
        }
        let (sink, scratch) = match self.diverted.as_mut() {
            None => return Ok(()),
            Some(Diverted::Stored(sink)) => {
                let offset = first.saturating_mul(self.codec.element_size());
                return sink
                    .write(offset, bytes)
                    .map_err(|message| FormatError::Weight {
                        weight: self.name.clone(),
                        message,
                    });
            }
            Some(Diverted::Values { sink, scratch }) => (sink, scratch),
        };
        // float32 bytes that lie aligned are the values already: no scratch.
        if let (Codec::F32, Ok(values)) = (self.codec, bytemuck::try_cast_slice::<u8, f32>(bytes)) {
            if cfg!(target_endian = "little") {
                return sink
                    .write(first, values)
                    .map_err(|message| FormatError::Weight {
                        weight: self.name.clone(),
                        message,
                    });
            }
        }
        let size = self.codec.element_size();
        let step = DIVERT_RUN.saturating_mul(size);
        for (k, run) in bytes.chunks(step.max(1)).enumerate() {
            let n = run.len().checked_div(size).unwrap_or(0);
            let TensorData::F32(values) = &mut *scratch else {
                return Ok(());
            };
            if values.len() < n {
                values.resize(n, 0.0);
            }
            self.codec.decode_run(scratch, 0, run);
            let TensorData::F32(values) = &*scratch else {
                return Ok(());
            };
            let at = first.saturating_add(k.saturating_mul(DIVERT_RUN));
            sink.write(at, values.get(..n).unwrap_or(&[]))
                .map_err(|message| FormatError::Weight {
                    weight: self.name.clone(),
                    message,
                })?;
        }
        Ok(())
    }
}

/// Whether weights of `codec` have a stored form a GPU can hold and decode ([`code_format`]).
fn has_stored_form(codec: Codec) -> bool {
    matches!(codec, Codec::AffineF32 { size: 1, .. } | Codec::F16)
}

/// The stored form a GPU can hold and decode: uint8 codes (with the values they decode to,
/// computed exactly as the weight's bytes are decoded) or float16.
fn code_format(codec: Codec) -> Option<CodeFormat> {
    if !has_stored_form(codec) {
        return None;
    }
    if let Codec::F16 = codec {
        return Some(CodeFormat::F16);
    }
    // uint8 codes: the value of each, decoded as the weight's bytes are.
    let mut lut = TensorData::F32(vec![0.0; 256]);
    let all: Vec<u8> = (0..=255).collect();
    codec.decode_run(&mut lut, 0, &all);
    match lut {
        TensorData::F32(lut) => Some(CodeFormat::U8 {
            lut: Box::new(std::array::from_fn(|i| lut.get(i).copied().unwrap_or(0.0))),
        }),
        _ => None,
    }
}

/// Part of one element, starting `rel` bytes into a weight; the element's index and bytes
/// once its last byte is in.
fn piece_of(
    codec: Codec,
    partial: &mut Vec<(u64, [u8; 4], u8)>,
    rel: u64,
    bytes: &[u8],
) -> Option<(usize, [u8; 4])> {
    let size = codec.element_size() as u64;
    let element = rel.checked_div(size).unwrap_or(0);
    let within = usize::try_from(rel.checked_rem(size).unwrap_or(0)).unwrap_or(0);
    let index = match partial.iter().position(|p| p.0 == element) {
        Some(i) => i,
        None => {
            partial.push((element, [0; 4], 0));
            partial.len().saturating_sub(1)
        }
    };
    let p = partial.get_mut(index)?;
    for (k, &b) in bytes.iter().enumerate() {
        let at = within.saturating_add(k);
        if let Some(slot) = p.1.get_mut(at) {
            *slot = b;
            p.2 |= 1u8.checked_shl(u32::try_from(at).unwrap_or(8)).unwrap_or(0);
        }
    }
    let full = 1u8
        .checked_shl(u32::try_from(size).unwrap_or(0))
        .map_or(0xff, |v| v.wrapping_sub(1));
    if p.2 != full {
        return None;
    }
    let (element, raw, _) = partial.swap_remove(index);
    Some((usize::try_from(element).unwrap_or(usize::MAX), raw))
}

/// A zeroed output for `count` elements, or an error naming the weight when
/// the allocation is refused.
fn try_alloc(codec: Codec, count: usize, weight: &str) -> Result<TensorData> {
    codec
        .try_alloc(count)
        .ok_or_else(|| FormatError::Quantization {
            weight: weight.to_owned(),
            message: format!("cannot allocate memory for its {count} decoded values"),
        })
}

fn too_large(weight: &str) -> FormatError {
    FormatError::WeightLength {
        weight: weight.to_owned(),
        expected: u64::MAX,
        actual: 0,
    }
}

/// A file index the manifest does not have.
fn no_file(file: usize) -> FormatError {
    FormatError::ShardFile {
        path: format!("#{file}"),
        message: "no such shard file in the manifest".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_weights;
    use crate::limits::Limits;
    use crate::manifest::parse_weights_manifest;
    use serde_json::json;

    /// One group of every stored kind, in three shard files cut at awkward places.
    fn sample() -> (Vec<WeightGroup>, Vec<Vec<u8>>) {
        let manifest = parse_weights_manifest(
            &json!([
                {"paths": ["a", "b", "c"], "weights": [
                    {"name": "f32", "shape": [5], "dtype": "float32"},
                    {"name": "i32", "shape": [3], "dtype": "int32"},
                    {"name": "bool", "shape": [3], "dtype": "bool"},
                    {"name": "f16", "shape": [7], "dtype": "float32",
                     "quantization": {"dtype": "float16"}},
                    {"name": "u8", "shape": [2, 3], "dtype": "float32",
                     "quantization": {"dtype": "uint8", "scale": 0.0117647058823529, "min": -1.2}},
                    {"name": "u16", "shape": [4], "dtype": "float32",
                     "quantization": {"dtype": "uint16", "scale": 0.001, "min": -3.0}},
                    {"name": "u8i", "shape": [3], "dtype": "int32",
                     "quantization": {"dtype": "uint8", "scale": 0.5, "min": -2.0}}]},
                {"paths": ["d"], "weights": [
                    {"name": "solo", "shape": [2], "dtype": "float32"}]}
            ]),
            &Limits::default(),
        )
        .unwrap();
        let len = manifest[0].byte_len() as usize;
        let all: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
        let solo: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        // Cut inside an f32, and inside an f16.
        let (a, rest) = all.split_at(7);
        let (b, c) = rest.split_at(31);
        (manifest, vec![a.to_vec(), b.to_vec(), c.to_vec(), solo])
    }

    fn reference(manifest: &[WeightGroup], files: &[Vec<u8>]) -> Vec<DecodedWeight> {
        let g0: Vec<&[u8]> = files[..3].iter().map(Vec::as_slice).collect();
        decode_weights(manifest, &[g0, vec![files[3].as_slice()]]).unwrap()
    }

    fn bits(d: &[DecodedWeight]) -> Vec<(String, Vec<u64>)> {
        d.iter()
            .map(|w| {
                let v = match &w.data {
                    TensorData::F32(v) => v.iter().map(|x| u64::from(x.to_bits())).collect(),
                    TensorData::I32(v) => v.iter().map(|&x| x as u32 as u64).collect(),
                    TensorData::Bool(v) => v.iter().map(|&x| u64::from(x)).collect(),
                };
                (w.name.clone(), v)
            })
            .collect()
    }

    #[test]
    fn whole_files_in_order_match_decode_weights() {
        let (m, files) = sample();
        let mut d = StreamDecoder::new(&m).unwrap();
        for (i, f) in files.iter().enumerate() {
            assert!(!d.is_complete());
            d.write(i, 0, f).unwrap();
            d.set_file_length(i, f.len() as u64).unwrap();
        }
        assert!(d.is_complete());
        let taken = d.take_weights().unwrap();
        assert_eq!(bits(&taken), bits(&reference(&m, &files)));
        // A download closing after the weights were taken: its length again is fine,
        // another byte is not, and is reported as what it is (a body longer than its
        // length; the weights are built at a file's last byte, before its stream ends).
        d.set_file_length(1, files[1].len() as u64).unwrap();
        let len = files[1].len() as u64;
        match d.write(1, len, &[0]) {
            Err(FormatError::FileLength {
                expected, actual, ..
            }) => assert_eq!((expected, actual), (len, len + 1)),
            other => panic!("expected a FileLength error, got {other:?}"),
        }
        match d.write(1, 0, &[0]) {
            Err(FormatError::ShardFile { message, .. }) => {
                assert!(message.contains("gap or an overlap"), "{message}")
            }
            other => panic!("expected a ShardFile error, got {other:?}"),
        }
    }

    #[test]
    fn kept_codes_decode_to_the_weight_bit_for_bit() {
        let (m, files) = sample();
        let expected = reference(&m, &files);
        for chunk in [1usize, 3, 64] {
            let mut d = StreamDecoder::new(&m).unwrap();
            assert!(d.keep_codes("u8").unwrap());
            assert!(d.keep_codes("f16").unwrap());
            // Not a uint8-quantized or float16 float weight: nothing kept.
            for name in ["f32", "u16", "i32"] {
                assert!(!d.keep_codes(name).unwrap(), "{name}");
            }
            assert!(d.keep_codes("nope").is_err());
            for (i, f) in files.iter().enumerate() {
                for (k, piece) in f.chunks(chunk).enumerate() {
                    d.write(i, (k * chunk) as u64, piece).unwrap();
                    // Too late once bytes arrived.
                    assert!(!d.keep_codes("u16").unwrap());
                }
                d.set_file_length(i, f.len() as u64).unwrap();
            }
            assert!(
                d.take_codes().is_empty(),
                "codes before the weights are taken"
            );
            let taken = d.take_weights().unwrap();
            assert_eq!(bits(&taken), bits(&expected), "values still decoded");
            let kept = d.take_codes();
            assert_eq!(kept.len(), 2);
            for k in &kept {
                let want = expected.iter().find(|w| w.name == k.name).unwrap();
                let TensorData::F32(want) = &want.data else {
                    panic!()
                };
                let got: Vec<u32> = match &k.format {
                    CodeFormat::U8 { lut } => {
                        k.codes.iter().map(|&q| lut[q as usize].to_bits()).collect()
                    }
                    CodeFormat::F16 => k
                        .codes
                        .chunks_exact(2)
                        .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32().to_bits())
                        .collect(),
                };
                let want: Vec<u32> = want.iter().map(|v| v.to_bits()).collect();
                assert_eq!(got, want, "{} chunk {chunk}", k.name);
            }
            let mut names: Vec<&str> = kept.iter().map(|k| k.name.as_str()).collect();
            names.sort_unstable();
            assert_eq!(names, ["f16", "u8"]);
            assert!(d.take_codes().is_empty());
        }
    }

    /// Collects a weight's stored bytes by offset.
    struct CollectBytes(std::rc::Rc<std::cell::RefCell<Vec<Option<u8>>>>);

    impl StoredSink for CollectBytes {
        fn write(&mut self, offset: usize, bytes: &[u8]) -> std::result::Result<(), String> {
            let mut all = self.0.borrow_mut();
            for (k, &b) in bytes.iter().enumerate() {
                let slot = all.get_mut(offset + k).ok_or("past the end")?;
                assert!(slot.is_none(), "byte {} written twice", offset + k);
                *slot = Some(b);
            }
            Ok(())
        }
    }

    #[test]
    fn weights_diverted_as_stored_reach_their_sink_byte_for_byte_and_are_never_held() {
        let (m, files) = sample();
        let expected = reference(&m, &files);
        for (chunk, backwards) in [(1usize, false), (3, true), (64, false)] {
            let mut d = StreamDecoder::new(&m).unwrap();
            assert!(matches!(d.stored_format("u8"), Some(CodeFormat::U8 { .. })));
            assert!(matches!(d.stored_format("f16"), Some(CodeFormat::F16)));
            for name in ["f32", "u16", "i32", "nope"] {
                assert!(d.stored_format(name).is_none(), "{name}");
            }
            let mut sinks = Vec::new();
            for (name, per) in [("u8", 1), ("f16", 2)] {
                let n = expected.iter().find(|w| w.name == name).unwrap().data.len();
                let got = std::rc::Rc::new(std::cell::RefCell::new(vec![None; n * per]));
                d.divert_stored(name, Box::new(CollectBytes(got.clone())))
                    .unwrap();
                sinks.push((name, got));
            }
            assert!(d
                .divert_stored("u16", Box::new(CollectBytes(Default::default())))
                .is_err());
            assert!(d
                .divert_stored("u8", Box::new(CollectBytes(Default::default())))
                .is_err());
            let order: Vec<usize> = if backwards {
                (0..files.len()).rev().collect()
            } else {
                (0..files.len()).collect()
            };
            for i in order {
                for (k, piece) in files[i].chunks(chunk).enumerate() {
                    d.write(i, (k * chunk) as u64, piece).unwrap();
                }
                d.set_file_length(i, files[i].len() as u64).unwrap();
            }
            let taken = d.take_weights().unwrap();
            for (name, got) in &sinks {
                let w = taken.iter().find(|w| w.name == *name).unwrap();
                assert!(w.data.is_empty(), "{name} held");
                let want = expected.iter().find(|e| e.name == *name).unwrap();
                let TensorData::F32(want) = &want.data else {
                    panic!()
                };
                let bytes: Vec<u8> = got.borrow().iter().map(|b| b.unwrap()).collect();
                let values: Vec<u32> = if *name == "u8" {
                    let Some(CodeFormat::U8 { lut }) = code_format(
                        Codec::of(
                            m.iter()
                                .flat_map(|g| &g.weights)
                                .find(|e| e.name == "u8")
                                .unwrap(),
                        )
                        .unwrap(),
                    ) else {
                        panic!()
                    };
                    bytes.iter().map(|&q| lut[q as usize].to_bits()).collect()
                } else {
                    bytes
                        .chunks_exact(2)
                        .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32().to_bits())
                        .collect()
                };
                let want: Vec<u32> = want.iter().map(|v| v.to_bits()).collect();
                assert_eq!(values, want, "{name} chunk {chunk}");
            }
        }
    }

    /// Collects what a diverted weight's sink is given.
    struct Collect(std::rc::Rc<std::cell::RefCell<Vec<Option<f32>>>>);

    impl ValueSink for Collect {
        fn write(&mut self, first: usize, values: &[f32]) -> std::result::Result<(), String> {
            let mut all = self.0.borrow_mut();
            for (k, &v) in values.iter().enumerate() {
                let slot = all.get_mut(first + k).ok_or("past the end")?;
                assert!(slot.is_none(), "element {} written twice", first + k);
                *slot = Some(v);
            }
            Ok(())
        }
    }

    #[test]
    fn diverted_weights_reach_their_sink_bit_for_bit_and_are_never_held() {
        let (m, files) = sample();
        let expected = reference(&m, &files);
        // Odd chunk sizes go through the scratch; large ones hand aligned float32 bytes over
        // as they lie.
        for chunk in [1usize, 3, 5, 64, 4096] {
            let mut d = StreamDecoder::new(&m).unwrap();
            let mut sinks = Vec::new();
            for name in ["f32", "f16", "u8", "u16"] {
                let n = expected.iter().find(|w| w.name == name).unwrap().data.len();
                let got = std::rc::Rc::new(std::cell::RefCell::new(vec![None; n]));
                d.divert(name, Box::new(Collect(got.clone()))).unwrap();
                sinks.push((name, got));
            }
            // Not a float weight: refused.
            assert!(d
                .divert("i32", Box::new(Collect(Default::default())))
                .is_err());
            assert!(d
                .divert("nope", Box::new(Collect(Default::default())))
                .is_err());
            for (i, f) in files.iter().enumerate() {
                for (k, piece) in f.chunks(chunk).enumerate() {
                    d.write(i, (k * chunk) as u64, piece).unwrap();
                }
                d.set_file_length(i, f.len() as u64).unwrap();
            }
            // Each scratch went with its weight's last byte.
            for w in &d.weights {
                if let Some(Diverted::Values { scratch, .. }) = &w.diverted {
                    assert!(
                        matches!(scratch, TensorData::F32(v) if v.capacity() == 0),
                        "{}: scratch kept",
                        w.name
                    );
                }
            }
            let taken = d.finish().unwrap();
            for w in &taken {
                let want = expected.iter().find(|e| e.name == w.name).unwrap();
                match sinks.iter().find(|(n, _)| *n == w.name) {
                    Some((_, got)) => {
                        assert!(w.data.is_empty(), "{} held", w.name);
                        let TensorData::F32(want) = &want.data else {
                            panic!()
                        };
                        let got: Vec<u32> =
                            got.borrow().iter().map(|v| v.unwrap().to_bits()).collect();
                        let want: Vec<u32> = want.iter().map(|v| v.to_bits()).collect();
                        assert_eq!(got, want, "{} chunk {chunk}", w.name);
                    }
                    None => assert_eq!(
                        bits(std::slice::from_ref(w)),
                        bits(std::slice::from_ref(want))
                    ),
                }
            }
        }
        // A sink that fails stops the load, naming the weight.
        struct Refuse;
        impl ValueSink for Refuse {
            fn write(&mut self, _: usize, _: &[f32]) -> std::result::Result<(), String> {
                Err("the device is gone".into())
            }
        }
        let mut d = StreamDecoder::new(&m).unwrap();
        d.divert("f32", Box::new(Refuse)).unwrap();
        let e = d.write(0, 0, &files[0]).unwrap_err().to_string();
        assert!(
            e.contains("\"f32\"") && e.contains("the device is gone"),
            "{e}"
        );
    }

    #[test]
    fn the_one_unknown_length_of_a_group_is_inferred_so_nothing_waits() {
        let (m, files) = sample();
        let expected = bits(&reference(&m, &files));
        // File 0's response is late: the lengths of files 1 and 2 fix its length, so their
        // bytes are placed as they come instead of waiting, copied.
        let mut d = StreamDecoder::new(&m).unwrap();
        d.set_file_length(1, files[1].len() as u64).unwrap();
        d.set_file_length(2, files[2].len() as u64).unwrap();
        d.write(2, 0, &files[2]).unwrap();
        d.write(1, 0, &files[1]).unwrap();
        assert!(d.files.iter().all(|f| f.pending.is_empty()), "bytes waited");
        d.write(0, 0, &files[0]).unwrap();
        d.set_file_length(0, files[0].len() as u64).unwrap();
        d.write(3, 0, &files[3]).unwrap();
        d.set_file_length(3, files[3].len() as u64).unwrap();
        assert_eq!(bits(&d.finish().unwrap()), expected);

        // The late file turns out longer, or announces another length: the lengths given
        // for the others were wrong. Nothing past the room left is placed, and the group
        // fails naming the file (a downloader that checks each body against its announced
        // length reports the file that lied first).
        for announce in [false, true] {
            let mut d = StreamDecoder::new(&m).unwrap();
            d.set_file_length(1, files[1].len() as u64).unwrap();
            d.set_file_length(2, files[2].len() as u64 + 1).unwrap();
            d.write(1, 0, &files[1]).unwrap();
            if announce {
                d.set_file_length(0, files[0].len() as u64).unwrap();
            }
            d.write(0, 0, &files[0]).unwrap();
            assert!(!d.is_complete());
            let e = d.finish().unwrap_err().to_string();
            let room = files[0].len() - 1;
            assert_eq!(
                e,
                format!(
                    "shard file a: {} bytes, where the other shards of its group leave room \
                     for exactly {room}",
                    files[0].len()
                ),
                "announce {announce}"
            );
        }
    }

    #[test]
    fn any_chunking_and_order_matches_decode_weights() {
        let (m, files) = sample();
        let expected = bits(&reference(&m, &files));
        // Chunk sizes 1..=9; files fed back to front (later files wait for the lengths
        // of earlier ones), chunks interleaved across files; lengths given at the end.
        for chunk in 1..=9usize {
            for lengths_first in [false, true] {
                let mut d = StreamDecoder::new(&m).unwrap();
                if lengths_first {
                    for (i, f) in files.iter().enumerate() {
                        d.set_file_length(i, f.len() as u64).unwrap();
                    }
                }
                let mut cursors = vec![0usize; files.len()];
                loop {
                    let mut progressed = false;
                    for i in (0..files.len()).rev() {
                        let at = cursors[i];
                        if at < files[i].len() {
                            let end = (at + chunk).min(files[i].len());
                            d.write(i, at as u64, &files[i][at..end]).unwrap();
                            cursors[i] = end;
                            progressed = true;
                        }
                    }
                    if !progressed {
                        break;
                    }
                }
                if !lengths_first {
                    for (i, f) in files.iter().enumerate().rev() {
                        d.set_file_length(i, f.len() as u64).unwrap();
                    }
                }
                assert_eq!(
                    bits(&d.finish().unwrap()),
                    expected,
                    "chunk {chunk}, lengths first {lengths_first}"
                );
            }
        }
    }

    #[test]
    fn missing_bytes_and_overruns_are_errors() {
        let (m, files) = sample();
        // The last byte of file c never arrives.
        // (Once a and b are known, c's length is inferred: the error names c.)
        let mut d = StreamDecoder::new(&m).unwrap();
        for (i, f) in files.iter().enumerate() {
            let f = if i == 2 { &f[..f.len() - 1] } else { &f[..] };
            d.write(i, 0, f).unwrap();
            d.set_file_length(i, f.len() as u64).unwrap();
        }
        let e = d.finish().unwrap_err().to_string();
        let c = files[2].len();
        assert_eq!(
            e,
            format!(
                "shard file c: {} bytes, where the other shards of its group leave room for \
                 exactly {c}",
                c - 1
            )
        );
        // A length never given: file b's bytes cannot be placed.
        let mut d = StreamDecoder::new(&m).unwrap();
        for (i, f) in files.iter().enumerate() {
            d.write(i, 0, f).unwrap();
        }
        assert!(d.finish().is_err());
        // More bytes than the group holds.
        let mut d = StreamDecoder::new(&m).unwrap();
        assert!(d.write(3, 0, &[0u8; 9]).is_err());
        // A length that contradicts the one announced.
        let mut d = StreamDecoder::new(&m).unwrap();
        d.set_file_length(0, 7).unwrap();
        assert!(d.set_file_length(0, 8).is_err());
        assert!(d.write(0, 4, &[0u8; 4]).is_err());
        // An unknown file.
        assert!(StreamDecoder::new(&m).unwrap().write(9, 0, &[1]).is_err());
    }

    #[test]
    fn writes_must_be_in_order_exactly_once_and_a_refused_write_counts_nothing() {
        let (m, files) = sample();
        let mut d = StreamDecoder::new(&m).unwrap();
        d.write(0, 0, &files[0][..3]).unwrap();
        // A gap, an overlap, a repeat: refused, and not counted.
        assert!(d.write(0, 4, &files[0][4..]).is_err());
        assert!(d.write(0, 2, &files[0][2..]).is_err());
        assert!(d.write(0, 0, &files[0][..3]).is_err());
        d.write(0, 3, &files[0][3..]).unwrap();
        // Over the announced length: refused, not counted.
        d.set_file_length(1, files[1].len() as u64).unwrap();
        let mut long = files[1].clone();
        long.push(0);
        assert!(d.write(1, 0, &long).is_err());
        for (i, f) in files.iter().enumerate().skip(1) {
            d.write(i, 0, f).unwrap();
        }
        for (i, f) in files.iter().enumerate() {
            d.set_file_length(i, f.len() as u64).unwrap();
        }
        assert!(d.is_complete());
        assert_eq!(bits(&d.finish().unwrap()), bits(&reference(&m, &files)));
    }

    #[test]
    fn outputs_are_allocated_only_when_bytes_arrive() {
        // 2^31 float32 elements declared (8 GiB decoded): nothing is allocated up front,
        // and a few bytes of it end in a length error, not an allocation.
        let m = parse_weights_manifest(
            &json!([{"paths": ["a"], "weights": [
                {"name": "small", "shape": [1], "dtype": "float32"},
                {"name": "huge", "shape": [65536, 32768], "dtype": "float32"}]}]),
            &Limits {
                max_total_weight_bytes: u64::MAX,
                max_tensor_elements: u64::MAX,
                ..Limits::default()
            },
        )
        .unwrap();
        let mut d = StreamDecoder::new(&m).unwrap();
        d.write(0, 0, &1.5f32.to_le_bytes()).unwrap();
        d.set_file_length(0, 4).unwrap();
        assert!(!d.is_complete());
        let e = d.finish().unwrap_err().to_string();
        assert!(e.contains("group 0"), "{e}");
    }

    #[test]
    fn outputs_are_allocated_in_order_once_their_bytes_are_announced() {
        let (m, files) = sample();
        let allocated = |d: &StreamDecoder| -> Vec<bool> {
            d.weights.iter().map(|w| w.out.is_some()).collect()
        };
        // No length known: the first byte allocates only the weights it reaches.
        let mut d = StreamDecoder::new(&m).unwrap();
        d.write(0, 0, &files[0][..1]).unwrap();
        let first = allocated(&d);
        assert!(first[0] && !first[first.len() - 1], "{first:?}");
        // Every length announced (Content-Length): the first byte allocates every weight
        // of its group, in manifest order, before any later chunk buffer; the other
        // group's weight waits for a byte of its own.
        let mut d = StreamDecoder::new(&m).unwrap();
        for (i, f) in files.iter().enumerate() {
            d.set_file_length(i, f.len() as u64).unwrap();
        }
        d.write(0, 0, &files[0][..1]).unwrap();
        let group0 = m[0].weights.len();
        assert_eq!(allocated(&d), [vec![true; group0], vec![false]].concat());
        for (i, f) in files.iter().enumerate() {
            let from = usize::from(i == 0);
            d.write(i, from as u64, &f[from..]).unwrap();
        }
        assert_eq!(bits(&d.finish().unwrap()), bits(&reference(&m, &files)));
    }

    #[test]
    fn unsupported_quantization_fails_up_front() {
        let m = parse_weights_manifest(
            &json!([{"paths": ["a"], "weights": [
                {"name": "b", "shape": [1], "dtype": "bool", "quantization": {"dtype": "uint8", "scale": 1, "min": 0}}]}]),
            &Limits::default(),
        );
        if let Ok(m) = m {
            assert!(StreamDecoder::new(&m).is_err());
        }
    }
}
