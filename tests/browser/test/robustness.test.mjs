// No panic reaches JavaScript: a panic inside webinfer (forced with __debugPanic(), testing
// only) becomes a rejected promise whose message is the panic's, never an uncaught
// `RuntimeError: unreachable` or a promise that never settles, and the module stays usable
// (loads, predicts, predicts already in flight), also after many panics.
// And options.limits: a model over a lowered limit fails to load with a message that names
// the limit and the option to raise (before downloading the shards, where model.json tells);
// raising it loads, and the model's results match tfjs.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startEnv, rejection, assertMatchesTfjs, assertMatchesRefs, expectedFiles, readNpy, stackRows, memoryStats, FIXTURES_DIR } from '../lib/harness.mjs';

const DENSE = path.join(FIXTURES_DIR, 'dense_sequential');
const DELIBERATE = /__debugPanic\("(sync|async)"\): a deliberate panic for testing/;

let env;
let page;
before(async () => {
  env = await startEnv();
  page = await env.openPage();
});
after(async () => {
  await env?.close();
});

/** dense_sequential loaded and run in the page, compared with tfjs. */
async function denseStillWorks(label, options = { backend: 'cpu' }) {
  const r = await page.evaluate(
    ({ options }) => window.runModel('/fixtures/dense_sequential/model.json', ['/fixtures/dense_sequential/input_0.npy'], { ...options, cache: false }),
    { options },
  );
  assertMatchesTfjs(`dense_sequential (${label})`, r.outputs, expectedFiles(DENSE));
}

test('a panic in the synchronous part of a call rejects its promise with the panic message', async (t) => {
  const r = await rejection(page, (wi) => wi.__debugPanic('sync'));
  t.diagnostic(r.message);
  assert.match(r.message, /^__debugPanic: internal error in webinfer \(a bug; the module is still usable\): panicked at .*lib\.rs:\d+:\d+:\n__debugPanic\("sync"\): a deliberate panic for testing$/);
  await denseStillWorks('after a sync panic');
  await env.assertClean(DELIBERATE);
});

test('a panic in a later poll of a future rejects its promise; predicts in flight at the time are unaffected', async (t) => {
  const r = await page.evaluate(async () => {
    const x = await window.fetchNpy('/fixtures/dense_sequential/input_0.npy');
    const m = await window.wi.loadLayersModel('/fixtures/dense_sequential/model.json', { backend: 'cpu', cache: false });
    const before = m.predict(x.data, x.shape);
    let panicked;
    const p = window.wi.__debugPanic('async');
    const isPromise = p instanceof Promise;
    const during = m.predict(x.data, x.shape);
    try {
      await p;
      panicked = { resolved: true };
    } catch (e) {
      panicked = { isError: e instanceof Error, message: e.message };
    }
    const flat = (o) => ({ name: o.name, shape: o.shape, data: Array.from(o.data) });
    const res = { isPromise, panicked, before: flat(await before), during: flat(await during), after: flat(await m.predict(x.data, x.shape)) };
    m.dispose();
    return res;
  });
  t.diagnostic(r.panicked.message);
  assert.equal(r.isPromise, true);
  assert.equal(r.panicked.isError, true, JSON.stringify(r.panicked));
  assert.match(r.panicked.message, /^__debugPanic: internal error in webinfer \(a bug; the module is still usable\): panicked at .*\n__debugPanic\("async"\): a deliberate panic for testing$/);
  for (const k of ['before', 'during', 'after']) assertMatchesTfjs(`dense_sequential, predict ${k} the panic`, [r[k]], expectedFiles(DENSE));
  await env.assertClean(DELIBERATE);
});

test('200 panics in a row: every one rejects, and the module still loads, predicts and has not grown', async () => {
  const warm = await memoryStats(page);
  const r = await page.evaluate(async () => {
    let rejected = 0;
    const messages = new Set();
    for (let i = 0; i < 200; i += 1) {
      try {
        await window.wi.__debugPanic(i % 2 ? 'async' : 'sync');
      } catch (e) {
        rejected += 1;
        messages.add(e.message.replace(/lib\.rs:\d+:\d+/, 'lib.rs'));
      }
    }
    return { rejected, kinds: messages.size };
  });
  assert.equal(r.rejected, 200);
  assert.equal(r.kinds, 2, 'one message per kind of panic');
  await denseStillWorks('after 200 panics');
  await denseStillWorks('after 200 panics, on webgpu', { backend: process.env.WEBINFER_EXPECT_WEBGPU === '0' ? 'cpu' : 'auto' });
  const after = await memoryStats(page);
  // Each panic abandons its call's frames: what they owned leaks (a message string, a boxed
  // future: a few hundred bytes). 200 panics stay well under 1 MiB of heap.
  assert.ok(after.heapBytes - warm.heapBytes < 2 ** 20, `heap grew by ${after.heapBytes - warm.heapBytes} bytes over 200 panics`);
  await env.assertClean(DELIBERATE);
  // Every panic was also written to the console (the hook), and only the deliberate ones.
  const panicLines = page.consoleLines.filter((l) => /panicked/.test(l));
  assert.ok(panicLines.length >= 202, `${panicLines.length} panic lines on the console`);
  assert.ok(panicLines.every((l) => DELIBERATE.test(l)), panicLines.find((l) => !DELIBERATE.test(l)));
});

test('__debugPanic with an unknown kind rejects (no panic)', async () => {
  const r = await rejection(page, (wi) => wi.__debugPanic('later'));
  assert.equal(r.message, '__debugPanic: kind must be "sync" or "async", got "later"');
});

// ---- options.limits -------------------------------------------------------------------

/** The fixture's weights as the manifest declares them. */
function manifest(name) {
  const json = JSON.parse(fs.readFileSync(path.join(FIXTURES_DIR, name, 'model.json'), 'utf8'));
  const weights = json.weightsManifest.flatMap((g) => g.weights);
  const elements = (w) => w.shape.reduce((a, b) => a * b, 1);
  const bytesPer = { float32: 4, int32: 4, bool: 1 };
  return {
    json,
    shards: json.weightsManifest.flatMap((g) => g.paths),
    totalBytes: weights.reduce((s, w) => s + elements(w) * bytesPer[w.dtype], 0),
    maxElements: Math.max(...weights.map(elements)),
  };
}

/**
 * Loads `name` with `limits` under a fresh URL; returns {ok, message, shardRequests, outputs}.
 */
async function loadWithLimits(name, limits) {
  const base = `/t/limits-${name}-${Math.random().toString(36).slice(2)}`;
  const r = await page.evaluate(
    async ({ url, input, limits }) => {
      try {
        const m = await window.wi.loadLayersModel(url, { backend: 'cpu', cache: false, limits });
        const x = await window.fetchNpy(input);
        const out = await m.predict(x.data, x.shape);
        m.dispose();
        const list = Array.isArray(out) ? out : [out];
        return { ok: true, outputs: list.map((o) => ({ name: o.name, shape: o.shape, data: Array.from(o.data) })) };
      } catch (e) {
        return { ok: false, isError: e instanceof Error, message: e.message, url: e.url };
      }
    },
    { url: `${base}/fixtures/${name}/model.json`, input: `/fixtures/${name}/input_0.npy`, limits },
  );
  const { shards } = manifest(name);
  r.shardRequests = shards.map((s) => env.server.count(`${base}/fixtures/${name}/${s}`)).reduce((a, b) => a + b, 0);
  r.base = base;
  return r;
}

const LIMIT_CASES = [
  // [fixture, option, the figure the model needs (from its model.json), words of the
  //  message, whether the loader sees it in model.json's manifest (before any shard)]
  ['dense_sequential', 'maxTotalWeightBytes', (m) => m.totalBytes, 'total weight bytes', true],
  ['dense_sequential', 'maxTensorElements', (m) => m.maxElements, 'number of elements', true],
  ['multi_shard', 'maxShards', (m) => m.shards.length, 'number of shard files', true],
  ['dense_sequential', 'maxWeights', (m) => m.json.weightsManifest.flatMap((g) => g.weights).length, 'number of weights', true],
  // The topology is parsed once the files are in (cnn_rich lists its InputLayer: 15 layers).
  ['cnn_rich', 'maxLayers', (m) => m.json.modelTopology.config.layers.length, 'number of layers', false],
];

for (const [name, option, needed, words, beforeShards] of LIMIT_CASES) {
  const when = beforeShards ? 'before any shard is fetched' : 'once the files are in';
  test(`options.limits.${option}: ${name} needs ${option} >= its own figure; one less fails naming it ${when}, exactly enough loads`, async (t) => {
    const m = manifest(name);
    const value = needed(m);
    const low = await loadWithLimits(name, { [option]: value - 1 });
    t.diagnostic(low.message ?? 'loaded');
    assert.equal(low.ok, false, `${name} loaded with ${option} = ${value - 1}`);
    assert.equal(low.isError, true);
    assert.ok(low.message.includes(`${env.server.url}${low.base}/fixtures/${name}/model.json`), `the URL is not named: ${low.message}`);
    assert.ok(low.message.includes(words), `"${words}" missing: ${low.message}`);
    assert.ok(low.message.includes(`exceeds the limit of ${value - 1}`), low.message);
    assert.ok(low.message.endsWith(`(a load option: raise options.limits.${option}, now ${value - 1})`), low.message);
    if (beforeShards) assert.equal(low.shardRequests, 0, 'shards were downloaded although model.json was over the limit');

    const exact = await loadWithLimits(name, { [option]: value });
    assert.equal(exact.ok, true, `${name} with ${option} = ${value}: ${exact.message}`);
    assertMatchesTfjs(`${name} with ${option} = ${value}`, exact.outputs, expectedFiles(path.join(FIXTURES_DIR, name)));
  });
}

test('options.limits.maxActivationElements: checked at load for the declared shapes and at predict for the batch given', async (t) => {
  // dense_sequential: input [null, 10], Dense 8 -> 6 -> 4 -> 3: at batch 1 the largest
  // activation is the input's 10 elements; the test input is a batch of 2 (20 elements).
  const layers = manifest('dense_sequential').json.modelTopology.config.layers;
  const widest = Math.max(layers[0].config.batch_input_shape[1], ...layers.map((l) => l.config.units));
  assert.equal(widest, 10);
  const low = await loadWithLimits('dense_sequential', { maxActivationElements: widest - 1 });
  t.diagnostic(low.message);
  assert.equal(low.ok, false);
  assert.match(low.message, /max_activation_elements = 9/);
  assert.ok(low.message.endsWith('(a load option: raise options.limits.maxActivationElements, now 9)'), low.message);

  // Enough for batch 1, not for the batch of 2: the load works, predict refuses the batch.
  const r = await page.evaluate(async () => {
    const m = await window.wi.loadLayersModel('/fixtures/dense_sequential/model.json', { backend: 'cpu', cache: false, limits: { maxActivationElements: 10 } });
    const x = await window.fetchNpy('/fixtures/dense_sequential/input_0.npy');
    let batch2;
    try {
      await m.predict(x.data, x.shape);
      batch2 = 'resolved';
    } catch (e) {
      batch2 = e.message;
    }
    const one = await m.predict(x.data.subarray(0, 10), [1, 10]);
    m.dispose();
    return { batch2, one: { name: one.name, shape: one.shape, data: Array.from(one.data) } };
  });
  t.diagnostic(r.batch2);
  assert.match(r.batch2, /^predict: input "[^"]+": shape \[2,10\] has 20 elements .*max_activation_elements = 10.*\(a load option: options\.limits\.maxActivationElements\)$/);
  const expected = readNpy(path.join(DENSE, 'expected_0.npy'));
  assertMatchesRefs('dense_sequential, example 0 under maxActivationElements = 10', [r.one], [stackRows(expected, [0])]);
});

test('options.limits: bad values and unknown keys reject with the option named; Infinity and omitted keys keep working', async () => {
  const url = '/fixtures/dense_sequential/model.json';
  const cases = [
    [{ maxShards: -1 }, /options\.limits\.maxShards must be a non-negative integer \(or Infinity\), got -1/],
    [{ maxRank: 2.5 }, /options\.limits\.maxRank must be a non-negative integer/],
    [{ maxLayers: '10' }, /options\.limits\.maxLayers must be a number, got the string "10"/],
    [{ maxWeightBytes: 10 }, /options\.limits\.maxWeightBytes is not a limit webinfer knows \(the limits are maxTotalWeightBytes, maxTensorElements, maxActivationElements, maxRank, maxShards, maxWeights, maxLayers, maxModelJsonBytes\)/],
    [5, /options\.limits must be an object/],
    [[1], /options\.limits must be an object/],
  ];
  for (const [limits, pattern] of cases) {
    const r = await rejection(page, (wi, { url, limits }) => wi.loadLayersModel(url, { limits }), { url, limits });
    assert.match(r.message, pattern);
  }
  for (const [value, shown] of [[-1, 'the number -1'], [1.5, 'the number 1.5'], ['1e6', 'the string "1e6"']]) {
    const r = await rejection(page, (wi, { url, value }) => wi.loadLayersModel(url, { gpuStreamMinBytes: value }), { url, value });
    assert.equal(r.message, `loadLayersModel(${url}): options.gpuStreamMinBytes must be a whole number of bytes >= 0 (or Infinity to stream nothing), got ${shown}`);
  }
  const ok = await loadWithLimits('dense_sequential', { maxTotalWeightBytes: Infinity, maxShards: undefined, maxModelJsonBytes: 1e6 });
  assert.equal(ok.ok, true, ok.message);
  assertMatchesTfjs('dense_sequential with Infinity / undefined limits', ok.outputs, expectedFiles(DENSE));
  await env.assertClean(DELIBERATE);
});
