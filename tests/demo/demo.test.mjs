// End-to-end test of the demo page (demo/): the demo server on a random port, headless Chromium
// (playwright-core from tests/browser/node_modules, Debian's Chromium, SwiftShader WebGPU).
// Screenshots go to tests/demo/out/ (ignored).
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { CHROMIUM, CHROMIUM_ARGS } from '../browser/lib/harness.mjs';
import { startDemoServer, PKG_DIR, MODELS_DIR } from '../../demo/server.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const OUT = path.join(HERE, 'out');
const { chromium } = createRequire(path.join(HERE, '..', 'browser', 'package.json'))('playwright-core');

// webinfer vs tfjs (cpu backend, the project's reference) on the same [1,224,224,3] input:
// the outputs are softmax probabilities in [0,1]; the conformance suite allows
// 1e-4 + 1e-3*|ref| per element, so 1e-3 absolute is that bound at probability ~1 and a
// generous margin over float32 reordering noise (observed ~1e-6).
const MAX_ABS_DIFF = 1e-3;
const WAIT = { timeout: 180_000 };

test('demo page: load with progress, classify, compare with tfjs, cache, webgpu, errors', { timeout: 600_000 }, async (t) => {
  for (const f of ['webinfer.js', 'webinfer_web.js', 'webinfer_web_bg.wasm', 'webinfer_web_bg.relaxed.wasm']) {
    assert.ok(fs.existsSync(path.join(PKG_DIR, f)), `no ${f} in ${PKG_DIR}: run scripts/demo.sh --build-only`);
  }
  assert.ok(fs.existsSync(path.join(MODELS_DIR, 'mobilenet_v2', 'model.json')), 'no models: run scripts/fetch-models.sh');
  fs.mkdirSync(OUT, { recursive: true });

  const server = await startDemoServer({ port: 0 });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  t.after(async () => {
    await browser.close().catch(() => {});
    await server.close().catch(() => {});
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e?.stack ?? e}`));
  page.on('console', (m) => {
    if (/panicked|RuntimeError|unreachable/i.test(m.text())) problems.push(`console: ${m.text()}`);
  });

  const state = () => page.evaluate(() => {
    const s = window.demoState;
    return { fromCache: s.fromCache, progress: s.progress, error: s.error, webinfer: s.webinfer, tfjs: s.tfjs, maxAbsDiff: s.maxAbsDiff, backend: s.model?.backend };
  });
  const open = async () => {
    await page.goto(`${server.url}/`);
    await page.waitForSelector('body[data-ready="true"]', WAIT);
  };
  const load = async (model, backend) => {
    await page.selectOption('#model-select', model);
    await page.selectOption('#backend-select', backend);
    await page.click('#load');
    await page.waitForSelector('#load-status[data-state="loaded"], #load-status[data-state="error"]', WAIT);
    const s = await state();
    assert.equal(s.error, null, `load failed: ${s.error}`);
  };
  const classify = async () => {
    const before = await page.getAttribute('#wi-result', 'data-done');
    await page.click('#classify');
    await page.waitForFunction((b) => (document.querySelector('#wi-result').dataset.done ?? null) !== b || window.demoState.error, before, WAIT);
    const s = await state();
    assert.equal(s.error, null, `classify failed: ${s.error}`);
    assert.equal(await page.locator('#wi-top li').count(), 5);
    return s;
  };
  const compare = async () => {
    await page.selectOption('#tfjs-backend', 'cpu');
    await page.click('#compare');
    await page.waitForFunction(() => window.demoState.maxAbsDiff !== null || window.demoState.error, null, WAIT);
    const s = await state();
    assert.equal(s.error, null, `compare failed: ${s.error}`);
    assert.equal(s.tfjs.backend, 'cpu');
    assert.equal(s.webinfer.top[0].i, s.tfjs.top[0].i, `top-1 differs: webinfer ${JSON.stringify(s.webinfer.top)}, tfjs ${JSON.stringify(s.tfjs.top)}`);
    assert.ok(s.maxAbsDiff <= MAX_ABS_DIFF, `max |webinfer - tfjs| = ${s.maxAbsDiff} > ${MAX_ABS_DIFF}`);
    const summary = await page.textContent('#compare-summary');
    assert.match(summary, /agree/);
    assert.ok(await page.isVisible('#tf-result'));
    return s;
  };

  await t.test('first load: progress to 100 %, classify, compare with tfjs (auto -> cpu)', async () => {
    await open();
    assert.match(await page.textContent('#env'), /CPU|WebGPU/);
    server.resetRequests();
    await load('mobilenet_v2', 'auto');
    const s = await state();
    assert.equal(s.fromCache, false);
    assert.ok(s.progress.total > 2_000_000, `total ${s.progress.total}`);
    const box = page.locator('#progress-box');
    assert.equal(await box.getAttribute('data-loaded'), await box.getAttribute('data-total'), 'the bar ends at loaded == total');
    assert.match(await page.textContent('#progress-text'), /^([\d.]+) \/ \1 MB \(100\.0 %\)$/);
    assert.equal(await page.evaluate(() => document.querySelector('#progress').value), 1);
    assert.match(await page.textContent('#load-status'), /Downloaded .* from the network/);
    // SwiftShader is a software adapter: auto picks the CPU engine.
    assert.equal(s.backend, 'cpu');
    assert.equal(await page.textContent('#backend-name'), 'cpu');
    assert.match(await page.textContent('#backend-reason'), /auto/);
    assert.ok(server.requests('/models/mobilenet_v2/').length >= 2, 'model.json and the shard came from the server');
    // The cache list shows it, with its size.
    await page.waitForFunction(() => /mobilenet_v2\/model\.json/.test(document.querySelector('#cache-list').textContent), null, WAIT);
    assert.match(await page.textContent('#cache-list'), /2\.\d\d MB/);

    await page.click('.sample[data-sample="sketch"]');
    const c = await classify();
    assert.ok(c.webinfer.firstMs > 0 && c.webinfer.warmMs > 0);
    assert.match(await page.textContent('#wi-time'), /first .* warm/);
    const r = await compare();
    t.diagnostic?.(`auto: webinfer ${r.webinfer.backend} top-1 ${r.webinfer.top[0].i}, max abs diff ${r.maxAbsDiff}`);
    console.log(`# auto/cpu: top-1 class ${r.webinfer.top[0].i}, max |webinfer - tfjs| = ${r.maxAbsDiff}, webinfer warm ${r.webinfer.warmMs.toFixed(1)} ms, tfjs cpu warm ${r.tfjs.warmMs.toFixed(1)} ms`);
    await page.screenshot({ path: path.join(OUT, 'cpu-auto.png'), fullPage: true });
  });

  await t.test('reload: the model comes from the cache with no request', async () => {
    await open();
    server.resetRequests();
    await load('mobilenet_v2', 'auto');
    const s = await state();
    assert.equal(s.fromCache, true);
    assert.match(await page.textContent('#load-status'), /from the cache/);
    assert.deepEqual(server.requests('/models/'), [], 'no request for the model files');
    assert.equal(s.progress.loaded, s.progress.total);
  });

  await t.test('backend webgpu (SwiftShader): classify and compare', async () => {
    await page.selectOption('#backend-select', 'webgpu'); // reloads the loaded model on webgpu
    await page.waitForFunction(() => window.demoState.model?.backend === 'webgpu' || window.demoState.error, null, WAIT);
    await page.waitForSelector('#load-status[data-state="loaded"], #load-status[data-state="error"]', WAIT);
    let s = await state();
    assert.equal(s.error, null, `webgpu load failed: ${s.error}`);
    assert.equal(await page.textContent('#backend-name'), 'webgpu');
    await page.click('.sample[data-sample="pattern"]');
    await classify();
    s = await compare();
    assert.equal(s.webinfer.backend, 'webgpu');
    console.log(`# webgpu: top-1 class ${s.webinfer.top[0].i}, max |webinfer - tfjs| = ${s.maxAbsDiff}`);
    await page.screenshot({ path: path.join(OUT, 'webgpu.png'), fullPage: true });
  });

  await t.test('errors show on the page: 404, not a model', async () => {
    await open();
    await page.selectOption('#model-select', 'custom');
    await page.fill('#model-url', '/models/no-such-model/model.json');
    await page.click('#load');
    await page.waitForSelector('#error:not([hidden])', WAIT);
    const text = await page.textContent('#error');
    assert.match(text, /404/);
    assert.match(text, /no-such-model\/model\.json/);
    assert.equal(await page.getAttribute('#load-status', 'data-state'), 'error');
    await page.screenshot({ path: path.join(OUT, 'error-404.png'), fullPage: true });

    await page.fill('#model-url', '/index.html');
    await page.click('#load');
    await page.waitForFunction(() => /index\.html/.test(window.demoState.error ?? ''), null, WAIT);
    assert.ok(await page.isVisible('#error'));
    await page.screenshot({ path: path.join(OUT, 'error-not-a-model.png') });
  });

  await t.test('the cache list deletes a model', async () => {
    await page.waitForSelector('#cache-list button', WAIT);
    await page.click('#cache-list button');
    await page.waitForFunction(() => /No model in the cache/.test(document.querySelector('#cache-list').textContent), null, WAIT);
  });

  await t.test('without WebGPU: the page says so, runs on the CPU, and webgpu is a readable error', async () => {
    const noGpu = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS.filter((a) => a !== '--enable-unsafe-webgpu'), headless: true });
    try {
      const p = await (await noGpu.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
      p.on('pageerror', (e) => problems.push(`pageerror (no webgpu): ${e?.stack ?? e}`));
      await p.goto(`${server.url}/`);
      await p.waitForSelector('body[data-ready="true"]', WAIT);
      await p.waitForFunction(() => !/Starting/.test(document.querySelector('#env').textContent), null, WAIT);
      assert.match(await p.textContent('#env'), /runs on the CPU/);
      await p.selectOption('#model-select', 'mobilenet_v2');
      await p.selectOption('#backend-select', 'webgpu');
      await p.click('#load');
      await p.waitForSelector('#error:not([hidden])', WAIT);
      assert.match(await p.textContent('#error'), /webgpu/i);
      await p.selectOption('#backend-select', 'cpu');
      await p.click('#load');
      await p.waitForSelector('#load-status[data-state="loaded"], #load-status[data-state="error"]', WAIT);
      assert.equal(await p.textContent('#backend-name'), 'cpu');
      await p.click('#classify');
      await p.waitForFunction(() => window.demoState.webinfer || window.demoState.error, null, WAIT);
      assert.equal(await p.evaluate(() => window.demoState.error), null);
      // The file picker and drag and drop, with a PNG made here (a screenshot of the page).
      const png = await p.screenshot({ clip: { x: 0, y: 0, width: 320, height: 200 } });
      await p.setInputFiles('#file', { name: 'page-shot.png', mimeType: 'image/png', buffer: png });
      await p.waitForFunction(() => /page-shot\.png/.test(document.querySelector('#preview-caption').textContent), null, WAIT);
      await p.evaluate(async (b64) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }));
        document.querySelector('#drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      }, png.toString('base64'));
      await p.waitForFunction(() => /dropped\.png/.test(document.querySelector('#preview-caption').textContent), null, WAIT);
      await p.click('#classify');
      await p.waitForFunction(() => window.demoState.predicts >= 2 || window.demoState.error, null, WAIT);
      assert.equal(await p.evaluate(() => window.demoState.error), null);
      await p.screenshot({ path: path.join(OUT, 'no-webgpu.png'), fullPage: true });
    } finally {
      await noGpu.close();
    }
  });

  assert.deepEqual(problems, [], problems.join('\n'));
});
