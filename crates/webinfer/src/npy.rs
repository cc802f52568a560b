//! Reading and writing NumPy `.npy` files (format 1.0 / 2.0 / 3.0, C order), the CLI's tensor
//! exchange format. Reads `<f4`, `<f8`, `<i4`, `<i8`, `|u1`, `|i1`, `|b1` into `f32`;
//! writes `<f4`.

use crate::{Error, Result, Tensor};

const MAGIC: &[u8] = b"\x93NUMPY";

fn bad(what: &str, msg: impl std::fmt::Display) -> Error {
    Error::Npy {
        what: what.to_string(),
        message: msg.to_string(),
    }
}

/// Parse `.npy` bytes into a tensor. `what` names the source in errors (a path, say).
pub fn from_bytes(bytes: &[u8], what: &str) -> Result<Tensor> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad(what, "not a .npy file (bad magic)"));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(what, format!("unsupported .npy version {v}"))),
    };
    let end = start
        .checked_add(header_len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| bad(what, "truncated header"))?;
    let header =
        std::str::from_utf8(&bytes[start..end]).map_err(|_| bad(what, "header is not text"))?;
    let descr = dict_value(header, "descr").ok_or_else(|| bad(what, "header has no 'descr'"))?;
    let quote = descr
        .chars()
        .next()
        .filter(|c| *c == '\'' || *c == '"')
        .ok_or_else(|| bad(what, "'descr' is not a string"))?;
    let descr = descr[1..].split(quote).next().unwrap_or("");
    if dict_value(header, "fortran_order").is_some_and(|v| v.starts_with("True")) {
        return Err(bad(what, "Fortran-ordered arrays are not supported"));
    }
    let shape_text =
        dict_value(header, "shape").ok_or_else(|| bad(what, "header has no 'shape'"))?;
    let inner = shape_text
        .trim_start_matches('(')
        .split(')')
        .next()
        .unwrap_or("");
    let shape: Vec<usize> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| bad(what, format!("bad shape {shape_text}")))
        })
        .collect::<Result<_>>()?;
    let count =
        webinfer_core::tensor::element_count(&shape).ok_or_else(|| bad(what, "shape overflows"))?;
    let body = &bytes[end..];
    let (size, conv): (usize, fn(&[u8]) -> f32) = match descr {
        "<f4" => (4, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        "<f8" => (8, |b| {
            f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
        }),
        "<i4" => (4, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32),
        "<i8" => (8, |b| {
            i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
        }),
        "|u1" => (1, |b| b[0] as f32),
        "|i1" => (1, |b| b[0] as i8 as f32),
        "|b1" => (1, |b| (b[0] != 0) as u8 as f32),
        other => {
            return Err(bad(
                what,
                format!("dtype '{other}' is not supported (use float32 or int32)"),
            ))
        }
    };
    let need = count
        .checked_mul(size)
        .ok_or_else(|| bad(what, "shape overflows"))?;
    if body.len() != need {
        return Err(bad(
            what,
            format!(
                "shape {shape:?} needs {need} data bytes, the file has {}",
                body.len()
            ),
        ));
    }
    let data = body.chunks_exact(size).map(conv).collect();
    Ok(Tensor::new(shape, data)?)
}

/// The text after `'key':` in a header dict, up to the next top-level comma.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let pos = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = header[pos + key.len() + 2..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    Some(rest)
}

/// Serialize a tensor as a float32 `.npy` (version 1.0).
pub fn to_bytes(t: &Tensor) -> Vec<u8> {
    let shape = match t.shape() {
        [] => "()".to_string(),
        [d] => format!("({d},)"),
        s => format!(
            "({})",
            s.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    let total = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + t.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in t.data() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = Tensor::new(vec![2, 3], vec![1.0, -2.5, 3.0, 0.0, 1e-8, 7.0]).unwrap();
        let b = to_bytes(&t);
        assert_eq!((b.len() - t.len() * 4) % 64, 0, "header padded to 64 bytes");
        assert_eq!(from_bytes(&b, "t").unwrap(), t);
        let s = Tensor::new(vec![4], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(from_bytes(&to_bytes(&s), "s").unwrap(), s);
    }

    #[test]
    fn rejects_truncated_and_garbage() {
        let t = Tensor::new(vec![2, 2], vec![1.0; 4]).unwrap();
        let b = to_bytes(&t);
        for cut in 0..b.len() {
            assert!(
                from_bytes(&b[..cut], "cut").is_err(),
                "prefix of {cut} bytes accepted"
            );
        }
        assert!(from_bytes(b"hello world, not numpy", "x").is_err());
    }
}
