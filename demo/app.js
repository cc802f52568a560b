// The webinfer demo page: load a tfjs layers-model with byte progress and the Cache API, pick
// the backend, classify an image, compare with TensorFlow.js on the same input.
import init, { loadLayersModel, listCachedModels, deleteCachedModel } from './pkg/webinfer.js';
import { SAMPLES, drawSample } from './samples.js';

const NSFWJS_CLASSES = ['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy'];
const BUNDLED = {
  mobilenet_v2: { label: 'nsfwjs MobileNetV2', classes: NSFWJS_CLASSES },
  inception_v3: { label: 'nsfwjs InceptionV3', classes: NSFWJS_CLASSES },
};
const TFJS_SCRIPTS = ['vendor/tfjs/tf.min.js', 'vendor/tfjs-wasm/tf-backend-wasm.min.js'];

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const e = Object.assign(document.createElement(tag), props);
  for (const c of children) e.append(c);
  return e;
};

// Everything the page knows; also read by tests/demo/ (window.demoState).
const state = {
  ready: false,
  model: null,         // webinfer LayersModel
  modelUrl: null,
  classes: null,       // class names, or null: raw indices
  inputShape: [1, 224, 224, 3],
  loading: false,
  fromCache: null,
  progress: null,      // {loaded, total}
  source: null,        // {canvas|bitmap, label}
  input: null,         // Float32Array fed to both engines
  predicts: 0,         // predicts of the current model
  webinfer: null,      // {data, top, backend, firstMs, warmMs}
  tfjs: null,          // {data, top, backend, firstMs, warmMs}
  maxAbsDiff: null,
  error: null,
};
window.demoState = state;

// ---------------------------------------------------------------- formatting and errors

const mb = (bytes) => (bytes / 1e6).toFixed(bytes >= 1e7 ? 1 : 2);
const ms = (t) => (t >= 100 ? `${Math.round(t)} ms` : `${t.toFixed(1)} ms`);
const secs = (s) => (s >= 60 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${s.toFixed(s < 10 ? 1 : 0)} s`);
const shapeText = (s) => `[${s.map((d) => (d === null ? 'null' : d)).join(', ')}]`;
const shortUrl = (u) => {
  try {
    const x = new URL(u, location.href);
    return x.origin === location.origin ? x.pathname + x.search : x.href;
  } catch {
    return String(u);
  }
};

function errorText(err) {
  if (err === undefined || err === null) return 'unknown error';
  let msg = String(err.message ?? err);
  if (err.status && !msg.includes(String(err.status))) msg += ` (HTTP ${err.status})`;
  if (err.url && !msg.includes(err.url)) msg += ` — ${err.url}`;
  return msg;
}

function hint(msg) {
  if (/HTTP 404/.test(msg)) return 'Nothing at that URL: check the address of model.json.';
  if (/not valid JSON|JSON|unexpected|expected value|parse/i.test(msg)) return 'The URL does not return a TensorFlow.js model.json.';
  if (/unsupported layer/i.test(msg)) return 'webinfer does not implement these layers yet (see the README for the list).';
  if (/webgpu.*not available/i.test(msg)) return 'Choose "auto" or "cpu": the CPU engine runs everywhere.';
  if (/Failed to fetch|NetworkError|CORS/i.test(msg)) return 'The server could not be reached, or it does not allow cross-origin requests (CORS).';
  return '';
}

function showError(context, err) {
  const msg = `${context}: ${errorText(err)}`;
  state.error = msg;
  $('error-text').textContent = msg;
  const h = hint(msg);
  if (h) $('error-text').append(el('br'), el('span', { className: 'hint', textContent: h }));
  $('error').hidden = false;
  console.error(msg, err);
}

function clearError() {
  state.error = null;
  $('error').hidden = true;
  $('error-text').textContent = '';
}

window.addEventListener('unhandledrejection', (e) => showError('Unexpected error', e.reason));
window.addEventListener('error', (e) => showError('Unexpected error', e.error ?? e.message));
$('error-close').addEventListener('click', clearError);

// ---------------------------------------------------------------- environment

async function describeEnvironment() {
  const env = $('env');
  if (!('gpu' in navigator)) {
    env.textContent = 'No WebGPU in this browser: webinfer runs on the CPU (WebAssembly SIMD), which works everywhere.';
    env.className = 'env cpu';
    return;
  }
  let adapter = null;
  try {
    adapter = await navigator.gpu.requestAdapter();
  } catch {
    adapter = null;
  }
  if (!adapter) {
    env.textContent = 'WebGPU is present but no adapter is usable: webinfer runs on the CPU (WebAssembly SIMD).';
    env.className = 'env cpu';
    return;
  }
  const info = adapter.info ?? {};
  const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'unknown adapter';
  const soft = adapter.isFallbackAdapter || info.isFallbackAdapter;
  env.textContent = soft
    ? `WebGPU: software adapter (${name}). "auto" runs on the CPU, which is faster than a software GPU; choose "webgpu" to try it.`
    : `WebGPU: ${name}. "auto" runs on it.`;
  env.className = soft ? 'env cpu' : 'env gpu';
}

// ---------------------------------------------------------------- model choice and loading

function selectedModelUrl() {
  const v = $('model-select').value;
  if (v !== 'custom') return new URL(`models/${v}/model.json`, location.href).href;
  const raw = $('model-url').value.trim();
  if (!raw) throw new Error('enter the URL of a model.json');
  return new URL(raw, location.href).href;
}

$('model-select').addEventListener('change', () => {
  $('url-row').hidden = $('model-select').value !== 'custom';
  if (!$('url-row').hidden) $('model-url').focus();
});

function setBusy(busy) {
  state.loading = busy;
  $('load').disabled = busy;
  $('classify').disabled = busy || !state.model || !state.source;
  $('compare').disabled = busy || !state.model || !state.source;
}

const files = new Map(); // url -> {bytes, fromCache, row}

function fileRow(url) {
  let f = files.get(url);
  if (!f) {
    const row = el('tr', {}, el('td', { className: 'url', textContent: shortUrl(url), title: url }), el('td', { className: 'num' }), el('td'));
    $('files').append(row);
    f = { bytes: null, fromCache: false, row };
    files.set(url, f);
  }
  return f;
}

// During a load the shards arrive concurrently and each event names only the file its latest
// bytes belong to, so a row says which files are being received; once loaded, every row gets the
// file's exact size (from the cache listing, or from Resource Timing when the cache is off).
function renderFile(f, bytes) {
  if (bytes !== undefined) f.bytes = bytes;
  f.row.children[1].textContent = f.bytes !== null ? f.bytes.toLocaleString() : 'receiving…';
  f.row.children[2].textContent = f.fromCache ? 'cache' : 'network';
}

async function loadModel() {
  clearError();
  let url;
  try {
    url = selectedModelUrl();
  } catch (e) {
    showError('Load', e);
    return;
  }
  const backend = $('backend-select').value;
  const bundled = BUNDLED[$('model-select').value];
  if (state.model) {
    state.model.dispose();
    state.model = null;
  }
  state.modelUrl = null;
  state.fromCache = null;
  state.predicts = 0;
  state.webinfer = null;
  state.tfjs = null;
  state.maxAbsDiff = null;
  resetResults();
  setBusy(true);

  state.progress = null;
  files.clear();
  $('files').textContent = '';
  $('progress-box').hidden = false;
  $('progress').value = 0;
  $('progress-text').textContent = 'fetching model.json…';
  $('progress-rate').textContent = '';
  $('progress-eta').textContent = '';
  $('model-info').hidden = false;
  $('load-status').textContent = `Loading ${shortUrl(url)}…`;
  $('load-status').dataset.state = 'loading';
  $('backend-name').textContent = '';
  $('backend-reason').textContent = '';
  $('model-input').textContent = '';
  $('model-output').textContent = '';

  const t0 = performance.now();
  let done = null;
  const onProgress = (e) => {
    const loaded = e.loadedBytes;
    const total = e.totalBytes;
    if (e.phase === 'weights' && files.get(url)?.bytes === null) {
      files.get(url).row.children[1].textContent = 'done'; // model.json is parsed before any shard
    }
    if (e.phase !== 'done') {
      const f = fileRow(e.url);
      f.fromCache = e.fromCache;
      renderFile(f);
    }
    state.progress = { loaded, total };
    $('progress').value = e.fraction;
    $('progress-box').dataset.loaded = String(loaded);
    $('progress-box').dataset.total = String(total);
    $('progress-text').textContent = `${mb(loaded)} / ${mb(total)} MB (${(e.fraction * 100).toFixed(1)} %)`;
    const elapsed = (performance.now() - t0) / 1000;
    const rate = elapsed > 0 ? loaded / elapsed : 0;
    if (e.phase === 'done') {
      done = e;
      $('progress-rate').textContent = rate ? `${mb(rate)} MB/s` : '';
      $('progress-eta').textContent = `done in ${secs(elapsed)}${e.fromCache ? ', from the cache' : ''}`;
    } else if (rate > 0 && elapsed > 0.2) {
      $('progress-rate').textContent = `${mb(rate)} MB/s`;
      $('progress-eta').textContent = `${secs((total - loaded) / rate)} left`;
    }
  };

  try {
    const model = await loadLayersModel(url, {
      onProgress,
      backend,
      cache: $('use-cache').checked,
      onWarning: (w) => console.warn(w.message),
    });
    state.model = model;
    state.modelUrl = url;
    state.classes = bundled ? bundled.classes : null;
    state.fromCache = done ? done.fromCache : false;
    const elapsed = performance.now() - t0;
    const total = state.progress?.total ?? 0;
    $('load-status').textContent = state.fromCache
      ? `Loaded from the cache in ${ms(elapsed)}: no download (${mb(total)} MB, no network request).`
      : `Downloaded ${mb(total)} MB from the network and loaded in ${secs(elapsed / 1000)}.`;
    $('load-status').dataset.state = 'loaded';
    $('load-status').dataset.fromCache = String(state.fromCache);
    $('backend-name').textContent = model.backend;
    $('backend-name').className = `badge ${model.backend}`;
    $('backend-reason').textContent = model.backendReason;
    $('wi-backend').textContent = model.backend;
    $('wi-backend').className = `badge ${model.backend}`;
    const inp = model.inputs[0];
    const out = model.outputs[0];
    $('model-input').textContent = `${inp.name} ${shapeText(inp.shape)} ${inp.dtype}${model.inputs.length > 1 ? ` (+${model.inputs.length - 1} more)` : ''}`;
    $('model-output').textContent = `${out.name} ${shapeText(out.shape)}${state.classes ? ` — classes: ${state.classes.join(', ')}` : ' — shown as raw top-5 indices'}`;
    if (model.inputs.length !== 1 || inp.shape.length !== 4 || (inp.shape[3] !== null && inp.shape[3] !== 3)) {
      throw new Error(`this page feeds one RGB image, but the model's input is ${model.inputs.map((i) => shapeText(i.shape)).join(', ')}`);
    }
    state.inputShape = [1, inp.shape[1] ?? 224, inp.shape[2] ?? 224, 3];
    await fillFileSizes(url);
    prepareInput();
  } catch (e) {
    $('load-status').textContent = 'Failed (see the error above).';
    $('load-status').dataset.state = 'error';
    if (state.model) {
      state.model.dispose(); // loaded, but this page cannot feed it
      state.model = null;
    }
    if (!state.progress) $('progress-box').hidden = true; // failed before model.json was parsed
    for (const id of ['backend-name', 'backend-reason', 'model-input', 'model-output']) $(id).textContent = '';
    $('model-input').textContent = '—';
    $('model-output').textContent = '—';
    $('backend-reason').textContent = '—';
    showError(`Loading ${shortUrl(url)}`, e);
  } finally {
    setBusy(false);
    refreshCache();
  }
}

// Every file's exact size once loaded: the cache listing, else Resource Timing (same origin or
// Timing-Allow-Origin), else the row says "loaded".
async function fillFileSizes(url) {
  let entry = null;
  try {
    entry = (await listCachedModels()).find((m) => m.url === url) ?? null;
  } catch {
    entry = null;
  }
  if (entry) {
    for (const cf of entry.files) renderFile(fileRow(cf.url), cf.bytes);
    return;
  }
  const timing = new Map(performance.getEntriesByType('resource').map((r) => [r.name, r.encodedBodySize]));
  for (const [u, f] of files) {
    const b = timing.get(u);
    if (b) renderFile(f, b);
    else f.row.children[1].textContent = 'loaded';
  }
}

$('load').addEventListener('click', loadModel);
$('backend-select').addEventListener('change', () => {
  if (state.model && !state.loading) loadModel();
});

// ---------------------------------------------------------------- cache list

async function refreshCache() {
  const body = $('cache-list');
  let list;
  try {
    list = await listCachedModels();
  } catch (e) {
    body.replaceChildren(el('tr', {}, el('td', { colSpan: 4, className: 'muted', textContent: `cache unavailable: ${errorText(e)}` })));
    return;
  }
  if (!list.length) {
    body.replaceChildren(el('tr', {}, el('td', { colSpan: 4, className: 'muted', textContent: 'No model in the cache yet.' })));
    return;
  }
  body.replaceChildren(
    ...list.map((m) => {
      const del = el('button', { type: 'button', className: 'small danger', textContent: 'Delete' });
      del.addEventListener('click', async () => {
        del.disabled = true;
        try {
          await deleteCachedModel(m.url);
        } catch (e) {
          showError('Deleting from the cache', e);
        }
        refreshCache();
      });
      return el(
        'tr',
        {},
        el('td', { className: 'url', textContent: shortUrl(m.url), title: m.url }),
        el('td', { className: 'num', textContent: `${mb(m.bytes)} MB` }),
        el('td', { textContent: `${m.files.length}${m.complete ? '' : ' (incomplete)'}` }),
        el('td', {}, del),
      );
    }),
  );
}
$('cache-refresh').addEventListener('click', refreshCache);

// ---------------------------------------------------------------- images

function setSource(image, label) {
  state.source = { image, label };
  document.querySelectorAll('.sample').forEach((b) => b.classList.toggle('selected', b.dataset.label === label));
  prepareInput();
  setBusy(state.loading);
}

// Resizes the image to the model's input with a canvas and divides by 255.
function prepareInput() {
  const [, h, w] = state.inputShape;
  const c = $('preview');
  c.width = w;
  c.height = h;
  const ctx = c.getContext('2d', { willReadFrequently: true });
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, w, h);
  if (!state.source) {
    $('preview-caption').textContent = `the model's input (${w}×${h}): choose an image`;
    state.input = null;
    return;
  }
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(state.source.image, 0, 0, w, h);
  const px = ctx.getImageData(0, 0, w, h).data;
  const x = new Float32Array(w * h * 3);
  for (let i = 0, j = 0; i < px.length; i += 4, j += 3) {
    x[j] = px[i] / 255;
    x[j + 1] = px[i + 1] / 255;
    x[j + 2] = px[i + 2] / 255;
  }
  state.input = x;
  $('preview-caption').textContent = `${state.source.label}, resized to ${w}×${h}, pixels / 255`;
}

for (const s of SAMPLES) {
  const canvas = drawSample(s);
  const b = el('button', { type: 'button', className: 'sample', title: s.label }, canvas, el('span', { textContent: s.label }));
  b.dataset.sample = s.id;
  b.dataset.label = s.label;
  b.addEventListener('click', () => setSource(canvas, s.label));
  $('samples').append(b);
}

async function useFile(file) {
  if (!file) return;
  clearError();
  try {
    if (file.type && !file.type.startsWith('image/')) throw new Error(`${file.name} is not an image (${file.type})`);
    const bitmap = await createImageBitmap(file);
    setSource(bitmap, file.name);
  } catch (e) {
    showError(`Reading ${file.name}`, e?.name === 'InvalidStateError' ? new Error('the browser cannot decode this image') : e);
  }
}
$('file').addEventListener('change', (e) => useFile(e.target.files[0]));
const card = $('image-card');
card.addEventListener('dragover', (e) => {
  e.preventDefault();
  $('drop').classList.add('over');
});
card.addEventListener('dragleave', () => $('drop').classList.remove('over'));
card.addEventListener('drop', (e) => {
  e.preventDefault();
  $('drop').classList.remove('over');
  useFile(e.dataTransfer.files[0]);
});

// ---------------------------------------------------------------- results

function topK(data, k) {
  return Array.from(data, (v, i) => ({ i, v })).sort((a, b) => b.v - a.v).slice(0, k);
}

function renderTop(list, top) {
  const probs = !!state.classes;
  list.replaceChildren(
    ...top.map(({ i, v }) => {
      const name = state.classes?.[i] ?? `#${i}`;
      const bar = el('span', { className: 'bar' });
      bar.style.width = `${probs ? Math.max(0, Math.min(1, v)) * 100 : 0}%`;
      return el(
        'li',
        {},
        el('span', { className: 'cls', textContent: name }),
        el('span', { className: 'track' }, bar),
        el('span', { className: 'val', textContent: probs ? `${(v * 100).toFixed(2)} %` : v.toPrecision(5) }),
      );
    }),
  );
}

function resetResults() {
  $('wi-top').textContent = '';
  $('wi-time').textContent = '';
  $('tf-top').textContent = '';
  $('tf-time').textContent = '';
  $('tf-result').hidden = true;
  $('compare-summary').hidden = true;
}

async function classify() {
  clearError();
  if (!state.model || !state.input) return;
  setBusy(true);
  try {
    const shape = state.inputShape;
    const t0 = performance.now();
    const y = await state.model.predict(state.input, shape);
    const t1 = performance.now() - t0;
    let firstMs = null;
    let warmMs = t1;
    if (state.predicts === 0) {
      // The first predict includes one-time work (GPU pipelines, buffers): time a warm one too.
      firstMs = t1;
      const t2 = performance.now();
      await state.model.predict(state.input, shape);
      warmMs = performance.now() - t2;
    }
    state.predicts += 1;
    const top = topK(y.data, state.classes ? state.classes.length : 5);
    state.webinfer = { data: Array.from(y.data), top, backend: state.model.backend, firstMs, warmMs };
    renderTop($('wi-top'), top);
    $('wi-backend').textContent = state.model.backend;
    $('wi-time').textContent = firstMs !== null
      ? `predict: first ${ms(firstMs)}, warm ${ms(warmMs)} (output ${shapeText(y.shape)})`
      : `predict: warm ${ms(warmMs)} (output ${shapeText(y.shape)})`;
    $('wi-result').dataset.done = String(state.predicts);
    $('tf-result').hidden = true;
    $('compare-summary').hidden = true;
  } catch (e) {
    showError('Predict (webinfer)', e);
  } finally {
    setBusy(false);
  }
}
$('classify').addEventListener('click', classify);

// ---------------------------------------------------------------- tfjs comparison

let tfjsLoading = null;
function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = el('script', { src });
    s.onload = resolve;
    s.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.append(s);
  });
}
function loadTfjs() {
  tfjsLoading ??= (async () => {
    for (const src of TFJS_SCRIPTS) await loadScript(src);
    window.tf.wasm.setWasmPaths(new URL('vendor/tfjs-wasm/', location.href).href);
    return window.tf;
  })();
  tfjsLoading.catch(() => { tfjsLoading = null; });
  return tfjsLoading;
}

const tfModels = new Map(); // url -> tfjs LayersModel

async function compare() {
  clearError();
  if (!state.model || !state.input) return;
  if (!state.webinfer) await classify();
  if (!state.webinfer) return;
  setBusy(true);
  const btn = $('compare');
  btn.textContent = 'Running tfjs…';
  try {
    const tf = await loadTfjs();
    const want = $('tfjs-backend').value;
    if (tf.getBackend() !== want) {
      const ok = await tf.setBackend(want);
      if (!ok) throw new Error(`tfjs backend "${want}" could not be initialised`);
    }
    await tf.ready();
    let m = tfModels.get(state.modelUrl);
    if (!m) {
      m = await tf.loadLayersModel(state.modelUrl);
      tfModels.set(state.modelUrl, m);
    }
    const x = tf.tensor(state.input, state.inputShape);
    const run = async () => {
      const t0 = performance.now();
      const y = m.predict(x);
      const out = Array.isArray(y) ? y[0] : y;
      const data = await out.data();
      tf.dispose(y);
      return { data, t: performance.now() - t0 };
    };
    const first = await run();
    const warm = await run();
    x.dispose();
    const data = Array.from(warm.data);
    const top = topK(data, state.classes ? state.classes.length : 5);
    state.tfjs = { data, top, backend: tf.getBackend(), firstMs: first.t, warmMs: warm.t };
    $('tf-result').hidden = false;
    renderTop($('tf-top'), top);
    $('tf-backend-name').textContent = tf.getBackend();
    $('tf-time').textContent = `predict: first ${ms(first.t)}, warm ${ms(warm.t)}`;

    const a = state.webinfer.data;
    if (a.length !== data.length) throw new Error(`the outputs differ in length: webinfer ${a.length}, tfjs ${data.length}`);
    let d = 0;
    for (let i = 0; i < a.length; i += 1) d = Math.max(d, Math.abs(a[i] - data[i]));
    state.maxAbsDiff = d;
    const name = (i) => state.classes?.[i] ?? `#${i}`;
    const agree = state.webinfer.top[0].i === top[0].i;
    const s = $('compare-summary');
    s.hidden = false;
    s.className = `summary ${agree ? 'ok' : 'bad'}`;
    s.textContent = `Top-1: webinfer ${name(state.webinfer.top[0].i)}, tfjs ${name(top[0].i)} (${agree ? 'agree' : 'DIFFER'}). `
      + `Max |webinfer − tfjs| over the ${a.length} outputs: ${d.toExponential(2)}. `
      + `Warm predict: webinfer (${state.webinfer.backend}) ${ms(state.webinfer.warmMs)}, tfjs (${tf.getBackend()}) ${ms(warm.t)}.`;
    s.dataset.maxAbsDiff = String(d);
  } catch (e) {
    showError('Compare with tfjs', e);
  } finally {
    btn.textContent = 'Compare with tfjs';
    setBusy(false);
  }
}
$('compare').addEventListener('click', compare);

// ---------------------------------------------------------------- start

try {
  await init();
  state.ready = true;
  document.body.dataset.ready = 'true';
  setSource(document.querySelector('.sample canvas'), SAMPLES[0].label);
  await Promise.all([describeEnvironment(), refreshCache()]);
} catch (e) {
  showError('Starting webinfer (the WebAssembly package)', e);
}
