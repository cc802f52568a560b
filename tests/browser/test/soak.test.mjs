// Soak, in the browser: 1,000 predicts on one model and 50 load / dispose cycles, on 'cpu'
// (the real MobileNetV2, nsfwjs, 224x224x3) and on 'webgpu' (the cnn_rich fixture:
// SwiftShader runs WebGPU on the CPU, so a small model keeps 1,000 predicts short).
// Measured with memoryStats(): the WebAssembly memory (it never shrinks: growth is what
// counts), the Rust heap in use (exact, from a counting allocator), the GPU buffer bytes and
// devices webinfer holds, the live models. Outputs are checked against tfjs's along the way
// (|d| <= 1e-4 + 1e-3 |tfjs|). The figures are printed as `SOAK ...` lines and written to
// out/soak.json.
//
// Bounds (why):
// - predicts, after 10 warm-up predicts (which build the GPU execution plan of the input
//   shape and let the allocator reach its working size): the heap in use may differ by at
//   most HEAP_SLACK = 64 KiB from before (under 66 bytes a predict over 1,000: any
//   per-predict leak of a tensor, a staging buffer record or a closure shows); the wasm
//   memory may not grow by more than WASM_SLACK = 1 MiB (nothing persists between predicts,
//   so the allocator reuses the same blocks; 1 MiB allows for fragmentation, far below one
//   leaked MobileNetV2 activation of 1.5-6 MiB a predict); GPU buffer bytes must be
//   exactly what they were (each predict's readback staging buffer is destroyed).
// - load / dispose cycles: after every dispose, 0 GPU buffer bytes, 0 devices, 0 live
//   models; the heap in use after the last cycle within HEAP_SLACK of after the first (a
//   leak of a model's weights, graph or device bookkeeping shows at once; what it does
//   show, a few KiB over 50 cycles, is the disposed models' JavaScript wrappers, whose URL
//   and input / output descriptions stay readable until the garbage collector frees them:
//   the figure falls back when it runs). The wasm memory after the last cycle within one
//   loaded model of after cycle WASM_SETTLE = 10: at most the heap a loaded model adds
//   (MobileNetV2: ~8-10 MiB; at least 1 MiB). The heap figure is the exact leak check
//   (anything over ~1.3 KiB a cycle fails it); the memory only shows fragmentation: where
//   each load's blocks land varies, so the high-water mark rises by 1-1.75 MiB steps while
//   the allocator reaches its working size and now and then after, and stops (measured
//   with MobileNetV2: in a fresh page +6.4 MiB from cycle 1 to 50; over 400 cycles after
//   50 predicts, steps at cycles 0, 1 and 59, none after; in the suite +1.1 to +3.5 MiB
//   from cycle 10 to 50), while one leaked model would add its ~10 MiB every cycle.
// WEBINFER_SOAK_PREDICTS / WEBINFER_SOAK_CYCLES change the counts (default 1000 / 50).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startEnv, readNpy, assertMatchesRefs, expectedFiles, webgpuWanted, mib, FIXTURES_DIR, REAL_DIR } from '../lib/harness.mjs';
import { BROWSER_DIR } from '../lib/server.mjs';

const PREDICTS = Number(process.env.WEBINFER_SOAK_PREDICTS ?? 1000);
const CYCLES = Number(process.env.WEBINFER_SOAK_CYCLES ?? 50);
const WARMUP = 10;
const HEAP_SLACK = 64 * 1024;
const WASM_SLACK = 2 ** 20;
const WASM_SETTLE = 10;

const MODELS = {
  cpu: {
    name: 'mobilenet_v2 (real, nsfwjs)',
    url: '/real/mobilenet_v2/model.json',
    input: '/real/mobilenet_v2/input_0.npy',
    dir: path.join(REAL_DIR, 'mobilenet_v2'),
  },
  webgpu: {
    name: 'cnn_rich (fixture)',
    url: '/fixtures/cnn_rich/model.json',
    input: '/fixtures/cnn_rich/input_0.npy',
    dir: path.join(FIXTURES_DIR, 'cnn_rich'),
  },
};

const report = {};
let env;
let page;
before(async () => {
  env = await startEnv();
  page = await env.openPage();
});
after(async () => {
  await env?.close();
  fs.mkdirSync(path.join(BROWSER_DIR, 'out'), { recursive: true });
  fs.writeFileSync(path.join(BROWSER_DIR, 'out', 'soak.json'), `${JSON.stringify(report, null, 2)}\n`);
});

function requireModel(m) {
  if (!fs.existsSync(path.join(m.dir, 'model.json'))) {
    assert.fail(`${m.dir}/model.json is missing: run scripts/fetch-models.sh (tests/browser/run.sh does)`);
  }
}

const signed = (bytes) => `${bytes >= 0 ? '+' : '-'}${Math.abs(bytes)} B`;

for (const backend of ['cpu', 'webgpu']) {
  const m = MODELS[backend];

  test(`soak ${backend}: ${PREDICTS} predicts on ${m.name}: no growth of wasm memory, heap or GPU buffers; outputs still match tfjs`, async (t) => {
    if (backend === 'webgpu' && !(await webgpuWanted(t, page))) return;
    requireModel(m);
    const r = await page.evaluate(
      async ({ url, input, backend, n, warmup }) => {
        const flat = (out) => (Array.isArray(out) ? out : [out]).map((o) => ({ name: o.name, shape: o.shape, data: Array.from(o.data) }));
        const model = await window.wi.loadLayersModel(url, { backend, cache: false });
        const x = await window.fetchNpy(input);
        for (let i = 0; i < warmup; i += 1) await model.predict(x.data, x.shape);
        const start = window.wi.memoryStats();
        const gpuBytes = model.gpuBytes;
        const checks = [];
        let peakHeap = start.heapBytes;
        const t0 = performance.now();
        for (let i = 0; i < n; i += 1) {
          const out = await model.predict(x.data, x.shape);
          if (i % 250 === 0 || i === n - 1) checks.push({ i, outputs: flat(out) });
          if (i % 50 === 0) peakHeap = Math.max(peakHeap, window.wi.memoryStats().heapBytes);
        }
        const seconds = (performance.now() - t0) / 1000;
        const end = window.wi.memoryStats();
        const backendUsed = model.backend;
        model.dispose();
        return { start, end, disposed: window.wi.memoryStats(), gpuBytes, checks, seconds, peakHeap, backendUsed };
      },
      { url: m.url, input: m.input, backend, n: PREDICTS, warmup: WARMUP },
    );
    assert.equal(r.backendUsed, backend);
    const expected = expectedFiles(m.dir).map(readNpy);
    for (const c of r.checks) assertMatchesRefs(`${m.name} on ${backend}, predict ${c.i}`, c.outputs, expected);

    const heapGrowth = r.end.heapBytes - r.start.heapBytes;
    const wasmGrowth = r.end.wasmMemoryBytes - r.start.wasmMemoryBytes;
    const line =
      `SOAK ${backend} | ${m.name} | ${PREDICTS} predicts in ${r.seconds.toFixed(1)} s = ${(PREDICTS / r.seconds).toFixed(1)} predicts/s | ` +
      `wasm memory ${mib(r.start.wasmMemoryBytes)} -> ${mib(r.end.wasmMemoryBytes)} (${signed(wasmGrowth)}) | ` +
      `heap in use ${mib(r.start.heapBytes)} -> ${mib(r.end.heapBytes)} (${signed(heapGrowth)}, sampled peak ${mib(r.peakHeap)}, peak since start ${mib(r.end.heapPeakBytes)}) | ` +
      `GPU buffers ${r.start.gpuBufferBytes} B -> ${r.end.gpuBufferBytes} B (model.gpuBytes ${r.gpuBytes} B), devices ${r.start.gpuDevices} -> ${r.end.gpuDevices} | ` +
      `after dispose: GPU ${r.disposed.gpuBufferBytes} B, ${r.disposed.gpuDevices} devices, ${r.disposed.liveModels} live models`;
    t.diagnostic(line);
    report[`${backend}-predicts`] = { model: m.name, predicts: PREDICTS, seconds: r.seconds, predictsPerSecond: PREDICTS / r.seconds, start: r.start, end: r.end, afterDispose: r.disposed, peakHeapBytes: r.peakHeap, modelGpuBytes: r.gpuBytes };

    // The allocator's own peak counts every allocation: it is at least what was sampled, and
    // the WebAssembly memory holds it.
    assert.ok(r.end.heapPeakBytes >= r.peakHeap && r.end.heapPeakBytes >= r.end.heapBytes, `heapPeakBytes ${r.end.heapPeakBytes} below a sampled heap (${r.peakHeap}, ${r.end.heapBytes})`);
    assert.ok(r.end.heapPeakBytes <= r.end.wasmMemoryBytes, `heapPeakBytes ${r.end.heapPeakBytes} above the WebAssembly memory (${r.end.wasmMemoryBytes})`);
    assert.ok(Math.abs(heapGrowth) <= HEAP_SLACK, `heap in use changed by ${heapGrowth} bytes over ${PREDICTS} predicts (bound ${HEAP_SLACK})`);
    assert.ok(wasmGrowth <= WASM_SLACK, `wasm memory grew by ${wasmGrowth} bytes over ${PREDICTS} predicts (bound ${WASM_SLACK})`);
    assert.equal(r.end.gpuBufferBytes, r.start.gpuBufferBytes, 'GPU buffer bytes changed over the predicts');
    assert.equal(r.end.gpuDevices, r.start.gpuDevices);
    if (backend === 'webgpu') {
      assert.ok(r.start.gpuBufferBytes >= r.gpuBytes && r.gpuBytes > 0, `live GPU bytes ${r.start.gpuBufferBytes} vs the model's ${r.gpuBytes}`);
    } else {
      assert.equal(r.start.gpuBufferBytes, 0);
    }
    assert.equal(r.disposed.gpuBufferBytes, 0, 'GPU buffers left after dispose');
    assert.equal(r.disposed.gpuDevices, 0, 'GPU devices left after dispose');
    assert.equal(r.disposed.liveModels, 0, 'models left after dispose');
    await env.assertClean();
  });

  test(`soak ${backend}: ${CYCLES} load / predict / dispose cycles of ${m.name}: everything released every time, no growth; predict after dispose is a clear error`, async (t) => {
    if (backend === 'webgpu' && !(await webgpuWanted(t, page))) return;
    requireModel(m);
    const r = await page.evaluate(
      async ({ url, input, backend, cycles }) => {
        const flat = (out) => (Array.isArray(out) ? out : [out]).map((o) => ({ name: o.name, shape: o.shape, data: Array.from(o.data) }));
        const x = await window.fetchNpy(input);
        const stats = [];
        const times = [];
        const checks = [];
        const loaded = [];
        let afterDispose;
        for (let c = 0; c < cycles; c += 1) {
          const t0 = performance.now();
          const model = await window.wi.loadLayersModel(url, { backend, cache: false });
          loaded.push(window.wi.memoryStats());
          const out = await model.predict(x.data, x.shape);
          if (c === 0 || c === cycles - 1) checks.push({ c, backend: model.backend, outputs: flat(out) });
          model.dispose();
          times.push(performance.now() - t0);
          stats.push(window.wi.memoryStats());
          if (c === cycles - 1) {
            try {
              await model.predict(x.data, x.shape);
              afterDispose = 'resolved';
            } catch (e) {
              afterDispose = e instanceof Error ? e.message : `not an Error: ${e}`;
            }
          }
        }
        return { stats, times, checks, loaded, afterDispose };
      },
      { url: m.url, input: m.input, backend, cycles: CYCLES },
    );
    const expected = expectedFiles(m.dir).map(readNpy);
    for (const c of r.checks) {
      assert.equal(c.backend, backend);
      assertMatchesRefs(`${m.name} on ${backend}, cycle ${c.c}`, c.outputs, expected);
    }
    const first = r.stats[0];
    const settled = r.stats[Math.min(WASM_SETTLE, r.stats.length) - 1];
    const last = r.stats[r.stats.length - 1];
    // The heap one loaded model adds (what stays in use after a dispose is the baseline).
    const cycleWasmSlack = Math.max(r.loaded[0].heapBytes - first.heapBytes, 2 ** 20);
    const maxHeap = Math.max(...r.stats.map((s) => s.heapBytes));
    const sorted = [...r.times].sort((a, b) => a - b);
    const heapGrowth = last.heapBytes - first.heapBytes;
    const wasmGrowth = last.wasmMemoryBytes - settled.wasmMemoryBytes;
    const line =
      `SOAK ${backend} | ${m.name} | ${CYCLES} load/predict/dispose cycles: first ${r.times[0].toFixed(0)} ms, median ${sorted[Math.floor(sorted.length / 2)].toFixed(0)} ms, max ${sorted[sorted.length - 1].toFixed(0)} ms | ` +
      `wasm memory after cycle 1 / ${WASM_SETTLE} / ${CYCLES}: ${mib(first.wasmMemoryBytes)} / ${mib(settled.wasmMemoryBytes)} / ${mib(last.wasmMemoryBytes)} (${signed(wasmGrowth)} since cycle ${WASM_SETTLE}, bound ${mib(cycleWasmSlack)}), ` +
      `heap in use after cycle 1 -> ${CYCLES}: ${mib(first.heapBytes)} -> ${mib(last.heapBytes)} (${signed(heapGrowth)}; max after any cycle ${mib(maxHeap)}) | ` +
      `while loaded: heap ${mib(r.loaded[0].heapBytes)}, GPU buffers ${r.loaded[0].gpuBufferBytes} B on ${r.loaded[0].gpuDevices} device(s) | ` +
      `after every dispose: GPU buffers max ${Math.max(...r.stats.map((s) => s.gpuBufferBytes))} B, devices max ${Math.max(...r.stats.map((s) => s.gpuDevices))}, live models max ${Math.max(...r.stats.map((s) => s.liveModels))}`;
    t.diagnostic(line);
    report[`${backend}-cycles`] = { model: m.name, cycles: CYCLES, cycleMs: r.times, afterFirst: first, afterSettle: settled, afterLast: last, loadedFirst: r.loaded[0], wasmBound: cycleWasmSlack };

    r.stats.forEach((s, c) => {
      assert.equal(s.gpuBufferBytes, 0, `cycle ${c}: GPU buffer bytes after dispose`);
      assert.equal(s.gpuDevices, 0, `cycle ${c}: GPU devices after dispose`);
      assert.equal(s.liveModels, 0, `cycle ${c}: live models after dispose`);
    });
    if (backend === 'webgpu') assert.ok(r.loaded.every((s) => s.gpuDevices === 1 && s.gpuBufferBytes > 0), 'a loaded model held no GPU memory');
    // The allocator's peak never falls and is at least every heap seen (while loaded too).
    const peaks = r.stats.flatMap((s, c) => [r.loaded[c].heapPeakBytes, s.heapPeakBytes]);
    assert.ok(peaks.every((p, i) => i === 0 || p >= peaks[i - 1]), `heapPeakBytes fell: ${peaks}`);
    assert.ok(last.heapPeakBytes >= Math.max(...r.loaded.map((s) => s.heapBytes)), `heapPeakBytes ${last.heapPeakBytes} below a heap seen while loaded`);
    assert.ok(Math.abs(heapGrowth) <= HEAP_SLACK, `heap in use after cycle ${CYCLES} differs from after cycle 1 by ${heapGrowth} bytes (bound ${HEAP_SLACK})`);
    assert.ok(wasmGrowth <= cycleWasmSlack, `wasm memory grew by ${wasmGrowth} bytes from cycle ${WASM_SETTLE} to cycle ${CYCLES} (bound: the heap one loaded model adds, ${cycleWasmSlack})`);
    assert.equal(r.afterDispose, 'predict: this model has been disposed (model.dispose() was called)');
    await env.assertClean();
  });
}
