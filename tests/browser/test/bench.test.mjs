// Timings of the real MobileNetV2 in Chromium, from the local server: cold load (empty
// cache) and warm load (from the Cache API), median of 3; predict on the CPU backend (first
// call and median of 10). Printed and written to tests/browser/out/timings.json; never
// asserted on (timings vary with the machine), only the outputs are checked.

import { test, before, after } from 'node:test';
import fs from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import { startEnv, tag, median, assertMatchesTfjs, expectedFiles, REAL_DIR } from '../lib/harness.mjs';
import { BROWSER_DIR } from '../lib/server.mjs';

const MOBILENET = path.join(REAL_DIR, 'mobilenet_v2');

let env;
before(async () => {
  env = await startEnv();
});
after(async () => {
  await env?.close();
});

test('timings: MobileNetV2 load (cold, warm) and predict on the cpu backend', async (t) => {
  assert.ok(fs.existsSync(path.join(MOBILENET, 'model.json')), `${MOBILENET} is missing: run scripts/fetch-models.sh`);
  const page = await env.openPage();
  const url = `${tag('bench')}/real/mobilenet_v2/model.json`;
  const r = await page.evaluate(async (url) => {
    const wi = window.wi;
    const abs = new URL(url, location.href).href;
    const time = async (f) => {
      const t0 = performance.now();
      const v = await f();
      return [performance.now() - t0, v];
    };
    const cold = [];
    const warm = [];
    let warmFromCache = true;
    for (let i = 0; i < 3; i += 1) {
      await wi.deleteCachedModel(abs);
      const [ms, m] = await time(() => wi.loadLayersModel(url, { backend: 'cpu' }));
      cold.push(ms);
      m.dispose();
    }
    for (let i = 0; i < 3; i += 1) {
      let done;
      const [ms, m] = await time(() => wi.loadLayersModel(url, { backend: 'cpu', onProgress: (e) => (done = e) }));
      warm.push(ms);
      warmFromCache &&= done.fromCache;
      m.dispose();
    }
    const x = await window.fetchNpy('/real/mobilenet_v2/input_0.npy');
    const runs = async (backend, n) => {
      const m = await wi.loadLayersModel(url, { backend });
      const [first, y] = await time(() => m.predict(x.data, x.shape));
      const rest = [];
      for (let i = 0; i < n; i += 1) rest.push((await time(() => m.predict(x.data, x.shape)))[0]);
      const out = { backend: m.backend, first, rest, output: { name: y.name, shape: y.shape, data: Array.from(y.data) } };
      m.dispose();
      return out;
    };
    const cpu = await runs('cpu', 10);
    let webgpu = null;
    try {
      webgpu = await runs('webgpu', 3); // SwiftShader: slow, for information only
    } catch (e) {
      webgpu = { error: e.message };
    }
    return { cold, warm, warmFromCache, cpu, webgpu };
  }, url);

  assert.equal(r.warmFromCache, true, 'the warm loads did not come from the cache');
  assert.equal(r.cpu.backend, 'cpu');
  assertMatchesTfjs('mobilenet_v2 [cpu, bench]', [r.cpu.output], expectedFiles(MOBILENET));
  const ms = (v) => `${v.toFixed(1)} ms`;
  const timings = {
    model: 'nsfwjs mobilenet_v2 (layers-model, 2.7 MB uint8), local server, Chromium headless',
    load_cold_ms: { median: median(r.cold), runs: r.cold },
    load_warm_ms: { median: median(r.warm), runs: r.warm },
    predict_cpu_ms: { first: r.cpu.first, median_of_10: median(r.cpu.rest), runs: r.cpu.rest },
  };
  if (r.webgpu && !r.webgpu.error) {
    timings.predict_webgpu_ms = { backend: r.webgpu.backend, first: r.webgpu.first, median_of_3: median(r.webgpu.rest), note: 'SwiftShader (software WebGPU): not a GPU timing' };
    assertMatchesTfjs('mobilenet_v2 [webgpu, bench]', [r.webgpu.output], expectedFiles(MOBILENET));
  } else {
    timings.predict_webgpu_ms = r.webgpu;
  }
  const lines = [
    `MobileNetV2 load, cold (empty cache): median ${ms(timings.load_cold_ms.median)} of [${r.cold.map(ms).join(', ')}]`,
    `MobileNetV2 load, warm (Cache API):   median ${ms(timings.load_warm_ms.median)} of [${r.warm.map(ms).join(', ')}]`,
    `MobileNetV2 predict, cpu: first ${ms(r.cpu.first)}, median of 10 ${ms(timings.predict_cpu_ms.median_of_10)}`,
  ];
  if (timings.predict_webgpu_ms?.median_of_3 !== undefined) {
    lines.push(`MobileNetV2 predict, webgpu (SwiftShader, software): first ${ms(r.webgpu.first)}, median of 3 ${ms(timings.predict_webgpu_ms.median_of_3)}`);
  } else {
    lines.push(`MobileNetV2 on webgpu: ${r.webgpu?.error}`);
  }
  for (const l of lines) t.diagnostic(l);
  const out = path.join(BROWSER_DIR, 'out');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'timings.json'), `${JSON.stringify(timings, null, 2)}\n`);
  env.assertNoPanics();
});
