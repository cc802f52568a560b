// predict in Chromium against TensorFlow.js's outputs: every conformance fixture and the real
// MobileNetV2, on backend 'cpu', 'auto' and 'webgpu'. Tolerance |d| <= 1e-4 + 1e-3 * |ref|.
//
// WebGPU. This machine's only WebGPU adapter is SwiftShader (a software fallback), so
// 'auto' must choose the CPU, while 'webgpu' (which accepts software adapters) runs there.
// What 'webgpu' must do is set by WEBINFER_EXPECT_WEBGPU:
//   1 (default)  run on WebGPU and match tfjs. A missing adapter fails the suite: a broken
//                WebGPU setup must not pass as green;
//   0            reject with the clear "backend \"webgpu\" is not available" error (for a
//                build or browser without WebGPU);
//   any          either, but whatever happens is checked.
// A browser without WebGPU is also simulated below (navigator.gpu hidden): 'webgpu' must
// then reject clearly and 'auto' must run on the CPU.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startEnv, fixtureNames, fixtureInfo, assertMatchesTfjs, expectedFiles, rejection, FIXTURES_DIR, REAL_DIR } from '../lib/harness.mjs';

const EXPECT_WEBGPU = process.env.WEBINFER_EXPECT_WEBGPU ?? '1'; // '1' | '0' | 'any'
if (!['1', '0', 'any'].includes(EXPECT_WEBGPU)) throw new Error(`WEBINFER_EXPECT_WEBGPU must be 1, 0 or any, not ${EXPECT_WEBGPU}`);

let env;
let page;
before(async () => {
  env = await startEnv();
  page = await env.openPage();
});
after(async () => {
  await env?.close();
});

const models = [
  ...fixtureNames().map((name) => ({
    name,
    url: `/fixtures/${name}/model.json`,
    inputs: fixtureInfo(name).inputs.map((_, i) => `/fixtures/${name}/input_${i}.npy`),
    expected: expectedFiles(path.join(FIXTURES_DIR, name)),
  })),
  {
    name: 'mobilenet_v2 (real, nsfwjs)',
    url: '/real/mobilenet_v2/model.json',
    inputs: ['/real/mobilenet_v2/input_0.npy'],
    expected: expectedFiles(path.join(REAL_DIR, 'mobilenet_v2')),
    real: path.join(REAL_DIR, 'mobilenet_v2', 'model.json'),
  },
  // graph-models, through loadGraphModel with inputs passed by name.
  // facemesh-detection-short_b2: Shape/StridedSlice/Pack reshapes at batch 2; age_b3: StridedSlice
  // of tensors at batch 3; blazeface: 4 outputs in signature order; handskeleton: fused Prelu.
  ...['mobilenet_v2_mid', 'human_emotion', 'human_liveness', 'human_antispoof',
    'human_facemesh-detection-short_b2', 'human_age_b3', 'human_blazeface', 'human_handskeleton'].map((name) => ({
    name: `${name} (real graph-model)`,
    url: `/real/${name}/model.json`,
    inputs: [`/real/${name}/input_0.npy`],
    expected: expectedFiles(path.join(REAL_DIR, name)),
    real: path.join(REAL_DIR, name, 'model.json'),
    graph: true,
  })),
];

/** Runs a model in the page; `{ok: false, message}` when the load or predict rejects. */
function run(m, backend) {
  return page.evaluate(
    async ({ url, inputs, backend, graph }) => {
      try {
        return { ok: true, ...(await window.runModel(url, inputs, { backend, cache: false }, graph)) };
      } catch (e) {
        return { ok: false, isError: e instanceof Error, message: String(e?.message ?? e) };
      }
    },
    { url: m.url, inputs: m.inputs, backend, graph: !!m.graph },
  );
}

function requireRealModel(m) {
  if (m.real && !fs.existsSync(m.real)) {
    assert.fail(`${m.real} is missing: run scripts/fetch-models.sh (tests/browser/run.sh does)`);
  }
}

for (const m of models) {
  test(`cpu: ${m.name} matches tfjs`, async (t) => {
    requireRealModel(m);
    const r = await run(m, 'cpu');
    assert.ok(r.ok, `${m.name}: ${r.message}`);
    assert.equal(r.backend, 'cpu');
    assert.ok(r.outputs.every((o) => o.isF32), 'outputs are not Float32Arrays');
    const maxAbs = assertMatchesTfjs(`${m.name} [cpu]`, r.outputs, m.expected);
    t.diagnostic(`max |d| = ${maxAbs.toExponential(2)}`);
  });
}

test('the two WebAssembly modules: Chromium loads the relaxed-SIMD one; the plain-SIMD one (other browsers) matches tfjs on every model too', async (t) => {
  assert.equal(await page.evaluate(() => window.wi.moduleVariant()), 'relaxed-simd', 'this Chromium validates relaxed-SIMD');
  assert.equal(await page.evaluate(() => window.moduleFile), 'webinfer_web_bg.relaxed.wasm');
  const plain = await env.openPage(undefined, '?module=simd');
  assert.equal(await plain.evaluate(() => window.moduleFile), 'webinfer_web_bg.wasm');
  let worst = 0;
  for (const m of models) {
    requireRealModel(m);
    const r = await plain.evaluate(
      async ({ url, inputs, graph }) => {
        try {
          return { ok: true, ...(await window.runModel(url, inputs, { backend: 'cpu', cache: false }, graph)) };
        } catch (e) {
          return { ok: false, message: String(e?.message ?? e) };
        }
      },
      { url: m.url, inputs: m.inputs, graph: !!m.graph },
    );
    assert.ok(r.ok, `${m.name} (plain SIMD): ${r.message}`);
    worst = Math.max(worst, assertMatchesTfjs(`${m.name} [cpu, plain-SIMD module]`, r.outputs, m.expected));
  }
  t.diagnostic(`plain-SIMD module: ${models.length} models, max |d| = ${worst.toExponential(2)}`);
});

test("auto: on a machine whose only WebGPU adapter is software (SwiftShader), model.backend is 'cpu'", async (t) => {
  const adapter = await page.evaluate(async () => {
    if (!navigator.gpu) return null;
    const a = await navigator.gpu.requestAdapter();
    if (!a) return null;
    const info = a.info ?? {};
    return { vendor: info.vendor, architecture: info.architecture, description: info.description, isFallbackAdapter: info.isFallbackAdapter ?? a.isFallbackAdapter };
  });
  t.diagnostic(`WebGPU adapter: ${JSON.stringify(adapter)}`);
  const software = !adapter || adapter.isFallbackAdapter === true || /swiftshader/i.test(`${adapter.architecture} ${adapter.description}`);
  for (const m of [models.find((x) => x.name === 'cnn_rich'), models.at(-1)]) {
    requireRealModel(m);
    const r = await run(m, 'auto');
    assert.ok(r.ok, `${m.name}: ${r.message}`);
    assert.equal(r.backend, software ? 'cpu' : 'webgpu', `${m.name}: backend ${r.backend} (${r.backendReason})`);
    t.diagnostic(`${m.name}: ${r.backendReason}`);
    assertMatchesTfjs(`${m.name} [auto]`, r.outputs, m.expected);
  }
});

for (const m of models) {
  test(`webgpu: ${m.name} ${EXPECT_WEBGPU === '0' ? 'rejects clearly' : 'matches tfjs'}`, async (t) => {
    requireRealModel(m);
    const r = await run(m, 'webgpu');
    if (!r.ok) {
      assert.notEqual(EXPECT_WEBGPU, '1', `webgpu is required (WEBINFER_EXPECT_WEBGPU=1, the default) but the load failed: ${r.message}`);
      assert.equal(r.isError, true);
      assert.match(r.message, /backend "webgpu" is not available/, r.message);
      assert.ok(r.message.includes(m.url), `the error does not name the model: ${r.message}`);
      t.diagnostic(`rejected as expected: ${r.message}`);
      return;
    }
    assert.notEqual(EXPECT_WEBGPU, '0', 'WEBINFER_EXPECT_WEBGPU=0 but the model loaded on webgpu');
    assert.equal(r.backend, 'webgpu', `asked for webgpu, runs on ${r.backend} (${r.backendReason})`);
    const maxAbs = assertMatchesTfjs(`${m.name} [webgpu]`, r.outputs, m.expected);
    t.diagnostic(`max |d| = ${maxAbs.toExponential(2)} (${r.backendReason})`);
  });
}

test("a browser without WebGPU: 'webgpu' rejects with a clear error, 'auto' runs on the cpu", async (t) => {
  const context = await env.browser.newContext();
  // Before any script of the page runs: no navigator.gpu, as in a browser without WebGPU.
  await context.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true });
    if (self.WorkerNavigator) Object.defineProperty(WorkerNavigator.prototype, 'gpu', { get: () => undefined, configurable: true });
  });
  const noGpu = await env.openPage(context);
  const r = await noGpu.evaluate(async () => {
    const out = { hasGpu: navigator.gpu !== undefined, kind: window.wi.moduleKind(), file: window.moduleFile };
    try {
      await window.wi.loadLayersModel('/fixtures/dense_sequential/model.json', { backend: 'webgpu', cache: false });
      out.webgpu = 'resolved';
    } catch (e) {
      out.webgpu = e instanceof Error ? e.message : `not an Error: ${e}`;
    }
    out.auto = await window.runModel('/fixtures/dense_sequential/model.json', ['/fixtures/dense_sequential/input_0.npy'], { backend: 'auto', cache: false });
    return out;
  });
  assert.equal(r.hasGpu, false);
  // init() loaded the CPU-only module: the page cannot use WebGPU anyway.
  assert.deepEqual([r.kind, r.file], ['cpu', 'webinfer_cpu_bg.relaxed.wasm']);
  t.diagnostic(`webgpu: ${r.webgpu}`);
  t.diagnostic(`auto: ${r.auto.backendReason}`);
  assert.match(r.webgpu, /\/fixtures\/dense_sequential\/model\.json: backend "webgpu" is not available: /);
  assert.equal(r.auto.backend, 'cpu');
  assertMatchesTfjs('dense_sequential [auto, no WebGPU]', r.auto.outputs, expectedFiles(path.join(FIXTURES_DIR, 'dense_sequential')));
});

test("the CPU-only module (init({backend: 'cpu'})): every model matches tfjs on 'cpu' and 'auto'; 'webgpu' rejects naming the module", async (t) => {
  const cpuOnly = await env.openPage(undefined, '?module=cpu');
  assert.deepEqual(
    await cpuOnly.evaluate(() => [window.wi.moduleKind(), window.moduleFile]),
    ['cpu', 'webinfer_cpu_bg.relaxed.wasm'],
  );
  let worst = 0;
  for (const m of models) {
    requireRealModel(m);
    for (const backend of ['cpu', 'auto']) {
      const r = await cpuOnly.evaluate(
        async ({ url, inputs, graph, backend }) => {
          try {
            return { ok: true, ...(await window.runModel(url, inputs, { backend, cache: false }, graph)) };
          } catch (e) {
            return { ok: false, message: String(e?.message ?? e) };
          }
        },
        { url: m.url, inputs: m.inputs, graph: !!m.graph, backend },
      );
      assert.ok(r.ok, `${m.name} [${backend}, CPU-only module]: ${r.message}`);
      assert.equal(r.backend, 'cpu', `${m.name} [${backend}, CPU-only module]`);
      worst = Math.max(worst, assertMatchesTfjs(`${m.name} [${backend}, CPU-only module]`, r.outputs, m.expected));
    }
  }
  t.diagnostic(`${models.length} models, max |d| = ${worst.toExponential(2)}`);
  const e = await rejection(cpuOnly, (wi) => wi.loadLayersModel('/fixtures/dense_sequential/model.json', { backend: 'webgpu', cache: false }));
  t.diagnostic(`webgpu: ${e.message}`);
  assert.match(e.message, /backend "webgpu" is not available: .*CPU-only module/);
  // What a page without WebGPU code holds: no GPU buffers, no devices.
  const st = await cpuOnly.evaluate(() => window.wi.memoryStats());
  assert.deepEqual([st.gpuBufferBytes, st.gpuDevices], [0, 0]);
});

test("the layers-only CPU module (init({backend: 'cpu', graphModels: false})): every layers-model matches tfjs; a graph-model rejects naming the option", async (t) => {
  const page = await env.openPage(undefined, '?module=cpu-layers');
  assert.deepEqual(
    await page.evaluate(() => [window.wi.moduleKind(), window.moduleFile]),
    ['cpu-layers', 'webinfer_cpu_layers_bg.relaxed.wasm'],
  );
  const layers = models.filter((m) => !m.graph);
  const graphs = models.filter((m) => m.graph);
  assert.ok(layers.length > 0 && graphs.length > 0, `${layers.length} layers-models, ${graphs.length} graph-models`);
  let worst = 0;
  for (const m of layers) {
    requireRealModel(m);
    const r = await page.evaluate(
      async ({ url, inputs }) => {
        try {
          return { ok: true, ...(await window.runModel(url, inputs, { backend: 'cpu', cache: false })) };
        } catch (e) {
          return { ok: false, message: String(e?.message ?? e) };
        }
      },
      { url: m.url, inputs: m.inputs },
    );
    assert.ok(r.ok, `${m.name} [cpu, layers-only module]: ${r.message}`);
    worst = Math.max(worst, assertMatchesTfjs(`${m.name} [cpu, layers-only module]`, r.outputs, m.expected));
  }
  t.diagnostic(`${layers.length} layers-models, max |d| = ${worst.toExponential(2)}`);
  for (const m of graphs) {
    requireRealModel(m);
    for (const fn of ['loadGraphModel', 'loadLayersModel']) {
      const e = await rejection(page, (wi, { url, fn }) => wi[fn](url, { backend: 'cpu', cache: false }), { url: m.url, fn });
      assert.ok(e.message.includes(`${m.url}: a graph-model, and the module init({graphModels: false}) loaded runs layers-models only: call init() without graphModels: false`), `${m.name} [${fn}]: ${e.message}`);
    }
  }
  t.diagnostic(`${graphs.length} graph-models refused, e.g. ${graphs[0].url}`);
  // The page is still usable after the refusals.
  const again = await page.evaluate(async ({ url, inputs }) => (await window.runModel(url, inputs, { backend: 'cpu', cache: false })).backend, { url: layers[0].url, inputs: layers[0].inputs });
  assert.equal(again, 'cpu');
});

test('no panic or uncaught error reached the page', () => {
  env.assertNoPanics();
});
