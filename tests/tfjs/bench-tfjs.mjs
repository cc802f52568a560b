#!/usr/bin/env node
// Time TensorFlow.js (node, no tfjs-node) on a model directory written by real-model.mjs.
//
//   node tests/tfjs/bench-tfjs.mjs MODEL_DIR [--backend wasm|cpu] [--runs N]
//
// MODEL_DIR holds model.json + shards + input_0.npy. Does one warm-up predict (reported as
// first_ms: it includes kernel/program setup) then N timed predicts, each ending with a
// data download (`await y.data()`), and prints one JSON line on stdout:
//   {backend, model, first_ms, median_ms, min_ms, runs, ...}
// tfjs's "install tfjs-node" banner goes to stderr.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { diskHandler, inputShapeOf, isGraphModel, readModelJson, readNpy, syntheticImage } from './real-model.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));

function parseArgs(argv) {
  const o = { dir: null, backend: 'wasm', runs: 20, threads: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--backend') o.backend = val();
    else if (a.startsWith('--backend=')) o.backend = a.slice(10);
    else if (a === '--runs') o.runs = Number(val());
    else if (a.startsWith('--runs=')) o.runs = Number(a.slice(7));
    else if (a === '--threads') o.threads = Number(val());
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else if (o.dir == null) o.dir = a;
    else throw new Error(`unexpected argument ${a}`);
  }
  if (!o.dir) throw new Error('usage: bench-tfjs.mjs MODEL_DIR [--backend wasm|cpu] [--runs N] [--threads N]');
  if (!['wasm', 'cpu'].includes(o.backend)) throw new Error(`backend must be wasm or cpu, not ${o.backend}`);
  if (!(Number.isInteger(o.runs) && o.runs >= 1)) throw new Error('--runs must be a positive integer');
  return o;
}

function findWasmDist() {
  for (let d = HERE; ; d = path.dirname(d)) {
    const cand = path.join(d, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');
    if (fs.existsSync(path.join(cand, 'tfjs-backend-wasm.wasm'))) return cand;
    if (path.dirname(d) === d) throw new Error('@tensorflow/tfjs-backend-wasm not installed (npm ci in tests/tfjs)');
  }
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const dir = path.resolve(o.dir);
  const tf = await import('@tensorflow/tfjs');
  let wasmInfo;
  if (o.backend === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    // In node, emscripten reads the .wasm with fs: a plain directory path (with trailing
    // separator) works; a file:// URL does not.
    wasm.setWasmPaths(findWasmDist() + path.sep);
    if (o.threads) wasm.setThreadsCount(o.threads);
    if (!(await tf.setBackend('wasm'))) throw new Error('tf.setBackend("wasm") failed');
    await tf.ready();
    wasmInfo = {
      simd: await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'),
      multithread: await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'),
      threads: wasm.getThreadsCount(),
    };
  } else {
    await tf.setBackend('cpu');
    await tf.ready();
  }

  const json = readModelJson(dir);
  const graph = isGraphModel(json);
  let input;
  const npyPath = path.join(dir, 'input_0.npy');
  if (fs.existsSync(npyPath)) input = readNpy(npyPath);
  else {
    const shape = inputShapeOf(json);
    input = { shape, data: syntheticImage(shape[1], shape[2], shape[3]) };
  }

  const tLoad0 = performance.now();
  const model = graph ? await tf.loadGraphModel(diskHandler(dir)) : await tf.loadLayersModel(diskHandler(dir));
  const load_ms = performance.now() - tLoad0;
  const x = tf.tensor(input.data, input.shape, 'float32');

  const once = async () => {
    const t0 = performance.now();
    const y = model.predict(x);
    const out = Array.isArray(y) ? y[0] : y;
    const v = await out.data();
    const ms = performance.now() - t0;
    tf.dispose(y);
    return { ms, v };
  };

  const first = await once();
  const times = [];
  let last = first.v;
  for (let i = 0; i < o.runs; i++) {
    const r = await once();
    times.push(r.ms);
    last = r.v;
  }
  const sorted = [...times].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;

  // Compare with the cpu-backend golden when present.
  let max_abs_diff_vs_expected;
  const expPath = path.join(dir, 'expected_0.npy');
  if (fs.existsSync(expPath)) {
    const e = readNpy(expPath).data;
    if (e.length === last.length) {
      max_abs_diff_vs_expected = 0;
      for (let i = 0; i < e.length; i++) max_abs_diff_vs_expected = Math.max(max_abs_diff_vs_expected, Math.abs(e[i] - last[i]));
    }
  }

  const r3 = (t) => Math.round(t * 1000) / 1000;
  const result = {
    backend: tf.getBackend(),
    model: path.basename(dir),
    format: graph ? 'graph-model' : 'layers-model',
    first_ms: r3(first.ms),
    median_ms: r3(median),
    min_ms: r3(sorted[0]),
    runs: o.runs,
    load_ms: r3(load_ms),
    input_shape: input.shape,
    max_abs_diff_vs_expected,
    tfjs_version: tf.version.tfjs,
    node: process.version,
    cpus: os.cpus().length,
    ...(wasmInfo ? { wasm: wasmInfo } : {}),
  };
  tf.dispose(x);
  model.dispose();
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
