#!/usr/bin/env node
// Real pretrained models from the nsfwjs npm package, turned back into model.json + shard files,
// and TensorFlow.js (cpu backend) reference outputs for them.
//
//   node tests/tfjs/real-model.mjs extract   OUT_DIR   # OUT_DIR/<name>/model.json + shards
//   node tests/tfjs/real-model.mjs reference OUT_DIR   # input_0.npy, expected_0.npy, reference.json
//
// nsfwjs@4.4.0 ships each model as browserify/UMD bundles in dist/models/<name>/:
//   model.min.js               -> module.exports = the model.json object
//   groupN-shardKofM.min.js    -> module.exports = the shard bytes as a base64 string
// They are evaluated in a `vm` sandbox with a fake module/exports (no require, no globals).

import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));

export const MODELS = ['mobilenet_v2', 'mobilenet_v2_mid', 'inception_v3'];

// Bytes per element of the stored (possibly quantized) weight data.
const DTYPE_BYTES = { float32: 4, int32: 4, uint8: 1, uint16: 2, float16: 2, bool: 1 };

function nsfwjsModelsDir() {
  // nsfwjs's "exports" map hides package.json and dist/models, so walk node_modules by hand.
  for (let d = HERE; ; d = path.dirname(d)) {
    const cand = path.join(d, 'node_modules', 'nsfwjs', 'dist', 'models');
    if (fs.existsSync(cand)) return cand;
    if (path.dirname(d) === d) break;
  }
  throw new Error(`nsfwjs not found in node_modules above ${HERE}: run npm ci in tests/tfjs`);
}

// Evaluate a UMD/browserify bundle in an isolated context and return what it exports.
function evalBundle(file) {
  const src = fs.readFileSync(file, 'utf8');
  const module = { exports: {} };
  let amdValue;
  let amdCalled = false;
  const sandbox = {
    module,
    exports: module.exports,
    // Only used if the CommonJS branch is not taken.
    define: Object.assign((deps, factory) => {
      amdCalled = true;
      amdValue = typeof deps === 'function' ? deps() : factory();
    }, { amd: {} }),
  };
  sandbox.window = sandbox;
  sandbox.self = sandbox;
  sandbox.global = sandbox;
  vm.runInNewContext(src, sandbox, { filename: file, timeout: 60_000 });
  const out = amdCalled ? amdValue : module.exports;
  if (out === undefined || (typeof out === 'object' && out !== null && Object.keys(out).length === 0)) {
    throw new Error(`${file}: the bundle exported nothing`);
  }
  // Copy out of the sandbox realm (plain JSON data / string).
  return typeof out === 'string' ? String(out) : JSON.parse(JSON.stringify(out));
}

function expectedGroupBytes(group) {
  let total = 0;
  for (const w of group.weights) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    const dt = w.quantization ? w.quantization.dtype : w.dtype;
    const size = DTYPE_BYTES[dt];
    if (size === undefined) throw new Error(`weight ${w.name}: unsupported dtype ${dt}`);
    total += n * size;
  }
  return total;
}

function extract(outDir) {
  const src = nsfwjsModelsDir();
  const nsfwVersion = JSON.parse(fs.readFileSync(path.join(src, '..', '..', 'package.json'), 'utf8')).version;
  const written = [];
  for (const name of MODELS) {
    const dir = path.join(src, name);
    const modelJson = evalBundle(path.join(dir, 'model.min.js'));
    if (!modelJson.modelTopology || !Array.isArray(modelJson.weightsManifest)) {
      throw new Error(`${name}: model.min.js does not look like a model.json`);
    }
    const out = path.join(outDir, name);
    fs.mkdirSync(out, { recursive: true });
    for (const [gi, group] of modelJson.weightsManifest.entries()) {
      let got = 0;
      for (const p of group.paths) {
        if (p.includes('/') || p.includes('..')) throw new Error(`${name}: unexpected shard path ${p}`);
        const b64 = evalBundle(path.join(dir, `${p}.min.js`));
        if (typeof b64 !== 'string') throw new Error(`${name}/${p}: shard bundle is not a string`);
        const bytes = Buffer.from(b64, 'base64');
        fs.writeFileSync(path.join(out, p), bytes);
        written.push([path.join(out, p), bytes.length]);
        got += bytes.length;
      }
      const want = expectedGroupBytes(group);
      if (got !== want) {
        throw new Error(`${name}: weight group ${gi} has ${got} bytes, the manifest implies ${want}`);
      }
    }
    const jsonPath = path.join(out, 'model.json');
    fs.writeFileSync(jsonPath, JSON.stringify(modelJson));
    written.push([jsonPath, fs.statSync(jsonPath).size]);
    const nW = modelJson.weightsManifest.reduce((a, g) => a + g.weights.length, 0);
    console.log(`extracted ${name} (nsfwjs ${nsfwVersion}): format=${modelJson.format ?? '(none: layers-model)'}, ` +
      `${nW} weights in ${modelJson.weightsManifest.reduce((a, g) => a + g.paths.length, 0)} shard(s), sizes verified`);
  }
  for (const [f, n] of written) console.log(`  wrote ${f} (${n} bytes)`);
}

// ---------------------------------------------------------------------------------------------
// .npy (v1.0, float32 little-endian, C order)

function npyHeader(shape) {
  const shapeStr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  const pre = 10; // magic (6) + version (2) + header len (2)
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  dict = dict + ' '.repeat(total - pre - dict.length - 1) + '\n';
  const buf = Buffer.alloc(pre + dict.length);
  buf.write('\x93NUMPY', 0, 'latin1');
  buf[6] = 1;
  buf[7] = 0;
  buf.writeUInt16LE(dict.length, 8);
  buf.write(dict, pre, 'latin1');
  return buf;
}

export function writeNpy(file, shape, data) {
  const n = shape.reduce((a, b) => a * b, 1);
  if (data.length !== n) throw new Error(`writeNpy ${file}: ${data.length} values for shape ${shape}`);
  const f32 = Float32Array.from(data);
  const body = Buffer.alloc(n * 4);
  for (let i = 0; i < n; i++) body.writeFloatLE(f32[i], i * 4);
  fs.writeFileSync(file, Buffer.concat([npyHeader(shape), body]));
}

export function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + hlen);
  if (!header.includes("'<f4'")) throw new Error(`${file}: only <f4 is supported (${header})`);
  if (header.includes("'fortran_order': True")) throw new Error(`${file}: fortran order unsupported`);
  const m = header.match(/'shape':\s*\(([^)]*)\)/);
  const shape = m[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = buf.readFloatLE(start + hlen + i * 4);
  return { shape, data };
}

// ---------------------------------------------------------------------------------------------
// Loading a model from disk (tfjs IOHandler)

export function diskHandler(modelDir) {
  return {
    async load() {
      const json = JSON.parse(fs.readFileSync(path.join(modelDir, 'model.json'), 'utf8'));
      const weightSpecs = [];
      const parts = [];
      for (const group of json.weightsManifest ?? []) {
        for (const p of group.paths) parts.push(fs.readFileSync(path.join(modelDir, p)));
        weightSpecs.push(...group.weights);
      }
      const all = Buffer.concat(parts);
      const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
      const artifacts = { modelTopology: json.modelTopology, weightSpecs, weightData };
      for (const k of ['format', 'generatedBy', 'convertedBy', 'userDefinedMetadata', 'trainingConfig', 'signature', 'modelInitializer']) {
        if (json[k] != null) artifacts[k] = json[k];
      }
      return artifacts;
    },
  };
}

export function readModelJson(modelDir) {
  return JSON.parse(fs.readFileSync(path.join(modelDir, 'model.json'), 'utf8'));
}

export function isGraphModel(json) {
  return json.format === 'graph-model' || (json.modelTopology && Array.isArray(json.modelTopology.node));
}

// Input shape [1, H, W, C] from a model.json (layers: batch_input_shape of the first InputLayer;
// graph: the signature / Placeholder shape).
export function inputShapeOf(json) {
  if (isGraphModel(json)) {
    const sig = json.signature ?? json.userDefinedMetadata?.signature;
    let dims;
    if (sig && sig.inputs) {
      const first = Object.values(sig.inputs)[0];
      dims = first.tensorShape.dim.map((d) => Number(d.size));
    } else {
      const ph = json.modelTopology.node.find((n) => n.op === 'Placeholder');
      dims = ph.attr.shape.shape.dim.map((d) => Number(d.size));
    }
    return dims.map((d) => (d < 0 ? 1 : d));
  }
  const topo = json.modelTopology.model_config ?? json.modelTopology;
  const layers = topo.config.layers ?? topo.config;
  const inp = layers.find((l) => l.class_name === 'InputLayer');
  const shape = inp ? inp.config.batch_input_shape : layers[0].config.batch_input_shape;
  return shape.map((d) => (d == null ? 1 : d));
}

// A smooth deterministic synthetic image in [0,1], shape [1,H,W,3] (NHWC), computed in f64
// and stored as f32.
export function syntheticImage(h, w, c = 3) {
  const data = new Float32Array(h * w * c);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const r = 0.5 + 0.5 * Math.sin(x * 0.07 + y * 0.03);
      const g = 0.5 + 0.5 * Math.cos(x * 0.045 - y * 0.06 + 0.5);
      const b = 0.5 + 0.5 * Math.sin(Math.hypot(x - w * 0.4, y - h * 0.6) * 0.09);
      const px = [r, g, b];
      for (let k = 0; k < c; k++) data[(y * w + x) * c + k] = px[k % 3];
    }
  }
  return data;
}
export const SYNTHETIC_FORMULA =
  'x,y pixel coords: r=0.5+0.5*sin(0.07x+0.03y), g=0.5+0.5*cos(0.045x-0.06y+0.5), ' +
  'b=0.5+0.5*sin(0.09*hypot(x-0.4W, y-0.6H)); computed in f64, stored as f32';

async function loadTf(backend) {
  const tf = await import('@tensorflow/tfjs');
  await tf.setBackend(backend);
  await tf.ready();
  return tf;
}

async function reference(outDir, only) {
  const tf = await loadTf('cpu');
  const names = only.length ? only : MODELS;
  for (const name of names) {
    const dir = path.join(outDir, name);
    if (!fs.existsSync(path.join(dir, 'model.json'))) throw new Error(`${dir}/model.json missing: run extract first`);
    const json = readModelJson(dir);
    const graph = isGraphModel(json);
    const inShape = inputShapeOf(json);
    const [, h, w, c] = inShape;
    const input = syntheticImage(h, w, c);
    writeNpy(path.join(dir, 'input_0.npy'), inShape, input);

    const t0 = performance.now();
    const model = graph ? await tf.loadGraphModel(diskHandler(dir)) : await tf.loadLayersModel(diskHandler(dir));
    const tLoad = performance.now() - t0;
    const x = tf.tensor(input, inShape, 'float32');
    const t1 = performance.now();
    const y = model.predict(x);
    const out = Array.isArray(y) ? y[0] : y;
    const values = await out.data();
    const tPredict = performance.now() - t1;
    const outShape = out.shape.slice();
    writeNpy(path.join(dir, 'expected_0.npy'), outShape, values);

    const idx = Array.from(values.keys()).sort((a, b) => values[b] - values[a] || a - b).slice(0, 5);
    const ref = {
      model: name,
      source: 'nsfwjs@4.4.0 dist/models/' + name,
      format: graph ? 'graph-model' : 'layers-model',
      input_name: graph ? model.inputs[0].name : model.inputNames[0],
      output_name: graph ? model.outputs[0].name : model.outputNames[0],
      input_shape: inShape,
      input_range: '[0,1] (nsfwjs divides 0..255 pixels by 255)',
      input_formula: SYNTHETIC_FORMULA,
      output_shape: outShape,
      top5: idx.map((i) => ({ index: i, value: values[i] })),
      classes: ['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy'],
      tfjs_version: tf.version.tfjs,
      backend: tf.getBackend(),
    };
    fs.writeFileSync(path.join(dir, 'reference.json'), JSON.stringify(ref, null, 2) + '\n');
    console.log(`reference ${name}: in ${JSON.stringify(inShape)} -> out ${JSON.stringify(outShape)} ` +
      `top5 ${JSON.stringify(ref.top5.map((t) => [t.index, +t.value.toFixed(6)]))} ` +
      `(load ${Math.round(tLoad)} ms, first predict ${Math.round(tPredict)} ms, backend ${ref.backend})`);
    for (const f of ['input_0.npy', 'expected_0.npy', 'reference.json']) {
      console.log(`  wrote ${path.join(dir, f)} (${fs.statSync(path.join(dir, f)).size} bytes)`);
    }
    tf.dispose([x, y]);
    model.dispose();
  }
}

async function main() {
  const [cmd, outDir, ...rest] = process.argv.slice(2);
  if (!cmd || !outDir || !['extract', 'reference'].includes(cmd)) {
    console.error('usage: real-model.mjs extract OUT_DIR\n       real-model.mjs reference OUT_DIR [MODEL...]');
    process.exit(2);
  }
  for (const m of rest) if (!MODELS.includes(m)) throw new Error(`unknown model ${m} (know ${MODELS.join(', ')})`);
  if (cmd === 'extract') extract(path.resolve(outDir));
  else await reference(path.resolve(outDir), rest);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(e && e.stack ? e.stack : e);
    process.exit(1);
  });
}
