#!/usr/bin/env node
// Conformance fixture generator: TensorFlow.js 4.22.0 (cpu backend) is the reference.
//
//   node tests/tfjs/generate-fixtures.mjs [OUT_DIR]      (default: <repo>/tests/fixtures)
//
// Every fixture is a small layers-model built here, with all weights set from a seeded PRNG
// (mulberry32, seeded from the fixture name), saved as model.json + binary shards, loaded
// back from those files with tf.loadLayersModel, and run on seeded inputs. Output:
//
//   OUT_DIR/index.json                 fixture names, in order
//   OUT_DIR/<name>/model.json          layers-model JSON (tfjs save shape, or Keras 2 shape)
//   OUT_DIR/<name>/group*-shard*.bin   weight shards (float32 / float16 / uint8 / uint16)
//   OUT_DIR/<name>/input_<i>.npy       float32 inputs, in model input order
//   OUT_DIR/<name>/expected_<i>.npy    tfjs outputs, in model output order
//   OUT_DIR/<name>/fixture.json        metadata (layers, options, dtype, shapes, ...)
//
// The output is bit-for-bit deterministic: no Math.random, no random initializers that
// survive (every weight is overwritten), no timestamps, fixed JSON key order.
// See tests/tfjs/SEMANTICS.md for the tfjs semantics the fixtures pin down.

import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TFJS_VERSION = '4.22.0';
const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = path.resolve(HERE, '..', '..');
const OUT_DIR = path.resolve(process.argv[2] ?? path.join(REPO_ROOT, 'tests', 'fixtures'));

if (tf.version.tfjs !== TFJS_VERSION) {
  throw new Error(`expected @tensorflow/tfjs ${TFJS_VERSION}, found ${tf.version.tfjs}`);
}

// ---------------------------------------------------------------------------------------
// Deterministic randomness
// ---------------------------------------------------------------------------------------

function fnv1a(str) {
  let h = 0x811c9dc5;
  for (let i = 0; i < str.length; i++) {
    h ^= str.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

// mulberry32: returns floats in [0, 1).
function mulberry32(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const uniform = (rng, lo, hi) => lo + (hi - lo) * rng();

// ---------------------------------------------------------------------------------------
// .npy writer (NPY 1.0, little-endian float32, C order, header padded to 64 bytes)
// ---------------------------------------------------------------------------------------

function npyBytes(shape, values) {
  if (values.length !== shape.reduce((a, b) => a * b, 1)) {
    throw new Error(`npy: ${values.length} values for shape ${JSON.stringify(shape)}`);
  }
  const shapeStr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  const preamble = 6 + 2 + 2; // magic + version + header length (u16)
  const total = Math.ceil((preamble + header.length + 1) / 64) * 64;
  header = header + ' '.repeat(total - preamble - header.length - 1) + '\n';
  const buf = Buffer.alloc(total + values.length * 4);
  buf.write('\x93NUMPY', 0, 'latin1');
  buf[6] = 1;
  buf[7] = 0;
  buf.writeUInt16LE(header.length, 8);
  buf.write(header, 10, 'latin1');
  const f32 = Float32Array.from(values);
  Buffer.from(f32.buffer, f32.byteOffset, f32.byteLength).copy(buf, total);
  return buf;
}

// ---------------------------------------------------------------------------------------
// Weight encodings (port of tfjs-converter python/tensorflowjs/quantization.py)
// ---------------------------------------------------------------------------------------

// numpy.round: round half to even.
function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// Affine uint8/uint16 quantization with the converter's zero-point nudge.
function quantizeAffine(data, qdtype) {
  const qmax = qdtype === 'uint8' ? 255 : 65535;
  const out = qdtype === 'uint8' ? new Uint8Array(data.length) : new Uint16Array(data.length);
  let min = Infinity;
  let max = -Infinity;
  for (const v of data) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (min === max) {
    // Converter: a constant tensor is all zeros with scale 1 and the (un-nudged) min.
    return { q: out, min, scale: 1.0 };
  }
  const scale = (max - min) / qmax;
  let nmin = min;
  let nmax = max;
  if (min <= 0 && 0 <= max) {
    const zeroPoint = roundHalfEven((0 - min) / scale);
    nmin = -zeroPoint * scale;
    nmax = qmax * scale + nmin;
  }
  for (let i = 0; i < data.length; i++) {
    const c = Math.min(Math.max(data[i], nmin), nmax);
    out[i] = Math.min(qmax, Math.max(0, roundHalfEven((c - nmin) / scale)));
  }
  return { q: out, min: nmin === 0 ? 0 : nmin, scale };
}

// float32 -> IEEE binary16 bits, round to nearest even (numpy astype(float16)).
const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);
function f32ToF16Bits(value) {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}

function f16BitsToF32(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

// Self-test of the float16 encoder: the result must be the nearest representable half.
function selfTestF16() {
  const rng = mulberry32(12345);
  const probes = [0, -0, 1, -1, 0.5, 65504, 1e-8, 6.1e-5, 5.96e-8, 2.98e-8, 3e-8, 1 + 2 ** -11, 1 + 3 * 2 ** -11];
  for (let i = 0; i < 20000; i++) probes.push((rng() * 2 - 1) * 2 ** Math.floor(uniform(rng, -26, 16)));
  for (const p of probes) {
    const v = Math.fround(p);
    const h = f32ToF16Bits(v);
    const d = Math.abs(f16BitsToF32(h) - v);
    for (const n of [h - 1, h + 1]) {
      if ((n & 0x7fff) >= 0x7c00 || n < 0 || (n & 0x8000) !== (h & 0x8000)) continue;
      const dn = Math.abs(f16BitsToF32(n) - v);
      if (dn < d || (dn === d && (h & 1))) throw new Error(`f16 encode wrong for ${v}: ${h} vs ${n}`);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Weight initialisation (every weight is overwritten)
// ---------------------------------------------------------------------------------------

function defaultInit(name, shape, rng) {
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  const leaf = name.slice(name.lastIndexOf('/') + 1);
  let lo = -0.5;
  let hi = 0.5;
  if (leaf === 'moving_variance' || leaf === 'gamma') {
    lo = 0.5;
    hi = 1.5;
  } else if (leaf === 'alpha') {
    lo = 0.05;
    hi = 0.5;
  } else if (leaf.endsWith('kernel')) {
    // Roughly variance-preserving range, so that deeper fixtures keep activations O(1).
    // Fan-in is approximated as size / last dim (depthwise: kh*kw).
    const fanIn = leaf === 'depthwise_kernel' ? shape[0] * shape[1] : size / shape[shape.length - 1];
    const a = Math.min(1, Math.sqrt(3 / fanIn)) * 1.2;
    lo = -a;
    hi = a;
  }
  for (let i = 0; i < size; i++) out[i] = uniform(rng, lo, hi);
  return out;
}

// ---------------------------------------------------------------------------------------
// Fixture definitions
// ---------------------------------------------------------------------------------------

const L = tf.layers;
const seq = (name, layers) => tf.sequential({ name, layers });
const fn = (name, inputs, outputs) => tf.model({ name, inputs, outputs });
const inp = (name, shape) => tf.input({ name, shape });

// Inputs concentrated near 0 with tails to +-scale (exercises saturation regions too).
const cubic = scale => rng => scale * (2 * rng() - 1) ** 3;

const FIXTURES = [];
const def = f => FIXTURES.push(f);

def({
  name: 'dense_sequential',
  description: 'Sequential MLP whose first layer carries batch_input_shape (no InputLayer entry); Dense with and without bias, with activations.',
  options: ['batch_input_shape', 'use_bias=false', 'activation=relu', 'activation=tanh', 'activation=softmax'],
  batch: 2,
  build: () => seq('dense_sequential', [
    L.dense({ name: 'dense_relu', units: 8, activation: 'relu', inputShape: [10] }),
    L.dense({ name: 'dense_nobias', units: 6, useBias: false }),
    L.dense({ name: 'dense_tanh', units: 4, activation: 'tanh' }),
    L.dense({ name: 'dense_softmax', units: 3, activation: 'softmax' }),
  ]),
});

def({
  name: 'dense_rank3',
  description: 'Sequential with an explicit InputLayer; Dense applied to a rank-3 input contracts the last axis.',
  options: ['input_layer', 'rank3_input', 'use_bias=false', 'activation=sigmoid'],
  batch: 2,
  build: () => seq('dense_rank3', [
    L.inputLayer({ name: 'seq_input', inputShape: [5, 6] }),
    L.dense({ name: 'dense_sigmoid', units: 4, activation: 'sigmoid' }),
    L.dense({ name: 'dense_nobias', units: 3, useBias: false }),
  ]),
});

def({
  name: 'conv2d_padding',
  description: "Conv2D 'same' (odd and even kernels, asymmetric padding) and 'valid' with a non-square kernel.",
  options: ['padding=same', 'padding=valid', 'kernel_size=[2,3]', 'kernel_size=4', 'activation=relu'],
  build: () => seq('conv2d_padding', [
    L.conv2d({ name: 'conv_same', filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', inputShape: [7, 7, 3] }),
    L.conv2d({ name: 'conv_valid', filters: 5, kernelSize: [2, 3], padding: 'valid' }),
    L.conv2d({ name: 'conv_same_k4', filters: 3, kernelSize: 4, padding: 'same' }),
  ]),
});

def({
  name: 'conv2d_strides',
  description: "Strided Conv2D: stride 2 'same' on an 8x9 input (padding 0/1 rows, 1/1 cols), then strides [1,2] 'valid'.",
  options: ['strides=2', 'strides=[1,2]', 'padding=same', 'padding=valid', 'activation=relu6'],
  batch: 2,
  build: () => seq('conv2d_strides', [
    L.conv2d({ name: 'conv_s2_same', filters: 6, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu6', inputShape: [8, 9, 3] }),
    L.conv2d({ name: 'conv_s12_valid', filters: 4, kernelSize: 2, strides: [1, 2], padding: 'valid' }),
  ]),
});

def({
  name: 'conv2d_dilation',
  description: "Dilated Conv2D: dilation 2 'same' without bias (selu), then dilation [2,1] 'valid' (elu).",
  options: ['dilation_rate=2', 'dilation_rate=[2,1]', 'padding=same', 'padding=valid', 'use_bias=false', 'activation=selu', 'activation=elu'],
  build: () => seq('conv2d_dilation', [
    L.conv2d({ name: 'conv_d2_same', filters: 4, kernelSize: 3, dilationRate: 2, padding: 'same', useBias: false, activation: 'selu', inputShape: [9, 9, 2] }),
    L.conv2d({ name: 'conv_d21_valid', filters: 3, kernelSize: [3, 2], dilationRate: [2, 1], padding: 'valid', activation: 'elu' }),
  ]),
});

def({
  name: 'depthwise_conv2d',
  description: "DepthwiseConv2D with depth_multiplier 1: 'same' 3x3 (relu6), then 'valid' [3,2] without bias.",
  options: ['depth_multiplier=1', 'padding=same', 'padding=valid', 'use_bias=false', 'activation=relu6'],
  batch: 2,
  build: () => seq('depthwise_conv2d', [
    L.depthwiseConv2d({ name: 'dw_same', kernelSize: 3, padding: 'same', activation: 'relu6', inputShape: [7, 7, 4] }),
    L.depthwiseConv2d({ name: 'dw_valid', kernelSize: [3, 2], padding: 'valid', useBias: false }),
  ]),
});

def({
  name: 'depthwise_conv2d_multiplier',
  description: "DepthwiseConv2D with depth_multiplier 2 and stride 2, 'same' then 'valid' (output channel c*mult+m).",
  options: ['depth_multiplier=2', 'strides=2', 'padding=same', 'padding=valid'],
  build: () => seq('depthwise_conv2d_multiplier', [
    L.depthwiseConv2d({ name: 'dw_m2_s2_same', kernelSize: 3, depthMultiplier: 2, strides: 2, padding: 'same', inputShape: [9, 8, 3] }),
    L.depthwiseConv2d({ name: 'dw_m2_s2_valid', kernelSize: 2, depthMultiplier: 2, strides: 2, padding: 'valid' }),
  ]),
});

def({
  name: 'separable_conv2d',
  description: "SeparableConv2D: depth_multiplier 2 'same' (relu), then stride 2 'valid' without bias.",
  options: ['depth_multiplier=2', 'strides=2', 'padding=same', 'padding=valid', 'use_bias=false', 'activation=relu'],
  build: () => seq('separable_conv2d', [
    L.separableConv2d({ name: 'sep_same', filters: 5, kernelSize: 3, depthMultiplier: 2, padding: 'same', activation: 'relu', inputShape: [8, 8, 3] }),
    L.separableConv2d({ name: 'sep_s2_valid', filters: 4, kernelSize: 3, strides: 2, padding: 'valid', useBias: false }),
  ]),
});

def({
  name: 'conv2d_transpose_same',
  description: "Conv2DTranspose 'same' stride 2 with odd (3) and even (4) kernels on a non-square input; output = in*stride.",
  options: ['padding=same', 'strides=2', 'kernel_size=3', 'kernel_size=4', 'use_bias=false'],
  build: () => seq('conv2d_transpose_same', [
    L.conv2dTranspose({ name: 'convt_k3_s2_same', filters: 4, kernelSize: 3, strides: 2, padding: 'same', inputShape: [4, 5, 3] }),
    L.conv2dTranspose({ name: 'convt_k4_s2_same', filters: 3, kernelSize: 4, strides: 2, padding: 'same', useBias: false }),
  ]),
});

def({
  name: 'conv2d_transpose_valid',
  description: "Conv2DTranspose 'valid': k3 s2 (out=(in-1)*s+k), k2 s3 (kernel < stride: out = in*s, trailing rows are bias only), k[2,3] s1 with relu.",
  options: ['padding=valid', 'strides=2', 'strides=3', 'strides=1', 'kernel_size=[2,3]', 'activation=relu'],
  build: () => {
    const x = inp('image', [4, 4, 3]);
    const a = L.conv2dTranspose({ name: 'convt_k3_s2_valid', filters: 4, kernelSize: 3, strides: 2, padding: 'valid' }).apply(x);
    const b = L.conv2dTranspose({ name: 'convt_k2_s3_valid', filters: 2, kernelSize: 2, strides: 3, padding: 'valid' }).apply(x);
    const c = L.conv2dTranspose({ name: 'convt_k23_s1_valid', filters: 3, kernelSize: [2, 3], strides: 1, padding: 'valid', activation: 'relu' }).apply(x);
    return fn('conv2d_transpose_valid', x, [a, b, c]);
  },
});

def({
  name: 'max_pooling2d',
  description: "MaxPooling2D: 2x2 default strides 'valid', 3x3 stride 2 'same', [3,2] strides [1,2] 'same', 2x2 stride 1 'valid'.",
  options: ['padding=valid', 'padding=same', 'pool_size=2', 'pool_size=3', 'pool_size=[3,2]', 'strides=default', 'strides=2', 'strides=[1,2]', 'strides=1'],
  batch: 2,
  build: () => {
    const x = inp('image', [7, 8, 3]);
    const outs = [
      L.maxPooling2d({ name: 'max_p2_valid', poolSize: 2, padding: 'valid' }).apply(x),
      L.maxPooling2d({ name: 'max_p3_s2_same', poolSize: 3, strides: 2, padding: 'same' }).apply(x),
      L.maxPooling2d({ name: 'max_p32_s12_same', poolSize: [3, 2], strides: [1, 2], padding: 'same' }).apply(x),
      L.maxPooling2d({ name: 'max_p2_s1_valid', poolSize: 2, strides: 1, padding: 'valid' }).apply(x),
    ];
    return fn('max_pooling2d', x, outs);
  },
});

def({
  name: 'average_pooling2d',
  description: "AveragePooling2D: same configurations as max_pooling2d plus 3x3 stride 1 'same'; 'same' averages exclude padded cells.",
  options: ['padding=valid', 'padding=same', 'pool_size=2', 'pool_size=3', 'pool_size=[3,2]', 'strides=default', 'strides=2', 'strides=[1,2]', 'strides=1'],
  batch: 2,
  build: () => {
    const x = inp('image', [7, 8, 3]);
    const outs = [
      L.averagePooling2d({ name: 'avg_p2_valid', poolSize: 2, padding: 'valid' }).apply(x),
      L.averagePooling2d({ name: 'avg_p3_s2_same', poolSize: 3, strides: 2, padding: 'same' }).apply(x),
      L.averagePooling2d({ name: 'avg_p32_s12_same', poolSize: [3, 2], strides: [1, 2], padding: 'same' }).apply(x),
      L.averagePooling2d({ name: 'avg_p2_s1_valid', poolSize: 2, strides: 1, padding: 'valid' }).apply(x),
      L.averagePooling2d({ name: 'avg_p3_s1_same', poolSize: 3, strides: 1, padding: 'same' }).apply(x),
    ];
    return fn('average_pooling2d', x, outs);
  },
});

def({
  name: 'global_pooling2d',
  description: 'GlobalAveragePooling2D and GlobalMaxPooling2D after a 1x1 Conv2D (outputs are rank 2).',
  options: ['kernel_size=1'],
  batch: 2,
  build: () => {
    const x = inp('image', [6, 7, 4]);
    const c = L.conv2d({ name: 'conv_1x1', filters: 5, kernelSize: 1 }).apply(x);
    const gap = L.globalAveragePooling2d({ name: 'gap' }).apply(c);
    const gmp = L.globalMaxPooling2d({ name: 'gmp' }).apply(c);
    return fn('global_pooling2d', x, [gap, gmp]);
  },
});

def({
  name: 'batchnorm_default',
  description: 'Conv2D -> BatchNormalization (defaults: epsilon 1e-3, center and scale) -> Activation relu.',
  options: ['epsilon=0.001', 'center=true', 'scale=true'],
  build: () => seq('batchnorm_default', [
    L.conv2d({ name: 'conv', filters: 6, kernelSize: 3, padding: 'same', inputShape: [6, 6, 4] }),
    L.batchNormalization({ name: 'bn' }),
    L.activation({ name: 'relu', activation: 'relu' }),
  ]),
});

def({
  name: 'batchnorm_variants',
  description: 'BatchNormalization with center=false, scale=false (custom epsilon), both false, and on a rank-2 Dense output.',
  options: ['center=false', 'scale=false', 'epsilon=0.01', 'epsilon=1e-5', 'rank2_input'],
  batch: 2,
  build: () => seq('batchnorm_variants', [
    L.batchNormalization({ name: 'bn_nocenter', center: false, inputShape: [5, 5, 4] }),
    L.batchNormalization({ name: 'bn_noscale', scale: false, epsilon: 0.01 }),
    L.batchNormalization({ name: 'bn_bare', center: false, scale: false, epsilon: 1e-5 }),
    L.flatten({ name: 'flatten' }),
    L.dense({ name: 'dense', units: 6 }),
    L.batchNormalization({ name: 'bn_rank2' }),
  ]),
});

const BASIC_ACTS = ['linear', 'relu', 'relu6', 'elu', 'selu', 'sigmoid', 'hardSigmoid', 'tanh'];
const SMOOTH_ACTS = ['softmax', 'logSoftmax', 'softplus', 'softsign', 'swish', 'mish', 'gelu'];
const snake = s => s.replace(/([A-Z])/g, '_$1').toLowerCase();

def({
  name: 'activations_basic',
  description: 'Activation layer with linear, relu, relu6, elu, selu, sigmoid, hard_sigmoid, tanh (one output each, same input).',
  options: BASIC_ACTS.map(a => `activation=${snake(a)}`),
  input: cubic(8),
  build: () => {
    const x = inp('x', [4, 5, 3]);
    return fn('activations_basic', x, BASIC_ACTS.map(a => L.activation({ name: `act_${snake(a)}`, activation: a }).apply(x)));
  },
});

def({
  name: 'activations_smooth',
  description: 'Activation layer with softmax (last axis of a rank-4 tensor), log_softmax, softplus, softsign, swish, mish, gelu (erf form).',
  options: SMOOTH_ACTS.map(a => `activation=${snake(a)}`),
  input: cubic(16),
  build: () => {
    const x = inp('x', [4, 5, 3]);
    return fn('activations_smooth', x, SMOOTH_ACTS.map(a => L.activation({ name: `act_${snake(a)}`, activation: a }).apply(x)));
  },
});

def({
  name: 'advanced_activations',
  description: 'ReLU layer (plain and max_value), LeakyReLU (default alpha 0.3 and 0.1), ELU layer, ThresholdedReLU, Softmax layer (axis -1 on rank 4; default axis on rank 2).',
  options: ['max_value=1.5', 'alpha=default', 'alpha=0.1', 'theta=0.5', 'axis=-1', 'axis=default'],
  input: cubic(4),
  build: () => {
    const x = inp('x', [5, 5, 4]);
    const outs = [
      L.reLU({ name: 'relu' }).apply(x),
      L.reLU({ name: 'relu_max', maxValue: 1.5 }).apply(x),
      L.leakyReLU({ name: 'leaky_default' }).apply(x),
      L.leakyReLU({ name: 'leaky_01', alpha: 0.1 }).apply(x),
      L.elu({ name: 'elu' }).apply(x),
      L.thresholdedReLU({ name: 'thresholded', theta: 0.5 }).apply(x),
      L.softmax({ name: 'softmax_last', axis: -1 }).apply(x),
      L.softmax({ name: 'softmax_default' }).apply(L.flatten({ name: 'flatten' }).apply(x)),
    ];
    return fn('advanced_activations', x, outs);
  },
});

def({
  name: 'prelu',
  description: 'PReLU with a full per-element alpha [H,W,C] and with shared_axes [1,2] (alpha [1,1,C]).',
  options: ['shared_axes=none', 'shared_axes=[1,2]'],
  batch: 2,
  build: () => seq('prelu', [
    L.conv2d({ name: 'conv_a', filters: 4, kernelSize: 1, inputShape: [5, 6, 3] }),
    L.prelu({ name: 'prelu_full' }),
    L.conv2d({ name: 'conv_b', filters: 4, kernelSize: 1 }),
    L.prelu({ name: 'prelu_shared', sharedAxes: [1, 2] }),
  ]),
});

def({
  name: 'reshape_flatten_permute',
  description: 'Permute [2,1,3], Reshape [8,9], Permute [2,1], Flatten, Reshape [-1,4] (-1 inferred at run time), Dense on the rank-3 result.',
  options: ['dims=[2,1,3]', 'dims=[2,1]', 'target_shape=[8,9]', 'target_shape=[-1,4]'],
  build: () => seq('reshape_flatten_permute', [
    L.permute({ name: 'permute_hw', dims: [2, 1, 3], inputShape: [4, 6, 3] }),
    L.reshape({ name: 'reshape_8x9', targetShape: [8, 9] }),
    L.permute({ name: 'permute_2d', dims: [2, 1] }),
    L.flatten({ name: 'flatten' }),
    L.reshape({ name: 'reshape_infer', targetShape: [-1, 4] }),
    L.dense({ name: 'dense', units: 3 }),
  ]),
});

def({
  name: 'dropout_noise',
  description: 'Inference-time identities: SpatialDropout1D, Dropout, GaussianNoise, GaussianDropout, AlphaDropout between Dense layers.',
  options: ['rate=0.3', 'rate=0.5', 'stddev=0.2', 'rate=0.2'],
  batch: 2,
  build: () => seq('dropout_noise', [
    L.dense({ name: 'dense_in', units: 5, inputShape: [6, 4] }),
    L.spatialDropout1d({ name: 'spatial_dropout', rate: 0.3 }),
    L.dropout({ name: 'dropout', rate: 0.5 }),
    L.gaussianNoise({ name: 'gaussian_noise', stddev: 0.2 }),
    L.gaussianDropout({ name: 'gaussian_dropout', rate: 0.3 }),
    L.alphaDropout({ name: 'alpha_dropout', rate: 0.2 }),
    L.flatten({ name: 'flatten' }),
    L.dense({ name: 'dense_out', units: 3 }),
  ]),
});

def({
  name: 'zero_padding2d',
  description: 'ZeroPadding2D: default (1) followed by a valid Conv2D, asymmetric [[1,2],[0,3]], symmetric per-axis [2,1].',
  options: ['padding=1', 'padding=[[1,2],[0,3]]', 'padding=[2,1]'],
  build: () => {
    const x = inp('image', [4, 5, 2]);
    const p1 = L.zeroPadding2d({ name: 'pad_default' }).apply(x);
    const c1 = L.conv2d({ name: 'conv_after_pad', filters: 3, kernelSize: 3, padding: 'valid' }).apply(p1);
    const p2 = L.zeroPadding2d({ name: 'pad_asym', padding: [[1, 2], [0, 3]] }).apply(x);
    const p3 = L.zeroPadding2d({ name: 'pad_hw', padding: [2, 1] }).apply(x);
    return fn('zero_padding2d', x, [c1, p2, p3]);
  },
});

def({
  name: 'cropping2d',
  description: 'Cropping2D: scalar 1, asymmetric [[1,0],[2,1]], per-axis [1,2].',
  options: ['cropping=1', 'cropping=[[1,0],[2,1]]', 'cropping=[1,2]'],
  build: () => {
    const x = inp('image', [7, 8, 3]);
    return fn('cropping2d', x, [
      L.cropping2D({ name: 'crop_1', cropping: 1 }).apply(x),
      L.cropping2D({ name: 'crop_asym', cropping: [[1, 0], [2, 1]] }).apply(x),
      L.cropping2D({ name: 'crop_hw', cropping: [1, 2] }).apply(x),
    ]);
  },
});

def({
  name: 'upsampling2d',
  description: 'UpSampling2D nearest and bilinear, size 2 and [2,3], on a non-square 3x4 input (bilinear: align_corners=false, half_pixel_centers=false).',
  options: ['interpolation=nearest', 'interpolation=bilinear', 'size=2', 'size=[2,3]'],
  batch: 2,
  build: () => {
    const x = inp('image', [3, 4, 2]);
    return fn('upsampling2d', x, [
      L.upSampling2d({ name: 'up_nearest_2', size: [2, 2] }).apply(x),
      L.upSampling2d({ name: 'up_nearest_23', size: [2, 3] }).apply(x),
      L.upSampling2d({ name: 'up_bilinear_2', size: [2, 2], interpolation: 'bilinear' }).apply(x),
      L.upSampling2d({ name: 'up_bilinear_23', size: [2, 3], interpolation: 'bilinear' }).apply(x),
    ]);
  },
});

def({
  name: 'merge_arithmetic',
  description: 'Add (3 operands), Multiply, Average, Maximum (3 operands), Minimum over three Conv2D branches of one input.',
  options: ['operands=3', 'operands=2'],
  batch: 2,
  build: () => {
    const x = inp('image', [5, 5, 3]);
    const a = L.conv2d({ name: 'branch_a', filters: 4, kernelSize: 1 }).apply(x);
    const b = L.conv2d({ name: 'branch_b', filters: 4, kernelSize: 3, padding: 'same' }).apply(x);
    const c = L.conv2d({ name: 'branch_c', filters: 4, kernelSize: 1, activation: 'relu' }).apply(x);
    return fn('merge_arithmetic', x, [
      L.add({ name: 'add3' }).apply([a, b, c]),
      L.multiply({ name: 'multiply' }).apply([a, b]),
      L.average({ name: 'average' }).apply([a, b]),
      L.maximum({ name: 'maximum3' }).apply([a, b, c]),
      L.minimum({ name: 'minimum' }).apply([a, c]),
    ]);
  },
});

def({
  name: 'concatenate',
  description: 'Concatenate on the channel axis (default -1, 3 operands), on axis 1 (height) and on axis 2 (width).',
  options: ['axis=-1', 'axis=1', 'axis=2', 'operands=3'],
  build: () => {
    const x = inp('image', [5, 5, 3]);
    const b = L.conv2d({ name: 'conv_1x1', filters: 2, kernelSize: 1 }).apply(x);
    const c = L.cropping2D({ name: 'crop_h', cropping: [[1, 1], [0, 0]] }).apply(x);
    const d = L.conv2d({ name: 'conv_1x4', filters: 3, kernelSize: [1, 4], padding: 'valid' }).apply(x);
    return fn('concatenate', x, [
      L.concatenate({ name: 'concat_channels' }).apply([x, b, x]),
      L.concatenate({ name: 'concat_height', axis: 1 }).apply([x, c]),
      L.concatenate({ name: 'concat_width', axis: 2 }).apply([d, x]),
    ]);
  },
});

def({
  name: 'functional_two_in_two_out',
  description: 'Functional model: image and vector inputs; a conv branch merged with a dense branch (Concatenate -> softmax head) and a residual Add map head.',
  options: ['inputs=2', 'outputs=2', 'input_ranks=4,2'],
  batch: 2,
  build: () => {
    const image = inp('image', [7, 7, 3]);
    const vector = inp('vector', [5]);
    const conv = L.conv2d({ name: 'conv', filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(image);
    const pooled = L.maxPooling2d({ name: 'pool', poolSize: 2 }).apply(conv);
    const gap = L.globalAveragePooling2d({ name: 'gap' }).apply(pooled);
    const v = L.dense({ name: 'vec_dense', units: 4, activation: 'tanh' }).apply(vector);
    const merged = L.concatenate({ name: 'merge' }).apply([gap, v]);
    const cls = L.dense({ name: 'classifier', units: 3, activation: 'softmax' }).apply(merged);
    const proj = L.conv2d({ name: 'proj', filters: 4, kernelSize: 1 }).apply(conv);
    const map = L.add({ name: 'residual' }).apply([proj, conv]);
    return fn('functional_two_in_two_out', [image, vector], [cls, map]);
  },
});

def({
  name: 'functional_shared_layer',
  description: 'One Conv2D and one Dense layer applied to two inputs (two inbound nodes each; downstream references node_index 1).',
  options: ['shared_layer', 'node_index=1', 'inputs=2'],
  build: () => {
    const a = inp('left', [6, 6, 3]);
    const b = inp('right', [6, 6, 3]);
    const shared = L.conv2d({ name: 'shared_conv', filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' });
    const sa = shared.apply(a);
    const sb = shared.apply(b);
    const mx = L.maximum({ name: 'max' }).apply([sa, sb]);
    const cat = L.concatenate({ name: 'concat' }).apply([sb, sa]);
    const mix = L.conv2d({ name: 'mix', filters: 2, kernelSize: 1 }).apply(cat);
    const head = L.dense({ name: 'shared_dense', units: 3 });
    const ga = head.apply(L.globalAveragePooling2d({ name: 'gap_a' }).apply(sa));
    const gb = head.apply(L.globalAveragePooling2d({ name: 'gap_b' }).apply(sb));
    const diff = L.average({ name: 'avg_heads' }).apply([ga, gb]);
    return fn('functional_shared_layer', [a, b], [mix, mx, diff]);
  },
});

// A MobileNetV2-like block: the base for the quantized variants.
const cnnRich = name => () => {
  const x = inp('image', [9, 9, 3]);
  let y = L.zeroPadding2d({ name: 'stem_pad', padding: [[0, 1], [0, 1]] }).apply(x);
  y = L.conv2d({ name: 'stem_conv', filters: 8, kernelSize: 3, strides: 2, padding: 'valid', useBias: false }).apply(y);
  y = L.batchNormalization({ name: 'stem_bn' }).apply(y);
  const stem = L.reLU({ name: 'stem_relu', maxValue: 6 }).apply(y);
  y = L.depthwiseConv2d({ name: 'block_dw', kernelSize: 3, padding: 'same', useBias: false }).apply(stem);
  y = L.batchNormalization({ name: 'block_dw_bn' }).apply(y);
  y = L.reLU({ name: 'block_dw_relu', maxValue: 6 }).apply(y);
  y = L.conv2d({ name: 'block_project', filters: 8, kernelSize: 1, useBias: false }).apply(y);
  y = L.batchNormalization({ name: 'block_project_bn' }).apply(y);
  const features = L.add({ name: 'block_add' }).apply([stem, y]);
  y = L.averagePooling2d({ name: 'pool', poolSize: 2, strides: 1, padding: 'valid' }).apply(features);
  y = L.flatten({ name: 'flatten' }).apply(y);
  y = L.dropout({ name: 'dropout', rate: 0.25 }).apply(y);
  y = L.dense({ name: 'logits', units: 5, activation: 'softmax' }).apply(y);
  // The pre-softmax feature map is a second output: more sensitive to weight errors.
  return fn(name, x, [y, features]);
};
// A constant tensor (min == max) exercises the quantizer's scale=1 path.
const cnnRichInit = (wname, shape, rng) =>
  wname === 'logits/bias' ? new Float32Array(shape[0]).fill(0.125) : defaultInit(wname, shape, rng);
const CNN_RICH_LAYERS_DESC = 'ZeroPadding2D, strided Conv2D, BatchNormalization, ReLU(6), DepthwiseConv2D, 1x1 Conv2D, Add, AveragePooling2D, Flatten, Dropout, Dense softmax';

for (const dtype of ['float32', 'float16', 'uint8', 'uint16']) {
  const name = dtype === 'float32' ? 'cnn_rich' : `cnn_rich_${dtype}`;
  def({
    name,
    seedName: 'cnn_rich',
    description: dtype === 'float32'
      ? `MobileNetV2-like block: ${CNN_RICH_LAYERS_DESC}. Base of the quantized variants.`
      : `cnn_rich with ${dtype}-quantized weights (converter rule${dtype === 'float16' ? '' : ': affine, zero-point nudged, constant tensor -> scale 1'}); expected outputs computed by tfjs from the quantized files.`,
    options: dtype === 'float32'
      ? ['strides=2', 'max_value=6', 'residual_add', 'constant_bias']
      : [`quantization=${dtype}`, 'strides=2', 'max_value=6', 'residual_add', 'constant_bias'],
    weightDtype: dtype,
    batch: 2,
    build: cnnRich(name),
    init: cnnRichInit,
  });
}

def({
  name: 'multi_shard',
  description: 'Weights in two groups, each split into 1024-byte shards; tensors straddle shard boundaries; group 2 lists its weights in reverse order (weights are matched by name).',
  options: ['groups=2', 'shard_bytes=1024', 'straddling_tensors'],
  shardBytes: 1024,
  groups: specs => {
    const g2 = specs.filter(s => s.name.startsWith('dense')).reverse();
    const g1 = specs.filter(s => !s.name.startsWith('dense'));
    return [g1, g2];
  },
  build: () => seq('multi_shard', [
    L.conv2d({ name: 'conv_a', filters: 8, kernelSize: 3, padding: 'same', activation: 'relu', inputShape: [6, 6, 4] }),
    L.batchNormalization({ name: 'bn' }),
    L.conv2d({ name: 'conv_b', filters: 6, kernelSize: 3, padding: 'valid' }),
    L.flatten({ name: 'flatten' }),
    L.dense({ name: 'dense', units: 4 }),
  ]),
});

def({
  name: 'dense_wide_uint8',
  description: 'A wide MLP with uint8-quantized weights: its Dense 256 -> 1024 kernel decodes to 1 MiB of float32, well over the size (gpuStreamMinBytes, 64 KiB) from which webinfer streams a Dense kernel straight into GPU memory while it downloads; expected outputs computed by tfjs from the quantized files.',
  options: ['quantization=uint8', 'units=1024', 'activation=relu', 'activation=softmax'],
  weightDtype: 'uint8',
  batch: 2,
  build: () => seq('dense_wide_uint8', [
    L.dense({ name: 'wide', units: 1024, activation: 'relu', inputShape: [256] }),
    L.dense({ name: 'head', units: 4, activation: 'softmax' }),
  ]),
});

def({
  name: 'cnn_wide_float16',
  description: 'A CNN with float16 weights whose kernels are large enough for a GPU to keep them as float16 (half of float32\'s memory): Conv2D 3x3 16 -> 64 and DepthwiseConv2D 3x3 over 64 channels, each followed by a BatchNormalization (folded into the kernel), and Dense 64 -> 32; expected outputs computed by tfjs from the float16 files.',
  options: ['quantization=float16', 'batchnorm_fold', 'depthwise', 'filters=64'],
  weightDtype: 'float16',
  batch: 2,
  build: () => seq('cnn_wide_float16', [
    L.conv2d({ name: 'conv', filters: 64, kernelSize: 3, padding: 'same', useBias: false, inputShape: [8, 8, 16] }),
    L.batchNormalization({ name: 'conv_bn' }),
    L.reLU({ name: 'conv_relu', maxValue: 6 }),
    L.depthwiseConv2d({ name: 'dw', kernelSize: 3, padding: 'same', useBias: false }),
    L.batchNormalization({ name: 'dw_bn' }),
    L.reLU({ name: 'dw_relu', maxValue: 6 }),
    L.globalAveragePooling2d({ name: 'gap' }),
    L.dense({ name: 'fc', units: 32, activation: 'relu' }),
    L.dense({ name: 'head', units: 4, activation: 'softmax' }),
  ]),
});

def({
  name: 'keras2_topology',
  description: 'Converter / Keras 2 model.json shape: modelTopology = {keras_version, backend, model_config: {class_name: "Functional", config}, training_config}; no format/generatedBy/convertedBy keys.',
  options: ['topology=keras2', 'class_name=Functional', 'training_config'],
  topology: 'keras2',
  build: () => {
    const x = inp('input_1', [8, 8, 3]);
    let y = L.conv2d({ name: 'conv2d_1', filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(x);
    y = L.maxPooling2d({ name: 'max_pooling2d_1', poolSize: 2 }).apply(y);
    y = L.flatten({ name: 'flatten_1' }).apply(y);
    y = L.dense({ name: 'dense_1', units: 3, activation: 'softmax' }).apply(y);
    return fn('model_1', x, y);
  },
});

// ---------------------------------------------------------------------------------------
// Save / encode / load
// ---------------------------------------------------------------------------------------

async function saveArtifacts(model) {
  let artifacts;
  await model.save(tf.io.withSaveHandler(async a => {
    artifacts = a;
    return { modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: 'JSON' } };
  }));
  return artifacts;
}

// tfjs 4.22 quirk: SeparableConv2D.getConfig() omits depth_multiplier, so a tfjs-saved
// model with depth_multiplier != 1 cannot be loaded back. Keras / the converter write the
// key; add it the same way (only where it is missing).
function patchSeparableDepthMultiplier(topology, model) {
  for (const layer of topology.config.layers) {
    if (layer.class_name === 'SeparableConv2D' && !('depth_multiplier' in layer.config)) {
      layer.config.depth_multiplier = model.getLayer(layer.config.name).depthMultiplier;
    }
  }
}

function toKeras2(topology) {
  return {
    keras_version: '2.4.0',
    backend: 'tensorflow',
    model_config: { class_name: 'Functional', config: topology.config },
    training_config: {
      optimizer_config: { class_name: 'Adam', config: { lr: 0.001, beta_1: 0.9, beta_2: 0.999, decay: 0.0, epsilon: 1e-7, amsgrad: false } },
      loss: 'categorical_crossentropy',
      metrics: ['accuracy'],
      sample_weight_mode: null,
      loss_weights: null,
    },
  };
}

// Encodes one float32 tensor into the fixture's weight dtype; returns bytes + manifest entry.
function encodeWeight(spec, data, dtype) {
  const entry = { name: spec.name, shape: spec.shape, dtype: 'float32' };
  if (dtype === 'float32') return { bytes: Buffer.from(data.buffer, data.byteOffset, data.byteLength), entry };
  if (dtype === 'float16') {
    const h = new Uint16Array(data.length);
    for (let i = 0; i < data.length; i++) h[i] = f32ToF16Bits(data[i]);
    entry.quantization = { dtype: 'float16', original_dtype: 'float32' };
    return { bytes: Buffer.from(h.buffer), entry };
  }
  const { q, min, scale } = quantizeAffine(data, dtype);
  entry.quantization = { dtype, min, scale, original_dtype: 'float32' };
  return { bytes: Buffer.from(q.buffer), entry };
}

function writeWeights(dir, artifacts, fx) {
  const all = new Float32Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData).slice(0));
  const byName = new Map();
  let off = 0;
  for (const spec of artifacts.weightSpecs) {
    if (spec.dtype !== 'float32') throw new Error(`unexpected weight dtype ${spec.dtype}`);
    const n = spec.shape.reduce((a, b) => a * b, 1);
    byName.set(spec.name, { spec, data: all.slice(off, off + n) });
    off += n;
  }
  if (off !== all.length) throw new Error('weight data length mismatch');
  const groups = fx.groups ? fx.groups(artifacts.weightSpecs) : [artifacts.weightSpecs];
  if (groups.flat().length !== artifacts.weightSpecs.length) throw new Error('groups must cover every weight once');
  const manifest = [];
  const straddling = [];
  let shardCount = 0;
  groups.forEach((group, gi) => {
    const parts = [];
    const weights = [];
    const ranges = [];
    let pos = 0;
    for (const spec of group) {
      const { data } = byName.get(spec.name);
      const { bytes, entry } = encodeWeight(spec, data, fx.weightDtype ?? 'float32');
      parts.push(bytes);
      weights.push(entry);
      ranges.push([spec.name, pos, pos + bytes.length]);
      pos += bytes.length;
    }
    const groupBytes = Buffer.concat(parts);
    const shardSize = fx.shardBytes ?? Math.max(groupBytes.length, 1);
    const nShards = Math.ceil(groupBytes.length / shardSize);
    const paths = [];
    for (let s = 0; s < nShards; s++) {
      const file = `group${gi + 1}-shard${s + 1}of${nShards}.bin`;
      fs.writeFileSync(path.join(dir, file), groupBytes.subarray(s * shardSize, (s + 1) * shardSize));
      paths.push(file);
    }
    shardCount += nShards;
    for (const [name, start, end] of ranges) {
      if (end <= start) continue;
      const first = Math.floor(start / shardSize);
      const last = Math.floor((end - 1) / shardSize);
      if (last > first) {
        straddling.push({ name, group: gi + 1, byte_range: [start, end], shards: paths.slice(first, last + 1) });
      }
    }
    manifest.push({ paths, weights });
  });
  return { manifest, shardCount, straddling };
}

// IOHandler that reads model.json and the shards from disk, like tfjs's http loader does:
// all weight specs of all groups in order, all shard bytes of all groups concatenated.
function fileLoader(dir) {
  return {
    load: async () => {
      const modelJSON = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
      const specs = [];
      const buffers = [];
      for (const group of modelJSON.weightsManifest ?? []) {
        specs.push(...group.weights);
        for (const p of group.paths) buffers.push(fs.readFileSync(path.join(dir, p)));
      }
      const bytes = Buffer.concat(buffers);
      const weightData = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
      return tf.io.getModelArtifactsForJSONSync(modelJSON, specs, weightData);
    },
  };
}

function layerClassNames(topology) {
  const cfg = topology.model_config ?? topology;
  const names = [];
  for (const layer of cfg.config.layers) if (!names.includes(layer.class_name)) names.push(layer.class_name);
  return names;
}

const asArray = x => (Array.isArray(x) ? x : [x]);

// Pretty JSON with 2-space indent, but arrays that hold only scalars (or arrays of
// scalars, e.g. shape lists) stay on one line.
function prettyJSON(value, indent = '') {
  const isScalar = v => v === null || typeof v !== 'object';
  const flat = v => Array.isArray(v) && v.every(e => isScalar(e) || (Array.isArray(e) && e.every(isScalar)));
  if (isScalar(value)) return JSON.stringify(value);
  if (flat(value)) return `[${value.map(e => (Array.isArray(e) ? prettyJSON(e) : JSON.stringify(e))).join(', ')}]`;
  const inner = indent + '  ';
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map(v => inner + prettyJSON(v, inner)).join(',\n')}\n${indent}]`;
  }
  const keys = Object.keys(value);
  if (keys.length === 0) return '{}';
  return `{\n${keys.map(k => `${inner}${JSON.stringify(k)}: ${prettyJSON(value[k], inner)}`).join(',\n')}\n${indent}}`;
}

function bitEqual(a, b) {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}

async function generate(fx) {
  const dir = path.join(OUT_DIR, fx.name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });

  const rng = mulberry32(fnv1a(fx.seedName ?? fx.name));
  const model = fx.build();
  const init = fx.init ?? defaultInit;
  model.setWeights(model.weights.map(w => tf.tensor(init(w.originalName, w.shape, rng), w.shape, 'float32')));

  const batch = fx.batch ?? 1;
  const gen = fx.input ?? (r => uniform(r, -1, 1));
  const inputs = model.inputs.map(sym => {
    const shape = [batch, ...sym.shape.slice(1)];
    const n = shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = gen(rng);
    return tf.tensor(v, shape, 'float32');
  });

  const artifacts = await saveArtifacts(model);
  patchSeparableDepthMultiplier(artifacts.modelTopology, model);
  const { manifest, shardCount, straddling } = writeWeights(dir, artifacts, fx);
  let modelJSON;
  if (fx.topology === 'keras2') {
    modelJSON = { modelTopology: toKeras2(artifacts.modelTopology), weightsManifest: manifest };
  } else {
    modelJSON = {
      format: artifacts.format,
      generatedBy: artifacts.generatedBy,
      convertedBy: artifacts.convertedBy ?? null,
      modelTopology: artifacts.modelTopology,
      weightsManifest: manifest,
    };
  }
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(modelJSON));

  // Expected outputs come from tfjs running the files just written.
  const loaded = await tf.loadLayersModel(fileLoader(dir));
  const feed = inputs.length === 1 ? inputs[0] : inputs;
  const outs = asArray(loaded.predict(feed));
  const outVals = outs.map(t => t.dataSync().slice());

  const weightDtype = fx.weightDtype ?? 'float32';
  if (weightDtype === 'float32') {
    const ref = asArray(model.predict(feed)).map(t => t.dataSync().slice());
    ref.forEach((r, i) => {
      if (!bitEqual(r, outVals[i])) throw new Error(`${fx.name}: reloaded output ${i} differs from the in-memory model`);
    });
  }
  for (const v of outVals) {
    for (const x of v) if (!Number.isFinite(x)) throw new Error(`${fx.name}: non-finite output`);
  }

  inputs.forEach((t, i) => fs.writeFileSync(path.join(dir, `input_${i}.npy`), npyBytes(t.shape, t.dataSync())));
  outs.forEach((t, i) => fs.writeFileSync(path.join(dir, `expected_${i}.npy`), npyBytes(t.shape, outVals[i])));

  const meta = {
    name: fx.name,
    description: fx.description,
    layers: layerClassNames(modelJSON.modelTopology),
    options: fx.options,
    weight_dtype: weightDtype,
    shards: shardCount,
    inputs: inputs.map(t => t.shape),
    outputs: outs.map(t => t.shape),
    tfjs_version: TFJS_VERSION,
    backend: 'cpu',
    input_names: loaded.inputNames,
    output_names: loaded.outputNames,
    weight_groups: manifest.length,
  };
  if (fx.seedName && fx.seedName !== fx.name) meta.quantized_from = fx.seedName;
  if (straddling.length > 0) meta.straddling = straddling;
  fs.writeFileSync(path.join(dir, 'fixture.json'), prettyJSON(meta) + '\n');

  tf.dispose([...inputs, ...outs]);
  loaded.dispose();
  model.dispose();
  return meta;
}

const FIXTURES_README = `# Conformance fixtures (generated: do not edit)

Generated by \`node tests/tfjs/generate-fixtures.mjs\` with TensorFlow.js ${TFJS_VERSION}, cpu backend;
verified by \`tests/tfjs/check-fixtures.sh\` (regenerates and diffs). Semantics: tests/tfjs/SEMANTICS.md.

- \`index.json\`: fixture names, in order.
- \`<name>/model.json\`: layers-model; weights in \`group<G>-shard<K>of<N>.bin\` per its weightsManifest.
- \`<name>/input_<i>.npy\`: float32 inputs in model input order (NPY 1.0, little-endian, C order).
- \`<name>/expected_<i>.npy\`: tfjs outputs for those inputs, in model output order, computed from the
  files in this directory (for quantized fixtures: from the quantized weights).
- \`<name>/fixture.json\`: name, description, layers (class names in the topology), options,
  weight_dtype (float32 | float16 | uint8 | uint16), shards, inputs/outputs (shapes), tfjs_version,
  backend, input_names, output_names, weight_groups; quantized_from and straddling where relevant.
`;

// ---------------------------------------------------------------------------------------

async function main() {
  selfTestF16();
  await tf.setBackend('cpu');
  await tf.ready();
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const names = [];
  for (const fx of FIXTURES) {
    if (names.includes(fx.name)) throw new Error(`duplicate fixture ${fx.name}`);
    const meta = await generate(fx);
    names.push(fx.name);
    console.log(`${fx.name.padEnd(28)} ${meta.weight_dtype.padEnd(8)} shards=${meta.shards} ${meta.layers.join(',')}`);
  }
  // Remove fixtures that are no longer defined (only directories holding a fixture.json).
  for (const entry of fs.readdirSync(OUT_DIR, { withFileTypes: true })) {
    if (entry.isDirectory() && !names.includes(entry.name) && fs.existsSync(path.join(OUT_DIR, entry.name, 'fixture.json'))) {
      fs.rmSync(path.join(OUT_DIR, entry.name), { recursive: true });
      console.log(`removed stale fixture ${entry.name}`);
    }
  }
  fs.writeFileSync(path.join(OUT_DIR, 'index.json'), JSON.stringify(names, null, 2) + '\n');
  fs.writeFileSync(path.join(OUT_DIR, 'README.md'), FIXTURES_README);
  console.log(`${names.length} fixtures written to ${OUT_DIR}`);
}

await main();
