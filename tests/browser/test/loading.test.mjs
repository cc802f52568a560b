// Loading through the real fetch + Cache API: progress, the cache, offline, resume,
// faults injected by the test server, a refused cache write, cache management.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startEnv, tag, modelBytes, assertMatchesTfjs, expectedFiles, rejection, FIXTURES_DIR, REAL_DIR } from '../lib/harness.mjs';

let env;
before(async () => {
  env = await startEnv();
});
after(async () => {
  await env?.close();
});

const MOBILENET = path.join(REAL_DIR, 'mobilenet_v2');
const fixtureDir = (name) => path.join(FIXTURES_DIR, name);

/** Loads `url` in the page, predicts on the given .npy inputs and returns outputs, events, warnings. */
async function loadAndRun(page, url, inputUrls, options = {}) {
  return page.evaluate(
    async ({ url, inputUrls, options }) => {
      const progress = [];
      const warnings = [];
      const model = await window.wi.loadLayersModel(url, {
        ...options,
        onProgress: (e) => progress.push({ ...e }),
        onWarning: (w) => warnings.push({ ...w }),
      });
      const inputs = [];
      for (const u of inputUrls) {
        const x = await window.fetchNpy(u);
        inputs.push({ data: x.data, shape: x.shape });
      }
      const out = await model.predict(inputs);
      const list = Array.isArray(out) ? out : [out];
      const backend = model.backend;
      model.dispose();
      return { backend, progress, warnings, outputs: list.map((o) => ({ name: o.name, shape: o.shape, data: Array.from(o.data) })) };
    },
    { url, inputUrls, options },
  );
}

const listCached = (page, options) => page.evaluate((o) => window.wi.listCachedModels(o), options);

test('progress: exact total from the first event, monotonic, final event loaded == total; the event works as a number', async () => {
  const page = await env.openPage();
  const base = tag('progress');
  const url = `${base}/real/mobilenet_v2/model.json`;
  const { total } = modelBytes(MOBILENET);
  // Slow the shard down so that the download produces many intermediate events.
  env.server.throttle({ chunkBytes: 32 * 1024, delayMs: 5 }, '/real/');
  let events;
  try {
    events = await page.evaluate(async (url) => {
      const seen = [];
      let tfjsStyle = -1;
      const m = await window.wi.loadLayersModel(url, {
        backend: 'cpu',
        onProgress: (e) => {
          tfjsStyle = Math.round(e * 100); // what a tfjs page does with its number
          seen.push({
            ...e,
            times100: e * 100,
            plus: +e,
            fixed: e.toFixed(3),
            str: `${e}`,
            cmp: e >= 0 && e <= 1,
            proto: Object.keys(e).join(','),
          });
        },
      });
      m.dispose();
      return { seen, tfjsStyle };
    }, url);
  } finally {
    env.server.throttle(null);
  }
  const { seen, tfjsStyle } = events;
  assert.ok(seen.length >= 5, `only ${seen.length} progress events`);
  assert.equal(seen[0].phase, 'model-json');
  let last = 0;
  for (const [i, e] of seen.entries()) {
    assert.equal(e.totalBytes, total, `event ${i}: totalBytes ${e.totalBytes}, the files hold ${total}`);
    assert.ok(e.loadedBytes >= last, `event ${i}: loadedBytes went from ${last} down to ${e.loadedBytes}`);
    assert.ok(e.loadedBytes <= total, `event ${i}: loadedBytes ${e.loadedBytes} > total ${total}`);
    assert.ok(Math.abs(e.fraction - e.loadedBytes / e.totalBytes) < 1e-12, `event ${i}: fraction ${e.fraction}`);
    assert.equal(e.fromCache, false, `event ${i}: fromCache on a first load`);
    assert.equal(e.times100, e.fraction * 100, `event ${i}: e * 100 = ${e.times100}, fraction ${e.fraction}`);
    assert.equal(e.plus, e.fraction);
    assert.equal(e.fixed, e.fraction.toFixed(3));
    assert.equal(e.str, String(e.fraction));
    assert.equal(e.cmp, true);
    assert.equal(e.proto, 'loadedBytes,totalBytes,fraction,url,fromCache,phase');
    last = e.loadedBytes;
  }
  const weights = seen.filter((e) => e.phase === 'weights');
  assert.ok(weights.length >= 3, `only ${weights.length} 'weights' events during a throttled 2.7 MB download`);
  const end = seen.at(-1);
  assert.equal(end.phase, 'done');
  assert.equal(end.loadedBytes, total);
  assert.equal(end.fraction, 1);
  assert.equal(seen.filter((e) => e.phase === 'done').length, 1);
  assert.equal(tfjsStyle, 100);
});

test('cache: a second load makes zero model-file requests and predicts the same', async () => {
  const page = await env.openPage();
  const base = tag('cache');
  const url = `${base}/real/mobilenet_v2/model.json`;
  const inputs = [`/real/mobilenet_v2/input_0.npy`];
  const expected = [path.join(MOBILENET, 'expected_0.npy')];
  const { total } = modelBytes(MOBILENET);

  const first = await loadAndRun(page, url, inputs, { backend: 'cpu' });
  assert.equal(env.server.counts(base), 2, `first load: requests ${JSON.stringify(env.server.requests(base))}`);
  assert.equal(first.progress.at(-1).fromCache, false);
  assertMatchesTfjs('mobilenet_v2 (network)', first.outputs, expected);

  const cached = await listCached(page);
  const entry = cached.find((m) => m.url === env.server.url + url);
  assert.ok(entry, `listCachedModels() does not list ${url}: ${JSON.stringify(cached)}`);
  assert.equal(entry.complete, true);
  assert.equal(entry.bytes, total);
  assert.equal(entry.files.length, 2);
  assert.deepEqual(entry.files.map((f) => f.kind).sort(), ['model-json', 'shard']);

  const second = await loadAndRun(page, url, inputs, { backend: 'cpu' });
  assert.equal(env.server.counts(base), 2, `second load made requests: ${JSON.stringify(env.server.requests(base).slice(2))}`);
  const done = second.progress.at(-1);
  assert.equal(done.phase, 'done');
  assert.equal(done.fromCache, true);
  assert.equal(done.loadedBytes, total);
  assert.equal(second.progress[0].totalBytes, total);
  assertMatchesTfjs('mobilenet_v2 (cache)', second.outputs, expected);
});

test('offline: with the server stopped, a fresh page loads the cached model and predicts', async () => {
  // A server and browser of its own: this test stops the server.
  const own = await startEnv();
  try {
    const context = await own.browser.newContext();
    const base = tag('offline');
    const url = `${base}/fixtures/multi_shard/model.json`;
    const page1 = await own.openPage(context);
    await loadAndRun(page1, url, ['/fixtures/multi_shard/input_0.npy'], { backend: 'cpu' });
    const page2 = await own.openPage(context); // a fresh module instance, same Cache Storage
    const input = await page2.evaluate(async () => {
      const x = await window.fetchNpy('/fixtures/multi_shard/input_0.npy');
      window.offlineInput = x;
      return x.shape;
    });
    assert.deepEqual(input, [1, 6, 6, 4]);
    await own.server.close();

    const r = await page2.evaluate(async (url) => {
      const progress = [];
      const m = await window.wi.loadLayersModel(url, { backend: 'cpu', onProgress: (e) => progress.push({ ...e }) });
      const y = await m.predict(window.offlineInput.data, window.offlineInput.shape);
      m.dispose();
      let other;
      try {
        await window.wi.loadLayersModel(url.replace('multi_shard', 'dense_sequential'));
        other = 'resolved';
      } catch (e) {
        other = e.message;
      }
      return { done: progress.at(-1), out: { name: y.name, shape: y.shape, data: Array.from(y.data) }, other };
    }, url);
    assert.equal(r.done.fromCache, true);
    assertMatchesTfjs('multi_shard (offline)', [r.out], [path.join(fixtureDir('multi_shard'), 'expected_0.npy')]);
    // The server really is gone: a model that is not cached fails, naming its URL.
    assert.match(r.other, /dense_sequential\/model\.json/);
    assert.match(r.other, /network error/);
    own.assertNoPanics();
  } finally {
    await own.close();
  }
});

test('resume: a download reset mid-body fails; the next load fetches only the missing shard', async () => {
  const page = await env.openPage();
  const base = tag('resume');
  const dir = `${base}/fixtures/multi_shard/`;
  const url = `${dir}model.json`;
  const broken = `${dir}group1-shard2of3.bin`;
  // Headers and 300 bytes after 300 ms (the other shards are complete by then), then a TCP reset.
  env.server.fault(broken, { type: 'reset', after: 300, delayMs: 300, times: 1 });

  const err = await rejection(page, (wi, url) => wi.loadLayersModel(url, { backend: 'cpu' }), url);
  assert.ok(err.message.includes(env.server.url + broken), `the error does not name the shard: ${err.message}`);
  assert.equal(err.url, env.server.url + broken);
  const firstRequests = env.server.requests(base);
  assert.equal(firstRequests.length, 6, `first load: ${JSON.stringify(firstRequests)}`);

  const cached = (await listCached(page)).find((m) => m.url === env.server.url + url);
  assert.ok(cached, 'the partial model is listed');
  assert.equal(cached.complete, false);
  assert.equal(cached.files.length, 5, `cached: ${JSON.stringify(cached.files.map((f) => f.url))}`);
  assert.ok(!cached.files.some((f) => f.url.endsWith('group1-shard2of3.bin')), 'the interrupted shard was cached');

  env.server.resetCounts();
  const r = await loadAndRun(page, url, ['/fixtures/multi_shard/input_0.npy'], { backend: 'cpu' });
  assert.deepEqual(env.server.requests(base), [broken], 'the second load fetched more than the missing shard');
  assertMatchesTfjs('multi_shard (resumed)', r.outputs, [path.join(fixtureDir('multi_shard'), 'expected_0.npy')]);
  const complete = (await listCached(page)).find((m) => m.url === env.server.url + url);
  assert.equal(complete.complete, true);
  env.server.clearFaults();
});

test('truncated shards: an error naming the shard, nothing cached for it; then a clean load works', async () => {
  const page = await env.openPage();
  const inCache = (url) =>
    page.evaluate(async (url) => {
      const names = await caches.keys();
      for (const n of names) if (await (await caches.open(n)).match(url)) return true;
      return false;
    }, url);

  // A short shard of a multi-shard group: only the group's total can tell.
  {
    const base = tag('trunc-group');
    const dir = `${base}/fixtures/multi_shard/`;
    const shard = `${dir}group1-shard3of3.bin`;
    env.server.fault(shard, { type: 'truncate', after: 500 });
    const err = await rejection(page, (wi, url) => wi.loadLayersModel(url, { backend: 'cpu' }), `${dir}model.json`);
    assert.ok(err.message.includes(env.server.url + shard), err.message);
    assert.match(err.message, /manifest/);
    assert.equal(await inCache(env.server.url + shard), false, 'the truncated shard is in the cache');
    env.server.clearFaults();
    const r = await loadAndRun(page, `${dir}model.json`, ['/fixtures/multi_shard/input_0.npy'], { backend: 'cpu' });
    assertMatchesTfjs('multi_shard (after truncation)', r.outputs, [path.join(fixtureDir('multi_shard'), 'expected_0.npy')]);
  }
  // A single-shard model: a consistent but short Content-Length, and a short chunked body.
  for (const type of ['truncate', 'truncate-chunked']) {
    const base = tag(type);
    const dir = `${base}/fixtures/dense_sequential/`;
    const shard = `${dir}group1-shard1of1.bin`;
    env.server.fault(shard, { type, after: 40 });
    const err = await rejection(page, (wi, url) => wi.loadLayersModel(url), `${dir}model.json`);
    assert.ok(err.message.includes(env.server.url + shard), `${type}: ${err.message}`);
    assert.match(err.message, /\b40\b/);
    assert.equal(await inCache(env.server.url + shard), false, `${type}: the truncated shard is in the cache`);
    env.server.clearFaults();
    const r = await loadAndRun(page, `${dir}model.json`, ['/fixtures/dense_sequential/input_0.npy']);
    assertMatchesTfjs(`dense_sequential (after ${type})`, r.outputs, [path.join(fixtureDir('dense_sequential'), 'expected_0.npy')]);
  }
});

test('streamed into the cache: whenCached() resolves with every file stored byte for byte; a transfer broken mid-body stores nothing', async () => {
  const page = await env.openPage();
  const base = tag('tee');
  const dir = `${base}/fixtures/multi_shard/`;
  // Slow bodies: the shards are still arriving while the model is being decoded.
  env.server.throttle({ chunkBytes: 256, delayMs: 5 }, base);
  const r = await loadAndRun(page, `${dir}model.json`, ['/fixtures/multi_shard/input_0.npy'], { backend: 'cpu' });
  env.server.throttle(null);
  assertMatchesTfjs('multi_shard (streamed)', r.outputs, [path.join(fixtureDir('multi_shard'), 'expected_0.npy')]);
  assert.deepEqual(r.warnings, []);
  const stored = await page.evaluate(async (urls) => {
    await window.wi.whenCached();
    const cache = await caches.open('webinfer-v1');
    const out = {};
    for (const u of urls) {
      const hit = await cache.match(u);
      out[u] = hit ? Array.from(new Uint8Array(await hit.arrayBuffer())) : null;
    }
    return out;
  }, ['model.json', ...modelBytes(fixtureDir('multi_shard')).shards].map((f) => env.server.url + dir + f));
  for (const f of ['model.json', ...modelBytes(fixtureDir('multi_shard')).shards]) {
    const want = Array.from(fs.readFileSync(path.join(fixtureDir('multi_shard'), f)));
    const got = stored[env.server.url + dir + f];
    assert.ok(got, `${f} is not in the cache after whenCached()`);
    assert.equal(got.length, want.length, `${f}: stored length`);
    assert.ok(got.every((b, i) => b === want[i]), `${f}: stored bytes differ`);
  }
  // A reset in the middle of a single-shard body: the load fails, the copy is never committed.
  const single = `${tag('tee-reset')}/fixtures/dense_sequential/`;
  env.server.fault(`${single}group1-shard1of1.bin`, { type: 'reset', after: 40, times: 1 });
  await rejection(page, (wi, url) => wi.loadLayersModel(url), `${single}model.json`);
  env.server.clearFaults();
  const left = await page.evaluate(async (u) => {
    await window.wi.whenCached();
    return (await (await caches.open('webinfer-v1')).match(u)) !== undefined;
  }, `${env.server.url}${single}group1-shard1of1.bin`);
  assert.equal(left, false, 'a broken-off shard was committed to the cache');
});

test('a torn cache entry found while streaming it is evicted and fetched again; progress never goes back', async () => {
  const page = await env.openPage();
  const base = tag('torn');
  const dir = `${base}/fixtures/multi_shard/`;
  const input = ['/fixtures/multi_shard/input_0.npy'];
  const expected = [path.join(fixtureDir('multi_shard'), 'expected_0.npy')];
  await loadAndRun(page, `${dir}model.json`, input, { backend: 'cpu' });
  const torn = `${env.server.url}${dir}group1-shard2of3.bin`;
  // Same record (x-webinfer-length says 1024), a body of 100 bytes.
  await page.evaluate(async (u) => {
    await window.wi.whenCached();
    const cache = await caches.open('webinfer-v1');
    const hit = await cache.match(u);
    const bytes = new Uint8Array(await hit.arrayBuffer()).slice(0, 100);
    await cache.put(u, new Response(bytes, { headers: hit.headers }));
  }, torn);
  env.server.resetCounts();
  const r = await loadAndRun(page, `${dir}model.json`, input, { backend: 'cpu' });
  assertMatchesTfjs('multi_shard (torn cache entry)', r.outputs, expected);
  assert.deepEqual(env.server.requests(base), [`${dir}group1-shard2of3.bin`], 'only the torn shard is fetched again');
  assert.ok(r.warnings.some((w) => w.kind === 'cache-entry-evicted' && w.url === torn), JSON.stringify(r.warnings));
  let last = 0;
  for (const p of r.progress) {
    assert.ok(p.loadedBytes >= last, `progress went back: ${JSON.stringify(r.progress)}`);
    last = p.loadedBytes;
  }
  assert.equal(r.progress.at(-1).phase, 'done');
  assert.equal(r.progress.at(-1).loadedBytes, modelBytes(fixtureDir('multi_shard')).total);
});

test('HTTP errors: 404, 500 and 503 reject with the URL and the status', async () => {
  const page = await env.openPage();
  const base = tag('http');
  const modelUrl = `${base}/fixtures/dense_sequential/model.json`;
  for (const status of [404, 500, 503]) {
    const u = `${modelUrl}?fault=${status}`;
    const err = await rejection(page, (wi, url) => wi.loadLayersModel(url), u);
    assert.ok(err.message.includes(env.server.url + u), `${status}: ${err.message}`);
    assert.ok(err.message.includes(`HTTP ${status}`), `${status}: ${err.message}`);
    assert.equal(err.status, status);
  }
  const shard = `${base}/fixtures/dense_sequential/group1-shard1of1.bin`;
  env.server.fault(shard, { type: '500' });
  const err = await rejection(page, (wi, url) => wi.loadLayersModel(url), modelUrl);
  assert.ok(err.message.includes(env.server.url + shard), err.message);
  assert.ok(err.message.includes('HTTP 500'), err.message);
  assert.equal(err.status, 500);
  assert.equal(err.url, env.server.url + shard);
  env.server.clearFaults();
  // A missing model.json (a real 404 of the server).
  const missing = `${base}/fixtures/no_such_model/model.json`;
  const e404 = await rejection(page, (wi, url) => wi.loadLayersModel(url), missing);
  assert.ok(e404.message.includes(env.server.url + missing) && e404.message.includes('HTTP 404'), e404.message);
  // An HTML page where model.json should be (a single-page-app fallback).
  const html = await rejection(page, (wi, url) => wi.loadLayersModel(url), `${modelUrl}?fault=html`);
  assert.match(html.message, /HTML page/);
  // And the module still works.
  const r = await loadAndRun(page, modelUrl, ['/fixtures/dense_sequential/input_0.npy']);
  assertMatchesTfjs('dense_sequential (after HTTP errors)', r.outputs, [path.join(fixtureDir('dense_sequential'), 'expected_0.npy')]);
});

test('a refused cache write (QuotaExceededError): the model loads and predicts, the warning fires', async () => {
  const page = await env.openPage();
  await page.evaluate(() => {
    window.putCalls = 0;
    Cache.prototype.put = function put() {
      window.putCalls += 1;
      return Promise.reject(new DOMException('The quota has been exceeded.', 'QuotaExceededError'));
    };
  });
  const base = tag('quota');
  const url = `${base}/fixtures/cnn_rich_uint8/model.json`;
  const r = await loadAndRun(page, url, ['/fixtures/cnn_rich_uint8/input_0.npy'], { backend: 'cpu' });
  assertMatchesTfjs('cnn_rich_uint8 (cache full)', r.outputs, expectedFiles(fixtureDir('cnn_rich_uint8')));
  assert.ok(await page.evaluate(() => window.putCalls) >= 2, 'Cache.put was not called');
  assert.ok(r.warnings.length >= 2, `warnings: ${JSON.stringify(r.warnings)}`);
  for (const w of r.warnings) {
    assert.equal(w.kind, 'not-cached');
    assert.match(w.message, /quota/i);
    assert.ok(w.url.startsWith(env.server.url + base), w.url);
  }
  assert.equal(r.progress.at(-1).phase, 'done');
  assert.equal((await listCached(page)).filter((m) => m.url.includes(base)).length, 0, 'something was cached');
  // Without onWarning the warning goes to the console.
  const before = page.consoleLines.length;
  await page.evaluate(async (url) => (await window.wi.loadLayersModel(url)).dispose(), url);
  const warned = page.consoleLines.slice(before).filter((l) => l.startsWith('warning: webinfer:'));
  assert.ok(warned.length >= 1, `no console warning: ${JSON.stringify(page.consoleLines.slice(before))}`);
});

test('cache management: list, delete, namespace, forceReload, cache: false, weightPathPrefix', async () => {
  const page = await env.openPage();
  const base = tag('manage');
  const dir = `${base}/fixtures/dense_sequential/`;
  const url = `${dir}model.json`;
  const abs = env.server.url + url;
  const input = ['/fixtures/dense_sequential/input_0.npy'];
  const { total } = modelBytes(fixtureDir('dense_sequential'));

  await loadAndRun(page, url, input);
  let list = await listCached(page);
  const entry = list.find((m) => m.url === abs);
  assert.deepEqual(
    { bytes: entry.bytes, complete: entry.complete, files: entry.files.map((f) => [f.url, f.kind]) },
    { bytes: total, complete: true, files: [[abs, 'model-json'], [`${env.server.url}${dir}group1-shard1of1.bin`, 'shard']] },
  );
  assert.equal(await page.evaluate((u) => window.wi.deleteCachedModel(u), abs), 2);
  list = await listCached(page);
  assert.ok(!list.some((m) => m.url === abs), 'still listed after deleteCachedModel');
  assert.equal(await page.evaluate((u) => window.wi.deleteCachedModel(u), abs), 0);

  // forceReload fetches everything again even though it is cached.
  await loadAndRun(page, url, input);
  env.server.resetCounts();
  await loadAndRun(page, url, input, { forceReload: true });
  assert.equal(env.server.counts(base), 2, 'forceReload did not fetch again');

  // cache: false neither reads nor writes.
  const base2 = tag('nocache');
  const url2 = `${base2}/fixtures/dense_sequential/model.json`;
  await loadAndRun(page, url2, input, { cache: false });
  await loadAndRun(page, url2, input, { cache: false });
  assert.equal(env.server.counts(base2), 4);
  assert.ok(!(await listCached(page)).some((m) => m.url.includes(base2)));

  // A namespace is a separate cache.
  const base3 = tag('ns');
  const url3 = `${base3}/fixtures/dense_sequential/model.json`;
  await loadAndRun(page, url3, input, { namespace: 'app-v2' });
  assert.ok(!(await listCached(page)).some((m) => m.url.includes(base3)), 'listed in the default cache');
  assert.ok((await listCached(page, { namespace: 'app-v2' })).some((m) => m.url.includes(base3)));
  env.server.resetCounts();
  await loadAndRun(page, url3, input, { namespace: 'app-v2' });
  assert.equal(env.server.counts(base3), 0, 'the namespaced cache was not used');
  assert.equal(await page.evaluate((u) => window.wi.deleteCachedModel(u, { namespace: 'app-v2' }), env.server.url + url3), 2);

  // weightPathPrefix: model.json in one place, the shards in another.
  const base4 = tag('prefix');
  const fs = await import('node:fs');
  env.server.addFile(`/v/prefix/model.json`, fs.readFileSync(path.join(fixtureDir('dense_sequential'), 'model.json')));
  const shardsAt = `${env.server.url}${base4}/fixtures/dense_sequential/`;
  const r = await loadAndRun(page, `${base4}/v/prefix/model.json`, input, { weightPathPrefix: shardsAt });
  assertMatchesTfjs('dense_sequential (weightPathPrefix)', r.outputs, [path.join(fixtureDir('dense_sequential'), 'expected_0.npy')]);
  assert.equal(env.server.count(`${base4}/fixtures/dense_sequential/group1-shard1of1.bin`), 1);
});

test('no panic or uncaught error reached any page', () => {
  env.assertNoPanics();
});
