// A lost GPU device in the browser (WebGPU, SwiftShader here): the model goes on on the CPU
// with results that still match tfjs, says so (model.backend, model.backendReason), and
// nothing panics or goes unhandled. The device is destroyed with WebGPU's device.destroy()
// through model.debugLoseGpuDevice() (testing only):
//   - between predicts ('now');
//   - during a predict, deterministically ('during-next-predict': after its GPU work is
//     submitted, while its results are being mapped), with more predicts queued behind it;
//   - from JavaScript while a predict is in flight (the predict is past its first poll and
//     waiting on the GPU when the device goes).
// Tolerance: the suite's |d| <= 1e-4 + 1e-3 |tfjs| (lib/harness.mjs). Needs WebGPU: see
// WEBINFER_EXPECT_WEBGPU in test/conformance.test.mjs.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startEnv, readNpy, stackRows, assertMatchesRefs, webgpuWanted, memoryStats, tag, FIXTURES_DIR } from '../lib/harness.mjs';

const CNN = path.join(FIXTURES_DIR, 'cnn_rich'); // two outputs, batch of 2 tfjs examples
const X = readNpy(path.join(CNN, 'input_0.npy'));
const EXPECTED = [0, 1].map((i) => readNpy(path.join(CNN, `expected_${i}.npy`)));
const URL_ = '/fixtures/cnn_rich/model.json';

/** tfjs's outputs for the examples `rows` of input_0.npy. */
const refs = (rows) => EXPECTED.map((e) => stackRows(e, rows));
const inputFor = (rows) => {
  const s = stackRows(X, rows);
  return { shape: s.shape, data: Array.from(s.data) };
};

let env;
let page;
before(async () => {
  env = await startEnv();
  page = await env.openPage();
});
after(async () => {
  await env?.close();
});

/** Loads cnn_rich on WebGPU in the page as window.m and checks a first predict. */
async function loadOnWebgpu() {
  const r = await page.evaluate(
    async ({ url, x }) => {
      window.m = await window.wi.loadLayersModel(url, { backend: 'webgpu', cache: false });
      const out = await window.m.predict(new Float32Array(x.data), x.shape);
      return {
        backend: window.m.backend,
        gpuBytes: window.m.gpuBytes,
        outputs: out.map((o) => ({ name: o.name, shape: o.shape, data: Array.from(o.data) })),
      };
    },
    { url: URL_, x: inputFor([0, 1]) },
  );
  assert.equal(r.backend, 'webgpu');
  assert.ok(r.gpuBytes > 0, `gpuBytes ${r.gpuBytes}`);
  assertMatchesRefs('cnn_rich on webgpu, before the loss', r.outputs, refs([0, 1]));
  return r;
}

/** The model says it runs on the CPU now, and why; it reports no GPU memory. */
function checkFellBack(r, label) {
  assert.equal(r.backend, 'cpu', `${label}: model.backend after the loss`);
  assert.match(r.reason, /^gpu: requested; .*; then the GPU device was lost \(.+\);( its weights, which lived in GPU memory only, were loaded again;)? running on the CPU from now on$/, `${label}: backendReason`);
  assert.equal(r.gpuBytes, 0, `${label}: gpuBytes after the loss`);
}

test('webgpu: a device destroyed between predicts: the next ones run on the CPU and match tfjs', async (t) => {
  if (!(await webgpuWanted(t, page))) return;
  await loadOnWebgpu();
  const r = await page.evaluate(
    async ({ a, b }) => {
      const lost = window.m.debugLoseGpuDevice();
      const flat = (out) => out.map((o) => ({ name: o.name, shape: o.shape, data: Array.from(o.data) }));
      const first = flat(await window.m.predict(new Float32Array(a.data), a.shape));
      const second = flat(await window.m.predict(new Float32Array(b.data), b.shape));
      const res = { lost, first, second, backend: window.m.backend, reason: window.m.backendReason, gpuBytes: window.m.gpuBytes, again: window.m.debugLoseGpuDevice() };
      window.m.dispose();
      res.after = window.wi.memoryStats();
      return res;
    },
    { a: inputFor([1, 0]), b: inputFor([0]) },
  );
  t.diagnostic(`backendReason after the loss: ${r.reason}`);
  assert.equal(r.lost, true, 'debugLoseGpuDevice() found a device');
  assertMatchesRefs('cnn_rich, first predict after the loss', r.first, refs([1, 0]));
  assertMatchesRefs('cnn_rich, second predict after the loss', r.second, refs([0]));
  checkFellBack(r, 'between predicts');
  assert.equal(r.again, false, 'a model that fell back has no device left to lose');
  assert.equal(r.after.gpuBufferBytes, 0, 'GPU buffers left after dispose');
  assert.equal(r.after.gpuDevices, 0, 'GPU devices left after dispose');
  await env.assertClean();
});

test('webgpu: a device destroyed during a predict (while its results are read back): it and 3 predicts queued behind it resolve on the CPU, each matching tfjs', async (t) => {
  if (!(await webgpuWanted(t, page))) return;
  await loadOnWebgpu();
  const calls = [[0], [1, 0], [1], [0, 1]];
  const r = await page.evaluate(
    async ({ inputs }) => {
      window.m.debugLoseGpuDevice('during-next-predict');
      // All four are issued before any runs: the first loses the device mid-readback, the
      // others are queued behind it (same or other execution plans).
      const pending = inputs.map((x) => window.m.predict(new Float32Array(x.data), x.shape));
      const settled = await Promise.allSettled(pending);
      const res = {
        settled: settled.map((s) => (s.status === 'fulfilled' ? { ok: true, outputs: s.value.map((o) => ({ name: o.name, shape: o.shape, data: Array.from(o.data) })) } : { ok: false, message: String(s.reason?.message ?? s.reason) })),
        backend: window.m.backend,
        reason: window.m.backendReason,
        gpuBytes: window.m.gpuBytes,
      };
      window.m.dispose();
      res.after = window.wi.memoryStats();
      return res;
    },
    { inputs: calls.map(inputFor) },
  );
  t.diagnostic(`backendReason after the loss: ${r.reason}`);
  r.settled.forEach((s, i) => {
    assert.ok(s.ok, `predict ${i} (examples ${JSON.stringify(calls[i])}) rejected: ${s.message}`);
    assertMatchesRefs(`cnn_rich, predict ${i} (examples ${JSON.stringify(calls[i])}), device lost mid-predict`, s.outputs, refs(calls[i]));
  });
  checkFellBack(r, 'mid-predict');
  // The loss was seen by the readback of the predict in flight.
  assert.match(r.reason, /mapping the readback buffer failed|while reading back results/);
  assert.equal(r.after.gpuBufferBytes, 0, 'GPU buffers left after dispose');
  assert.equal(r.after.gpuDevices, 0, 'GPU devices left after dispose');
  await env.assertClean();
});

test('webgpu: device destroyed from JavaScript while a predict is in flight: the predict resolves on the CPU and matches tfjs', async (t) => {
  if (!(await webgpuWanted(t, page))) return;
  await loadOnWebgpu();
  const r = await page.evaluate(
    async ({ x }) => {
      const p = window.m.predict(new Float32Array(x.data), x.shape);
      // One microtask: the predict's first poll (queued before this continuation) has
      // submitted its GPU work and is waiting on the readback; now the device goes.
      await Promise.resolve();
      const lost = window.m.debugLoseGpuDevice('now');
      const out = await p;
      const next = await window.m.predict(new Float32Array(x.data), x.shape);
      const flat = (out) => out.map((o) => ({ name: o.name, shape: o.shape, data: Array.from(o.data) }));
      const res = { lost, inflight: flat(out), next: flat(next), backend: window.m.backend, reason: window.m.backendReason, gpuBytes: window.m.gpuBytes };
      window.m.dispose();
      res.after = window.wi.memoryStats();
      return res;
    },
    { x: inputFor([1]) },
  );
  t.diagnostic(`backendReason after the loss: ${r.reason}`);
  assert.equal(r.lost, true);
  assertMatchesRefs('cnn_rich, the predict in flight when the device was destroyed', r.inflight, refs([1]));
  assertMatchesRefs('cnn_rich, the predict after', r.next, refs([1]));
  checkFellBack(r, 'destroyed from JavaScript');
  // The device went while the predict waited for its results (not before it started).
  assert.match(r.reason, /mapping the readback buffer failed|while reading back results/);
  assert.equal(r.after.gpuDevices, 0);
  await env.assertClean();
  const stats = await memoryStats(page);
  assert.equal(stats.liveModels, 0, 'models left alive');
});

// dense_wide_uint8: its Dense kernel [256, 1024] (uint8, 1 MiB as float32) is streamed into
// GPU memory as it downloads (gpuStreamMinBytes, default 1 MiB): WebAssembly memory never
// holds it, so a lost device leaves no host copy to fall back on, and the next predict loads
// the model again on the CPU, from the Cache API.
const WIDE = path.join(FIXTURES_DIR, 'dense_wide_uint8');
const WIDE_X = readNpy(path.join(WIDE, 'input_0.npy'));
const WIDE_REFS = [readNpy(path.join(WIDE, 'expected_0.npy'))];

test('webgpu: a Dense kernel streamed to the GPU is never in WebAssembly memory; after a lost device the model is loaded again from the cache and matches tfjs', async (t) => {
  if (!(await webgpuWanted(t, page))) return;
  // Each load in a fresh page, so that heapPeakBytes is this load's.
  const loadIn = async (streamMin) => {
    const p = await env.openPage();
    const base = tag('wide');
    const r = await p.evaluate(
      async ({ url, x, streamMin }) => {
        const opts = { backend: 'webgpu' };
        if (streamMin !== null) opts.gpuStreamMinBytes = streamMin;
        window.m = await window.wi.loadLayersModel(url, opts);
        const out = await window.m.predict(new Float32Array(x.data), x.shape);
        await window.wi.whenCached();
        return { peak: window.wi.memoryStats().heapPeakBytes, backend: window.m.backend, outputs: [{ name: out.name, shape: out.shape, data: Array.from(out.data) }] };
      },
      { url: `${base}/fixtures/dense_wide_uint8/model.json`, x: { shape: WIDE_X.shape, data: Array.from(WIDE_X.data) }, streamMin },
    );
    assert.equal(r.backend, 'webgpu');
    assertMatchesRefs(`dense_wide_uint8 on webgpu (gpuStreamMinBytes ${streamMin ?? 'default'})`, r.outputs, WIDE_REFS);
    return { p, base, peak: r.peak };
  };
  const held = await loadIn(Infinity);
  const streamed = await loadIn(null);
  t.diagnostic(`Rust heap peak: ${held.peak} B with the kernel on the host, ${streamed.peak} B streamed`);
  assert.ok(held.peak >= 1 << 20, `not streamed: the 1 MiB kernel is on the heap (peak ${held.peak})`);
  assert.ok(streamed.peak < held.peak - (1 << 20) * 0.9, `streamed: peak ${streamed.peak} B, against ${held.peak} B held`);
  await held.p.close();

  const { p, base } = streamed;
  env.server.resetCounts();
  const r = await p.evaluate(async ({ x }) => {
    const lost = window.m.debugLoseGpuDevice();
    const flat = (o) => [{ name: o.name, shape: o.shape, data: Array.from(o.data) }];
    const first = flat(await window.m.predict(new Float32Array(x.data), x.shape));
    const second = flat(await window.m.predict(new Float32Array(x.data), x.shape));
    const res = { lost, first, second, backend: window.m.backend, reason: window.m.backendReason, gpuBytes: window.m.gpuBytes, live: window.wi.memoryStats().liveModels };
    window.m.dispose();
    res.after = window.wi.memoryStats();
    return res;
  }, { x: { shape: WIDE_X.shape, data: Array.from(WIDE_X.data) } });
  t.diagnostic(`backendReason after the loss: ${r.reason}`);
  assert.equal(r.lost, true);
  assertMatchesRefs('dense_wide_uint8, first predict after the loss (reloaded on the CPU)', r.first, WIDE_REFS);
  assertMatchesRefs('dense_wide_uint8, second predict after the loss', r.second, WIDE_REFS);
  checkFellBack(r, 'streamed weights');
  assert.match(r.reason, /were loaded again; running on the CPU from now on$/);
  assert.equal(r.live, 1, 'one live model after the reload (the lost one was released)');
  assert.equal(env.server.requests(base).length, 0, `the reload came from the cache, not the network: ${env.server.requests(base)}`);
  assert.equal(r.after.liveModels, 0);
  assert.equal(r.after.gpuDevices, 0);
  await p.close();
  await env.assertClean();
});

test('webgpu: a load that fails after its GPU buffers were made (a shard cut mid-body, a 404) leaves no GPU device or buffer behind; the next load streams and matches tfjs', async (t) => {
  if (!(await webgpuWanted(t, page))) return;
  const p = await env.openPage();
  const x = { shape: WIDE_X.shape, data: Array.from(WIDE_X.data) };
  for (const fault of [{ type: 'truncate', after: 100000 }, { type: '404' }]) {
    const base = tag('wide-fail');
    const shard = `${base}/fixtures/dense_wide_uint8/group1-shard1of1.bin`;
    env.server.fault(shard, fault);
    const r = await p.evaluate(async ({ url }) => {
      let message = 'resolved';
      try {
        await window.wi.loadLayersModel(url, { backend: 'webgpu' });
      } catch (e) {
        message = e.message;
      }
      return { message, stats: window.wi.memoryStats() };
    }, { url: `${base}/fixtures/dense_wide_uint8/model.json` });
    env.server.clearFaults();
    assert.ok(r.message.includes(shard), `${fault.type}: ${r.message}`);
    assert.equal(r.stats.gpuDevices, 0, `${fault.type}: GPU devices left after the failed load`);
    assert.equal(r.stats.gpuBufferBytes, 0, `${fault.type}: GPU buffers left after the failed load`);
    assert.equal(r.stats.liveModels, 0);
  }
  const base = tag('wide-ok');
  const r = await p.evaluate(async ({ url, x }) => {
    const m = await window.wi.loadLayersModel(url, { backend: 'webgpu' });
    const out = await m.predict(new Float32Array(x.data), x.shape);
    const res = { backend: m.backend, outputs: [{ name: out.name, shape: out.shape, data: Array.from(out.data) }] };
    m.dispose();
    res.after = window.wi.memoryStats();
    return res;
  }, { url: `${base}/fixtures/dense_wide_uint8/model.json`, x });
  assert.equal(r.backend, 'webgpu');
  assertMatchesRefs('dense_wide_uint8 on webgpu after failed loads', r.outputs, WIDE_REFS);
  assert.equal(r.after.gpuDevices, 0);
  await p.close();
  await env.assertClean();
});

test('debugLoseGpuDevice: false for a model on the CPU or disposed (nothing to lose), an unknown `when` throws; gpuBytes is 0 on the CPU', async () => {
  const r = await page.evaluate(async () => {
    const m = await window.wi.loadLayersModel('/fixtures/dense_sequential/model.json', { backend: 'cpu', cache: false });
    const res = { onCpu: m.debugLoseGpuDevice(), onCpuLater: m.debugLoseGpuDevice('during-next-predict'), gpuBytes: m.gpuBytes };
    try {
      m.debugLoseGpuDevice('later');
      res.bad = 'no error';
    } catch (e) {
      res.bad = e.message;
    }
    m.dispose();
    res.disposed = m.debugLoseGpuDevice();
    return res;
  });
  assert.deepEqual(r, {
    onCpu: false,
    onCpuLater: false,
    gpuBytes: 0,
    bad: 'debugLoseGpuDevice: when must be "now" or "during-next-predict", got "later"',
    disposed: false,
  });
  await env.assertClean();
});
