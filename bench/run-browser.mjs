// The browser half of the benchmark: ONE headless Chromium session (playwright-core), one
// local server, a fresh browser context + page per (engine/backend, model) cell, so each cell
// starts with empty caches and one engine in its heap.
//
//   node bench/run-browser.mjs [--quick] [--out bench/out/browser.json]
//
// Cells: webinfer-webgpu vs tfjs-webgpu; webinfer-cpu (wasm SIMD) vs tfjs-wasm (SIMD) and
// tfjs-cpu. Per cell: the load, the first predict (includes pipeline/shader creation), and N
// warm predicts (N adapted to a time budget per cell, at least MIN_RUNS), each predict timed
// from the call to the output data in JS (tfjs: predict + await data()). Same model files, same
// inputs for every engine. Then loading (cold / warm) of MobileNetV2 and dense_heavy, and memory.
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startServer, BENCH, REPO, CACHE_CONTROL } from './lib/server.mjs';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const outFile = args.includes('--out') ? args[args.indexOf('--out') + 1] : path.join(BENCH, 'out', 'browser.json');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/lib/chromium/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-quic', '--disable-dev-shm-usage',
  '--enable-precise-memory-info', '--js-flags=--expose-gc',
];

export const ENGINES = [
  { id: 'webinfer-webgpu', engine: 'webinfer', backend: 'webgpu' },
  { id: 'tfjs-webgpu', engine: 'tfjs', backend: 'webgpu' },
  { id: 'webinfer-cpu', engine: 'webinfer', backend: 'cpu' },
  { id: 'tfjs-wasm', engine: 'tfjs', backend: 'wasm' },
  { id: 'tfjs-cpu', engine: 'tfjs', backend: 'cpu' },
];

// Models: url of model.json; input: an .npy url or a shape (then a seeded uniform [0,1) input).
const gen = (name) => {
  const info = JSON.parse(fs.readFileSync(path.join(BENCH, 'out', 'models', name, 'bench.json'), 'utf8'));
  return { name, kind: 'generated', url: `/models/${name}/model.json`, shape: info.input };
};
const MODELS = quick
  ? [
      { name: 'cnn_rich', kind: 'fixture', url: '/fixtures/cnn_rich/model.json', npy: '/fixtures/cnn_rich/input_0.npy' },
      { name: 'dense_sequential', kind: 'fixture', url: '/fixtures/dense_sequential/model.json', npy: '/fixtures/dense_sequential/input_0.npy' },
      gen('dense_256'),
      gen('conv_56x56x32'),
    ]
  : [
      { name: 'mobilenet_v2', kind: 'real, nsfwjs uint8', url: '/real/mobilenet_v2/model.json', npy: '/real/mobilenet_v2/input_0.npy' },
      gen('conv_heavy'),
      gen('dense_heavy'),
      { name: 'cnn_rich', kind: 'fixture', url: '/fixtures/cnn_rich/model.json', npy: '/fixtures/cnn_rich/input_0.npy' },
      { name: 'dense_sequential', kind: 'fixture', url: '/fixtures/dense_sequential/model.json', npy: '/fixtures/dense_sequential/input_0.npy' },
      gen('dense_256'), gen('dense_1024'), gen('dense_2048'),
      gen('conv_56x56x32'), gen('conv_28x28x128'), gen('conv_14x14x256'),
    ];
const LOAD_MODELS = quick ? ['dense_256'] : ['mobilenet_v2', 'dense_heavy'];

// Warm-predict budget per cell: stop after MAX_RUNS or once BUDGET_MS has passed (with at
// least MIN_RUNS). SwiftShader WebGPU and tfjs-cpu get a small budget (~0.3-2 s per predict).
const POLICY = quick
  ? { MIN_RUNS: 2, MAX_RUNS: 3, BUDGET_MS: 500 }
  : { MIN_RUNS: 3, MAX_RUNS: 20, BUDGET_MS: 6000 };
// Loads per model and engine, cold and warm: 21, after the page's first cold load (which
// also compiles the engine's code on first call, and is reported apart); the next few are
// still slower while the browser optimises the code they run, so the median needs many.
const LOAD_RUNS = quick ? 2 : 21;

let tagN = 0;
const freshTag = (s) => `/t/${s}-${process.pid}-${(tagN += 1)}`;

// ---- in-page code (serialised by playwright) ----

async function setupEngine({ engine, backend }) {
  const memNow = () => (performance.memory ? performance.memory.usedJSHeapSize : null);
  if (engine === 'webinfer') {
    const wi = await import('/pkg/webinfer.js');
    // The CPU cells load what a page that runs layers-models on the CPU needs: the CPU-only
    // module without graph-models (the smallest download; the same kernels as the full one).
    const exports = await wi.default(backend === 'cpu' ? { backend: 'cpu', graphModels: false } : undefined);
    window.E = {
      wi,
      wasmBytes: () => exports.memory.buffer.byteLength,
      async load(url) { return wi.loadLayersModel(url, { backend, onWarning: () => {} }); },
      async loadUncached(url) { return wi.loadLayersModel(url, { backend, cache: false, onWarning: () => {} }); },
      async predict(m, x, shape) {
        const y = await m.predict(x, shape);
        return Array.isArray(y) ? y : [y];
      },
      dispose: (m) => m.dispose(),
      info: (m) => ({ backend: m.backend, backendReason: m.backendReason, module: `${wi.moduleKind()} ${wi.moduleVariant()}` }),
      engineMemory: () => { const st = wi.memoryStats(); return { wasmBytes: exports.memory.buffer.byteLength, gpuBytes: st.gpuBufferBytes, heapPeakBytes: st.heapPeakBytes }; },
      async clear(url) { await wi.deleteCachedModel(new URL(url, location.href).href); },
      // loadLayersModel resolves once the model can predict; the Cache API may still be
      // committing its files (a second visit finds them long done).
      async settle() { await wi.whenCached(); },
    };
  } else {
    const add = (src) => new Promise((res, rej) => {
      const s = document.createElement('script');
      s.src = src; s.onload = res; s.onerror = () => rej(new Error(`script ${src}`));
      document.head.appendChild(s);
    });
    await add('/tfjs/tfjs/dist/tf.min.js');
    if (backend === 'wasm') {
      await add('/tfjs/tfjs-backend-wasm/dist/tf-backend-wasm.min.js');
      tf.wasm.setWasmPaths(`${location.origin}/tfjs/tfjs-backend-wasm/dist/`);
    }
    if (backend === 'webgpu') await add('/tfjs/tfjs-backend-webgpu/dist/tf-backend-webgpu.min.js');
    const ok = await tf.setBackend(backend);
    if (!ok || tf.getBackend() !== backend) throw new Error(`tf.setBackend('${backend}') failed (got ${tf.getBackend()})`);
    await tf.ready();
    const wasmBytes = () => (backend === 'wasm' ? tf.backend().wasm.HEAPU8.buffer.byteLength : null);
    window.E = {
      wasmBytes,
      async settle() {},
      async load(url) { return tf.loadLayersModel(url); },
      async predict(m, x, shape) {
        const t = tf.tensor(x, shape);
        const y = m.predict(t);
        const ys = Array.isArray(y) ? y : [y];
        const out = [];
        for (const o of ys) out.push({ shape: o.shape, data: await o.data() });
        t.dispose(); for (const o of ys) o.dispose();
        return out;
      },
      dispose: (m) => m.dispose(),
      info: () => ({
        backend: tf.getBackend(),
        flags: backend === 'wasm'
          ? { simd: tf.env().get('WASM_HAS_SIMD_SUPPORT'), threads: tf.env().get('WASM_HAS_MULTITHREAD_SUPPORT'), crossOriginIsolated: self.crossOriginIsolated }
          : undefined,
      }),
      engineMemory: () => ({ wasmBytes: wasmBytes(), tf: tf.memory() }),
      async clear() {},
    };
  }
  window.memNow = memNow;
  window.prng = (seed) => {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  };
  return true;
}

async function runCell({ model, url, policy }) {
  const E = window.E;
  const now = () => performance.now();
  const heap = [];
  const wasm = [];
  const mark = (label) => {
    heap.push([label, window.memNow()]);
    wasm.push([label, E.wasmBytes()]);
  };
  if (window.gc) window.gc();
  mark('start');
  let x;
  let shape;
  if (model.npy) {
    const r = await fetch(model.npy);
    const a = window.parseNpy(await r.arrayBuffer());
    x = a.data; shape = a.shape;
  } else {
    shape = model.shape;
    const n = shape.reduce((p, q) => p * q, 1);
    const rand = window.prng(12345);
    x = new Float32Array(n);
    for (let i = 0; i < n; i += 1) x[i] = rand();
  }
  let t0 = now();
  const m = await E.load(url);
  const loadMs = now() - t0;
  mark('loaded');
  const mem = { afterLoad: E.engineMemory() };
  t0 = now();
  const y = await E.predict(m, x, shape);
  const firstMs = now() - t0;
  mark('first predict');
  const runs = [];
  const start = now();
  while (runs.length < policy.MAX_RUNS && (runs.length < policy.MIN_RUNS || now() - start < policy.BUDGET_MS)) {
    t0 = now();
    await E.predict(m, x, shape);
    runs.push(now() - t0);
  }
  // Below the page timer's 0.1 ms resolution a median says little: time a batch of predicts
  // together and keep the mean as well.
  const sorted = [...runs].sort((a, b) => a - b);
  let batch = null;
  if (sorted[Math.floor(sorted.length / 2)] < 2) {
    const k = 100;
    t0 = now();
    for (let i = 0; i < k; i += 1) await E.predict(m, x, shape);
    batch = { n: k, meanMs: (now() - t0) / k };
  }
  mark('warm predicts');
  mem.afterPredict = E.engineMemory();
  const info = E.info(m);
  // A strided sample of output 0, for the cross-check against tfjs-cpu (node side).
  const d = y[0].data;
  const stride = Math.max(1, Math.floor(d.length / 2048));
  const sample = [];
  for (let i = 0; i < d.length; i += stride) sample.push(d[i]);
  E.dispose(m);
  return { loadMs, firstMs, runs, batch, heap, wasm, mem, info, outShape: y[0].shape, outLen: d.length, stride, sample };
}

/** The same bytes with plain fetch(): model.json, then every shard at once, read to the end. */
async function rawFetch(u) {
  const json = await (await fetch(u)).json();
  const dir = u.slice(0, u.lastIndexOf('/') + 1);
  const paths = json.weightsManifest.flatMap((g) => g.paths);
  await Promise.all(paths.map(async (p) => (await fetch(dir + p)).arrayBuffer()));
}

async function runLoads({ url, warmUrl, n, raw }) {
  const E = window.E;
  const now = () => performance.now();
  const cold = [];
  const rawMs = [];
  const uncached = [];
  // Iteration -1 is the page's first cold load (and raw fetch), reported apart: it also
  // compiles the engine's code and opens the connection.
  let first = null;
  let rawFirst = null;
  for (let i = -1; i < n; i += 1) {
    const u = url.replace('/TAG/', `/t/cold${i}-${Math.random().toString(36).slice(2)}/`);
    await E.clear(u);
    await E.settle();
    const t0 = now();
    const m = await E.load(u);
    if (i < 0) first = now() - t0; else cold.push(now() - t0);
    E.dispose(m);
    await E.settle();
    if (raw) {
      const r = url.replace('/TAG/', `/t/raw${i}-${Math.random().toString(36).slice(2)}/`);
      const t1 = now();
      await rawFetch(r);
      if (i < 0) rawFirst = now() - t1; else rawMs.push(now() - t1);
      // The same load without the Cache API (what writing every file into it costs).
      const c = url.replace('/TAG/', `/t/nc${i}-${Math.random().toString(36).slice(2)}/`);
      const t2 = now();
      const m2 = await E.loadUncached(c);
      if (i >= 0) uncached.push(now() - t2);
      E.dispose(m2);
    }
  }
  // Prime: one load that fills the Cache API (webinfer) / the HTTP cache (tfjs).
  let m = await E.load(warmUrl);
  E.dispose(m);
  await E.settle();
  window.primed = true;
  return { cold, raw: rawMs, uncached, first, rawFirst };
}

async function runWarm({ warmUrl, n }) {
  const E = window.E;
  const warm = [];
  for (let i = 0; i < n; i += 1) {
    const t0 = performance.now();
    const m = await E.load(warmUrl);
    warm.push(performance.now() - t0);
    E.dispose(m);
  }
  return warm;
}

// ---- node side ----

const median = (v) => { const s = [...v].sort((a, b) => a - b); const k = Math.floor(s.length / 2); return s.length ? (s.length % 2 ? s[k] : (s[k - 1] + s[k]) / 2) : null; };
const quantile = (v, q) => { const s = [...v].sort((a, b) => a - b); const p = (s.length - 1) * q; const lo = Math.floor(p); return s[lo] + (s[Math.ceil(p)] - s[lo]) * (p - lo); };
const stats = (v) => (v.length ? { median: median(v), min: Math.min(...v), max: Math.max(...v), q1: quantile(v, 0.25), q3: quantile(v, 0.75), n: v.length, runs: v } : null);

function modelBytes(url) {
  const mount = url.startsWith('/real/') ? path.join(REPO, 'tests', 'real', 'models') : url.startsWith('/fixtures/') ? path.join(REPO, 'tests', 'fixtures') : path.join(BENCH, 'out', 'models');
  const file = path.join(mount, url.replace(/^\/(real|fixtures|models)\//, ''));
  const dir = path.dirname(file);
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  let total = fs.statSync(file).size;
  for (const g of json.weightsManifest) for (const p of g.paths) total += fs.statSync(path.join(dir, p)).size;
  return total;
}

async function main() {
  const t0 = Date.now();
  const server = await startServer();
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  const result = {
    date: new Date().toISOString(), quick, browser: `Chromium ${browser.version()}`, chromiumArgs: CHROMIUM_ARGS,
    server: { cacheControl: CACHE_CONTROL, validators: 'Last-Modified + ETag (304 on If-None-Match)', compression: 'none' },
    policy: POLICY, cells: [], loads: [], errors: [],
  };

  async function openPage(eng) {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(300000);
    page.consoleLines = [];
    page.on('console', (m) => { if (m.type() === 'error') page.consoleLines.push(m.text()); });
    page.on('pageerror', (e) => page.consoleLines.push(String(e)));
    await page.goto(`${server.url}/page/index.html`);
    await page.waitForFunction(() => window.ready === true);
    await page.evaluate(setupEngine, eng);
    await page.evaluate(`window.runCell = ${runCell.toString()}; window.runLoads = ${runLoads.toString()}; window.runWarm = ${runWarm.toString()}; window.rawFetch = ${rawFetch.toString()};`);
    return { page, context };
  }

  // The adapter, once.
  {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/page/index.html`);
    result.webgpu = await page.evaluate(async () => {
      if (!navigator.gpu) return { available: false };
      const a = await navigator.gpu.requestAdapter();
      if (!a) return { available: false, reason: 'requestAdapter() returned null' };
      const i = a.info ?? {};
      return { available: true, vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description, isFallbackAdapter: i.isFallbackAdapter ?? a.isFallbackAdapter };
    });
    result.userAgent = await page.evaluate(() => navigator.userAgent);
    await context.close();
  }

  for (const model of MODELS) {
    const bytes = modelBytes(model.url);
    for (const eng of ENGINES) {
      const label = `${model.name} / ${eng.id}`;
      const c0 = Date.now();
      let cell = { model: model.name, kind: model.kind, modelBytes: bytes, engine: eng.engine, backend: eng.backend, id: eng.id };
      let ctx;
      try {
        ctx = await openPage(eng);
        const r = await ctx.page.evaluate((a) => window.runCell(a), { model, url: `${freshTag('c')}${model.url}`, policy: POLICY });
        cell = { ...cell, ...r, warm: stats(r.runs) };
        delete cell.runs;
        if (ctx.page.consoleLines.length) cell.consoleErrors = ctx.page.consoleLines.slice(0, 5);
      } catch (e) {
        cell.error = String(e?.message ?? e).split('\n')[0];
        result.errors.push(`${label}: ${cell.error}`);
      }
      await ctx?.context.close().catch(() => {});
      cell.cellSeconds = (Date.now() - c0) / 1000;
      result.cells.push(cell);
      console.log(`${label.padEnd(40)} ${cell.error ? `ERROR ${cell.error}` : `load ${cell.loadMs.toFixed(0)} ms, first ${cell.firstMs.toFixed(1)} ms, warm median ${cell.warm.median.toFixed(2)} ms (n=${cell.warm.n})`}  [${cell.cellSeconds.toFixed(1)} s]`);
    }
  }

  // Cross-check: every engine's output sample against tfjs-cpu's.
  for (const c of result.cells) {
    const ref = result.cells.find((r) => r.model === c.model && r.id === 'tfjs-cpu' && r.sample);
    if (!ref || !c.sample) continue;
    let maxAbs = 0;
    let maxRef = 0;
    for (let i = 0; i < Math.min(ref.sample.length, c.sample.length); i += 1) {
      maxAbs = Math.max(maxAbs, Math.abs(ref.sample[i] - c.sample[i]));
      maxRef = Math.max(maxRef, Math.abs(ref.sample[i]));
    }
    c.vsTfjsCpu = { maxAbsDiff: maxAbs, maxAbsRef: maxRef, sampled: c.sample.length, sameLength: ref.outLen === c.outLen };
  }
  for (const c of result.cells) delete c.sample;

  // Loading: cold (fresh URL: empty HTTP cache and, for webinfer, an emptied Cache API entry)
  // and warm (the same URL again: webinfer's Cache API, tfjs's HTTP cache), on the CPU paths.
  for (const name of LOAD_MODELS) {
    const model = MODELS.find((m) => m.name === name) ?? gen(name);
    const bytes = modelBytes(model.url);
    for (const eng of ENGINES.filter((e) => e.id === 'webinfer-cpu' || e.id === 'tfjs-wasm')) {
      const entry = { model: name, modelBytes: bytes, id: eng.id, engine: eng.engine, backend: eng.backend };
      let ctx;
      try {
        ctx = await openPage(eng);
        const warmTag = freshTag('w');
        const warmUrl = `${warmTag}${model.url}`;
        const loads = await ctx.page.evaluate((a) => window.runLoads(a), { url: `/TAG${model.url}`, warmUrl, n: LOAD_RUNS, raw: eng.engine === 'webinfer' });
        const cold = loads.cold;
        if (loads.raw.length) entry.raw = stats(loads.raw);
        if (loads.uncached.length) entry.uncached = stats(loads.uncached);
        const before = server.counts(warmTag);
        const warm = await ctx.page.evaluate((a) => window.runWarm(a), { warmUrl, n: LOAD_RUNS });
        const requests = server.counts(warmTag) - before;
        entry.cold = stats(cold);
        entry.firstLoad = loads.first;
        entry.rawFirst = loads.rawFirst;
        entry.warm = stats(warm);
        entry.warmRequestsToServer = requests;
        entry.coldMBps = bytes / 1e6 / (entry.cold.median / 1000);
        entry.warmMBps = bytes / 1e6 / (entry.warm.median / 1000);
      } catch (e) {
        entry.error = String(e?.message ?? e).split('\n')[0];
        result.errors.push(`load ${name} / ${eng.id}: ${entry.error}`);
      }
      await ctx?.context.close().catch(() => {});
      result.loads.push(entry);
      console.log(`load ${name} / ${eng.id}: ${entry.error ?? `cold ${entry.cold.median.toFixed(1)} ms, warm ${entry.warm.median.toFixed(1)} ms (${entry.warmRequestsToServer} requests reached the server during ${LOAD_RUNS} warm loads)`}`);
    }
  }

  await browser.close();
  await server.close();
  result.seconds = (Date.now() - t0) / 1000;
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, `${JSON.stringify(result, null, 1)}\n`);
  console.log(`browser benchmark: ${result.seconds.toFixed(0)} s, ${result.errors.length} errors -> ${outFile}`);
}

await main();
