// Golden weight hashes for the real pretrained models, computed by tfjs itself.
//
// Usage (from the workspace root, after the real models are in tests/real/models/):
//   node crates/webinfer-tfjs/tests/golden/gen-real-weight-hashes.mjs
// writes real-weight-hashes.txt beside this script. Each line:
//   <model dir> <element count> <hash> <weight name>
// where <hash> folds the 32-bit patterns of the decoded values (float32/int32 bits,
// 0/1 for bool) as h = (h * 31 + bits) mod 2^32, in hex. The Rust test
// tests/real_weight_hashes.rs decodes the same shards and compares line by line.
import { createRequire } from 'module';
import fs from 'fs';
import path from 'path';
import { fileURLToPath } from 'url';

const here = path.dirname(fileURLToPath(import.meta.url));
const workspace = path.resolve(here, '../../../..');
const require = createRequire(path.join(workspace, 'tests/tfjs/package.json'));
const tf = require('@tensorflow/tfjs');

const root = path.join(workspace, 'tests/real/models');
const lines = [];
for (const name of fs.readdirSync(root).sort()) {
  const dir = path.join(root, name);
  if (!fs.existsSync(path.join(dir, 'model.json'))) continue;
  const model = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  for (const group of model.weightsManifest) {
    const shards = group.paths.map(p => {
      const b = fs.readFileSync(path.join(dir, p));
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
    });
    const tensors = tf.io.decodeWeights(shards, group.weights);
    for (const w of group.weights) {
      const v = tensors[w.name].dataSync();
      const bits = (v instanceof Float32Array || v instanceof Int32Array)
        ? new Uint32Array(v.buffer, v.byteOffset, v.length) : v;
      let h = 0;
      for (let i = 0; i < bits.length; i++) h = (Math.imul(h, 31) + (bits[i] >>> 0)) >>> 0;
      lines.push(`${name} ${bits.length} ${h.toString(16).padStart(8, '0')} ${w.name}`);
    }
  }
}
fs.writeFileSync(path.join(here, 'real-weight-hashes.txt'), lines.join('\n') + '\n');
console.error(`${lines.length} weights hashed with tfjs ${tf.version.tfjs}`);
