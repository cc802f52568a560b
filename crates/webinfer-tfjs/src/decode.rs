//! Decoding weight values from shard bytes, bit-for-bit as tfjs does.
//!
//! The rules mirror `decodeWeight` in tfjs-core's `io/io_utils.js`:
//!
//! | stored as            | decoded to | value                                               |
//! |----------------------|------------|-----------------------------------------------------|
//! | float32 (LE)         | f32        | as stored                                           |
//! | int32 (LE)           | i32        | as stored                                           |
//! | bool (1 byte)        | bool       | byte != 0                                           |
//! | uint8 / uint16 (LE)  | f32        | `q * scale + min` in f64, rounded once to f32        |
//! | uint8 / uint16 (LE)  | i32        | `Math.round(q * scale + min)` then JS `ToInt32`     |
//! | float16 (LE)         | f32        | exact widening; NaN payloads kept as tfjs keeps them |
//!
//! Unlike tfjs (which slices out of range silently and reads zeros), the
//! shards of a group must hold exactly the bytes its manifest describes.

use std::borrow::Cow;

use crate::error::{FormatError, Result};
use crate::manifest::{check_unique_names, DType, QuantDType, WeightEntry, WeightGroup};

/// The values of one decoded tensor, row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    I32(Vec<i32>),
    Bool(Vec<bool>),
}

impl TensorData {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::I32(v) => v.len(),
            TensorData::Bool(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dtype(&self) -> DType {
        match self {
            TensorData::F32(_) => DType::Float32,
            TensorData::I32(_) => DType::Int32,
            TensorData::Bool(_) => DType::Bool,
        }
    }
}

/// A named tensor read from the shards.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedWeight {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: TensorData,
}

/// Decodes one group from its shards, given in the order of the group's
/// `paths`.
///
/// Checks that there is one shard per path and that the shard lengths add up
/// to exactly [`WeightGroup::byte_len`]; tensors may straddle shard
/// boundaries (only such tensors are copied before decoding).
pub fn decode_group(
    group: &WeightGroup,
    group_index: usize,
    shards: &[&[u8]],
) -> Result<Vec<DecodedWeight>> {
    if shards.len() != group.paths.len() {
        return Err(FormatError::ShardCount {
            group: group_index,
            paths: group.paths.clone(),
            expected: group.paths.len(),
            actual: shards.len(),
        });
    }
    let actual = shards
        .iter()
        .try_fold(0u64, |acc, s| acc.checked_add(u64::try_from(s.len()).ok()?))
        .unwrap_or(u64::MAX);
    let expected = group.checked_byte_len().unwrap_or(u64::MAX);
    if actual != expected {
        return Err(FormatError::ShardLength {
            group: group_index,
            paths: group.paths.clone(),
            expected,
            actual,
        });
    }

    let mut reader = ShardReader::new(shards);
    let mut out = Vec::with_capacity(group.weights.len());
    for entry in &group.weights {
        // Bounded by `expected`, which equals the bytes actually present.
        let len = entry
            .checked_stored_bytes()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| shard_overrun(group, group_index, expected, actual))?;
        let bytes = reader
            .take(len)
            .ok_or_else(|| shard_overrun(group, group_index, expected, actual))?;
        out.push(DecodedWeight {
            name: entry.name.clone(),
            shape: entry.shape.clone(),
            data: decode_weight(entry, &bytes)?,
        });
    }
    Ok(out)
}

/// Decodes every group; `shards[g]` holds group `g`'s shard bytes in `paths`
/// order. Fails on duplicate weight names across the manifest.
pub fn decode_weights(
    manifest: &[WeightGroup],
    shards: &[Vec<&[u8]>],
) -> Result<Vec<DecodedWeight>> {
    if manifest.len() != shards.len() {
        return Err(FormatError::GroupCount {
            expected: manifest.len(),
            actual: shards.len(),
        });
    }
    check_unique_names(manifest)?;
    let mut out = Vec::with_capacity(
        manifest
            .iter()
            .map(|g| g.weights.len())
            .fold(0usize, usize::saturating_add),
    );
    for (g, (group, group_shards)) in manifest.iter().zip(shards).enumerate() {
        out.extend(decode_group(group, g, group_shards)?);
    }
    Ok(out)
}

/// Decodes one weight from exactly its stored bytes (for callers that stream
/// shards and cut tensors out themselves).
pub fn decode_weight(entry: &WeightEntry, bytes: &[u8]) -> Result<TensorData> {
    let expected = entry.checked_stored_bytes().unwrap_or(u64::MAX);
    let actual = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if actual != expected {
        return Err(FormatError::WeightLength {
            weight: entry.name.clone(),
            expected,
            actual,
        });
    }
    let codec = Codec::of(entry)?;
    // `bytes` holds exactly element_count x stored size bytes.
    let mut out = codec.alloc(bytes.len().checked_div(codec.element_size()).unwrap_or(0));
    codec.decode_run(&mut out, 0, bytes);
    Ok(out)
}

/// How one weight's stored elements become values: the table at the top of
/// this module. Shared by [`decode_weight`] and the streaming decoder.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Codec {
    F32,
    I32,
    Bool,
    /// float16 stored, float32 decoded.
    F16,
    /// uint8 (1 byte) or uint16 (2 bytes) stored, float32 decoded.
    AffineF32 {
        size: usize,
        scale: f64,
        min: f64,
    },
    /// uint8 or uint16 stored, int32 decoded (rounded as tfjs does).
    AffineI32 {
        size: usize,
        scale: f64,
        min: f64,
    },
}

impl Codec {
    pub(crate) fn of(entry: &WeightEntry) -> Result<Codec> {
        Ok(match (&entry.quantization, entry.dtype) {
            (None, DType::Float32) => Codec::F32,
            (None, DType::Int32) => Codec::I32,
            (None, DType::Bool) => Codec::Bool,
            (Some(q), dtype) => {
                let size = match q.dtype {
                    QuantDType::Uint8 => 1,
                    QuantDType::Uint16 | QuantDType::Float16 => 2,
                };
                match (q.dtype, dtype) {
                    (QuantDType::Float16, DType::Float32) => Codec::F16,
                    (QuantDType::Uint8 | QuantDType::Uint16, DType::Float32) => Codec::AffineF32 {
                        size,
                        scale: q.scale,
                        min: q.min,
                    },
                    (QuantDType::Uint8 | QuantDType::Uint16, DType::Int32) => Codec::AffineI32 {
                        size,
                        scale: q.scale,
                        min: q.min,
                    },
                    (qd, dt) => {
                        return Err(FormatError::Quantization {
                            weight: entry.name.clone(),
                            message: format!("{qd} quantization is not supported for {dt} weights"),
                        })
                    }
                }
            }
        })
    }

    /// Stored bytes per element.
    pub(crate) fn element_size(self) -> usize {
        match self {
            Codec::F32 | Codec::I32 => 4,
            Codec::Bool => 1,
            Codec::F16 => 2,
            Codec::AffineF32 { size, .. } | Codec::AffineI32 { size, .. } => size,
        }
    }

    /// Zeroed output for `n` elements, or `None` when the memory is refused.
    /// Allocated zeroed (`alloc_zeroed`): memory the allocator takes fresh from
    /// the system (a WebAssembly memory grown for a large weight) is zero
    /// already and is not written twice.
    pub(crate) fn try_alloc(self, n: usize) -> Option<TensorData> {
        fn zeros<T: bytemuck::Zeroable>(n: usize) -> Option<Vec<T>> {
            bytemuck::allocation::try_zeroed_slice_box(n)
                .ok()
                .map(<[T]>::into_vec)
        }
        Some(match self {
            Codec::F32 | Codec::F16 | Codec::AffineF32 { .. } => TensorData::F32(zeros(n)?),
            Codec::I32 | Codec::AffineI32 { .. } => TensorData::I32(zeros(n)?),
            Codec::Bool => TensorData::Bool(zeros(n)?),
        })
    }

    /// Zeroed output for `n` elements.
    pub(crate) fn alloc(self, n: usize) -> TensorData {
        match self {
            Codec::F32 | Codec::F16 | Codec::AffineF32 { .. } => TensorData::F32(vec![0.0; n]),
            Codec::I32 | Codec::AffineI32 { .. } => TensorData::I32(vec![0; n]),
            Codec::Bool => TensorData::Bool(vec![false; n]),
        }
    }

    /// Decodes whole elements `bytes` into `out` from element `first` on.
    /// Elements past the end of `out` are ignored (callers stay in bounds).
    pub(crate) fn decode_run(self, out: &mut TensorData, first: usize, bytes: &[u8]) {
        fn tail<T>(v: &mut [T], first: usize) -> &mut [T] {
            v.get_mut(first..).unwrap_or(&mut [])
        }
        fn raw(c: &[u8]) -> u16 {
            match c {
                [lo, hi] => u16::from_le_bytes([*lo, *hi]),
                [b] => u16::from(*b),
                _ => 0,
            }
        }
        match (self, out) {
            // Little-endian bytes are the values already: one copy. (The browser build is
            // optimised for size, where the element loop below is not vectorised.)
            #[cfg(target_endian = "little")]
            (Codec::F32, TensorData::F32(v)) => copy_le(tail(v, first), bytes),
            #[cfg(target_endian = "little")]
            (Codec::I32, TensorData::I32(v)) => copy_le(tail(v, first), bytes),
            #[cfg(not(target_endian = "little"))]
            (Codec::F32, TensorData::F32(v)) => {
                for (o, c) in tail(v, first).iter_mut().zip(bytes.chunks_exact(4)) {
                    *o = f32::from_le_bytes(le4(c));
                }
            }
            #[cfg(not(target_endian = "little"))]
            (Codec::I32, TensorData::I32(v)) => {
                for (o, c) in tail(v, first).iter_mut().zip(bytes.chunks_exact(4)) {
                    *o = i32::from_le_bytes(le4(c));
                }
            }
            // uint8: 256 possible values, each de-quantized once (exactly as below).
            (
                Codec::AffineF32 {
                    size: 1,
                    scale,
                    min,
                },
                TensorData::F32(v),
            ) if bytes.len() >= 256 => {
                let table: [f32; 256] =
                    std::array::from_fn(|b| dequantize(b as u16, scale, min) as f32);
                for (o, &b) in tail(v, first).iter_mut().zip(bytes) {
                    // Never the fallback: a u8 indexes 256 entries.
                    *o = table.get(usize::from(b)).copied().unwrap_or(f32::NAN);
                }
            }
            (Codec::Bool, TensorData::Bool(v)) => {
                for (o, &b) in tail(v, first).iter_mut().zip(bytes) {
                    *o = b != 0;
                }
            }
            (Codec::F16, TensorData::F32(v)) => {
                for (o, c) in tail(v, first).iter_mut().zip(bytes.chunks_exact(2)) {
                    *o = f16_bits_to_f32(raw(c));
                }
            }
            (Codec::AffineF32 { size, scale, min }, TensorData::F32(v)) => {
                for (o, c) in tail(v, first).iter_mut().zip(bytes.chunks_exact(size)) {
                    *o = dequantize(raw(c), scale, min) as f32;
                }
            }
            (Codec::AffineI32 { size, scale, min }, TensorData::I32(v)) => {
                for (o, c) in tail(v, first).iter_mut().zip(bytes.chunks_exact(size)) {
                    *o = js_to_int32(js_round(dequantize(raw(c), scale, min)));
                }
            }
            // `alloc` pairs every codec with its output kind.
            _ => {}
        }
    }
}

fn shard_overrun(
    group: &WeightGroup,
    group_index: usize,
    expected: u64,
    actual: u64,
) -> FormatError {
    FormatError::ShardLength {
        group: group_index,
        paths: group.paths.clone(),
        expected,
        actual,
    }
}

#[cfg(not(target_endian = "little"))]
fn byte(c: &[u8], i: usize) -> u8 {
    c.get(i).copied().unwrap_or(0)
}

/// Copies whole little-endian 4-byte elements of `bytes` into `out` (as many as both hold).
#[cfg(target_endian = "little")]
fn copy_le<T: bytemuck::Pod>(out: &mut [T], bytes: &[u8]) {
    let n = out.len().min(bytes.len() / 4);
    let (Some(dst), Some(src)) = (out.get_mut(..n), bytes.get(..n.saturating_mul(4))) else {
        return;
    };
    bytemuck::cast_slice_mut::<T, u8>(dst).copy_from_slice(src);
}

#[cfg(not(target_endian = "little"))]
fn le4(c: &[u8]) -> [u8; 4] {
    [byte(c, 0), byte(c, 1), byte(c, 2), byte(c, 3)]
}

/// tfjs: `v * quantization.scale + quantization.min` on JS numbers (doubles).
/// Rust never contracts this into a fused multiply-add, so the double result
/// is the same as V8's.
fn dequantize(v: u16, scale: f64, min: f64) -> f64 {
    f64::from(v) * scale + min
}

/// JavaScript `Math.round`: nearest integer, ties toward +infinity.
/// (`floor(x + 0.5)` would be wrong for 0.49999999999999994.)
fn js_round(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let f = x.floor();
    // x - floor(x) is exact for every double.
    if x - f >= 0.5 {
        f + 1.0
    } else {
        f
    }
}

/// JavaScript `ToInt32`, the conversion an `Int32Array` store performs:
/// NaN and infinities become 0, other values wrap modulo 2^32.
fn js_to_int32(x: f64) -> i32 {
    if !x.is_finite() {
        return 0;
    }
    const TWO_32: f64 = 4_294_967_296.0;
    let m = x.trunc().rem_euclid(TWO_32);
    let m = if m >= TWO_32 / 2.0 { m - TWO_32 } else { m };
    // In range [-2^31, 2^31) and integral: the cast is exact.
    m as i32
}

/// IEEE half to single, as tfjs's table decoder computes it. Matches
/// `half::f16::to_f32` except for signalling NaNs, whose payload tfjs copies
/// without setting the quiet bit.
fn f16_bits_to_f32(bits: u16) -> f32 {
    if bits & 0x7c00 == 0x7c00 && bits & 0x03ff != 0 {
        let sign = u32::from(bits & 0x8000) << 16;
        let mantissa = u32::from(bits & 0x03ff) << 13;
        return f32::from_bits(sign | 0x7f80_0000 | mantissa);
    }
    half::f16::from_bits(bits).to_f32()
}

/// Reads consecutive byte ranges out of a list of shards as if they were one
/// buffer, borrowing when a range lies in one shard and copying only ranges
/// that straddle a boundary.
struct ShardReader<'a> {
    shards: &'a [&'a [u8]],
    index: usize,
    offset: usize,
}

impl<'a> ShardReader<'a> {
    fn new(shards: &'a [&'a [u8]]) -> Self {
        ShardReader {
            shards,
            index: 0,
            offset: 0,
        }
    }

    /// Moves past shards (including empty ones) that have no bytes left.
    fn skip_exhausted(&mut self) {
        while let Some(s) = self.shards.get(self.index) {
            if self.offset < s.len() {
                break;
            }
            self.index = self.index.saturating_add(1);
            self.offset = 0;
        }
    }

    /// The next `n` bytes, or `None` when the shards run out.
    fn take(&mut self, n: usize) -> Option<Cow<'a, [u8]>> {
        if n == 0 {
            return Some(Cow::Borrowed(&[]));
        }
        self.skip_exhausted();
        let shards: &'a [&'a [u8]] = self.shards;
        let rest = shards.get(self.index)?.get(self.offset..)?;
        if let Some(whole) = rest.get(..n) {
            self.offset = self.offset.saturating_add(n);
            return Some(Cow::Borrowed(whole));
        }
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            self.skip_exhausted();
            let rest = shards.get(self.index)?.get(self.offset..)?;
            let k = n.saturating_sub(out.len()).min(rest.len());
            out.extend_from_slice(rest.get(..k)?);
            self.offset = self.offset.saturating_add(k);
        }
        Some(Cow::Owned(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;
    use crate::manifest::parse_weights_manifest;
    use crate::manifest::Quantization;
    use serde_json::{json, Value};

    fn manifest(v: Value) -> Vec<WeightGroup> {
        parse_weights_manifest(&v, &Limits::default()).unwrap()
    }

    #[test]
    fn fast_paths_decode_exactly_as_the_element_loop() {
        // uint8 through its table (>= 256 bytes at once) and byte by byte (the formula).
        let (scale, min) = (0.0117647058823529, -1.2);
        let codec = Codec::AffineF32 {
            size: 1,
            scale,
            min,
        };
        let bytes: Vec<u8> = (0..700u32).map(|i| (i * 7 % 256) as u8).collect();
        let mut whole = codec.try_alloc(bytes.len()).unwrap();
        codec.decode_run(&mut whole, 0, &bytes);
        let mut single = codec.try_alloc(bytes.len()).unwrap();
        for (i, b) in bytes.iter().enumerate() {
            codec.decode_run(&mut single, i, std::slice::from_ref(b));
        }
        let (TensorData::F32(whole), TensorData::F32(single)) = (whole, single) else {
            panic!("uint8 decodes to float32");
        };
        for (i, (w, s)) in whole.iter().zip(&single).enumerate() {
            let expected = (f64::from(bytes[i]) * scale + min) as f32;
            assert_eq!(w.to_bits(), expected.to_bits(), "element {i}");
            assert_eq!(s.to_bits(), expected.to_bits(), "element {i}");
        }
        // float32 / int32: copied, from any element on, extra bytes ignored.
        let vals = [1.5f32, -0.0, f32::NAN, 3.25e-39];
        let mut out = Codec::F32.try_alloc(5).unwrap();
        Codec::F32.decode_run(&mut out, 1, &[f32s(&vals), vec![9, 9]].concat());
        let TensorData::F32(out) = out else {
            panic!("float32")
        };
        let bits: Vec<u32> = out.iter().map(|x| x.to_bits()).collect();
        let expected: Vec<u32> = [0.0f32].iter().chain(&vals).map(|x| x.to_bits()).collect();
        assert_eq!(bits, expected);
        let mut out = Codec::I32.try_alloc(2).unwrap();
        Codec::I32.decode_run(
            &mut out,
            0,
            &[(-7i32).to_le_bytes(), 9i32.to_le_bytes()].concat(),
        );
        assert!(matches!(out, TensorData::I32(ref v) if v[..] == [-7, 9]));
    }

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn float32_int32_bool() {
        let m = manifest(json!([{"paths": ["s"], "weights": [
            {"name": "f", "shape": [2], "dtype": "float32"},
            {"name": "i", "shape": [2], "dtype": "int32"},
            {"name": "b", "shape": [3], "dtype": "bool"}]}]));
        let mut bytes = f32s(&[1.5, -2.25]);
        bytes.extend((-7i32).to_le_bytes());
        bytes.extend(i32::MAX.to_le_bytes());
        bytes.extend([0u8, 1, 7]);
        let d = decode_group(&m[0], 0, &[&bytes]).unwrap();
        assert_eq!(
            d[0],
            DecodedWeight {
                name: "f".into(),
                shape: vec![2],
                data: TensorData::F32(vec![1.5, -2.25])
            }
        );
        assert_eq!(d[1].data, TensorData::I32(vec![-7, i32::MAX]));
        assert_eq!(d[2].data, TensorData::Bool(vec![false, true, true]));
    }

    #[test]
    fn tensor_straddling_shards() {
        let m = manifest(json!([{"paths": ["a", "b", "c", "d"], "weights": [
            {"name": "x", "shape": [3], "dtype": "float32"},
            {"name": "y", "shape": [2], "dtype": "float32"}]}]));
        let all = f32s(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        // Cut inside the second float, put an empty shard in, cut inside the fifth.
        let (a, rest) = all.split_at(6);
        let (b, c) = rest.split_at(11);
        let d = decode_group(&m[0], 0, &[a, b, &[], c]).unwrap();
        assert_eq!(d[0].data, TensorData::F32(vec![1.0, 2.0, 3.0]));
        assert_eq!(d[1].data, TensorData::F32(vec![4.0, 5.0]));
        // Every split point of two shards gives the same result.
        for cut in 0..=all.len() {
            let (a, b) = all.split_at(cut);
            let m2 = WeightGroup {
                paths: vec!["a".into(), "b".into()],
                weights: m[0].weights.clone(),
            };
            let d2 = decode_group(&m2, 0, &[a, b]).unwrap();
            assert_eq!(d2, d);
        }
    }

    #[test]
    fn uint8_dequantization_matches_tfjs_formula() {
        // scale and min as the Python converter writes them (full doubles).
        let scale = 0.011_764_705_882_352_941_f64; // 3/255
        let min = -1.505_882_352_941_176_4_f64;
        let m = manifest(json!([{"paths": ["s"], "weights": [
            {"name": "q", "shape": [4], "dtype": "float32",
             "quantization": {"dtype": "uint8", "scale": scale, "min": min, "original_dtype": "float32"}}]}]));
        let d = decode_group(&m[0], 0, &[&[0u8, 1, 128, 255]]).unwrap();
        // By hand: q*scale+min in doubles, then rounded to f32 once.
        let want: Vec<f32> = [0.0f64, 1.0, 128.0, 255.0]
            .iter()
            .map(|q| (q * scale + min) as f32)
            .collect();
        assert_eq!(d[0].data, TensorData::F32(want.clone()));
        assert_eq!(want[0], -1.505_882_4_f32);
        // 128 * 3/255 - 1.5058823529411764 = 0.0 exactly (the nudged zero point).
        assert_eq!(want[2], 0.0);
        // All 256 codes, checked against real tfjs 4.22 (`tf.io.decodeWeights` in
        // node with the same scale/min): a 31-polynomial hash of the f32 bits.
        let all: Vec<u8> = (0..=255).collect();
        let m = WeightGroup {
            paths: vec!["s".into()],
            weights: vec![WeightEntry {
                shape: vec![256],
                byte_len: 256,
                ..m[0].weights[0].clone()
            }],
        };
        let d = decode_group(&m, 0, &[&all]).unwrap();
        let TensorData::F32(v) = &d[0].data else {
            panic!()
        };
        let hash = v
            .iter()
            .fold(0u32, |h, x| h.wrapping_mul(31).wrapping_add(x.to_bits()));
        assert_eq!(hash, 2_423_806_283);
        assert_eq!(v[1].to_bits(), 3_216_981_823);
        // Rounding scale and min to f32 first, as a naive port would, differs
        // from tfjs on 137 of the 256 codes.
        let naive = (0..=255u8)
            .filter(|&q| f32::from(q) * (scale as f32) + (min as f32) != v[usize::from(q)])
            .count();
        assert_eq!(naive, 137);
    }

    #[test]
    fn uint16_dequantization_little_endian() {
        let m = manifest(json!([{"paths": ["s"], "weights": [
            {"name": "q", "shape": [3], "dtype": "float32",
             "quantization": {"dtype": "uint16", "scale": 0.001, "min": -2}}]}]));
        let raw: Vec<u8> = [0u16, 1000, 65535]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let d = decode_group(&m[0], 0, &[&raw]).unwrap();
        // 0 -> -2; 1000*0.001-2 = -1 (0.001*1000 = 1.0 exactly in doubles); 65535*0.001-2 = 63.535
        assert_eq!(d[0].data, TensorData::F32(vec![-2.0, -1.0, 63.535_f32]));
        assert_eq!(63.535_f64 as f32, (65535.0 * 0.001 - 2.0) as f32);
    }

    #[test]
    fn int32_dequantization_rounds_like_math_round() {
        let m = manifest(json!([{"paths": ["s"], "weights": [
            {"name": "q", "shape": [5], "dtype": "int32",
             "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.5}}]}]));
        // q*0.5-1.5 for q = 0,1,2,3,4: -1.5 -1 -0.5 0 0.5 -> Math.round: -1 -1 -0 0 1
        let d = decode_group(&m[0], 0, &[&[0u8, 1, 2, 3, 4]]).unwrap();
        assert_eq!(d[0].data, TensorData::I32(vec![-1, -1, 0, 0, 1]));
        assert_eq!(js_round(0.499_999_999_999_999_94), 0.0);
        assert_eq!(js_round(2.5), 3.0);
        assert_eq!(js_round(-2.5), -2.0);
        assert_eq!(js_to_int32(4_294_967_297.0), 1);
        assert_eq!(js_to_int32(2_147_483_648.0), i32::MIN);
        assert_eq!(js_to_int32(-2_147_483_649.0), i32::MAX);
        assert_eq!(js_to_int32(f64::NAN), 0);
    }

    #[test]
    fn float16_decoding() {
        let m = manifest(json!([{"paths": ["s"], "weights": [
            {"name": "h", "shape": [7], "dtype": "float32", "quantization": {"dtype": "float16"}}]}]));
        // 1.0, -2.0, 65504 (max), smallest subnormal, -0, +inf, 0.333 (0x3555)
        let bits: [u16; 7] = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000, 0x7c00, 0x3555];
        let raw: Vec<u8> = bits.iter().flat_map(|v| v.to_le_bytes()).collect();
        let d = decode_group(&m[0], 0, &[&raw]).unwrap();
        let TensorData::F32(v) = &d[0].data else {
            panic!()
        };
        assert_eq!(v[0..3], [1.0, -2.0, 65504.0]);
        assert_eq!(v[3], 2f32.powi(-24));
        assert!(v[4] == 0.0 && v[4].is_sign_negative());
        assert_eq!(v[5], f32::INFINITY);
        assert_eq!(v[6], 0.333_251_95);
        // Bits of real tfjs 4.22 for a signalling and a quiet NaN: no quiet bit is added.
        assert_eq!(f16_bits_to_f32(0x7c01).to_bits(), 0x7f80_2000);
        assert_eq!(f16_bits_to_f32(0xfe00).to_bits(), 0xffc0_0000);
    }

    #[test]
    fn float16_matches_tfjs_tables_on_all_bit_patterns() {
        // Port of tfjs's getFloat16Decoder tables, used as the oracle.
        let mantissa = |i: u32| -> u32 {
            if i == 0 {
                0
            } else if i < 1024 {
                let mut m = i << 13;
                let mut e: u32 = 0;
                while m & 0x0080_0000 == 0 {
                    e = e.wrapping_sub(0x0080_0000);
                    m <<= 1;
                }
                m &= !0x0080_0000;
                e = e.wrapping_add(0x3880_0000);
                m | e
            } else {
                0x3800_0000 + ((i - 1024) << 13)
            }
        };
        let exponent = |i: u32| -> u32 {
            match i {
                0 => 0,
                31 => 0x4780_0000,
                32 => 0x8000_0000,
                63 => 0xc780_0000,
                1..=30 => i << 23,
                _ => 0x8000_0000 + ((i - 32) << 23),
            }
        };
        let offset = |i: u32| if i == 0 || i == 32 { 0 } else { 1024 };
        for b in 0..=u16::MAX {
            let h = u32::from(b);
            let want = mantissa(offset(h >> 10) + (h & 0x3ff)).wrapping_add(exponent(h >> 10));
            assert_eq!(f16_bits_to_f32(b).to_bits(), want, "bits {b:#06x}");
        }
    }

    #[test]
    fn shard_length_mismatch_names_group_and_paths() {
        let m = manifest(json!([
            {"paths": ["g0.bin"], "weights": []},
            {"paths": ["group2-shard1of2.bin", "group2-shard2of2.bin"], "weights": [
                {"name": "x", "shape": [3], "dtype": "float32"}]}]));
        let short = decode_group(&m[1], 1, &[&[0u8; 4], &[0u8; 4]]).unwrap_err();
        assert_eq!(
            short,
            FormatError::ShardLength {
                group: 1,
                paths: vec!["group2-shard1of2.bin".into(), "group2-shard2of2.bin".into()],
                expected: 12,
                actual: 8
            }
        );
        let msg = short.to_string();
        assert!(
            msg.contains("group 1") && msg.contains("group2-shard2of2.bin") && msg.contains("12"),
            "{msg}"
        );
        let long = decode_group(&m[1], 1, &[&[0u8; 8], &[0u8; 5]]).unwrap_err();
        assert!(
            matches!(
                long,
                FormatError::ShardLength {
                    expected: 12,
                    actual: 13,
                    ..
                }
            ),
            "{long}"
        );
        let count = decode_group(&m[1], 1, &[&[0u8; 12]]).unwrap_err();
        assert!(
            matches!(
                count,
                FormatError::ShardCount {
                    expected: 2,
                    actual: 1,
                    ..
                }
            ),
            "{count}"
        );
        // Through decode_weights: group count, and the group index is carried.
        assert!(matches!(
            decode_weights(&m, &[vec![]]).unwrap_err(),
            FormatError::GroupCount { .. }
        ));
        let e = decode_weights(&m, &[vec![&[]], vec![&[0u8; 12], &[1u8]]]).unwrap_err();
        assert!(
            matches!(e, FormatError::ShardLength { group: 1, .. }),
            "{e}"
        );
        let ok = decode_weights(&m, &[vec![&[]], vec![&[0u8; 12], &[]]]).unwrap();
        assert_eq!(ok.len(), 1);
    }

    #[test]
    fn every_prefix_of_a_shard_is_rejected() {
        let m = manifest(json!([{"paths": ["s"], "weights": [
            {"name": "a", "shape": [3], "dtype": "float32"},
            {"name": "b", "shape": [2], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 1, "min": 0}},
            {"name": "c", "shape": [2], "dtype": "float32", "quantization": {"dtype": "float16"}}]}]));
        let bytes: Vec<u8> = (0..(12 + 2 + 4)).collect();
        assert!(decode_group(&m[0], 0, &[&bytes]).is_ok());
        for cut in 0..bytes.len() {
            let e = decode_group(&m[0], 0, &[&bytes[..cut]]).unwrap_err();
            assert!(matches!(e, FormatError::ShardLength { .. }));
        }
    }

    #[test]
    fn duplicate_names_across_groups() {
        let w = |g| WeightEntry {
            name: "dup".into(),
            shape: vec![1],
            dtype: DType::Bool,
            quantization: None,
            group: g,
            byte_offset: 0,
            byte_len: 1,
        };
        let m = vec![
            WeightGroup {
                paths: vec!["a".into()],
                weights: vec![w(0)],
            },
            WeightGroup {
                paths: vec!["b".into()],
                weights: vec![w(1)],
            },
        ];
        let e = decode_weights(&m, &[vec![&[1]], vec![&[0]]]).unwrap_err();
        assert_eq!(
            e,
            FormatError::DuplicateWeight {
                name: "dup".into(),
                first_group: 0,
                second_group: 1
            }
        );
    }

    #[test]
    fn hand_built_inconsistent_entries_do_not_panic() {
        let w = WeightEntry {
            name: "x".into(),
            shape: vec![usize::MAX, 2],
            dtype: DType::Float32,
            quantization: None,
            group: 0,
            byte_offset: 0,
            byte_len: 0,
        };
        let g = WeightGroup {
            paths: vec!["a".into()],
            weights: vec![w.clone()],
        };
        assert!(decode_group(&g, 0, &[&[0u8; 8]]).is_err());
        assert!(decode_weight(&w, &[0u8; 8]).is_err());
        let ok = WeightEntry {
            shape: vec![2],
            ..w.clone()
        };
        assert_eq!(
            decode_weight(&ok, &[0u8; 7]).unwrap_err(),
            FormatError::WeightLength {
                weight: "x".into(),
                expected: 8,
                actual: 7
            }
        );
        assert_eq!(
            decode_weight(&ok, &[0u8; 8]).unwrap(),
            TensorData::F32(vec![0.0, 0.0])
        );
        // A float16 int32 or a quantized bool built by hand is an error, not a panic.
        let q = |dtype, qd| WeightEntry {
            name: "q".into(),
            shape: vec![1],
            dtype,
            quantization: Some(Quantization {
                dtype: qd,
                scale: 1.0,
                min: 0.0,
                original_dtype: None,
            }),
            group: 0,
            byte_offset: 0,
            byte_len: 2,
        };
        assert!(decode_weight(&q(DType::Int32, QuantDType::Float16), &[0, 0]).is_err());
        assert!(decode_weight(&q(DType::Bool, QuantDType::Uint8), &[0]).is_err());
    }
}
