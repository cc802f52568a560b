import * as tf from '@tensorflow/tfjs';
import fs from 'fs';
const dir='../real/models/mobilenet_v2/'; const m = JSON.parse(fs.readFileSync(dir+'model.json'));
const g = m.weightsManifest[0];
const b = fs.readFileSync(dir+g.paths[0]); const buf = b.buffer.slice(b.byteOffset, b.byteOffset+b.byteLength);
let off=0; for (const w of g.weights) { const n = w.shape.reduce((a,b)=>a*b,1); if (w.name==='bn_Conv1/moving_mean') { 
  const q = new Uint8Array(buf, off, n); const t = tf.io.decodeWeights(buf.slice(off, off+n), [w]); const v=t[w.name].dataSync();
  for (let i=0;i<n;i++){ const mine = Math.fround(q[i]*w.quantization.scale + w.quantization.min); if (mine!==v[i]) console.log(i, q[i], v[i], mine, q[i]*w.quantization.scale + w.quantization.min);} break;} off += n; }
