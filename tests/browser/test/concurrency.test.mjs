// Overlapping predicts on one model, on 'cpu' and 'webgpu': eight calls issued without
// awaiting, each with a different input (tfjs's two cnn_rich examples stacked in a different
// order and count), each resolving to the results of its own input (tfjs's rows in that
// order), so a result handed to the wrong call, or two runs sharing buffers, fails. Then
// predicts overlapping a dispose(): those issued before it finish correctly, later ones
// reject with a clear error, nothing panics, and the model's memory is released once the
// last one finishes. Tolerance: |d| <= 1e-4 + 1e-3 |tfjs| (lib/harness.mjs).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startEnv, readNpy, stackRows, assertMatchesRefs, webgpuWanted, memoryStats, FIXTURES_DIR } from '../lib/harness.mjs';

const CNN = path.join(FIXTURES_DIR, 'cnn_rich');
const X = readNpy(path.join(CNN, 'input_0.npy'));
const EXPECTED = [0, 1].map((i) => readNpy(path.join(CNN, `expected_${i}.npy`)));
const refs = (rows) => EXPECTED.map((e) => stackRows(e, rows));
const inputFor = (rows) => {
  const s = stackRows(X, rows);
  return { shape: s.shape, data: Array.from(s.data) };
};

/** Every call's input differs; the batch sizes (1 to 4) give the GPU four execution plans. */
const CALLS = [[0], [1], [0, 1], [1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 1, 0], [0, 1, 1, 1]];

let env;
let page;
before(async () => {
  env = await startEnv();
  page = await env.openPage();
});
after(async () => {
  await env?.close();
});

for (const backend of ['cpu', 'webgpu']) {
  test(`${backend}: 8 overlapping predicts on one model, each with its own input, each get their own results (tfjs's)`, async (t) => {
    if (backend === 'webgpu' && !(await webgpuWanted(t, page))) return;
    const r = await page.evaluate(
      async ({ backend, inputs }) => {
        const m = await window.wi.loadLayersModel('/fixtures/cnn_rich/model.json', { backend, cache: false });
        const flat = (out) => out.map((o) => ({ name: o.name, shape: o.shape, data: Array.from(o.data) }));
        const rounds = [];
        // Twice: the first round also builds the GPU execution plans while others wait.
        for (let round = 0; round < 2; round += 1) {
          const pending = inputs.map((x) => m.predict(new Float32Array(x.data), x.shape));
          rounds.push((await Promise.all(pending)).map(flat));
        }
        // And interleaved with awaited ones: a fresh call while eight are queued.
        const queued = inputs.map((x) => m.predict(new Float32Array(x.data), x.shape));
        const single = flat(await m.predict(new Float32Array(inputs[3].data), inputs[3].shape));
        rounds.push((await Promise.all(queued)).map(flat));
        const res = { backend: m.backend, rounds, single };
        m.dispose();
        return res;
      },
      { backend, inputs: CALLS.map(inputFor) },
    );
    assert.equal(r.backend, backend);
    r.rounds.forEach((round, k) => {
      round.forEach((outputs, i) => assertMatchesRefs(`${backend}, round ${k}, call ${i} (tfjs examples ${JSON.stringify(CALLS[i])})`, outputs, refs(CALLS[i])));
    });
    assertMatchesRefs(`${backend}, the call awaited while 8 were queued`, r.single, refs(CALLS[3]));
    await env.assertClean();
  });

  test(`${backend}: predicts overlapping dispose(): earlier calls finish correctly, later ones reject clearly, memory is released after the last`, async (t) => {
    if (backend === 'webgpu' && !(await webgpuWanted(t, page))) return;
    const before = await memoryStats(page);
    const r = await page.evaluate(
      async ({ backend, inputs }) => {
        const m = await window.wi.loadLayersModel('/fixtures/cnn_rich/model.json', { backend, cache: false });
        const loaded = window.wi.memoryStats();
        const flat = (out) => out.map((o) => ({ name: o.name, shape: o.shape, data: Array.from(o.data) }));
        const early = inputs.map((x) => m.predict(new Float32Array(x.data), x.shape));
        m.dispose();
        const disposedFlag = m.disposed;
        const whileRunning = window.wi.memoryStats();
        const late = m.predict(new Float32Array(inputs[0].data), inputs[0].shape);
        const lateIsPromise = late instanceof Promise;
        const lateSettled = Promise.allSettled([late]); // handled at once
        const settledEarly = await Promise.allSettled(early);
        const settledLate = await lateSettled;
        m.dispose(); // again: nothing happens
        return {
          loaded,
          whileRunning,
          disposedFlag,
          lateIsPromise,
          early: settledEarly.map((s) => (s.status === 'fulfilled' ? { ok: true, outputs: flat(s.value) } : { ok: false, message: String(s.reason?.message ?? s.reason) })),
          late: settledLate.map((s) => (s.status === 'fulfilled' ? { ok: true } : { ok: false, isError: s.reason instanceof Error, message: String(s.reason?.message ?? s.reason) }))[0],
          afterAll: window.wi.memoryStats(),
        };
      },
      { backend, inputs: CALLS.slice(0, 4).map(inputFor) },
    );
    t.diagnostic(`memoryStats: before ${JSON.stringify(before)}; loaded ${JSON.stringify(r.loaded)}; after dispose with 4 predicts running ${JSON.stringify(r.whileRunning)}; after they finished ${JSON.stringify(r.afterAll)}`);
    r.early.forEach((s, i) => {
      assert.ok(s.ok, `${backend}: predict ${i}, issued before dispose(), rejected: ${s.message}`);
      assertMatchesRefs(`${backend}: predict ${i} issued before dispose()`, s.outputs, refs(CALLS[i]));
    });
    assert.equal(r.disposedFlag, true);
    assert.equal(r.lateIsPromise, true, 'predict after dispose must return a promise, not throw');
    assert.equal(r.late.ok, false, 'predict after dispose resolved');
    assert.equal(r.late.isError, true);
    assert.match(r.late.message, /^predict: this model has been disposed \(model\.dispose\(\) was called\)$/);
    // The model stays alive while its predicts run (they hold it), and is released after.
    assert.equal(r.loaded.liveModels, before.liveModels + 1);
    assert.equal(r.whileRunning.liveModels, before.liveModels + 1, 'released while predicts were still running');
    assert.equal(r.afterAll.liveModels, before.liveModels, 'not released after its last predict');
    assert.equal(r.afterAll.gpuBufferBytes, before.gpuBufferBytes, 'GPU buffers left');
    assert.equal(r.afterAll.gpuDevices, before.gpuDevices, 'GPU devices left');
    if (backend === 'webgpu') assert.ok(r.loaded.gpuBufferBytes > before.gpuBufferBytes && r.loaded.gpuDevices === before.gpuDevices + 1, JSON.stringify(r.loaded));
    await env.assertClean();
  });
}
