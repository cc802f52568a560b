//! BrowserTransport + BrowserCache in a real browser: `fetch()` bodies read
//! through a ReadableStream reader, entries in the real Cache API.
//!
//! Most tests replace `globalThis.fetch` with a fake that serves the
//! `multi_shard` fixture from memory as real `Response`s with real streams
//! (and counts calls); one goes through the real `fetch` to the test server.
#![cfg(target_arch = "wasm32")]

use js_sys::{Function, Reflect, Uint8Array};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;
use webinfer_loader::browser::{BrowserCache, BrowserTransport};
use webinfer_loader::*;

wasm_bindgen_test_configure!(run_in_browser);

const BASE: &str = "https://models.example.test/multi/";

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../tests/fixtures/multi_shard/",
            $name
        ))
    };
}

fn files() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("model.json", fixture!("model.json")),
        ("group1-shard1of3.bin", fixture!("group1-shard1of3.bin")),
        ("group1-shard2of3.bin", fixture!("group1-shard2of3.bin")),
        ("group1-shard3of3.bin", fixture!("group1-shard3of3.bin")),
        ("group2-shard1of2.bin", fixture!("group2-shard1of2.bin")),
        ("group2-shard2of2.bin", fixture!("group2-shard2of2.bin")),
    ]
}

fn total() -> u64 {
    files().iter().map(|(_, b)| b.len() as u64).sum()
}

/// Replaces `globalThis.fetch` with a fake serving `files` under `base` in
/// 100-byte stream chunks; a URL listed in `fail` errors its stream after one
/// chunk. Returns a guard that restores the real fetch and counts calls.
struct FakeFetch {
    original: JsValue,
}

impl FakeFetch {
    fn install(base: &str, fail: &[&str]) -> FakeFetch {
        let global = js_sys::global();
        let original = Reflect::get(&global, &"fetch".into()).unwrap();
        let map = js_sys::Map::new();
        for (name, bytes) in files() {
            map.set(
                &format!("{base}{name}").into(),
                &Uint8Array::from(bytes).into(),
            );
        }
        let failing = js_sys::Array::new();
        for f in fail {
            failing.push(&(*f).into());
        }
        let make = Function::new_with_args(
            "map, failing",
            r#"
            globalThis.__fakeFetchCalls = [];
            return (input, init) => {
              const url = typeof input === 'string' ? input : input.url;
              globalThis.__fakeFetchCalls.push(url);
              const bytes = map.get(url);
              if (!bytes) return Promise.resolve(new Response(null, {status: 404, statusText: 'Not Found'}));
              const fail = failing.includes(url);
              let pos = 0;
              const stream = new ReadableStream({
                pull(c) {
                  if (fail && pos > 0) { c.error(new TypeError('network error')); return; }
                  if (pos >= bytes.length) { c.close(); return; }
                  c.enqueue(bytes.slice(pos, pos + 100));
                  pos += 100;
                }
              });
              return Promise.resolve(new Response(stream, {
                status: 200, headers: {'content-length': String(bytes.length)}}));
            };"#,
        );
        let fake = make.call2(&JsValue::NULL, &map, &failing).unwrap();
        Reflect::set(&global, &"fetch".into(), &fake).unwrap();
        FakeFetch { original }
    }

    fn calls(&self) -> Vec<String> {
        let calls = Reflect::get(&js_sys::global(), &"__fakeFetchCalls".into()).unwrap();
        js_sys::Array::from(&calls)
            .iter()
            .filter_map(|v| v.as_string())
            .collect()
    }

    fn clear(&self) {
        Reflect::set(
            &js_sys::global(),
            &"__fakeFetchCalls".into(),
            &js_sys::Array::new(),
        )
        .unwrap();
    }
}

impl Drop for FakeFetch {
    fn drop(&mut self) {
        Reflect::set(&js_sys::global(), &"fetch".into(), &self.original).unwrap();
    }
}

fn options(namespace: &str) -> LoadOptions {
    LoadOptions {
        cache: CachePolicy {
            namespace: Some(namespace.into()),
            ..CachePolicy::default()
        },
        progress: ProgressThrottle::unthrottled(),
        ..LoadOptions::default()
    }
}

async fn fresh_cache(namespace: &str) {
    BrowserCache::delete_cache(&cache_name(Some(namespace)))
        .await
        .unwrap();
}

#[wasm_bindgen_test]
async fn streams_caches_and_reloads_from_the_cache_api() {
    let ns = "test-stream";
    fresh_cache(ns).await;
    let fake = FakeFetch::install(BASE, &[]);
    let loader = Loader::new(BrowserTransport::new()).with_cache(BrowserCache::new());
    let url = format!("{BASE}model.json");

    let mut events = Vec::new();
    let model = loader
        .load(&url, &options(ns), &mut |e| events.push(e.clone()))
        .await
        .unwrap();
    assert_eq!(fake.calls().len(), 6);
    assert_eq!(model.model_json, files()[0].1);
    for (shard, (name, bytes)) in model.shards.iter().zip(&files()[1..]) {
        assert_eq!(shard.path, *name);
        assert_eq!(shard.bytes, *bytes);
    }
    let progress: Vec<&Progress> = events
        .iter()
        .filter_map(|e| match e {
            LoadEvent::Progress(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(progress[0].phase, Phase::ModelJson);
    assert!(progress.iter().all(|p| p.total_bytes == total()));
    assert!(progress
        .windows(2)
        .all(|w| w[0].loaded_bytes <= w[1].loaded_bytes));
    // 100-byte chunks from the ReadableStream: one event each.
    let chunks: usize = files()[1..]
        .iter()
        .map(|(_, b)| b.len().div_ceil(100))
        .sum();
    assert_eq!(progress.len(), 2 + chunks);
    let done = progress.last().unwrap();
    assert_eq!((done.phase, done.loaded_bytes), (Phase::Done, total()));

    // Again: everything from the Cache API, no fetch at all.
    fake.clear();
    let again = loader.load(&url, &options(ns), &mut |_| {}).await.unwrap();
    assert!(again.from_cache, "{:?}", again.stats);
    assert_eq!(fake.calls(), Vec::<String>::new());
    assert_eq!(again.shards[4].bytes, files()[5].1);

    let policy = options(ns).cache;
    let listed = loader.list_cached(&policy).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].model_url, url);
    assert_eq!(listed[0].files.len(), 6);
    assert_eq!(listed[0].total_bytes, total());
    assert!(listed[0].complete);
    assert_eq!(loader.delete_cached(&url, &policy).await.unwrap(), 6);
    assert!(loader.list_cached(&policy).await.unwrap().is_empty());
    fresh_cache(ns).await;
}

#[wasm_bindgen_test]
async fn a_stream_error_fails_the_load_and_resume_fetches_only_what_is_missing() {
    let ns = "test-resume";
    fresh_cache(ns).await;
    let broken = format!("{BASE}group2-shard1of2.bin");
    let loader = Loader::new(BrowserTransport::new()).with_cache(BrowserCache::new());
    let url = format!("{BASE}model.json");
    let one_at_a_time = LoadOptions {
        concurrency: 1,
        ..options(ns)
    };
    {
        let _fake = FakeFetch::install(BASE, &[&broken]);
        let err = loader
            .load(&url, &one_at_a_time, &mut |_| {})
            .await
            .unwrap_err();
        match &err {
            LoadError::Interrupted { url, received, .. } => {
                assert_eq!((url.as_str(), *received), (broken.as_str(), 100))
            }
            other => panic!("{other}"),
        }
    }
    let fake = FakeFetch::install(BASE, &[]);
    let model = loader
        .load(&url, &one_at_a_time, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        fake.calls(),
        vec![broken.clone(), format!("{BASE}group2-shard2of2.bin")]
    );
    assert_eq!(model.stats.files_from_cache, 3);
    fresh_cache(ns).await;
}

#[wasm_bindgen_test]
async fn relative_model_urls_resolve_against_the_page() {
    let ns = "test-relative";
    fresh_cache(ns).await;
    let origin = web_sys_origin();
    let base = format!("{origin}/models/rel/");
    let fake = FakeFetch::install(&base, &[]);
    let loader = Loader::new(BrowserTransport::new()).with_cache(BrowserCache::new());
    let model = loader
        .load("/models/rel/model.json", &options(ns), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(model.model_url, format!("{base}model.json"));
    assert!(
        fake.calls().iter().all(|u| u.starts_with(&base)),
        "{:?}",
        fake.calls()
    );
    let listed = loader.list_cached(&options(ns).cache).await.unwrap();
    assert_eq!(listed[0].model_url, format!("{base}model.json"));
    fresh_cache(ns).await;
}

#[wasm_bindgen_test]
async fn the_real_fetch_reports_http_errors_with_url_and_status() {
    let loader = Loader::new(BrowserTransport::new());
    let url = format!("{}/no/such/model.json", web_sys_origin());
    let err = loader
        .load(&url, &LoadOptions::default(), &mut |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LoadError::Http { status: 404, url: u, .. } if *u == url),
        "{err}"
    );
    assert!(err.to_string().contains("404"));
}

#[wasm_bindgen_test]
async fn a_real_fetch_streams_a_real_body() {
    // The test server serves the test's own wasm module: a large body.
    let url = format!("{}/wasm-bindgen-test_bg.wasm", web_sys_origin());
    let transport = BrowserTransport::new();
    let response = transport.get(&url).await.unwrap();
    assert_eq!(response.status, 200);
    let mut body = response.body;
    let mut n = 0usize;
    while let Some(chunk) = futures::StreamExt::next(&mut body).await {
        n += chunk.unwrap().len();
    }
    assert!(n > 100_000, "{n}");
    if let Some(len) = response.content_length {
        assert_eq!(len as usize, n);
    }
}

fn web_sys_origin() -> String {
    let location = Reflect::get(&js_sys::global(), &"location".into()).unwrap();
    Reflect::get(&location, &"origin".into())
        .unwrap()
        .as_string()
        .unwrap()
}
