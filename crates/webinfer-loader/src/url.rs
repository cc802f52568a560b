//! Shard URL resolution, the way tfjs does it, minus its query-string bug.
//!
//! tfjs (`tf.io.http`, `parseUrl` + `loadWeights`) requests every shard at
//! `prefix + path + suffix`, where `prefix` is the model URL up to its last
//! `/` (or `weightPathPrefix`), `path` is the manifest entry as written, and
//! `suffix` is the model URL's query string. That suffix is what breaks
//! presigned URLs: the signature of `model.json` is appended to every shard
//! URL and the storage service rejects it. Here the query is dropped by
//! default ([`ShardQuery::Drop`]); [`ShardQuery::Inherit`] restores tfjs's
//! behaviour, and a [`UrlRewrite`](crate::UrlRewrite) can sign each request.
//!
//! Unlike tfjs, the query and fragment are split off *before* looking for the
//! last `/`, so `model.json?next=/a/b` resolves next to `model.json`.

/// What a shard URL takes from the model URL's query string (`?...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum ShardQuery {
    /// Shard URLs carry no query (default). Right for presigned URLs, whose
    /// query signs one object only, and harmless for plain ones.
    #[default]
    Drop,
    /// Append the model URL's query to every shard URL, as tfjs does (for
    /// servers that authenticate with a token in the query, e.g. `?token=...`).
    Inherit,
}

/// How a resolved URL becomes a cache key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum CacheKeyQuery {
    /// The key is the resolved URL, query included (default). Right when the
    /// query names the content (`?v=3`).
    #[default]
    Keep,
    /// The key is the resolved URL without its query. Right for presigned
    /// URLs, whose signature changes on every visit while the file does not.
    Strip,
}

/// Splits `url` into (everything before `?`/`#`, the query with its `?` or "").
/// The fragment is dropped: it is never sent to a server.
pub(crate) fn split_query(url: &str) -> (&str, &str) {
    let no_fragment = url.split_once('#').map_or(url, |(u, _)| u);
    no_fragment
        .find('?')
        .and_then(|i| no_fragment.split_at_checked(i))
        .unwrap_or((no_fragment, ""))
}

/// The directory of the model URL, ending in `/` (or "" for a bare file name).
pub fn model_dir(model_url: &str) -> &str {
    let (path, _) = split_query(model_url);
    // "https://host" (no path at all) is a directory itself.
    // (A byte search: `str::find` with a `&str` pattern links core's substring searcher and
    // its panic message machinery into the browser module.)
    if let Some(scheme_end) = path.as_bytes().windows(3).position(|w| w == b"://") {
        let after = scheme_end.saturating_add(3);
        if !path.get(after..).is_some_and(|rest| rest.contains('/')) {
            return path;
        }
    }
    match path.rfind('/') {
        Some(i) => path.get(..=i).unwrap_or(path),
        None => "",
    }
}

/// The URL of the shard `manifest_path` of the model at `model_url`.
///
/// `weight_path_prefix` replaces the model's directory (a `/` is added when it
/// does not end in one). The manifest path is appended as written, as tfjs does.
pub fn resolve_shard_url(
    model_url: &str,
    manifest_path: &str,
    weight_path_prefix: Option<&str>,
    shard_query: ShardQuery,
) -> String {
    let mut url = match weight_path_prefix {
        Some(prefix) if !prefix.is_empty() => {
            let mut p = prefix.to_owned();
            if !p.ends_with('/') {
                p.push('/');
            }
            p
        }
        _ => model_dir(model_url).to_owned(),
    };
    url.push_str(manifest_path);
    let (_, query) = split_query(model_url);
    if shard_query == ShardQuery::Inherit && query.len() > 1 {
        if url.contains('?') {
            url.push('&');
            url.push_str(query.get(1..).unwrap_or_default());
        } else {
            url.push_str(query);
        }
    }
    url
}

/// The cache key of a resolved URL.
pub fn cache_key(url: &str, query: CacheKeyQuery) -> String {
    let (path, q) = split_query(url);
    match query {
        CacheKeyQuery::Keep => format!("{path}{q}"),
        CacheKeyQuery::Strip => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_of_the_model_url() {
        assert_eq!(model_dir("https://h/a/b/model.json"), "https://h/a/b/");
        assert_eq!(model_dir("https://h/a/model.json?x=/y/z"), "https://h/a/");
        assert_eq!(model_dir("https://h/a/model.json#frag/x"), "https://h/a/");
        assert_eq!(model_dir("model.json"), "");
        assert_eq!(model_dir("/abs/model.json"), "/abs/");
        assert_eq!(model_dir("https://h"), "https://h");
        assert_eq!(model_dir("https://h/"), "https://h/");
    }

    #[test]
    fn shard_urls_drop_or_inherit_the_query() {
        let m = "https://s3.example/bucket/m/model.json?X-Amz-Signature=abc&X-Amz-Expires=60";
        assert_eq!(
            resolve_shard_url(m, "g1.bin", None, ShardQuery::Drop),
            "https://s3.example/bucket/m/g1.bin"
        );
        assert_eq!(
            resolve_shard_url(m, "g1.bin", None, ShardQuery::Inherit),
            "https://s3.example/bucket/m/g1.bin?X-Amz-Signature=abc&X-Amz-Expires=60"
        );
        assert_eq!(
            resolve_shard_url(m, "g1.bin?v=2", None, ShardQuery::Inherit),
            "https://s3.example/bucket/m/g1.bin?v=2&X-Amz-Signature=abc&X-Amz-Expires=60"
        );
        assert_eq!(
            resolve_shard_url(
                "https://h/m/model.json?",
                "g.bin",
                None,
                ShardQuery::Inherit
            ),
            "https://h/m/g.bin"
        );
    }

    #[test]
    fn weight_path_prefix_replaces_the_directory() {
        let m = "https://h/m/model.json";
        assert_eq!(
            resolve_shard_url(m, "g.bin", Some("https://cdn/w/"), ShardQuery::Drop),
            "https://cdn/w/g.bin"
        );
        assert_eq!(
            resolve_shard_url(m, "g.bin", Some("https://cdn/w"), ShardQuery::Drop),
            "https://cdn/w/g.bin"
        );
        assert_eq!(
            resolve_shard_url(m, "g.bin", Some(""), ShardQuery::Drop),
            "https://h/m/g.bin"
        );
        assert_eq!(
            resolve_shard_url(m, "sub/g.bin", None, ShardQuery::Drop),
            "https://h/m/sub/g.bin"
        );
    }

    #[test]
    fn cache_keys() {
        let u = "https://h/m/model.json?sig=1#top";
        assert_eq!(
            cache_key(u, CacheKeyQuery::Keep),
            "https://h/m/model.json?sig=1"
        );
        assert_eq!(cache_key(u, CacheKeyQuery::Strip), "https://h/m/model.json");
    }
}
