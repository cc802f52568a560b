//! Native implementations (not on wasm32): [`FileTransport`] reads files,
//! [`DirCache`] stores entries in a directory.
//!
//! There is no native HTTP transport: the workspace has no HTTP client, and a
//! native program that has one implements [`Transport`] in a few lines.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::LocalBoxFuture;
use serde_json::{json, Value};

use crate::cache::{CacheEntry, CacheStore, EntryKind, EntryMeta};
use crate::error::{CacheError, TransportError};
use crate::load::{hex, sha256};
use crate::transport::{Response, Transport};
use crate::url::split_query;

/// Serves `file://` URLs and plain paths from the file system. A query string
/// is ignored; `%XX` escapes of `file://` URLs are decoded. A missing file
/// answers 404; other I/O errors are transport errors.
#[derive(Debug, Clone, Default)]
pub struct FileTransport {
    chunk_size: usize,
}

impl FileTransport {
    pub fn new() -> Self {
        FileTransport {
            chunk_size: 256 * 1024,
        }
    }

    /// The path a URL names.
    pub fn path_of(url: &str) -> PathBuf {
        let (path, _) = split_query(url);
        match path.strip_prefix("file://") {
            // file:///abs/path or file://localhost/abs/path
            Some(rest) => PathBuf::from(percent_decode(
                rest.strip_prefix("localhost").unwrap_or(rest),
            )),
            None => PathBuf::from(path),
        }
    }
}

impl Transport for FileTransport {
    fn get<'a>(&'a self, url: &'a str) -> LocalBoxFuture<'a, Result<Response<'a>, TransportError>> {
        Box::pin(async move {
            let path = Self::path_of(url);
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Ok(Response {
                        status: 404,
                        status_text: "Not Found".into(),
                        content_length: Some(0),
                        body: Box::pin(futures::stream::empty()),
                    })
                }
                Err(e) => return Err(TransportError::new(format!("{}: {e}", path.display()))),
            };
            let content_length = file.metadata().ok().map(|m| m.len());
            let chunk_size = self.chunk_size.max(1);
            let body = futures::stream::unfold(Some(file), move |file| async move {
                let mut file = file?;
                let mut buf = vec![0u8; chunk_size];
                match file.read(&mut buf) {
                    Ok(0) => None,
                    Ok(n) => {
                        buf.truncate(n);
                        Some((Ok(buf), Some(file)))
                    }
                    Err(e) => Some((Err(TransportError::new(e.to_string())), None)),
                }
            });
            Ok(Response {
                status: 200,
                status_text: "OK".into(),
                content_length,
                body: Box::pin(body),
            })
        })
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex_pair = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex_pair) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

const MAGIC: &str = "webinfer-cache-entry-v1";

/// A cache in a directory: `ROOT/<cache name>/<sha256 of key>.entry`, one file
/// per entry holding a header line, a JSON line (key and meta) and the bytes.
/// Entries are written to a temporary file and renamed into place, so a crash
/// or a full disk never leaves half an entry under its name.
#[derive(Debug, Clone)]
pub struct DirCache {
    root: PathBuf,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl DirCache {
    /// A cache under `root` (created on the first put).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirCache { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, cache: &str) -> PathBuf {
        let safe: String = cache
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.root.join(safe)
    }

    fn path(&self, cache: &str, key: &str) -> PathBuf {
        self.dir(cache)
            .join(format!("{}.entry", hex(&sha256(key.as_bytes()))))
    }

    fn read_header(reader: &mut impl BufRead) -> Option<(String, EntryMeta)> {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        if line.trim_end() != MAGIC {
            return None;
        }
        line.clear();
        reader.read_line(&mut line).ok()?;
        let v: Value = serde_json::from_str(&line).ok()?;
        let meta = EntryMeta {
            model_url: v.get("model_url")?.as_str()?.to_owned(),
            kind: EntryKind::parse(v.get("kind")?.as_str()?)?,
            length: v.get("length")?.as_u64()?,
            model_files: v
                .get("model_files")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok()),
        };
        Some((v.get("key")?.as_str()?.to_owned(), meta))
    }

    fn get_sync(&self, cache: &str, key: &str) -> Result<Option<CacheEntry>, CacheError> {
        let file = match File::open(self.path(cache, key)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(e)),
        };
        let mut reader = BufReader::new(file);
        let Some((stored_key, meta)) = Self::read_header(&mut reader) else {
            // Unreadable header: report it as an entry that fails its checks.
            return Ok(Some(CacheEntry {
                meta: EntryMeta {
                    model_url: String::new(),
                    kind: EntryKind::Shard,
                    length: u64::MAX,
                    model_files: None,
                },
                bytes: Vec::new(),
            }));
        };
        if stored_key != key {
            return Ok(None); // a hash collision: not this key's entry
        }
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).map_err(io_error)?;
        Ok(Some(CacheEntry { meta, bytes }))
    }

    fn put_sync(
        &self,
        cache: &str,
        key: &str,
        meta: &EntryMeta,
        bytes: &[u8],
    ) -> Result<(), CacheError> {
        let dir = self.dir(cache);
        fs::create_dir_all(&dir).map_err(io_error)?;
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".tmp-{}-{n}", std::process::id()));
        let header = json!({
            "key": key,
            "model_url": meta.model_url,
            "kind": meta.kind.as_str(),
            "length": meta.length,
            "model_files": meta.model_files,
        });
        let write = || -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            writeln!(f, "{MAGIC}")?;
            writeln!(f, "{header}")?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, self.path(cache, key))
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_error(e)
        })
    }

    fn list_sync(&self, cache: &str) -> Result<Vec<(String, EntryMeta)>, CacheError> {
        let entries = match fs::read_dir(self.dir(cache)) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.map_err(io_error)?.path();
            if path.extension().is_none_or(|e| e != "entry") {
                continue;
            }
            let Ok(file) = File::open(&path) else {
                continue;
            };
            if let Some(item) = Self::read_header(&mut BufReader::new(file)) {
                out.push(item);
            }
        }
        webinfer_tfjs::order::sort_by(&mut out, |a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

fn io_error(e: io::Error) -> CacheError {
    if e.kind() == io::ErrorKind::StorageFull || e.kind() == io::ErrorKind::QuotaExceeded {
        CacheError::Quota(e.to_string())
    } else {
        CacheError::Other(e.to_string())
    }
}

impl CacheStore for DirCache {
    fn get<'a>(
        &'a self,
        cache: &'a str,
        key: &'a str,
    ) -> LocalBoxFuture<'a, Result<Option<CacheEntry>, CacheError>> {
        Box::pin(async move { self.get_sync(cache, key) })
    }

    fn put<'a>(
        &'a self,
        cache: &'a str,
        key: &'a str,
        meta: &'a EntryMeta,
        bytes: &'a [u8],
    ) -> LocalBoxFuture<'a, Result<(), CacheError>> {
        Box::pin(async move { self.put_sync(cache, key, meta, bytes) })
    }

    fn delete<'a>(
        &'a self,
        cache: &'a str,
        key: &'a str,
    ) -> LocalBoxFuture<'a, Result<bool, CacheError>> {
        Box::pin(async move {
            match fs::remove_file(self.path(cache, key)) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(io_error(e)),
            }
        })
    }

    fn list<'a>(
        &'a self,
        cache: &'a str,
    ) -> LocalBoxFuture<'a, Result<Vec<(String, EntryMeta)>, CacheError>> {
        Box::pin(async move { self.list_sync(cache) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_to_paths() {
        assert_eq!(
            FileTransport::path_of("file:///a/b%20c/m.json"),
            PathBuf::from("/a/b c/m.json")
        );
        assert_eq!(
            FileTransport::path_of("file://localhost/a/m.json?x=1"),
            PathBuf::from("/a/m.json")
        );
        assert_eq!(
            FileTransport::path_of("dir/m.json"),
            PathBuf::from("dir/m.json")
        );
    }
}
