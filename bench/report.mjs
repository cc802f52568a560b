// Turns bench/out/browser.json and bench/out/native/*.txt into bench/out/results.json (every
// raw figure) and BENCHMARKS.md (tables). Also measures the download sizes (raw and gzip -9).
//
//   node bench/report.mjs [--out-dir bench/out] [--md BENCHMARKS.md] [--seconds N]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { execSync } from 'node:child_process';
import { BENCH, REPO } from './lib/server.mjs';

const args = process.argv.slice(2);
const opt = (k, d) => (args.includes(k) ? args[args.indexOf(k) + 1] : d);
const outDir = path.resolve(REPO, opt('--out-dir', 'bench/out'));
const mdFile = path.resolve(REPO, opt('--md', 'BENCHMARKS.md'));
const totalSeconds = Number(opt('--seconds', 'NaN'));
const b = JSON.parse(fs.readFileSync(path.join(outDir, 'browser.json'), 'utf8'));
const quick = b.quick;
const command = quick ? 'scripts/bench.sh --quick' : 'scripts/bench.sh';

// ---- machine ----
const sh = (c) => { try { return execSync(c, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { return '?'; } };
const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
const machine = {
  cpuModel: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? '?',
  cores: os.cpus().length,
  memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
  os: /PRETTY_NAME="([^"]*)"/.exec(fs.existsSync('/etc/os-release') ? fs.readFileSync('/etc/os-release', 'utf8') : '')?.[1] ?? os.platform(),
  node: process.version,
  rustc: sh('rustc --version'),
  browser: b.browser,
  commit: sh(`git -C ${REPO} rev-parse --short HEAD`),
  dirty: sh(`git -C ${REPO} status --porcelain --untracked-files=no -- crates Cargo.lock`) !== '',
  webgpuAdapter: b.webgpu,
  lavapipe: (() => { const t = readNative('gpu_bench'); return /adapter: (.*)/.exec(t ?? '')?.[1] ?? '?'; })(),
};
const gpuText = b.webgpu?.available
  ? `${b.webgpu.vendor}/${b.webgpu.architecture}${b.webgpu.isFallbackAdapter ? ' (isFallbackAdapter: true, i.e. SwiftShader, software)' : ''}`
  : `none (${b.webgpu?.reason ?? 'navigator.gpu missing'})`;
const machineLine = `webinfer ${machine.commit}${machine.dirty ? ' + uncommitted changes under crates/' : ''}; ${machine.cores} cores (${machine.cpuModel}), ${machine.memoryGiB} GiB, ${machine.os}; ${machine.browser} headless; WebGPU adapter ${gpuText}; date ${b.date}`;

function readNative(name) {
  const f = path.join(outDir, 'native', `${name}.txt`);
  return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').trimEnd() : null;
}

// ---- sizes ----
function size(files) {
  let raw = 0; let gz = 0;
  for (const f of files) {
    const buf = fs.readFileSync(f);
    raw += buf.length; gz += zlib.gzipSync(buf, { level: 9 }).length;
  }
  return { raw, gzip: gz, files: files.map((f) => path.relative(REPO, f)) };
}
const PKG = path.join(REPO, 'crates', 'webinfer-web', 'pkg');
const TF = path.join(BENCH, 'node_modules', '@tensorflow');
const tfd = (p, f) => path.join(TF, p, 'dist', f);
const snippets = sh(`find ${PKG}/snippets -name '*.js'`).split('\n').filter(Boolean);
const sizes = [
  { what: 'webinfer, relaxed-SIMD module (what Chromium loads; WebGPU and WASM CPU in one module)', ...size([path.join(PKG, 'webinfer.js'), path.join(PKG, 'webinfer_web.js'), path.join(PKG, 'webinfer_web_bg.relaxed.wasm'), ...snippets]) },
  { what: 'webinfer, plain-SIMD module (browsers without relaxed-SIMD)', ...size([path.join(PKG, 'webinfer.js'), path.join(PKG, 'webinfer_web.js'), path.join(PKG, 'webinfer_web_bg.wasm'), ...snippets]) },
  { what: 'webinfer, CPU-only module, relaxed-SIMD (pages without WebGPU, or `init({backend: \'cpu\'})`)', ...size([path.join(PKG, 'webinfer.js'), path.join(PKG, 'webinfer_cpu.js'), path.join(PKG, 'webinfer_cpu_bg.relaxed.wasm'), ...snippets]) },
  { what: 'webinfer, CPU-only module, plain-SIMD', ...size([path.join(PKG, 'webinfer.js'), path.join(PKG, 'webinfer_cpu.js'), path.join(PKG, 'webinfer_cpu_bg.wasm'), ...snippets]) },
  { what: 'webinfer, CPU-only module for layers-models (no graph-model code), relaxed-SIMD (`init({backend: \'cpu\', graphModels: false})`)', ...size([path.join(PKG, 'webinfer.js'), path.join(PKG, 'webinfer_cpu_layers.js'), path.join(PKG, 'webinfer_cpu_layers_bg.relaxed.wasm'), ...snippets]) },
  { what: 'webinfer, CPU-only module for layers-models, plain-SIMD', ...size([path.join(PKG, 'webinfer.js'), path.join(PKG, 'webinfer_cpu_layers.js'), path.join(PKG, 'webinfer_cpu_layers_bg.wasm'), ...snippets]) },
  { what: 'tfjs wasm path, full bundle: tf.min.js + tf-backend-wasm.min.js + tfjs-backend-wasm-simd.wasm', ...size([tfd('tfjs', 'tf.min.js'), tfd('tfjs-backend-wasm', 'tf-backend-wasm.min.js'), tfd('tfjs-backend-wasm', 'tfjs-backend-wasm-simd.wasm')]) },
  { what: 'tfjs wasm path, minimal: tf-core + tf-layers + tf-backend-wasm (.min.js) + simd .wasm', ...size([tfd('tfjs-core', 'tf-core.min.js'), tfd('tfjs-layers', 'tf-layers.min.js'), tfd('tfjs-backend-wasm', 'tf-backend-wasm.min.js'), tfd('tfjs-backend-wasm', 'tfjs-backend-wasm-simd.wasm')]) },
  { what: 'tfjs webgpu path, full bundle: tf.min.js + tf-backend-webgpu.min.js', ...size([tfd('tfjs', 'tf.min.js'), tfd('tfjs-backend-webgpu', 'tf-backend-webgpu.min.js')]) },
  { what: 'tfjs webgpu path, minimal: tf-core + tf-layers + tf-backend-webgpu (.min.js)', ...size([tfd('tfjs-core', 'tf-core.min.js'), tfd('tfjs-layers', 'tf-layers.min.js'), tfd('tfjs-backend-webgpu', 'tf-backend-webgpu.min.js')]) },
  { what: 'tfjs both paths (wasm + webgpu), minimal', ...size([tfd('tfjs-core', 'tf-core.min.js'), tfd('tfjs-layers', 'tf-layers.min.js'), tfd('tfjs-backend-wasm', 'tf-backend-wasm.min.js'), tfd('tfjs-backend-wasm', 'tfjs-backend-wasm-simd.wasm'), tfd('tfjs-backend-webgpu', 'tf-backend-webgpu.min.js')]) },
];

// ---- helpers ----
const cell = (model, id) => b.cells.find((c) => c.model === model && c.id === id);
const ok = (c) => c && !c.error;
const msu = (v) => (v == null || Number.isNaN(v) ? (quick ? 'n/a (not run in --quick)' : 'n/a') : `${ms(v)} ms`);
const ms = (v) => (v == null || Number.isNaN(v) ? 'n/a' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const ratio = (a, c) => (a != null && c != null && c > 0 ? a / c : null);
const rx = (r) => (r == null ? 'n/a' : `**${r.toFixed(2)}x**`);
const mb = (n) => (n / 1e6).toFixed(2);
const kb = (n) => `${(n / 1024).toFixed(0)} KiB`;
const mib = (n) => (n == null ? 'n/a' : `${(n / 2 ** 20).toFixed(1)} MiB`);
// The warm figure: the median of N timed predicts, or, when that is under 2 ms (the page timer
// has 0.1 ms resolution), the mean of a batch of 100 predicts timed together (marked *).
const warmOf = (c) => (c.batch ? c.batch.meanMs : c.warm.median);
const warmMed = (m, id) => (ok(cell(m, id)) ? warmOf(cell(m, id)) : null);
const load = (m, id) => b.loads.find((l) => l.model === m && l.id === id && !l.error);
const nativeMedian = (t) => { const r = /warm\s+median ([\d.]+) ms/.exec(t ?? ''); return r ? Number(r[1]) : null; };

const headline = {
  mobilenetWebgpu: { webinfer: warmMed('mobilenet_v2', 'webinfer-webgpu'), tfjs: warmMed('mobilenet_v2', 'tfjs-webgpu') },
  mobilenetWasmCpu: { webinfer: warmMed('mobilenet_v2', 'webinfer-cpu'), tfjs: warmMed('mobilenet_v2', 'tfjs-wasm') },
  warmLoad: { webinfer: load('mobilenet_v2', 'webinfer-cpu')?.warm.median ?? null, tfjs: load('mobilenet_v2', 'tfjs-wasm')?.warm.median ?? null },
};
for (const h of Object.values(headline)) h.ratio = ratio(h.webinfer, h.tfjs);

// ---- results.json ----
const results = {
  command, generated: new Date().toISOString(), totalSeconds, machine, headline, sizes,
  browser: b,
  native: Object.fromEntries(['cli_cpu', 'cli_gpu', 'kernel_bench', 'gpu_bench'].map((n) => [n, readNative(n)])),
};
fs.writeFileSync(path.join(outDir, 'results.json'), `${JSON.stringify(results, null, 1)}\n`);

// ---- BENCHMARKS.md ----
const L = [];
const p = (s = '') => L.push(s);
const models = [...new Set(b.cells.map((c) => c.model))];
const relOut = path.relative(REPO, path.join(outDir, 'results.json'));
p('# Benchmarks');
p();
p(`Generated by \`${command}\` (do not edit by hand; raw figures in \`${relOut}\`). ${quick ? '**Quick mode: few runs, small models only; a smoke check, not a measurement.**' : ''}`);
p();
p(`Machine: ${machineLine}. Total run time ${Number.isFinite(totalSeconds) ? `${(totalSeconds / 60).toFixed(1)} min` : 'n/a'}. Timings are noisy on a shared 2-core machine; every comparison below was measured side by side in one run (medians).`);
p();
p('## Headline');
p();
p('| comparison | webinfer | tfjs 4.22.0 | webinfer / tfjs (lower is better) |');
p('|---|---|---|---|');
p(`| MobileNetV2 224x224 predict, WebGPU (SwiftShader): webinfer-webgpu vs tfjs-backend-webgpu, warm median | ${msu(headline.mobilenetWebgpu.webinfer)} | ${msu(headline.mobilenetWebgpu.tfjs)} | ${rx(headline.mobilenetWebgpu.ratio)} |`);
p(`| MobileNetV2 224x224 predict, CPU in WASM: webinfer-cpu vs tfjs-backend-wasm (SIMD, 1 thread), warm median | ${msu(headline.mobilenetWasmCpu.webinfer)} | ${msu(headline.mobilenetWasmCpu.tfjs)} | ${rx(headline.mobilenetWasmCpu.ratio)} |`);
p(`| MobileNetV2 warm load (webinfer: Cache API; tfjs: browser HTTP cache), median | ${msu(headline.warmLoad.webinfer)} | ${msu(headline.warmLoad.tfjs)} | ${rx(headline.warmLoad.ratio)} |`);
p();
p('WebGPU here is SwiftShader, a CPU emulating a GPU: its figures rank the two engines\' dispatch and shader structure on this emulator, not what a hardware GPU would do.');
p();

p('## Inference in the browser');
p();
p(`Command: \`${command}\` (\`bench/run-browser.mjs\`). ${machine.browser} headless, flags \`${b.chromiumArgs.join(' ')}\`. One browser session; each cell (model x engine) gets a fresh browser context and page holding one engine, and loads the model from a fresh URL. A predict is timed from the call until the outputs are in JS (webinfer: \`await model.predict(x, shape)\`; tfjs: \`model.predict(tf.tensor(x))\` + \`await y.data()\` for every output + disposal). "first" is the first predict after load (shader / pipeline creation, first-touch allocation). "warm" is then N more predicts: N stops at ${b.policy.MAX_RUNS} or once ${b.policy.BUDGET_MS} ms have passed, at least ${b.policy.MIN_RUNS}. Inputs are identical for every engine (MobileNetV2 and the fixtures: their \`input_0.npy\`; generated models: a seeded uniform [0, 1) tensor). \`performance.now()\` is coarsened to 0.1 ms in a page that is not cross-origin isolated, so sub-millisecond figures are coarse.`);
p();
p('tfjs-backend-wasm runs with SIMD and without threads (the page is not cross-origin isolated, as a typical page; webinfer\'s WASM CPU engine is single-threaded too). Ratios are webinfer / tfjs: below 1 means webinfer is faster.');
p();
p('### Warm predict, median ms');
p();
p('| model | model MB | webinfer-webgpu | tfjs-webgpu | ratio | webinfer-cpu | tfjs-wasm | ratio | tfjs-cpu | webinfer-cpu / tfjs-cpu |');
p('|---|---|---|---|---|---|---|---|---|---|');
for (const m of models) {
  const v = (id) => (ok(cell(m, id)) ? `${ms(warmOf(cell(m, id)))}${cell(m, id).batch ? '*' : ''}` : `error`);
  const c0 = b.cells.find((c) => c.model === m);
  p(`| ${m} (${c0.kind.replace(/[()]/g, "")}) | ${mb(c0.modelBytes)} | ${v('webinfer-webgpu')} | ${v('tfjs-webgpu')} | ${rx(ratio(warmMed(m, 'webinfer-webgpu'), warmMed(m, 'tfjs-webgpu')))} | ${v('webinfer-cpu')} | ${v('tfjs-wasm')} | ${rx(ratio(warmMed(m, 'webinfer-cpu'), warmMed(m, 'tfjs-wasm')))} | ${v('tfjs-cpu')} | ${rx(ratio(warmMed(m, 'webinfer-cpu'), warmMed(m, 'tfjs-cpu')))} |`);
}
p();
p('\\* under 2 ms: the mean of 100 predicts timed together (the page timer has 0.1 ms resolution); otherwise the median of the N timed predicts.');
p();
p('### First predict (includes pipeline / shader creation), ms');
p();
p('| model | webinfer-webgpu | tfjs-webgpu | ratio | webinfer-cpu | tfjs-wasm | ratio | tfjs-cpu |');
p('|---|---|---|---|---|---|---|---|');
const first = (m, id) => (ok(cell(m, id)) ? cell(m, id).firstMs : null);
for (const m of models) {
  p(`| ${m} | ${ms(first(m, 'webinfer-webgpu'))} | ${ms(first(m, 'tfjs-webgpu'))} | ${rx(ratio(first(m, 'webinfer-webgpu'), first(m, 'tfjs-webgpu')))} | ${ms(first(m, 'webinfer-cpu'))} | ${ms(first(m, 'tfjs-wasm'))} | ${rx(ratio(first(m, 'webinfer-cpu'), first(m, 'tfjs-wasm')))} | ${ms(first(m, 'tfjs-cpu'))} |`);
}
p();
p('### Every cell: spread and agreement');
p();
p('load = this cell\'s cold load (fresh URL), in ms. max |d| = largest difference from tfjs-cpu\'s output over a strided sample of output 0 (up to 2048 values).');
p();
p('| model | engine | load | first | warm median | min - max | IQR | n | mean of 100 (if median < 2 ms) | max abs d vs tfjs-cpu |');
p('|---|---|---|---|---|---|---|---|---|---|');
for (const c of b.cells) {
  if (c.error) { p(`| ${c.model} | ${c.id} | error: ${c.error.replace(/\|/g, '/')} | | | | | | | |`); continue; }
  const w = c.warm;
  p(`| ${c.model} | ${c.id} | ${ms(c.loadMs)} | ${ms(c.firstMs)} | ${ms(w.median)} | ${ms(w.min)} - ${ms(w.max)} | ${ms(w.q1)} - ${ms(w.q3)} | ${w.n} | ${c.batch ? ms(c.batch.meanMs) : ''} | ${c.vsTfjsCpu ? c.vsTfjsCpu.maxAbsDiff.toExponential(1) : 'n/a'} |`);
}
p();

p('## Loading');
p();
p(`Command: \`${command}\`. webinfer \`loadLayersModel(url, {backend: 'cpu'})\` against tfjs \`tf.loadLayersModel(url)\` on the wasm backend, same files, same local server (127.0.0.1, no compression; every response carries \`Cache-Control: ${b.server.cacheControl}\`, \`Last-Modified\` and an \`ETag\`). A load is timed until the model can predict: download, parse, dequantization and weights handed to the engine (webinfer: packed into its CPU engine; tfjs: tensors written into the wasm heap). Cold: a fresh URL each time (empty HTTP cache; webinfer's Cache API entry deleted first). webinfer's load resolves once the model can predict, with its shards already streamed into the Cache API; the browser may still be committing the entries, which \`whenCached()\` waits for (the benchmark waits for it between loads, untimed). "raw fetch" is plain \`fetch()\` of the same files at a fresh URL (model.json, then every shard at once, each read to the end with \`arrayBuffer()\`), timed in the same page between the cold loads, each followed by the same webinfer load with \`cache: false\` (nothing written into the Cache API; a raw fetch writes nothing either). Warm: the same URL after one priming load; webinfer reads its Cache API entry, tfjs relies on the browser's HTTP cache (max-age, so no revalidation). "requests" counts the requests that reached the server during the warm loads (0 = all served from a cache). MB/s = model bytes / median time. ${b.loads[0]?.cold?.n ?? ''} cold loads (each followed by a raw fetch) and as many warm loads per row, after the page's first cold load and raw fetch, which are not in the medians: the first load of a page also compiles the engine's code (WebAssembly and JS functions are compiled and optimised as they are first called) and opens the connection; it is the "first" column.`);
p();
p('| model | MB | engine | first cold load of the page ms | cold median (min - max) ms | cold MB/s | warm median (min - max) ms | warm MB/s | requests during warm loads |');
p('|---|---|---|---|---|---|---|---|---|');
for (const l of b.loads) {
  if (l.error) { p(`| ${l.model} | ${mb(l.modelBytes)} | ${l.id} | error: ${l.error} | | | | | |`); continue; }
  p(`| ${l.model} | ${mb(l.modelBytes)} | ${l.id} | ${l.firstLoad == null ? 'n/a' : ms(l.firstLoad)} | ${ms(l.cold.median)} (${ms(l.cold.min)} - ${ms(l.cold.max)}) | ${l.coldMBps.toFixed(1)} | ${ms(l.warm.median)} (${ms(l.warm.min)} - ${ms(l.warm.max)}) | ${l.warmMBps.toFixed(1)} | ${l.warmRequestsToServer} of ${l.warm.n} loads |`);
}
const loadModels = [...new Set(b.loads.map((l) => l.model))];
p();
p('| model | cold webinfer / tfjs | warm webinfer / tfjs | raw fetch median (min - max) ms | cold webinfer / raw fetch | the same, paired: median of each cold load / the raw fetch after it | webinfer cold load with `cache: false`, median ms | that / raw fetch |');
p('|---|---|---|---|---|---|---|---|');
for (const m of loadModels) {
  const a = load(m, 'webinfer-cpu'); const t = load(m, 'tfjs-wasm');
  const raw = a?.raw ? `${ms(a.raw.median)} (${ms(a.raw.min)} - ${ms(a.raw.max)})` : 'n/a';
  // Each cold load and the raw fetch right after it see the machine in the same state.
  const pairs = a?.raw ? a.cold.runs.map((c, i) => c / a.raw.runs[i]).filter((x) => Number.isFinite(x)) : [];
  const paired = pairs.length ? [...pairs].sort((x, y) => x - y)[Math.floor(pairs.length / 2)] : null;
  const uncached = a?.uncached ? `${ms(a.uncached.median)} (${ms(a.uncached.min)} - ${ms(a.uncached.max)})` : 'n/a';
  p(`| ${m} | ${rx(ratio(a?.cold.median, t?.cold.median))} | ${rx(ratio(a?.warm.median, t?.warm.median))} | ${raw} | ${rx(ratio(a?.cold.median, a?.raw?.median))} | ${rx(paired)} | ${uncached} | ${rx(ratio(a?.uncached?.median, a?.raw?.median))} |`);
}
p();

p('## Download size');
p();
p('What a page downloads to run a layers-model, besides the model itself (raw bytes and `gzip -9`; a server may use brotli instead). webinfer ships three modules: with both backends, CPU-only (no WebGPU code), and CPU-only for layers-models (no graph-model code either), each built twice (plain SIMD and relaxed-SIMD); `webinfer.js` loads one of them: the full one where the page has WebGPU (`navigator.gpu`), the CPU-only one where it has not or when the page asks for it (`init({backend: \'cpu\'})`), the layers-only one when the page adds `graphModels: false` (what the webinfer-cpu cells above load); tfjs needs core + layers + a backend (tf.min.js is the all-in-one bundle most pages use; it also contains the converter, data, webgl and cpu backends).');
p();
p('| what | raw | gzip | files |');
p('|---|---|---|---|');
for (const s of sizes) p(`| ${s.what} | ${kb(s.raw)} | ${kb(s.gzip)} | ${s.files.map((f) => `\`${f.replace(/^bench\/node_modules\/@tensorflow\//, '')}\``).join(', ')} |`);
p();

p('## Memory');
p();
p('Per cell, sampled at four points (start after the engine is initialised and a forced GC, after load, after the first predict, after the warm predicts); "peak" is the largest sample, so a transient peak between samples can be missed. JS heap: `performance.memory.usedJSHeapSize` (Chromium, `--enable-precise-memory-info`); it includes the engine\'s own JS (tf.min.js is ~5 MB of heap before any model). WASM memory: webinfer\'s `memory.buffer.byteLength` (the module\'s exports, returned by `init()`), tfjs-wasm\'s `HEAPU8.buffer.byteLength`; WASM memory only grows, so the last value is the peak. tfjs tensors: `tf.memory().numBytes` after the warm predicts (weights + live tensors). GPU buffers: webinfer\'s `memoryStats().gpuBufferBytes` (every buffer its engines hold), tfjs\'s `numBytesAllocatedInGPU`, both after the warm predicts with the model loaded. Not measurable here: memory held by the browser\'s GPU process beyond those buffers.');
p();
p('| model | engine | JS heap start | JS heap peak | WASM memory start | WASM memory end | tfjs numBytes | GPU buffer bytes (webinfer: memoryStats; tfjs: numBytesAllocatedInGPU) |');
p('|---|---|---|---|---|---|---|---|');
const memModels = quick ? models : ['mobilenet_v2', 'conv_heavy', 'dense_heavy'];
const memCells = b.cells.filter((x) => memModels.includes(x.model) && !x.error);
const gpuOf = (c) => c.mem.afterPredict?.gpuBytes ?? c.mem.afterPredict?.tf?.numBytesAllocatedInGPU ?? null;
for (const c of memCells) {
  const heapStart = c.heap[0][1]; const heapPeak = Math.max(...c.heap.map((h) => h[1] ?? 0));
  const w0 = c.wasm[0][1]; const w1 = c.wasm[c.wasm.length - 1][1];
  const tfm = c.mem.afterPredict?.tf;
  const gpu = gpuOf(c);
  p(`| ${c.model} | ${c.id} | ${mib(heapStart)} | ${mib(heapPeak)} | ${mib(w0)} | ${mib(w1)} | ${tfm ? mib(tfm.numBytes) : 'n/a'} | ${gpu != null ? mib(gpu) : 'n/a'} |`);
}
p();
p('The engines\' own memory, side by side: on the CPU path the WASM memory at its peak (webinfer-cpu against tfjs-wasm); on the WebGPU path the WASM memory plus the GPU buffers after the predicts (webinfer) against the JS heap growth from start to peak plus the GPU bytes allocated (tfjs-webgpu keeps its weights and tensors in JS and on the GPU).');
p();
p('| model | path | webinfer | tfjs | webinfer / tfjs |');
p('|---|---|---|---|---|');
const cellOf = (m, id) => memCells.find((c) => c.model === m && c.id === id);
for (const m of memModels) {
  const wc = cellOf(m, 'webinfer-cpu'); const tw = cellOf(m, 'tfjs-wasm');
  if (wc && tw) {
    const a = wc.wasm[wc.wasm.length - 1][1]; const t = tw.wasm[tw.wasm.length - 1][1];
    p(`| ${m} | CPU (WASM) | ${mib(a)} | ${mib(t)} | ${rx(ratio(a, t))} |`);
  }
  const wg = cellOf(m, 'webinfer-webgpu'); const tg = cellOf(m, 'tfjs-webgpu');
  if (wg && tg && gpuOf(wg) != null && gpuOf(tg) != null) {
    const a = wg.wasm[wg.wasm.length - 1][1] + gpuOf(wg);
    const heapGrowth = Math.max(...tg.heap.map((h) => h[1] ?? 0)) - tg.heap[0][1];
    const t = heapGrowth + gpuOf(tg);
    p(`| ${m} | WebGPU | ${mib(a)} | ${mib(t)} | ${rx(ratio(a, t))} |`);
  }
}
p();
const peakCells = memCells.filter((c) => c.mem.afterPredict?.heapPeakBytes != null);
if (peakCells.length) {
  p('webinfer\'s WASM memory, taken apart: the Rust heap at its peak (`memoryStats().heapPeakBytes`, the most ever allocated at once: the weights plus what a load or predict holds besides); the rest is the module\'s stack (256 KiB, `crates/webinfer-web/build.rs`) and static data (together the WASM memory at start) and free space the allocator could not reuse for a larger block.');
  p();
  p('| model | engine | WASM memory end | Rust heap peak | rest |');
  p('|---|---|---|---|---|');
  for (const c of peakCells) {
    const w1 = c.wasm[c.wasm.length - 1][1]; const hp = c.mem.afterPredict.heapPeakBytes;
    p(`| ${c.model} | ${c.id} | ${mib(w1)} | ${mib(hp)} | ${mib(w1 - hp)} |`);
  }
  p();
}

p('## Native');
p();
p(`Machine: ${machine.cores} cores (${machine.cpuModel}), ${machine.rustc}, release builds. GPU = wgpu on lavapipe (${machine.lavapipe}): a CPU emulating a GPU, for correctness; never read its figures as GPU performance.`);
p();
const cpuMed = nativeMedian(readNative('cli_cpu'));
if (cpuMed != null && headline.mobilenetWasmCpu.tfjs != null) {
  p(`For scale: native webinfer CPU runs MobileNetV2 in ${ms(cpuMed)} ms (2 threads) against ${ms(headline.mobilenetWasmCpu.webinfer)} ms for webinfer-cpu in the browser (WASM, 1 thread) and ${ms(headline.mobilenetWasmCpu.tfjs)} ms for tfjs-wasm.`);
  p();
}
for (const [name, title] of [['cli_cpu', 'MobileNetV2, CPU backend'], ['cli_gpu', 'MobileNetV2, GPU backend (lavapipe)'], ['kernel_bench', 'CPU kernels next to the gemm crate'], ['gpu_bench', 'GPU microbenchmarks (--quick, lavapipe)']]) {
  const t = readNative(name);
  p(`### ${title}`);
  p();
  p('```');
  p(t ?? '(not run)');
  p('```');
  p();
}

p('## What is not measured, and caveats');
p();
p('- No hardware GPU: WebGPU in Chromium is SwiftShader and native wgpu is lavapipe, both software. GPU ratios here say nothing reliable about a real GPU.');
p('- GPU memory (webinfer on WebGPU) has no API to read; tfjs\'s figure is its own bookkeeping.');
p('- Peak memory is sampled at four points, not traced; a transient peak inside `load` or `predict` can be missed.');
p('- tfjs-backend-wasm multi-threading needs a cross-origin-isolated page (COOP/COEP); not tested here (2 cores; webinfer\'s WASM engine is single-threaded as well).');
p('- webinfer\'s cold load includes writing every file into the Cache API (its default, `cache: true`); tfjs\'s cold load writes nothing (the HTTP cache fills in the background). The same load with `cache: false` is in the loading table beside it.');
p('- The package and the CLI are built from the working tree at the time of the run (see "webinfer <commit>" above; "+ uncommitted changes" means the tree differed from the commit).');
p('- Loads are from 127.0.0.1: cold loads measure parse / upload more than network; no compression, no throttling.');
p('- tfjs-webgpu uploads weights lazily (at the first predict), so its "load" is cheaper and its "first" dearer than webinfer\'s; compare load + first for the whole cost.');
if (b.errors.length) {
  p();
  p('Errors during this run:');
  p();
  for (const e of b.errors) p(`- ${e}`);
}
p();
fs.writeFileSync(mdFile, L.join('\n'));
console.log(`report: ${path.relative(REPO, mdFile)}, ${relOut}`);
console.log(`headline: mobilenet webgpu ${headline.mobilenetWebgpu.ratio?.toFixed(2)}x, wasm-cpu ${headline.mobilenetWasmCpu.ratio?.toFixed(2)}x, warm load ${headline.warmLoad.ratio?.toFixed(2)}x`);
