//! The loading policy, end to end, over the in-memory fake transport and cache,
//! serving the real tfjs-made fixture `tests/fixtures/multi_shard` (model.json
//! + 5 shards in two groups) and `tests/fixtures/dense_sequential` (1 shard).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use futures::executor::block_on;
use std::future::Future;
use webinfer_loader::memory::{Fault, ManualClock, MemoryCache, MemoryTransport};
use webinfer_loader::*;

const BASE: &str = "https://models.example.com/multi/";

/// A fixture model: model.json and its shards (manifest path, bytes) in manifest order.
struct Fixture {
    json: Vec<u8>,
    shards: Vec<(String, Vec<u8>)>,
}

impl Fixture {
    fn read(name: &str) -> Fixture {
        let dir = fixtures_dir().join(name);
        let json = std::fs::read(dir.join("model.json")).unwrap();
        let model = webinfer_tfjs::parse_model_json(&json, &Default::default()).unwrap();
        let shards = model
            .shard_paths()
            .map(|p| (p.to_owned(), std::fs::read(dir.join(p)).unwrap()))
            .collect();
        Fixture { json, shards }
    }

    fn total(&self) -> u64 {
        self.json.len() as u64 + self.shards.iter().map(|(_, b)| b.len() as u64).sum::<u64>()
    }

    fn serve(&self, net: &MemoryTransport, base: &str) {
        net.insert(format!("{base}model.json"), self.json.clone());
        for (path, bytes) in &self.shards {
            net.insert(format!("{base}{path}"), bytes.clone());
        }
    }

    fn bytes_of(&self, path: &str) -> &[u8] {
        &self.shards.iter().find(|(p, _)| p == path).unwrap().1
    }
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// A fake network serving multi_shard at BASE in 100-byte chunks (1 ms each on
/// a manual clock), an in-memory cache, and a loader over both.
struct Env {
    fixture: Fixture,
    net: MemoryTransport,
    cache: MemoryCache,
    clock: ManualClock,
    loader: Loader,
}

fn setup() -> Env {
    env_with(Fixture::read("multi_shard"), BASE)
}

fn env_with(fixture: Fixture, base: &str) -> Env {
    let clock = ManualClock::new();
    let net = MemoryTransport::new()
        .with_chunk_size(100)
        .with_clock(clock.clone(), 1.0);
    fixture.serve(&net, base);
    let cache = MemoryCache::new();
    let loader = Loader::new(net.clone())
        .with_cache(cache.clone())
        .with_clock(clock.clone());
    Env {
        fixture,
        net,
        cache,
        clock,
        loader,
    }
}

fn model_url() -> String {
    format!("{BASE}model.json")
}

fn url_of(path: &str) -> String {
    format!("{BASE}{path}")
}

struct Outcome {
    result: Result<LoadedModel, LoadError>,
    events: Vec<LoadEvent>,
}

impl Outcome {
    fn progress(&self) -> Vec<&Progress> {
        self.events
            .iter()
            .filter_map(|e| match e {
                LoadEvent::Progress(p) => Some(p),
                LoadEvent::Warning(_) => None,
            })
            .collect()
    }

    fn warnings(&self) -> Vec<&Warning> {
        self.events
            .iter()
            .filter_map(|e| match e {
                LoadEvent::Warning(w) => Some(w),
                LoadEvent::Progress(_) => None,
            })
            .collect()
    }

    fn ok(self) -> (LoadedModel, Vec<LoadEvent>) {
        match self.result {
            Ok(m) => (m, self.events),
            Err(e) => panic!("load failed: {e}"),
        }
    }

    fn err(self) -> LoadError {
        match self.result {
            Ok(_) => panic!("load succeeded, expected an error"),
            Err(e) => e,
        }
    }
}

fn load(env: &Env, url: &str, options: &LoadOptions) -> Outcome {
    let mut events = Vec::new();
    let result = block_on(
        env.loader
            .load(url, options, &mut |e| events.push(e.clone())),
    );
    Outcome { result, events }
}

fn unthrottled() -> LoadOptions {
    LoadOptions {
        progress: ProgressThrottle::unthrottled(),
        ..LoadOptions::default()
    }
}

/// The progress contract: the first event is model-json with the exact total,
/// the total never changes, loaded never decreases and never exceeds it, the
/// last event is the only `done` and has loaded == total.
fn assert_progress_contract(outcome: &Outcome, total: u64, json_len: u64) {
    let events = outcome.progress();
    assert!(
        events.len() >= 2,
        "at least model-json and done: {events:?}"
    );
    assert_eq!(events[0].phase, Phase::ModelJson);
    assert_eq!(events[0].loaded_bytes, json_len);
    let mut last = 0;
    for p in &events {
        assert_eq!(p.total_bytes, total, "{p:?}");
        assert!(p.loaded_bytes >= last, "loaded went backwards: {p:?}");
        assert!(p.loaded_bytes <= total, "{p:?}");
        assert!((p.fraction - p.loaded_bytes as f64 / total as f64).abs() < 1e-12);
        last = p.loaded_bytes;
    }
    let done = events.last().unwrap();
    assert_eq!(done.phase, Phase::Done);
    assert_eq!((done.loaded_bytes, done.fraction), (total, 1.0));
    assert_eq!(events.iter().filter(|p| p.phase == Phase::Done).count(), 1);
    assert!(events[1..events.len() - 1]
        .iter()
        .all(|p| p.phase == Phase::Weights));
}

fn shard_keys(env: &Env) -> Vec<String> {
    let mut keys: Vec<String> = env
        .cache
        .keys(CACHE_FORMAT)
        .into_iter()
        .filter(|k| *k != model_url())
        .collect();
    keys.sort();
    keys
}

#[test]
fn a_first_load_looks_up_model_json_only_and_a_second_every_file() {
    let env = setup();
    // Nothing cached: no earlier load got as far as the shards (model.json is stored
    // first), so the cache is asked for model.json alone before the downloads start.
    load(&env, &model_url(), &LoadOptions::default()).ok();
    assert_eq!(env.cache.get_count(), 1);
    // Everything cached: model.json and the 5 shards, and no request.
    env.net.clear_requests();
    let (model, _) = load(&env, &model_url(), &LoadOptions::default()).ok();
    assert!(model.from_cache);
    assert_eq!(env.cache.get_count(), 1 + 6);
    assert!(env.net.requests().is_empty());
    // model.json gone but the shards still there (it was found stale, say): its lookup
    // misses, so the shards are downloaded again rather than looked up.
    block_on(env.cache.delete(CACHE_FORMAT, &model_url())).unwrap();
    env.net.clear_requests();
    let (model, _) = load(&env, &model_url(), &LoadOptions::default()).ok();
    assert_eq!(env.cache.get_count(), 1 + 6 + 1);
    assert_eq!(env.net.requests().len(), 6);
    assert_eq!(model.model_json, env.fixture.json);
}

#[test]
fn loads_model_json_and_every_shard_in_manifest_order() {
    let env = setup();
    let (model, _) = load(&env, &model_url(), &LoadOptions::default()).ok();
    assert_eq!(model.model_json, env.fixture.json);
    assert_eq!(model.model_url, model_url());
    let got: Vec<(&str, &[u8])> = model
        .shards
        .iter()
        .map(|s| (s.path.as_str(), &s.bytes[..]))
        .collect();
    let want: Vec<(&str, &[u8])> = env
        .fixture
        .shards
        .iter()
        .map(|(p, b)| (p.as_str(), &b[..]))
        .collect();
    assert_eq!(got, want);
    assert_eq!(model.shards[3].url, url_of("group2-shard1of2.bin"));
    assert!(!model.from_cache);
    assert_eq!(model.total_bytes(), env.fixture.total());
    assert_eq!(model.stats.requests, 6);
    assert_eq!(model.stats.files_from_network, 5);
    assert_eq!(
        model.stats.bytes_from_network,
        env.fixture.total() - env.fixture.json.len() as u64
    );

    // The bytes decode with the format crate (what Model::from_memory does).
    let (json, shards) = model.into_parts();
    let parsed = webinfer_tfjs::parse_model_json(&json, &Default::default()).unwrap();
    let groups: Vec<Vec<&[u8]>> = parsed
        .weights_manifest
        .iter()
        .map(|g| g.paths.iter().map(|p| &shards[p][..]).collect())
        .collect();
    let weights = webinfer_tfjs::decode_weights(&parsed.weights_manifest, &groups).unwrap();
    assert_eq!(weights.len(), 10);
}

#[test]
fn progress_is_exact_from_the_first_event_monotonic_and_ends_at_the_total() {
    let env = setup();
    let outcome = load(&env, &model_url(), &unthrottled());
    let total = env.fixture.total();
    assert_eq!(
        total,
        3058 + 4616,
        "model.json + every weight's stored bytes"
    );
    assert_progress_contract(&outcome, total, env.fixture.json.len() as u64);
    let events = outcome.progress();
    // Unthrottled: one event per 100-byte chunk of every shard.
    let chunks: usize = env
        .fixture
        .shards
        .iter()
        .map(|(_, b)| b.len().div_ceil(100))
        .sum();
    assert_eq!(events.len(), 1 + chunks + 1);
    assert!(events.iter().all(|p| !p.from_cache));
    let urls: std::collections::HashSet<&str> = events[1..events.len() - 1]
        .iter()
        .map(|p| p.url.as_str())
        .collect();
    assert_eq!(urls.len(), 5, "events name the shard whose bytes arrived");
    assert_eq!(events[0].url, model_url());
}

#[test]
fn progress_is_rate_limited_and_the_final_event_always_fires() {
    // Time-based only (min_step 1.0), with a clock that never moves: no weights
    // events at all, yet the first and the final event fire.
    let env = setup();
    let options = LoadOptions {
        progress: ProgressThrottle {
            min_interval_ms: 50.0,
            min_step: 1.0,
        },
        ..LoadOptions::default()
    };
    let frozen = Loader::new(env.net.clone()).with_clock(ManualClock::new());
    let mut events = Vec::new();
    let result = block_on(frozen.load(&model_url(), &options, &mut |e| events.push(e.clone())));
    let outcome = Outcome { result, events };
    assert_progress_contract(&outcome, env.fixture.total(), 3058);
    assert_eq!(outcome.progress().len(), 2);

    // The clock moves 1 ms per 100-byte chunk: one event per 50 ms = 5000 bytes
    // at most, plus one per 1% of the total.
    let env = env_with(Fixture::read("multi_shard"), BASE);
    let outcome = load(&env, &model_url(), &LoadOptions::default());
    assert_progress_contract(&outcome, env.fixture.total(), 3058);
    let weights_events = outcome.progress().len() - 2;
    let chunks: usize = env
        .fixture
        .shards
        .iter()
        .map(|(_, b)| b.len().div_ceil(100))
        .sum();
    assert!(weights_events <= 100 + 1, "{weights_events}");
    // 1% of 7674 bytes is 76.74: every full 100-byte chunk crosses it and is
    // reported; a shard's short last chunk is reported only once the bytes
    // since the last event add up to 1%.
    let full_chunks: usize = env.fixture.shards.iter().map(|(_, b)| b.len() / 100).sum();
    assert!(
        (full_chunks..chunks).contains(&weights_events),
        "{weights_events}"
    );
    let env = env_with(Fixture::read("multi_shard"), BASE);
    let options = LoadOptions {
        progress: ProgressThrottle {
            min_interval_ms: 5.0,
            min_step: 0.25,
        },
        ..LoadOptions::default()
    };
    let outcome = load(&env, &model_url(), &options);
    assert_progress_contract(&outcome, env.fixture.total(), 3058);
    let elapsed = env.clock.now_ms();
    let weights_events = outcome.progress().len() - 2;
    assert!(
        weights_events < chunks,
        "throttled: {weights_events} of {chunks}"
    );
    assert!(
        weights_events as f64 <= 4.0 + elapsed / 5.0 + 1.0,
        "{weights_events}"
    );
}

#[test]
fn a_second_load_makes_zero_network_requests() {
    let env = setup();
    let (first, _) = load(&env, &model_url(), &LoadOptions::default()).ok();
    assert_eq!(env.net.request_count(), 6);
    assert_eq!(env.cache.keys(CACHE_FORMAT).len(), 6);
    env.net.clear_requests();

    let outcome = load(&env, &model_url(), &unthrottled());
    assert_progress_contract(&outcome, env.fixture.total(), 3058);
    assert!(outcome.progress().iter().all(|p| p.from_cache));
    let (second, _) = outcome.ok();
    assert_eq!(env.net.request_count(), 0, "{:?}", env.net.requests());
    assert!(second.from_cache);
    assert_eq!(second.stats.requests, 0);
    assert_eq!(second.stats.files_from_cache, 5);
    assert_eq!(second.model_json, first.model_json);
    assert_eq!(
        second.shards.iter().map(|s| &s.bytes).collect::<Vec<_>>(),
        first.shards.iter().map(|s| &s.bytes).collect::<Vec<_>>()
    );
    assert!(second.shards.iter().all(|s| s.from_cache));
}

#[test]
fn downloads_run_in_parallel_with_bounded_concurrency() {
    for (concurrency, expected) in [(1, 1), (2, 2), (4, 4), (16, 5)] {
        let env = setup();
        let options = LoadOptions {
            concurrency,
            ..LoadOptions::default()
        };
        load(&env, &model_url(), &options).ok();
        assert_eq!(
            env.net.max_in_flight(),
            expected,
            "concurrency {concurrency}"
        );
        assert_eq!(env.net.in_flight(), 0);
    }
}

#[test]
fn an_interrupted_download_resumes_fetching_only_the_missing_shards() {
    // Concurrency 1: shard 1 completes, shard 2 breaks off after 300 bytes,
    // shards 3..5 are never started.
    let env = setup();
    let broken = url_of("group1-shard2of3.bin");
    env.net.set_fault(&broken, Fault::FailAfter(300));
    let options = LoadOptions {
        concurrency: 1,
        ..unthrottled()
    };
    let outcome = load(&env, &model_url(), &options);
    let progress: Vec<u64> = outcome.progress().iter().map(|p| p.loaded_bytes).collect();
    assert!(outcome.progress().iter().all(|p| p.phase != Phase::Done));
    assert_eq!(*progress.last().unwrap(), 3058 + 1024 + 300);
    match outcome.err() {
        LoadError::Interrupted { url, received, .. } => {
            assert_eq!((url.as_str(), received), (broken.as_str(), 300))
        }
        other => panic!("{other}"),
    }
    assert_eq!(shard_keys(&env), vec![url_of("group1-shard1of3.bin")]);
    assert!(env.cache.entry(CACHE_FORMAT, &model_url()).is_some());

    env.net.clear_faults();
    env.net.clear_requests();
    let outcome = load(&env, &model_url(), &unthrottled());
    assert_progress_contract(&outcome, env.fixture.total(), 3058);
    // The second event credits the cached shard at once.
    assert_eq!(outcome.progress()[1].loaded_bytes, 3058 + 1024);
    assert!(outcome.progress()[1].from_cache);
    let (model, _) = outcome.ok();
    let mut requested = env.net.requests();
    requested.sort();
    let mut missing: Vec<String> = env.fixture.shards[1..]
        .iter()
        .map(|(p, _)| url_of(p))
        .collect();
    missing.sort();
    assert_eq!(
        requested, missing,
        "model.json and the complete shard come from the cache"
    );
    assert!(!model.from_cache);
    assert_eq!(model.stats.files_from_cache, 1);
    assert_eq!(shard_keys(&env).len(), 5);
}

#[test]
fn an_interrupted_parallel_download_keeps_exactly_the_complete_shards() {
    let env = setup();
    env.net
        .set_fault(url_of("group2-shard1of2.bin"), Fault::FailAfter(10));
    load(&env, &model_url(), &LoadOptions::default()).err();
    let cached = shard_keys(&env);
    for key in &cached {
        let entry = env.cache.entry(CACHE_FORMAT, key).unwrap();
        let path = key.strip_prefix(BASE).unwrap();
        assert_eq!(
            entry.bytes,
            env.fixture.bytes_of(path),
            "only complete shards are cached"
        );
    }
    assert!(!cached.contains(&url_of("group2-shard1of2.bin")));
    assert_eq!(
        env.net.in_flight(),
        0,
        "the error cancelled the other downloads"
    );

    env.net.clear_faults();
    env.net.clear_requests();
    let (model, _) = load(&env, &model_url(), &LoadOptions::default()).ok();
    assert_eq!(env.net.request_count(), 5 - cached.len());
    assert!(env.net.requests().iter().all(|u| !cached.contains(u)));
    assert_eq!(model.stats.files_from_cache, cached.len());
}

#[test]
fn a_truncated_shard_is_an_error_and_nothing_is_cached_for_it() {
    // Content-Length announces 528 bytes, the body ends after 500.
    let env = setup();
    let url = url_of("group2-shard2of2.bin");
    env.net.set_fault(&url, Fault::Truncate(500));
    let err = load(&env, &model_url(), &LoadOptions::default()).err();
    assert_eq!(
        err,
        LoadError::Truncated {
            url: url.clone(),
            received: 500,
            expected: 528
        }
    );
    assert!(err.to_string().contains(&url), "{err}");
    assert!(env.cache.entry(CACHE_FORMAT, &url).is_none());

    // Without Content-Length the shard alone looks fine (its group has two
    // shards), but the group does not add up: the load fails and every entry
    // of the group is gone, while the complete group 1 stays cached.
    let env = setup();
    env.net.set_fault(&url, Fault::TruncateSilently(500));
    let err = load(&env, &model_url(), &LoadOptions::default()).err();
    match &err {
        LoadError::GroupLength {
            group,
            urls,
            expected,
            actual,
        } => {
            assert_eq!((*group, *expected, *actual), (1, 1552, 1524));
            assert_eq!(urls, &vec![url_of("group2-shard1of2.bin"), url.clone()]);
        }
        other => panic!("{other}"),
    }
    assert_eq!(
        shard_keys(&env),
        vec![
            url_of("group1-shard1of3.bin"),
            url_of("group1-shard2of3.bin"),
            url_of("group1-shard3of3.bin")
        ]
    );
}

#[test]
fn a_single_shard_group_is_checked_to_the_exact_byte() {
    let base = "https://models.example.com/dense/";
    let fixture = Fixture::read("dense_sequential");
    let (path, bytes) = fixture.shards[0].clone();
    let url = format!("{base}{path}");
    let m = format!("{base}model.json");
    let n = bytes.len() as u64;

    // Content-Length disagrees with the manifest: rejected before the body is read.
    let env = env_with(Fixture::read("dense_sequential"), base);
    env.net.set_fault(&url, Fault::ContentLength(n + 4));
    let err = load(&env, &m, &LoadOptions::default()).err();
    assert_eq!(
        err,
        LoadError::ShardLength {
            url: url.clone(),
            expected: n,
            actual: n + 4,
            exact: true,
            origin: LengthSource::ContentLength
        }
    );
    assert!(err.to_string().contains("Content-Length"), "{err}");
    // ... unless the check is off (a server compressing without saying so).
    let options = LoadOptions {
        check_content_length: false,
        ..LoadOptions::default()
    };
    load(&env, &m, &options).ok();

    // A short body without Content-Length: the manifest knows it is truncated.
    let env = env_with(Fixture::read("dense_sequential"), base);
    env.net.set_fault(&url, Fault::TruncateSilently(10));
    let err = load(&env, &m, &LoadOptions::default()).err();
    assert_eq!(
        err,
        LoadError::Truncated {
            url: url.clone(),
            received: 10,
            expected: n
        }
    );
    assert!(env.cache.entry(CACHE_FORMAT, &url).is_none());

    // A longer body: rejected while streaming, as soon as it passes the manifest.
    let env = env_with(Fixture::read("dense_sequential"), base);
    let mut long = bytes.clone();
    long.extend_from_slice(&[0; 300]);
    env.net.set_fault(&url, Fault::Body(long));
    let options = LoadOptions {
        check_content_length: false,
        ..unthrottled()
    };
    let outcome = load(&env, &m, &options);
    let last = outcome.progress().last().unwrap().loaded_bytes;
    assert!(last <= fixture.total());
    match outcome.err() {
        LoadError::ShardLength {
            actual,
            origin: LengthSource::Body,
            ..
        } => assert!(actual > n),
        other => panic!("{other}"),
    }
    assert!(env.cache.entry(CACHE_FORMAT, &url).is_none());
}

#[test]
fn a_body_longer_than_its_group_is_rejected_while_streaming() {
    let env = setup();
    let url = url_of("group2-shard1of2.bin");
    env.net.set_fault(&url, Fault::Body(vec![7; 1600]));
    // Content-Length (1600) exceeds the whole group (1552): rejected up front.
    let err = load(&env, &model_url(), &LoadOptions::default()).err();
    assert!(
        matches!(
            err,
            LoadError::ShardLength {
                actual: 1600,
                expected: 1552,
                exact: false,
                origin: LengthSource::ContentLength,
                ..
            }
        ),
        "{err}"
    );
    // Without the header check, the body is cut off once it passes the group.
    let options = LoadOptions {
        check_content_length: false,
        concurrency: 1,
        ..LoadOptions::default()
    };
    let err = load(&env, &model_url(), &options).err();
    assert!(
        matches!(
            err,
            LoadError::ShardLength {
                origin: LengthSource::Body,
                ..
            }
        ),
        "{err}"
    );
    assert!(env.cache.entry(CACHE_FORMAT, &url).is_none());
}

#[test]
fn http_errors_and_network_failures_name_the_url_and_status() {
    for (file, status) in [
        ("group1-shard3of3.bin", 404),
        ("model.json", 500),
        ("group2-shard2of2.bin", 403),
    ] {
        let env = setup();
        let url = url_of(file);
        env.net.set_fault(&url, Fault::Status(status));
        let err = load(&env, &model_url(), &LoadOptions::default()).err();
        assert!(
            matches!(&err, LoadError::Http { url: u, status: s, .. } if *u == url && *s == status),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains(&url) && message.contains(&status.to_string()),
            "{message}"
        );
        assert_eq!(err.url(), Some(url.as_str()));
        assert!(env.cache.entry(CACHE_FORMAT, &url).is_none());
    }
    let env = setup();
    let missing = "https://models.example.com/nothing/model.json";
    let err = load(&env, missing, &LoadOptions::default()).err();
    assert_eq!(
        err.to_string(),
        format!("GET {missing} failed: HTTP 404 Not Found")
    );

    let env = setup();
    let url = url_of("group1-shard1of3.bin");
    env.net.set_fault(&url, Fault::Unreachable);
    let err = load(&env, &model_url(), &LoadOptions::default()).err();
    assert!(
        matches!(&err, LoadError::Network { url: u, .. } if *u == url),
        "{err:?}"
    );
    assert!(err.to_string().contains(&url));

    // A broken model.json is a format error naming its URL; nothing is cached.
    let env = setup();
    env.net
        .set_fault(model_url(), Fault::Body(b"{\"modelTopology\": ".to_vec()));
    let err = load(&env, &model_url(), &LoadOptions::default()).err();
    assert!(
        matches!(&err, LoadError::Format { url, .. } if *url == model_url()),
        "{err:?}"
    );
    assert!(env.cache.keys(CACHE_FORMAT).is_empty());
}

#[test]
fn a_refused_put_still_loads_from_memory_warns_and_leaves_no_entry() {
    // Room for model.json and one shard.
    let env = setup();
    env.cache.set_quota(Some(3058 + 1024));
    let outcome = load(
        &env,
        &model_url(),
        &LoadOptions {
            concurrency: 1,
            ..unthrottled()
        },
    );
    assert_progress_contract(&outcome, env.fixture.total(), 3058);
    let warnings: Vec<Warning> = outcome.warnings().into_iter().cloned().collect();
    let (model, _) = outcome.ok();
    assert_eq!(
        model.shards.iter().map(|s| s.bytes.len()).sum::<usize>(),
        4616
    );
    assert_eq!(warnings.len(), 4);
    assert!(
        warnings.iter().all(|w| w.kind == WarningKind::NotCached),
        "{warnings:?}"
    );
    assert_eq!(model.stats.warnings, warnings);
    assert_eq!(env.cache.refused_put_count(), 4);
    let cached = shard_keys(&env);
    assert_eq!(cached, vec![url_of("group1-shard1of3.bin")]);
    assert!(warnings.iter().all(|w| !cached.contains(&w.url)));
    assert!(env.cache.used_bytes() <= 3058 + 1024);

    // The next load fetches what was not cached, nothing else.
    env.cache.set_quota(None);
    env.net.clear_requests();
    let (model, _) = load(&env, &model_url(), &LoadOptions::default()).ok();
    assert_eq!(env.net.request_count(), 4);
    assert!(model.stats.warnings.is_empty());

    // A cache that refuses everything: every file warns, the model loads.
    let env = setup();
    env.cache.set_quota(Some(0));
    let (model, _) = load(&env, &model_url(), &LoadOptions::default()).ok();
    assert_eq!(model.stats.warnings.len(), 6);
    assert!(
        model.stats.warnings[0].message.contains("not cached"),
        "{}",
        model.stats.warnings[0].message
    );
    assert!(env.cache.keys(CACHE_FORMAT).is_empty());
}

#[test]
fn an_unreadable_cache_warns_once_and_the_model_loads_from_the_network() {
    let env = setup();
    env.cache.set_fail_reads(true);
    let outcome = load(&env, &model_url(), &LoadOptions::default());
    let warnings: Vec<WarningKind> = outcome.warnings().iter().map(|w| w.kind).collect();
    let (model, _) = outcome.ok();
    assert_eq!(warnings, vec![WarningKind::CacheUnavailable]);
    assert_eq!(model.stats.requests, 6);
    assert_eq!(
        env.cache.put_count(),
        0,
        "the cache is left alone for the rest of the load"
    );
}

#[test]
fn query_strings_are_dropped_from_shard_urls_by_default() {
    // A presigned model.json: its signature is valid for model.json only.
    let signed = format!("{BASE}model.json?X-Amz-Signature=abc123&X-Amz-Expires=300");
    let env = setup();
    env.net.insert(&signed, env.fixture.json.clone());
    let (model, _) = load(&env, &signed, &LoadOptions::default()).ok();
    assert_eq!(model.model_url, signed);
    let requests = env.net.requests();
    assert_eq!(requests[0], signed);
    assert!(
        requests[1..].iter().all(|u| !u.contains('?')),
        "{requests:?}"
    );
    assert_eq!(model.shards[0].url, url_of("group1-shard1of3.bin"));

    // tfjs's behaviour on request: the model's query on every shard.
    let env = setup();
    let token = format!("{BASE}model.json?token=t0k");
    env.net.insert(&token, env.fixture.json.clone());
    for (path, bytes) in &env.fixture.shards {
        env.net
            .insert(format!("{BASE}{path}?token=t0k"), bytes.clone());
    }
    let options = LoadOptions {
        shard_query: ShardQuery::Inherit,
        ..LoadOptions::default()
    };
    let (model, _) = load(&env, &token, &options).ok();
    assert!(env.net.requests().iter().all(|u| u.ends_with("?token=t0k")));
    assert_eq!(
        model.shards[4].url,
        format!("{BASE}group2-shard2of2.bin?token=t0k")
    );
}

#[test]
fn presigned_urls_cache_across_signatures_and_rewrites_sign_each_request() {
    let env = setup();
    let options = LoadOptions {
        cache: CachePolicy {
            key_query: CacheKeyQuery::Strip,
            ..CachePolicy::default()
        },
        ..LoadOptions::default()
    };
    for sig in ["first", "second"] {
        env.net.insert(
            format!("{BASE}model.json?sig={sig}"),
            env.fixture.json.clone(),
        );
    }
    load(&env, &format!("{BASE}model.json?sig=first"), &options).ok();
    assert_eq!(env.cache.keys(CACHE_FORMAT).len(), 6);
    assert!(env
        .cache
        .keys(CACHE_FORMAT)
        .iter()
        .all(|k| !k.contains('?')));
    env.net.clear_requests();
    let (model, _) = load(&env, &format!("{BASE}model.json?sig=second"), &options).ok();
    assert!(model.from_cache);
    assert_eq!(env.net.request_count(), 0);

    // A rewrite signs every request; keys, events and errors keep the plain URL.
    let env = setup();
    env.net.insert(
        format!("{BASE}model.json?sig=model.json"),
        env.fixture.json.clone(),
    );
    for (path, bytes) in &env.fixture.shards {
        env.net
            .insert(format!("{BASE}{path}?sig={path}"), bytes.clone());
    }
    let options = LoadOptions {
        rewrite_url: Some(std::sync::Arc::new(|url: &str| {
            let file = url.rsplit('/').next().unwrap_or_default();
            format!("{url}?sig={file}")
        })),
        ..unthrottled()
    };
    let outcome = load(&env, &model_url(), &options);
    assert!(outcome.progress().iter().all(|p| !p.url.contains("sig=")));
    outcome.ok();
    assert_eq!(env.net.request_count(), 6);
    assert!(env.net.requests().iter().all(|u| u.contains("?sig=")));
    assert!(env
        .cache
        .keys(CACHE_FORMAT)
        .iter()
        .all(|k| !k.contains("sig=")));
    env.net.set_fault(
        format!("{BASE}group1-shard1of3.bin?sig=group1-shard1of3.bin"),
        Fault::Status(403),
    );
    let err = load(
        &env,
        &model_url(),
        &LoadOptions {
            cache: CachePolicy {
                enabled: false,
                ..CachePolicy::default()
            },
            ..options
        },
    )
    .err();
    assert_eq!(
        err.url(),
        Some(url_of("group1-shard1of3.bin").as_str()),
        "{err}"
    );
}

#[test]
fn weight_path_prefix_moves_the_shards() {
    let env = setup();
    let cdn = "https://cdn.example.net/weights/";
    for (path, bytes) in &env.fixture.shards {
        env.net.insert(format!("{cdn}{path}"), bytes.clone());
    }
    let options = LoadOptions {
        weight_path_prefix: Some("https://cdn.example.net/weights".into()),
        ..LoadOptions::default()
    };
    let (model, _) = load(&env, &model_url(), &options).ok();
    assert!(model.shards.iter().all(|s| s.url.starts_with(cdn)));
    assert!(env.net.requests()[1..].iter().all(|u| u.starts_with(cdn)));
}

#[test]
fn a_bad_cache_entry_is_evicted_and_fetched_again() {
    let env = setup();
    load(&env, &model_url(), &LoadOptions::default()).ok();
    let good = |key: &str| env.cache.entry(CACHE_FORMAT, key).unwrap();

    // 1. An entry whose body is shorter than its record (a torn write).
    let torn = url_of("group1-shard2of3.bin");
    let mut entry = good(&torn);
    entry.bytes.truncate(100);
    env.cache.insert_raw(CACHE_FORMAT, &torn, entry);
    // 2. An entry consistent with its record but not with the manifest: group 2
    //    no longer adds up, so both of its shards are evicted.
    let wrong = url_of("group2-shard2of2.bin");
    let mut entry = good(&wrong);
    entry.bytes.truncate(500);
    entry.meta.length = 500;
    env.cache.insert_raw(CACHE_FORMAT, &wrong, entry);
    // 3. A model.json entry that is not valid JSON any more.
    let mut entry = good(&model_url());
    entry.bytes = b"garbage".to_vec();
    entry.meta.length = 7;
    env.cache.insert_raw(CACHE_FORMAT, &model_url(), entry);

    env.net.clear_requests();
    let outcome = load(&env, &model_url(), &unthrottled());
    assert_progress_contract(&outcome, env.fixture.total(), 3058);
    let evicted: Vec<String> = outcome
        .warnings()
        .iter()
        .filter(|w| w.kind == WarningKind::CacheEntryEvicted)
        .map(|w| w.url.clone())
        .collect();
    let (model, _) = outcome.ok();
    let mut requested = env.net.requests();
    requested.sort();
    let mut expected = vec![
        model_url(),
        torn.clone(),
        url_of("group2-shard1of2.bin"),
        wrong.clone(),
    ];
    expected.sort();
    assert_eq!(requested, expected);
    let mut evicted_sorted = evicted.clone();
    evicted_sorted.sort();
    assert_eq!(evicted_sorted, expected);
    assert_eq!(model.stats.evicted, 4);
    assert_eq!(model.model_json, env.fixture.json);
    for s in &model.shards {
        assert_eq!(s.bytes, env.fixture.bytes_of(&s.path));
    }
    // The cache is healed.
    env.net.clear_requests();
    let (model, _) = load(&env, &model_url(), &LoadOptions::default()).ok();
    assert!(model.from_cache && env.net.request_count() == 0);
}

#[test]
fn sha256_is_checked_on_download_and_on_every_cache_read() {
    let env = setup();
    let hashes = Sha256Hashes {
        model_json: Some(hex(&sha256(&env.fixture.json))),
        shards: env
            .fixture
            .shards
            .iter()
            .map(|(p, b)| (p.clone(), hex(&sha256(b))))
            .collect(),
    };
    let options = LoadOptions {
        sha256: hashes.clone(),
        ..LoadOptions::default()
    };
    load(&env, &model_url(), &options).ok();

    // Same length, different bytes: only the hash can tell. Evicted, refetched.
    let key = url_of("group1-shard3of3.bin");
    let mut entry = env.cache.entry(CACHE_FORMAT, &key).unwrap();
    entry.bytes[0] ^= 0xff;
    env.cache.insert_raw(CACHE_FORMAT, &key, entry);
    env.net.clear_requests();
    let (model, _) = load(&env, &model_url(), &options).ok();
    assert_eq!(env.net.requests(), vec![key.clone()]);
    assert_eq!(model.stats.evicted, 1);

    // A download with the wrong hash is an error, and is not cached.
    let env = setup();
    let mut bad = env.fixture.bytes_of("group1-shard3of3.bin").to_vec();
    bad[10] ^= 1;
    env.net.set_fault(&key, Fault::Body(bad));
    let err = load(&env, &model_url(), &options).err();
    assert!(
        matches!(&err, LoadError::Integrity { url, .. } if *url == key),
        "{err}"
    );
    assert!(err.to_string().contains("SHA-256"));
    assert!(env.cache.entry(CACHE_FORMAT, &key).is_none());

    let options = LoadOptions {
        sha256: Sha256Hashes {
            model_json: Some("xyz".into()),
            ..Sha256Hashes::default()
        },
        ..LoadOptions::default()
    };
    assert!(matches!(
        load(&env, &model_url(), &options).err(),
        LoadError::Options(_)
    ));
}

#[test]
fn content_length_longer_body_of_model_json_is_accepted() {
    // A transport that cannot see Content-Encoding reports the compressed
    // length: a body longer than Content-Length is not truncation.
    let env = setup();
    env.net.set_fault(model_url(), Fault::ContentLength(900));
    load(&env, &model_url(), &LoadOptions::default()).ok();
    // Shorter than Content-Length is.
    let env = setup();
    env.net.set_fault(model_url(), Fault::Truncate(2000));
    let err = load(&env, &model_url(), &LoadOptions::default()).err();
    assert_eq!(
        err,
        LoadError::Truncated {
            url: model_url(),
            received: 2000,
            expected: 3058
        }
    );
}

#[test]
fn cache_off_force_reload_and_namespaces() {
    let env = setup();
    let off = LoadOptions {
        cache: CachePolicy {
            enabled: false,
            ..CachePolicy::default()
        },
        ..LoadOptions::default()
    };
    load(&env, &model_url(), &off).ok();
    load(&env, &model_url(), &off).ok();
    assert_eq!(env.net.request_count(), 12);
    assert!(env.cache.cache_names().is_empty());

    load(&env, &model_url(), &LoadOptions::default()).ok();
    env.net.clear_requests();
    let reload = LoadOptions {
        cache: CachePolicy {
            force_reload: true,
            ..CachePolicy::default()
        },
        ..LoadOptions::default()
    };
    let (model, _) = load(&env, &model_url(), &reload).ok();
    assert_eq!(env.net.request_count(), 6);
    assert!(!model.from_cache);
    assert_eq!(env.cache.keys(CACHE_FORMAT).len(), 6);

    let app = LoadOptions {
        cache: CachePolicy {
            namespace: Some("my-app@2".into()),
            ..CachePolicy::default()
        },
        ..LoadOptions::default()
    };
    env.net.clear_requests();
    load(&env, &model_url(), &app).ok();
    assert_eq!(env.net.request_count(), 6, "a new namespace starts empty");
    assert_eq!(env.cache.keys("webinfer-v1:my-app@2").len(), 6);
    assert_eq!(cache_name(Some("my-app@2")), "webinfer-v1:my-app@2");
}

#[test]
fn cached_models_are_listed_and_deleted_one_by_one() {
    let env = setup();
    let other = "https://models.example.com/dense/";
    Fixture::read("dense_sequential").serve(&env.net, other);
    let policy = CachePolicy::default();
    load(&env, &model_url(), &LoadOptions::default()).ok();
    load(&env, &format!("{other}model.json"), &LoadOptions::default()).ok();

    let models = block_on(env.loader.list_cached(&policy)).unwrap();
    assert_eq!(models.len(), 2);
    let dense = &models[0];
    assert_eq!(dense.model_url, format!("{other}model.json"));
    assert_eq!(dense.files.len(), 2);
    assert!(dense.complete);
    let multi = &models[1];
    assert_eq!(multi.model_url, model_url());
    assert_eq!(multi.files[0].kind, EntryKind::ModelJson);
    assert_eq!(multi.files[0].url, model_url());
    assert_eq!(multi.files.len(), 6);
    assert_eq!(multi.total_bytes, env.fixture.total());
    assert!(multi.complete);

    assert_eq!(
        block_on(env.loader.delete_cached(&model_url(), &policy)).unwrap(),
        6
    );
    let models = block_on(env.loader.list_cached(&policy)).unwrap();
    assert_eq!(models.len(), 1);
    assert_eq!(models[0].model_url, format!("{other}model.json"));
    env.net.clear_requests();
    load(&env, &model_url(), &LoadOptions::default()).ok();
    assert_eq!(env.net.request_count(), 6);

    // A partially cached model is listed as incomplete.
    let env = setup();
    env.net
        .set_fault(url_of("group2-shard2of2.bin"), Fault::Status(500));
    load(
        &env,
        &model_url(),
        &LoadOptions {
            concurrency: 1,
            ..LoadOptions::default()
        },
    )
    .err();
    let models = block_on(env.loader.list_cached(&policy)).unwrap();
    assert_eq!(models.len(), 1);
    assert_eq!(models[0].files.len(), 5);
    assert!(!models[0].complete);
}

#[test]
fn files_and_a_directory_cache_work_natively() {
    let dir = fixtures_dir().join("multi_shard");
    let cache_root =
        std::env::temp_dir().join(format!("webinfer-loader-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache_root);
    let cache = webinfer_loader::fs::DirCache::new(&cache_root);
    let loader = Loader::new(webinfer_loader::fs::FileTransport::new()).with_cache(cache.clone());
    let url = format!("file://{}", dir.join("model.json").display());
    let fixture = Fixture::read("multi_shard");

    let mut events = Vec::new();
    let result = block_on(loader.load(&url, &unthrottled(), &mut |e| events.push(e.clone())));
    let outcome = Outcome { result, events };
    assert_progress_contract(&outcome, fixture.total(), 3058);
    let (model, _) = outcome.ok();
    assert_eq!(model.stats.requests, 6);
    assert_eq!(model.shards[2].bytes, fixture.shards[2].1);

    let (model, _) = Outcome {
        result: block_on(loader.load(&url, &LoadOptions::default(), &mut |_| {})),
        events: vec![],
    }
    .ok();
    assert!(model.from_cache);
    assert_eq!(model.stats.requests, 0);

    let listed = block_on(loader.list_cached(&CachePolicy::default())).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].complete);
    assert_eq!(listed[0].total_bytes, fixture.total());

    // A cache file cut short on disk is evicted and read again.
    let victim = std::fs::read_dir(cache_root.join(CACHE_FORMAT))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::metadata(p).unwrap().len() < 1500)
        .unwrap();
    let len = std::fs::metadata(&victim).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&victim)
        .unwrap()
        .set_len(len - 10)
        .unwrap();
    let (model, _) = Outcome {
        result: block_on(loader.load(&url, &LoadOptions::default(), &mut |_| {})),
        events: vec![],
    }
    .ok();
    assert_eq!(model.stats.requests, 1);
    assert_eq!(model.stats.evicted, 1);

    assert_eq!(
        block_on(loader.delete_cached(&url, &CachePolicy::default())).unwrap(),
        6
    );
    assert!(block_on(loader.list_cached(&CachePolicy::default()))
        .unwrap()
        .is_empty());
    let _ = std::fs::remove_dir_all(&cache_root);

    // A missing file is a 404 naming it.
    let missing = format!("file://{}", dir.join("nope.json").display());
    let err = block_on(Loader::new(webinfer_loader::fs::FileTransport::new()).load(
        &missing,
        &LoadOptions::default(),
        &mut |_| {},
    ))
    .unwrap_err();
    assert!(
        matches!(&err, LoadError::Http { status: 404, url, .. } if *url == missing),
        "{err}"
    );
}

#[test]
fn a_load_can_share_its_cache_with_other_loaders() {
    // The cache is a handle: a second loader over a different network sees
    // what the first stored (like two page loads sharing the Cache API).
    let env = setup();
    load(&env, &model_url(), &LoadOptions::default()).ok();
    let offline = MemoryTransport::new();
    let loader = Loader::new(offline.clone()).with_cache(env.cache.clone());
    let model = block_on(loader.load(&model_url(), &LoadOptions::default(), &mut |_| {})).unwrap();
    assert!(model.from_cache);
    assert_eq!(offline.request_count(), 0);
    let by_path: HashMap<String, Vec<u8>> = model.into_parts().1;
    assert_eq!(by_path.len(), 5);
}

#[test]
fn a_stale_cached_model_json_is_dropped_when_its_shards_are_gone() {
    // The server's model changed (new shard names) after it was cached.
    let env = setup();
    load(&env, &model_url(), &LoadOptions::default()).ok();
    let first = url_of("group1-shard1of3.bin");
    env.cache.insert_raw(
        CACHE_FORMAT,
        &first,
        CacheEntry {
            meta: EntryMeta {
                model_url: "elsewhere".into(),
                kind: EntryKind::Shard,
                length: 0,
                model_files: None,
            },
            bytes: vec![],
        },
    );
    // ... evicted as corrupt; the server now answers 404 for it.
    env.net.set_fault(&first, Fault::Status(404));
    let err = load(&env, &model_url(), &LoadOptions::default()).err();
    assert!(matches!(err, LoadError::Http { status: 404, .. }), "{err}");
    assert!(
        env.cache.entry(CACHE_FORMAT, &model_url()).is_none(),
        "the cached model.json is gone"
    );

    // A network failure says nothing about staleness: model.json stays.
    let env = setup();
    load(&env, &model_url(), &LoadOptions::default()).ok();
    block_on(env.loader.cache().unwrap().delete(CACHE_FORMAT, &first)).unwrap();
    env.net.set_fault(&first, Fault::Unreachable);
    load(&env, &model_url(), &LoadOptions::default()).err();
    assert!(env.cache.entry(CACHE_FORMAT, &model_url()).is_some());
}

#[test]
fn an_html_page_instead_of_model_json_says_so() {
    let env = setup();
    env.net.set_fault(
        model_url(),
        Fault::Body(b"\n<!DOCTYPE html><html><body>app</body></html>".to_vec()),
    );
    let err = load(&env, &model_url(), &LoadOptions::default()).err();
    assert_eq!(err, LoadError::Html { url: model_url() });
    assert!(err.to_string().contains("HTML"), "{err}");
    assert!(env.cache.keys(CACHE_FORMAT).is_empty());
}

// ---- Streaming into a sink (Loader::load_into with webinfer_tfjs::StreamDecoder) ----

/// The fixture's weights decoded from whole shards, as bit patterns.
fn reference_weights(fixture: &Fixture) -> Vec<(String, Vec<u32>)> {
    let model = webinfer_tfjs::parse_model_json(&fixture.json, &Default::default()).unwrap();
    let groups: Vec<Vec<&[u8]>> = model
        .weights_manifest
        .iter()
        .map(|g| g.paths.iter().map(|p| fixture.bytes_of(p)).collect())
        .collect();
    weight_bits(webinfer_tfjs::decode_weights(&model.weights_manifest, &groups).unwrap())
}

fn weight_bits(weights: Vec<webinfer_tfjs::DecodedWeight>) -> Vec<(String, Vec<u32>)> {
    weights
        .into_iter()
        .map(|w| {
            let bits = match w.data {
                webinfer_tfjs::TensorData::F32(v) => v.iter().map(|x| x.to_bits()).collect(),
                webinfer_tfjs::TensorData::I32(v) => v.iter().map(|&x| x as u32).collect(),
                webinfer_tfjs::TensorData::Bool(v) => v.iter().map(|&x| x as u32).collect(),
            };
            (w.name, bits)
        })
        .collect()
}

type Streamed = Result<(LoadedModel, webinfer_tfjs::StreamDecoder), LoadIntoError<String>>;

fn load_streaming(env: &Env, options: &LoadOptions) -> Streamed {
    block_on(env.loader.load_into(
        &model_url(),
        options,
        &mut |_| {},
        |_json: &[u8], model: &webinfer_tfjs::ModelJson| {
            webinfer_tfjs::StreamDecoder::new(&model.weights_manifest).map_err(|e| e.to_string())
        },
    ))
}

#[test]
fn streaming_into_a_decoder_gives_the_same_weights_and_caches_every_file() {
    let env = setup();
    let expected = reference_weights(&env.fixture);
    // 100-byte chunks, 4 downloads at once: chunks of later shards of a group
    // arrive before the earlier shards complete.
    let (model, decoder) = load_streaming(&env, &unthrottled()).unwrap();
    assert!(
        model.shards.iter().all(|s| s.bytes.is_empty()),
        "no shard kept"
    );
    assert_eq!(weight_bits(decoder.finish().unwrap()), expected);
    assert_eq!(shard_keys(&env).len(), 5, "every shard cached");
    for (path, bytes) in &env.fixture.shards {
        assert_eq!(
            &env.cache.entry(CACHE_FORMAT, &url_of(path)).unwrap().bytes,
            bytes
        );
    }
    // From the cache, through the same sink: no request.
    env.net.clear_requests();
    let (model, decoder) = load_streaming(&env, &unthrottled()).unwrap();
    assert!(model.from_cache);
    assert_eq!(env.net.request_count(), 0);
    assert_eq!(weight_bits(decoder.finish().unwrap()), expected);
}

#[test]
fn streaming_without_content_length_waits_for_earlier_shards_and_still_matches() {
    let env = setup();
    let expected = reference_weights(&env.fixture);
    for (path, _) in &env.fixture.shards {
        env.net.set_fault(url_of(path), Fault::NoContentLength);
    }
    let (_, decoder) = load_streaming(&env, &unthrottled()).unwrap();
    assert_eq!(weight_bits(decoder.finish().unwrap()), expected);
}

#[test]
fn streaming_a_body_longer_than_its_content_length_fails_and_caches_nothing_for_it() {
    let env = setup();
    let shard = url_of("group1-shard1of3.bin");
    env.net.set_fault(&shard, Fault::ContentLength(1000));
    let err = match load_streaming(&env, &unthrottled()) {
        Err(LoadIntoError::Load(e)) => e.to_string(),
        Err(LoadIntoError::Sink(e)) => panic!("sink error {e}"),
        Ok(_) => panic!("loaded"),
    };
    assert!(err.contains("group1-shard1of3.bin"), "{err}");
    assert!(env.cache.entry(CACHE_FORMAT, &shard).is_none());
}

#[test]
fn a_sink_that_refuses_the_model_stops_the_load_before_any_shard_is_read() {
    let env = setup();
    let result = block_on(env.loader.load_into(
        &model_url(),
        &unthrottled(),
        &mut |_| {},
        |_: &[u8], _: &webinfer_tfjs::ModelJson| {
            Err::<webinfer_tfjs::StreamDecoder, _>("unknown layer Foo")
        },
    ));
    assert!(matches!(
        result,
        Err(LoadIntoError::Sink("unknown layer Foo"))
    ));
    // The first shards were requested while model.json was parsed (below); none was read,
    // none cached, and nothing is left in flight.
    assert_eq!(env.net.requests().len(), 1 + 4);
    assert_eq!(env.net.in_flight(), 0);
    assert!(shard_keys(&env).is_empty());
}

#[test]
fn the_first_shards_are_requested_from_the_manifest_before_the_model_is_prepared() {
    // Nothing cached: when the sink is made (the topology parsed, the model being
    // prepared), the first `concurrency` shards, in manifest order, are already requested.
    let shard_urls: Vec<String> = setup()
        .fixture
        .shards
        .iter()
        .map(|(p, _)| url_of(p))
        .collect();
    for concurrency in [1usize, 2, 4, 16] {
        let env = setup();
        let options = LoadOptions {
            concurrency,
            ..unthrottled()
        };
        let mut seen = None;
        let (_, decoder) = block_on(env.loader.load_into(
            &model_url(),
            &options,
            &mut |_| {},
            |_: &[u8], model: &webinfer_tfjs::ModelJson| {
                seen = Some(env.net.requests());
                webinfer_tfjs::StreamDecoder::new(&model.weights_manifest)
                    .map_err(|e| e.to_string())
            },
        ))
        .unwrap();
        let mut want = vec![model_url()];
        want.extend(shard_urls.iter().take(concurrency).cloned());
        assert_eq!(seen.unwrap(), want, "concurrency {concurrency}");
        // Each request was made once, and the load is whole.
        let mut requests = env.net.requests();
        requests.sort();
        let mut all = shard_urls.clone();
        all.push(model_url());
        all.sort();
        assert_eq!(requests, all, "concurrency {concurrency}");
        assert_eq!(
            weight_bits(decoder.finish().unwrap()),
            reference_weights(&env.fixture)
        );
        assert_eq!(env.net.max_in_flight(), concurrency.min(5));
    }
    // model.json cached (a resumed load): the shards may be cached too, so nothing is
    // requested before the cache is asked.
    let env = setup();
    load(&env, &model_url(), &unthrottled()).ok();
    let first = url_of(&env.fixture.shards[0].0);
    block_on(env.cache.delete(CACHE_FORMAT, &first)).unwrap();
    env.net.clear_requests();
    let mut seen = None;
    block_on(env.loader.load_into(
        &model_url(),
        &unthrottled(),
        &mut |_| {},
        |_: &[u8], model: &webinfer_tfjs::ModelJson| {
            seen = Some(env.net.requests());
            webinfer_tfjs::StreamDecoder::new(&model.weights_manifest).map_err(|e| e.to_string())
        },
    ))
    .unwrap();
    assert_eq!(seen.unwrap(), Vec::<String>::new());
    assert_eq!(env.net.requests(), vec![first]);
    // A manifest over a limit: no shard is requested at all.
    let env = setup();
    let options = LoadOptions {
        limits: webinfer_tfjs::Limits {
            max_shards: 4,
            ..Default::default()
        },
        ..unthrottled()
    };
    assert!(load(&env, &model_url(), &options).result.is_err());
    assert_eq!(env.net.requests(), vec![model_url()]);
}

#[test]
fn an_interrupted_streaming_load_resumes_into_a_new_sink() {
    let env = setup();
    let expected = reference_weights(&env.fixture);
    env.net
        .set_fault(url_of("group1-shard2of3.bin"), Fault::FailAfter(300));
    let options = LoadOptions {
        concurrency: 1,
        ..unthrottled()
    };
    assert!(load_streaming(&env, &options).is_err());
    assert_eq!(shard_keys(&env), vec![url_of("group1-shard1of3.bin")]);
    env.net.clear_faults();
    env.net.clear_requests();
    let (model, decoder) = load_streaming(&env, &unthrottled()).unwrap();
    assert_eq!(model.stats.files_from_cache, 1);
    assert_eq!(env.net.request_count(), 4);
    assert_eq!(weight_bits(decoder.finish().unwrap()), expected);
}

#[test]
fn load_into_ready_hands_over_a_complete_sink_once_and_never_on_failure() {
    let env = setup();
    let expected = reference_weights(&env.fixture);
    let make = |_: &[u8], model: &webinfer_tfjs::ModelJson| {
        webinfer_tfjs::StreamDecoder::new(&model.weights_manifest).map_err(|e| e.to_string())
    };
    let mut handed = Vec::new();
    let loaded = block_on(env.loader.load_into_ready(
        &model_url(),
        &unthrottled(),
        &mut |_| {},
        make,
        &mut |loaded: &LoadedModel, decoder: webinfer_tfjs::StreamDecoder| {
            assert!(decoder.is_complete());
            handed.push((loaded.model_url.clone(), decoder));
        },
    ))
    .unwrap();
    assert_eq!(loaded.model_url, model_url());
    assert_eq!(handed.len(), 1);
    let (url, decoder) = handed.pop().unwrap();
    assert_eq!(url, model_url());
    assert_eq!(weight_bits(decoder.finish().unwrap()), expected);

    let env = setup();
    env.net
        .set_fault(url_of("group1-shard2of3.bin"), Fault::Status(404));
    let mut called = false;
    let result = block_on(env.loader.load_into_ready(
        &model_url(),
        &unthrottled(),
        &mut |_| {},
        make,
        &mut |_: &LoadedModel, _: webinfer_tfjs::StreamDecoder| called = true,
    ));
    assert!(matches!(
        result,
        Err(LoadIntoError::Load(LoadError::Http { status: 404, .. }))
    ));
    assert!(!called);
}

#[test]
fn a_truncated_streaming_load_then_a_clean_one() {
    let env = setup();
    let expected = reference_weights(&env.fixture);
    env.net
        .set_fault(url_of("group1-shard3of3.bin"), Fault::Truncate(500));
    assert!(load_streaming(&env, &unthrottled()).is_err());
    env.net.clear_faults();
    let (_, decoder) = load_streaming(&env, &unthrottled()).unwrap();
    assert_eq!(weight_bits(decoder.finish().unwrap()), expected);
}

/// A sink that takes the weights the moment the decoder is complete (as the browser's model
/// builder does), while other downloads may still be closing.
struct EagerSink {
    decoder: webinfer_tfjs::StreamDecoder,
    taken: Option<Vec<webinfer_tfjs::DecodedWeight>>,
}

impl ShardSink for EagerSink {
    fn write(
        &mut self,
        file: usize,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), webinfer_tfjs::FormatError> {
        self.decoder.write(file, offset, bytes)
    }
    fn set_length(&mut self, file: usize, length: u64) -> Result<(), webinfer_tfjs::FormatError> {
        self.decoder.set_file_length(file, length)?;
        if self.taken.is_none() && self.decoder.is_complete() {
            self.taken = Some(self.decoder.take_weights()?);
        }
        Ok(())
    }
}

#[test]
fn weights_taken_as_soon_as_complete_survive_downloads_still_closing() {
    let env = setup();
    let expected = reference_weights(&env.fixture);
    // Chunk sizes that make several shards finish their bytes in the same round.
    for chunk in [64usize, 100, 512, 4096] {
        let env = env_with(
            Fixture::read("multi_shard"),
            &format!("https://m{chunk}.example.com/"),
        );
        let net = MemoryTransport::new().with_chunk_size(chunk);
        env.fixture
            .serve(&net, &format!("https://m{chunk}.example.com/"));
        let loader = Loader::new(net);
        let (_, sink) = block_on(loader.load_into(
            &format!("https://m{chunk}.example.com/model.json"),
            &unthrottled(),
            &mut |_| {},
            |_: &[u8], model: &webinfer_tfjs::ModelJson| {
                webinfer_tfjs::StreamDecoder::new(&model.weights_manifest).map(|decoder| {
                    EagerSink {
                        decoder,
                        taken: None,
                    }
                })
            },
        ))
        .unwrap_or_else(|e| panic!("chunk {chunk}: {e:?}"));
        assert_eq!(
            weight_bits(sink.taken.expect("taken")),
            expected,
            "chunk {chunk}"
        );
    }
    drop(env);
}

#[test]
fn streaming_from_the_cache_checks_records_first_and_evicts_a_corrupt_body() {
    let env = setup();
    let expected = reference_weights(&env.fixture);
    load_streaming(&env, &unthrottled()).unwrap();
    // A record that contradicts the manifest: evicted before any byte is used, then fetched.
    let wrong = url_of("group2-shard2of2.bin");
    let mut entry = env.cache.entry(CACHE_FORMAT, &wrong).unwrap();
    entry.bytes.truncate(500);
    entry.meta.length = 500;
    env.cache.insert_raw(CACHE_FORMAT, &wrong, entry);
    env.net.clear_requests();
    let (model, decoder) = load_streaming(&env, &unthrottled()).unwrap();
    assert_eq!(weight_bits(decoder.finish().unwrap()), expected);
    assert_eq!(
        model.stats.evicted, 2,
        "both shards of the group that no longer adds up"
    );
    // A body shorter than its record: found while streaming, evicted, a clear error;
    // the next load fetches it.
    let torn = url_of("group1-shard2of3.bin");
    let mut entry = env.cache.entry(CACHE_FORMAT, &torn).unwrap();
    entry.bytes.truncate(100);
    env.cache.insert_raw(CACHE_FORMAT, &torn, entry);
    match load_streaming(&env, &unthrottled()) {
        Err(LoadIntoError::Load(LoadError::CacheCorrupt { url, reason })) => {
            assert_eq!(url, torn);
            assert!(reason.contains("100"), "{reason}");
        }
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("a torn cache entry went unnoticed"),
    }
    assert!(
        env.cache.entry(CACHE_FORMAT, &torn).is_none(),
        "not evicted"
    );
    env.net.clear_requests();
    let (_, decoder) = load_streaming(&env, &unthrottled()).unwrap();
    assert_eq!(env.net.requests(), vec![torn]);
    assert_eq!(weight_bits(decoder.finish().unwrap()), expected);
}

#[test]
fn streaming_a_shard_grown_on_the_server_drops_the_stale_cached_model_json() {
    let env = setup();
    load_streaming(&env, &unthrottled()).unwrap();
    // The server's files change; the cache still has the old model.json, and lost a shard.
    let shard = url_of("group1-shard1of3.bin");
    let mut grown = env.fixture.bytes_of("group1-shard1of3.bin").to_vec();
    grown.extend_from_slice(&[0u8; 64]);
    env.net.insert(shard.clone(), grown);
    assert!(block_on(CacheStore::delete(&env.cache, CACHE_FORMAT, &shard)).unwrap());
    match load_streaming(&env, &unthrottled()) {
        Err(LoadIntoError::Load(
            e @ (LoadError::GroupLength { .. } | LoadError::ShardLength { .. }),
        )) => {
            assert!(e.to_string().contains("group1-shard1of3.bin"), "{e}")
        }
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("loaded a grown shard"),
    }
    assert!(
        env.cache.entry(CACHE_FORMAT, &model_url()).is_none(),
        "the stale model.json stays cached"
    );
}

#[test]
fn a_body_its_manifest_and_content_length_say_is_whole_is_not_waited_on_to_end() {
    // dense_sequential: one single-file group, whose exact length the manifest gives. The
    // server sends every byte and keeps the connection open: with a Content-Length that
    // agrees, the load completes at the last byte; without one, only the end of the body
    // can say the file is whole, and the load waits for it.
    // multi_shard: groups of several files, whose sum the manifest fixes: a file is whole at
    // its Content-Length once every file of its group has announced one and they add up.
    for (fixture, announced) in [
        ("dense_sequential", true),
        ("dense_sequential", false),
        ("multi_shard", true),
        ("multi_shard", false),
    ] {
        let base = format!("https://open{announced}.{fixture}.example.com/");
        let env = env_with(Fixture::read(fixture), &base);
        let expected = reference_weights(&env.fixture);
        for (path, _) in &env.fixture.shards {
            env.net.set_fault(
                format!("{base}{path}"),
                Fault::NeverEnds {
                    content_length: announced,
                },
            );
        }
        let url = format!("{base}model.json");
        let options = LoadOptions {
            concurrency: 16,
            ..unthrottled()
        };
        let mut on_event = |_: &LoadEvent| {};
        let mut load = std::pin::pin!(env.loader.load_into(
            &url,
            &options,
            &mut on_event,
            |_: &[u8], model: &webinfer_tfjs::ModelJson| {
                webinfer_tfjs::StreamDecoder::new(&model.weights_manifest)
                    .map_err(|e| e.to_string())
            },
        ));
        // Polled until it is done or nothing is left to wake it (the fake transport wakes
        // its reader for every chunk, never after the last byte of a body that never ends).
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut result = None;
        for _ in 0..100_000 {
            if let std::task::Poll::Ready(r) = load.as_mut().poll(&mut cx) {
                result = Some(r.map(|(_, decoder)| decoder));
                break;
            }
        }
        match (announced, result) {
            (true, Some(Ok(decoder))) => {
                assert_eq!(weight_bits(decoder.finish().unwrap()), expected)
            }
            (true, other) => {
                panic!("{fixture}: the load waited for the end of a whole body: {other:?}")
            }
            (false, None) => {}
            (false, Some(r)) => {
                panic!(
                    "{fixture}: loaded without knowing the body was whole: {:?}",
                    r.is_ok()
                )
            }
        }
    }
}

/// A decoder that counts the bytes written for a file before the length of every earlier
/// file of its group was given (bytes it can only hold until it can place them).
struct Ordered {
    decoder: webinfer_tfjs::StreamDecoder,
    group_of: Vec<usize>,
    length_given: Vec<bool>,
    early: usize,
}

impl ShardSink for Ordered {
    fn write(
        &mut self,
        file: usize,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), webinfer_tfjs::FormatError> {
        let g = self.group_of[file];
        if (0..file).any(|j| self.group_of[j] == g && !self.length_given[j]) {
            self.early += bytes.len();
        }
        self.decoder.write(file, offset, bytes)
    }
    fn set_length(&mut self, file: usize, length: u64) -> Result<(), webinfer_tfjs::FormatError> {
        self.length_given[file] = true;
        self.decoder.set_file_length(file, length)
    }
}

#[test]
fn a_streamed_body_is_read_once_the_earlier_files_of_its_group_have_answered() {
    // group1-shard1of3's response comes late: the bodies of shards 2 and 3 of its group wait
    // for its head (Content-Length) instead of arriving where the decoder cannot yet place
    // them. (Without the wait, this test sees bytes written early.)
    let env = setup();
    env.net
        .set_fault(url_of("group1-shard1of3.bin"), Fault::SlowHead(200));
    let (_, sink) = block_on(env.loader.load_into(
        &model_url(),
        &unthrottled(),
        &mut |_| {},
        |_: &[u8], model: &webinfer_tfjs::ModelJson| {
            let group_of: Vec<usize> = model
                .weights_manifest
                .iter()
                .enumerate()
                .flat_map(|(g, group)| group.paths.iter().map(move |_| g))
                .collect();
            webinfer_tfjs::StreamDecoder::new(&model.weights_manifest)
                .map(|decoder| Ordered {
                    decoder,
                    length_given: vec![false; group_of.len()],
                    group_of,
                    early: 0,
                })
                .map_err(|e| e.to_string())
        },
    ))
    .unwrap();
    assert_eq!(sink.early, 0, "bytes written before their place was known");
    assert_eq!(
        weight_bits(sink.decoder.finish().unwrap()),
        reference_weights(&env.fixture)
    );
}
