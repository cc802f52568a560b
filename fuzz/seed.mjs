#!/usr/bin/env node
// Writes the seed corpora of the fuzz targets from the conformance fixtures, so no binary
// seeds are committed:
//
//   node fuzz/seed.mjs [OUT_DIR]          (default fuzz/seeds; scripts/fuzz.sh calls it)
//
//   OUT/model_json/*         each fixture's model.json, two hand-written graph-models and,
//                            when scripts/fetch-models.sh has run, the real models' model.json
//                            files under 128 KiB
//   OUT/weights/*            weightsManifest JSON, a NUL byte, then the shards in manifest order
//   OUT/model_from_memory/*  model.json, a NUL byte, then the shards in manifest order
//
// A fuzz input is `JSON \0 BYTES` (fuzz/src/lib.rs): JSON text never holds a raw NUL.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const out = path.resolve(process.argv[2] ?? path.join(here, 'seeds'));
const targets = ['model_json', 'weights', 'model_from_memory'];
for (const t of targets) {
  fs.rmSync(path.join(out, t), { recursive: true, force: true });
  fs.mkdirSync(path.join(out, t), { recursive: true });
}
const write = (target, name, ...parts) =>
  fs.writeFileSync(path.join(out, target, name), Buffer.concat(parts.map((p) => Buffer.from(p))));
const NUL = Buffer.from([0]);

function shardsOf(dir, manifest) {
  return Buffer.concat(
    manifest.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(dir, p)))),
  );
}

// 1. The fixtures: layers-models made by tfjs, every weight dtype and quantization.
const fixtures = path.join(root, 'tests', 'fixtures');
let count = 0;
for (const name of fs.readdirSync(fixtures).sort()) {
  const dir = path.join(fixtures, name);
  const file = path.join(dir, 'model.json');
  if (!fs.existsSync(file)) continue;
  const json = fs.readFileSync(file);
  const manifest = JSON.parse(json).weightsManifest ?? [];
  const shards = shardsOf(dir, manifest);
  write('model_json', name, json);
  write('weights', name, JSON.stringify(manifest), NUL, shards);
  write('model_from_memory', name, json, NUL, shards);
  count++;
}

// 2. Small graph-models (the converter's GraphDef form), with their weights.
const b64 = (s) => Buffer.from(s).toString('base64');
const ints = (...v) => ({ list: { i: v.map(String) } });
const strs = (...v) => ({ list: { s: v.map(b64) } });
const dims = (shape) => ({ dim: shape.map((d) => ({ size: String(d) })) });
const placeholder = (name, shape) => ({
  name, op: 'Placeholder',
  attr: { shape: { shape: dims(shape) }, dtype: { type: 'DT_FLOAT' } },
});
function graphModel(name, nodes, consts) {
  // consts: [name, shape, dtype, values]
  const weights = [];
  const bytes = [];
  for (const [cname, shape, dtype, values] of consts) {
    const tfType = dtype === 'int32' ? 'DT_INT32' : 'DT_FLOAT';
    nodes.unshift({
      name: cname, op: 'Const',
      attr: { value: { tensor: { dtype: tfType, tensorShape: dims(shape) } }, dtype: { type: tfType } },
    });
    weights.push({ name: cname, shape, dtype });
    const arr = dtype === 'int32' ? Int32Array.from(values) : Float32Array.from(values);
    bytes.push(Buffer.from(arr.buffer));
  }
  const model = {
    format: 'graph-model', generatedBy: '2.x', convertedBy: 'webinfer fuzz seeds',
    modelTopology: { node: nodes, versions: { producer: 1 } },
    weightsManifest: [{ paths: ['weights.bin'], weights }],
  };
  const json = JSON.stringify(model);
  const shards = Buffer.concat(bytes);
  write('model_json', name, json);
  write('weights', name, JSON.stringify(model.weightsManifest), NUL, shards);
  write('model_from_memory', name, json, NUL, shards);
  count++;
}
const ramp = (n, scale = 0.1) => Array.from({ length: n }, (_, i) => ((i % 11) - 5) * scale);

graphModel('graph_conv', [
  placeholder('x', [-1, 6, 6, 2]),
  { name: 'c1', op: '_FusedConv2D', input: ['x', 'w1', 'b1'],
    attr: { strides: ints(1, 2, 2, 1), dilations: ints(1, 1, 1, 1), padding: { s: b64('SAME') },
      data_format: { s: b64('NHWC') }, fused_ops: strs('BiasAdd', 'Relu6'), T: { type: 'DT_FLOAT' } } },
  { name: 'c2', op: 'FusedDepthwiseConv2dNative', input: ['c1', 'dw', 'db'],
    attr: { strides: ints(1, 1, 1, 1), padding: { s: b64('SAME') }, fused_ops: strs('BiasAdd', 'Relu') } },
  { name: 'p', op: 'AvgPool', input: ['c2'],
    attr: { ksize: ints(1, 3, 3, 1), strides: ints(1, 3, 3, 1), padding: { s: b64('VALID') } } },
  { name: 'r', op: 'Reshape', input: ['p', 'shape'] },
  { name: 'mm', op: '_FusedMatMul', input: ['r', 'mw', 'mb'],
    attr: { fused_ops: strs('BiasAdd'), transpose_b: { b: false } } },
  { name: 'y', op: 'Softmax', input: ['mm'] },
], [
  ['w1', [3, 3, 2, 4], 'float32', ramp(72)],
  ['b1', [4], 'float32', ramp(4)],
  ['dw', [3, 3, 4, 1], 'float32', ramp(36)],
  ['db', [4], 'float32', ramp(4)],
  ['shape', [2], 'int32', [-1, 4]],
  ['mw', [4, 3], 'float32', ramp(12)],
  ['mb', [3], 'float32', ramp(3)],
]);

graphModel('graph_math', [
  placeholder('x', [-1, 2, 5]),
  { name: 'm', op: 'Mean', input: ['x', 'axes'], attr: { keep_dims: { b: true } } },
  { name: 'd', op: 'Sub', input: ['x', 'm'] },
  { name: 's', op: 'Square', input: ['d'] },
  { name: 'v', op: 'Mean', input: ['s', 'axes'], attr: { keep_dims: { b: true } } },
  { name: 'e', op: 'AddV2', input: ['v', 'eps'] },
  { name: 'q', op: 'Rsqrt', input: ['e'] },
  { name: 'n', op: 'Mul', input: ['d', 'q'] },
  { name: 'mx', op: 'Maximum', input: ['n', 'zero'] },
  { name: 't', op: 'Tanh', input: ['mx'] },
  { name: 'y', op: 'Max', input: ['t', 'axes'], attr: { keep_dims: { b: false } } },
], [
  ['axes', [1], 'int32', [-1]],
  ['eps', [], 'float32', [1e-3]],
  ['zero', [], 'float32', [0]],
]);

// 3. The real models' model.json (graph-models and a Keras 2 layers-model), when present.
const real = path.join(root, 'tests', 'real', 'models');
if (fs.existsSync(real)) {
  for (const name of fs.readdirSync(real).sort()) {
    const file = path.join(real, name, 'model.json');
    if (fs.existsSync(file) && fs.statSync(file).size <= 128 << 10) {
      write('model_json', `real_${name}`, fs.readFileSync(file));
    }
  }
}
console.log(`seed.mjs: ${count} models -> ${out}`);
