// Generates the benchmark's synthetic layers-models with TensorFlow.js 4.22.0 in node (cpu
// backend) into bench/out/models/<name>/ (model.json + 4 MiB shards, like the converter).
// Deterministic: every weight comes from a seeded PRNG, so reruns write identical files.
//
//   node bench/gen-models.mjs [--quick]      # skips models whose model.json already exists
//
// Models (--quick: only the small ones):
//   conv_heavy   96x96x3 -> 4 Conv2D (3x3, 32-64-64-128 ch, two strided) -> GAP -> Dense 10
//   dense_heavy  [8,1024] -> Dense 1536 -> 1536 -> 768 -> 10 (relu, softmax), 5.1 M weights
//   dense_N      one Dense N -> N (bias, relu) on a [8, N] batch
//   conv_HxWxC   one Conv2D 3x3 'same' C -> C (bias, relu) on [1, H, W, C]
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const tf = require('@tensorflow/tfjs');

const HERE = path.dirname(fileURLToPath(import.meta.url));
const OUT = path.join(HERE, 'out', 'models');
const quick = process.argv.includes('--quick');

// mulberry32: a tiny seeded PRNG.
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const MODELS = {
  conv_heavy: {
    quick: false,
    input: [1, 96, 96, 3],
    build: () => {
      const m = tf.sequential();
      m.add(tf.layers.conv2d({ inputShape: [96, 96, 3], filters: 32, kernelSize: 3, padding: 'same', activation: 'relu' }));
      m.add(tf.layers.conv2d({ filters: 64, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }));
      m.add(tf.layers.conv2d({ filters: 64, kernelSize: 3, padding: 'same', activation: 'relu' }));
      m.add(tf.layers.conv2d({ filters: 128, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }));
      m.add(tf.layers.globalAveragePooling2d({}));
      m.add(tf.layers.dense({ units: 10, activation: 'softmax' }));
      return m;
    },
  },
  dense_heavy: {
    quick: false,
    input: [8, 1024],
    build: () => {
      const m = tf.sequential();
      m.add(tf.layers.dense({ inputShape: [1024], units: 1536, activation: 'relu' }));
      m.add(tf.layers.dense({ units: 1536, activation: 'relu' }));
      m.add(tf.layers.dense({ units: 768, activation: 'relu' }));
      m.add(tf.layers.dense({ units: 10, activation: 'softmax' }));
      return m;
    },
  },
};
for (const n of [256, 1024, 2048]) {
  MODELS[`dense_${n}`] = {
    quick: n === 256,
    input: [8, n],
    build: () => {
      const m = tf.sequential();
      m.add(tf.layers.dense({ inputShape: [n], units: n, activation: 'relu' }));
      return m;
    },
  };
}
for (const [h, c] of [[56, 32], [28, 128], [14, 256]]) {
  MODELS[`conv_${h}x${h}x${c}`] = {
    quick: h === 56,
    input: [1, h, h, c],
    build: () => {
      const m = tf.sequential();
      m.add(tf.layers.conv2d({ inputShape: [h, h, c], filters: c, kernelSize: 3, padding: 'same', activation: 'relu' }));
      return m;
    },
  };
}

const SHARD = 4 * 1024 * 1024;

async function generate(name, spec, seed) {
  const dir = path.join(OUT, name);
  if (fs.existsSync(path.join(dir, 'model.json'))) return false;
  const model = spec.build();
  const rand = prng(seed);
  // Deterministic weights: uniform in +-sqrt(3/fan_in) (variance 1/fan_in), small biases.
  model.setWeights(
    model.getWeights().map((w) => {
      const shape = w.shape;
      const fanIn = shape.length > 1 ? shape.slice(0, -1).reduce((a, b) => a * b, 1) : 1;
      const lim = shape.length > 1 ? Math.sqrt(3 / fanIn) : 0.1;
      const data = new Float32Array(w.size);
      for (let i = 0; i < data.length; i += 1) data[i] = (rand() * 2 - 1) * lim;
      return tf.tensor(data, shape);
    }),
  );
  let artifacts;
  await model.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return { modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: 'JSON' } };
  }));
  fs.mkdirSync(dir, { recursive: true });
  const bytes = new Uint8Array(artifacts.weightData);
  const n = Math.max(1, Math.ceil(bytes.length / SHARD));
  const paths = [];
  for (let i = 0; i < n; i += 1) {
    const p = `group1-shard${i + 1}of${n}.bin`;
    fs.writeFileSync(path.join(dir, p), bytes.subarray(i * SHARD, (i + 1) * SHARD));
    paths.push(p);
  }
  const json = {
    format: 'layers-model',
    generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
    convertedBy: null,
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths, weights: artifacts.weightSpecs }],
  };
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
  fs.writeFileSync(path.join(dir, 'bench.json'), JSON.stringify({ name, input: spec.input, weights: bytes.length }, null, 1));
  return true;
}

await tf.setBackend('cpu');
let seed = 1;
for (const [name, spec] of Object.entries(MODELS)) {
  seed += 1;
  if (quick && !spec.quick) continue;
  const made = await generate(name, spec, seed * 7919);
  console.log(`gen-models: ${name} ${made ? 'written' : 'present'}`);
}
