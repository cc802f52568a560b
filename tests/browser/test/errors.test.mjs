// Every failure rejects its promise with an Error that says what and where; nothing throws
// synchronously, no panic reaches JavaScript, and the module stays usable afterwards.
// Also the input forms of predict, and dispose.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startEnv, assertMatchesTfjs, expectedFiles, rejection, FIXTURES_DIR } from '../lib/harness.mjs';

let env;
let page;
const DENSE = path.join(FIXTURES_DIR, 'dense_sequential');
const TWO = path.join(FIXTURES_DIR, 'functional_two_in_two_out');

before(async () => {
  env = await startEnv();
  const json = JSON.parse(fs.readFileSync(path.join(DENSE, 'model.json'), 'utf8'));
  const shard = fs.readFileSync(path.join(DENSE, 'group1-shard1of1.bin'));
  const variant = (dir, edit) => {
    const m = structuredClone(json);
    edit(m.modelTopology.config.layers);
    env.server.addFile(`/v/${dir}/model.json`, JSON.stringify(m));
    env.server.addFile(`/v/${dir}/group1-shard1of1.bin`, shard, 'application/octet-stream');
  };
  variant('unknown', (layers) => {
    layers[1].class_name = 'Frobnicate';
    layers[2].class_name = 'Wobble';
  });
  variant('misfit', (layers) => {
    layers[0].config.units = 9; // the stored kernel is [10, 8]
  });
  // ReLU settings webinfer refuses: the message shows the numbers as written (float32 values
  // in their shortest form, written by the JS engine).
  const relu = (name, config) => (layers) => layers.push({ class_name: 'ReLU', config: { name, ...config } });
  variant('threshold', relu('relu_t', { threshold: 0.1 }));
  variant('slope', relu('relu_s', { max_value: 6.5, negative_slope: 0.3 }));
  env.server.addFile('/v/badjson/model.json', '{"modelTopology": {"class_name": "Sequential", ');
  env.server.addFile('/v/notamodel/model.json', '{"hello": "world"}');
  page = await env.openPage();
});
after(async () => {
  await env?.close();
});

test('model files webinfer cannot use: bad JSON, not a model, unknown layers, weights that do not fit', async (t) => {
  const load = (wi, url) => wi.loadLayersModel(url, { backend: 'cpu' });
  const bad = await rejection(page, load, '/v/badjson/model.json');
  assert.ok(bad.message.includes(`${env.server.url}/v/badjson/model.json`), bad.message);
  assert.match(bad.message, /not valid JSON \(line 1, column 47\): EOF while parsing an object/);
  t.diagnostic(`bad JSON: ${bad.message}`);

  const notModel = await rejection(page, load, '/v/notamodel/model.json');
  assert.ok(notModel.message.includes('/v/notamodel/model.json'), notModel.message);
  t.diagnostic(`not a model: ${notModel.message}`);

  const unknown = await rejection(page, load, '/v/unknown/model.json');
  for (const word of ['Frobnicate', 'Wobble', 'dense_nobias', '/v/unknown/model.json']) {
    assert.ok(unknown.message.includes(word), `"${word}" missing from: ${unknown.message}`);
  }
  t.diagnostic(`unknown layers: ${unknown.message}`);
  // Its shard was requested while model.json was parsed (at most once), never cached, and
  // the cancelled request left no unhandled rejection behind.
  assert.ok(env.server.count('/v/unknown/group1-shard1of1.bin') <= 1);
  const cached = await page.evaluate(async () => (await window.wi.listCachedModels()).map((m) => m.url));
  assert.ok(!cached.some((u) => u.includes('/v/unknown/')), `cached after the refusal: ${cached}`);

  const misfit = await rejection(page, load, '/v/misfit/model.json');
  assert.ok(misfit.message.includes('dense_relu'), `the layer is not named: ${misfit.message}`);
  t.diagnostic(`misfit weights: ${misfit.message}`);

  const threshold = await rejection(page, load, '/v/threshold/model.json');
  assert.match(threshold.message, /relu_t.*threshold 0\.1 is not supported/, threshold.message);
  const slope = await rejection(page, load, '/v/slope/model.json');
  assert.match(slope.message, /relu_s.*max_value 6\.5 together with negative_slope 0\.3 is not supported/, slope.message);
  t.diagnostic(`ReLU settings: ${threshold.message} / ${slope.message}`);
});

test('bad arguments reject (never throw) with messages', async () => {
  const url = '/fixtures/dense_sequential/model.json';
  const cases = [
    [(wi) => wi.loadLayersModel(42), /URL of model\.json.*the number 42/],
    [(wi) => wi.loadLayersModel(''), /empty/],
    [(wi, url) => wi.loadLayersModel(url, { backend: 'tpu' }), /options\.backend must be "auto", "webgpu" or "cpu", got "tpu"/],
    [(wi, url) => wi.loadLayersModel(url, { onProgress: 5 }), /options\.onProgress must be a function, got the number 5/],
    [(wi, url) => wi.loadLayersModel(url, { cache: 'yes' }), /options\.cache must be a boolean/],
    [(wi, url) => wi.loadLayersModel(url, 'fast'), /options must be an object/],
    [(wi) => wi.listCachedModels(5), /listCachedModels: options must be an object/],
    [(wi) => wi.deleteCachedModel(7), /deleteCachedModel: .*model URL.*the number 7/],
  ];
  for (const [fn, pattern] of cases) {
    const r = await rejection(page, fn, url);
    assert.match(r.message, pattern);
  }
});

test('predict: wrong shapes, lengths, counts and types reject with what was expected and what came', async (t) => {
  const msgs = await page.evaluate(async () => {
    const model = await window.wi.loadLayersModel('/fixtures/dense_sequential/model.json', { backend: 'cpu' });
    const two = await window.wi.loadLayersModel('/fixtures/functional_two_in_two_out/model.json', { backend: 'cpu' });
    const out = {};
    const attempt = async (key, f) => {
      try {
        const p = f();
        if (!(p instanceof Promise)) {
          out[key] = 'not a promise';
          return;
        }
        await p;
        out[key] = 'resolved';
      } catch (e) {
        out[key] = e instanceof Error ? e.message : `not an Error: ${e}`;
      }
    };
    await attempt('shape', () => model.predict(new Float32Array(12), [1, 12]));
    await attempt('rank', () => model.predict(new Float32Array(10), [1, 1, 10]));
    await attempt('length', () => model.predict(new Float32Array(15), [2, 10]));
    await attempt('noFit', () => model.predict(new Float32Array(15)));
    await attempt('negative', () => model.predict(new Float32Array(10), [1, -10]));
    await attempt('fraction', () => model.predict(new Float32Array(10), [1, 2.5]));
    await attempt('shapeType', () => model.predict(new Float32Array(10), 'abc'));
    await attempt('string', () => model.predict('x'));
    await attempt('null', () => model.predict(null));
    await attempt('nothing', () => model.predict());
    await attempt('bigint', () => model.predict(new BigInt64Array(10), [1, 10]));
    await attempt('noData', () => model.predict({ shape: [1, 10] }));
    await attempt('notNumbers', () => model.predict([1, 2, 'three', 4, 5, 6, 7, 8, 9, 10], [1, 10]));
    await attempt('count', () => two.predict([new Float32Array(2 * 7 * 7 * 3)], [[2, 7, 7, 3]]));
    await attempt('shapeCount', () => two.predict([new Float32Array(147), new Float32Array(5)], [[1, 7, 7, 3]]));
    await attempt('both', () => two.predict([{ data: new Float32Array(147), shape: [1, 7, 7, 3] }, { data: new Float32Array(5), shape: [1, 5] }], [[1, 7, 7, 3], [1, 5]]));
    model.dispose();
    model.dispose(); // twice is fine
    await attempt('disposed', () => model.predict(new Float32Array(10), [1, 10]));
    out.disposedFlag = model.disposed;
    out.backendAfterDispose = model.backend;
    two.dispose();
    return out;
  });
  for (const [k, v] of Object.entries(msgs)) t.diagnostic(`${k}: ${v}`);
  assert.match(msgs.shape, /^predict: input 0 \("[^"]+"\): expected shape \[null,10\], got \[1,12\]$/);
  assert.match(msgs.rank, /expected shape \[null,10\], got \[1,1,10\]/);
  assert.match(msgs.length, /input 0 \("[^"]+"\): the data holds 15 values, but shape \[2,10\] needs 20/);
  assert.match(msgs.noFit, /15 values, which does not fit the model's shape \[null,10\]/);
  assert.match(msgs.negative, /shape\[1\] is -10/);
  assert.match(msgs.fraction, /shape\[1\] is 2\.5/);
  assert.match(msgs.shapeType, /shapes must be an array|shape must be an array/);
  assert.match(msgs.string, /the input must be a Float32Array.*the string "x"/);
  assert.match(msgs.null, /the input must be a Float32Array.*null/);
  assert.match(msgs.nothing, /the input must be a Float32Array.*undefined/);
  assert.match(msgs.bigint, /BigInt64Array/);
  assert.match(msgs.noData, /no `data`/);
  assert.match(msgs.notNumbers, /element 2 is the string "three", not a number/);
  assert.match(msgs.count, /the model has 2 inputs \(image, vector\), got 1/);
  assert.match(msgs.shapeCount, /2 inputs but 1 shapes were given/);
  assert.match(msgs.both, /both in its object and in the shapes argument/);
  assert.match(msgs.disposed, /disposed/);
  assert.equal(msgs.disposedFlag, true);
  assert.equal(msgs.backendAfterDispose, 'cpu');
});

test('predict input forms: typed arrays, number arrays, {data, shape}, inferred shapes, several inputs and outputs', async () => {
  const r = await page.evaluate(async () => {
    const npy = (p) => window.fetchNpy(p);
    const dense = await window.wi.loadLayersModel('/fixtures/dense_sequential/model.json', { backend: 'cpu' });
    const x = await npy('/fixtures/dense_sequential/input_0.npy');
    const flat = (o) => ({ name: o.name, shape: o.shape, data: Array.from(o.data) });
    const res = {};
    res.explicit = flat(await dense.predict(x.data, x.shape));
    res.inferred = flat(await dense.predict(x.data)); // [null,10] + 20 values -> [2,10]
    res.object = flat(await dense.predict({ data: x.data, shape: x.shape }));
    res.list = flat(await dense.predict([x.data], x.shape));
    res.numbers = flat(await dense.predict(Array.from(x.data), x.shape));
    res.f64 = flat(await dense.predict(new Float64Array(x.data), x.shape));
    // Integer typed arrays are read as their values: the same output as those values as float32.
    const ints = Array.from(x.data, (v) => Math.round(v * 50) % 120);
    const naturals = ints.map((v) => Math.abs(v));
    res.ints = { f32: new Float32Array(ints), i8: new Int8Array(ints), i16: new Int16Array(ints), i32: new Int32Array(ints) };
    res.naturals = { f32: new Float32Array(naturals), u8: new Uint8Array(naturals), u8c: new Uint8ClampedArray(naturals), u16: new Uint16Array(naturals), u32: new Uint32Array(naturals) };
    for (const group of [res.ints, res.naturals]) {
      for (const [k, data] of Object.entries(group)) group[k] = flat(await dense.predict(data, x.shape));
    }
    // The values are copied when predict is called: changing them afterwards changes nothing.
    const copy = new Float32Array(x.data);
    const pending = dense.predict(copy, x.shape);
    copy.fill(0);
    res.copied = flat(await pending);
    // Two predictions at once, and a dispose while one is in flight.
    const [a, b] = await Promise.all([dense.predict(x.data, x.shape), dense.predict(x.data, x.shape)]);
    res.parallel = [flat(a), flat(b)];
    const inflight = dense.predict(x.data, x.shape);
    dense.dispose();
    res.afterDispose = flat(await inflight);
    res.inputs = dense.inputs;
    res.outputs = dense.outputs;

    const two = await window.wi.loadLayersModel('/fixtures/functional_two_in_two_out/model.json', { backend: 'cpu' });
    const a0 = await npy('/fixtures/functional_two_in_two_out/input_0.npy');
    const a1 = await npy('/fixtures/functional_two_in_two_out/input_1.npy');
    res.twoArrays = (await two.predict([a0.data, a1.data], [a0.shape, a1.shape])).map(flat);
    res.twoObjects = (await two.predict([{ data: a0.data, shape: a0.shape }, { data: a1.data, shape: a1.shape }])).map(flat);
    res.twoInferred = (await two.predict([a0.data, a1.data])).map(flat);
    res.twoInputs = two.inputs;
    res.twoOutputs = two.outputs;
    two.dispose();
    return res;
  });
  const denseExpected = expectedFiles(DENSE);
  for (const k of ['explicit', 'inferred', 'object', 'list', 'numbers', 'f64', 'copied', 'afterDispose']) {
    assertMatchesTfjs(`dense_sequential (${k})`, [r[k]], denseExpected);
  }
  r.parallel.forEach((o, i) => assertMatchesTfjs(`dense_sequential (parallel ${i})`, [o], denseExpected));
  for (const group of [r.ints, r.naturals]) {
    assert.ok(group.f32.data.some((v) => v !== 0), 'the integer inputs give a non-zero output');
    for (const [k, o] of Object.entries(group)) assert.deepEqual(o, group.f32, `${k} input vs the same values as a Float32Array`);
  }
  assert.deepEqual(r.inputs, [{ name: r.inputs[0].name, shape: [null, 10], dtype: 'float32' }]);
  assert.deepEqual(r.outputs.map((o) => o.shape), [[null, 3]]);
  for (const k of ['twoArrays', 'twoObjects', 'twoInferred']) {
    assertMatchesTfjs(`functional_two_in_two_out (${k})`, r[k], expectedFiles(TWO));
  }
  assert.deepEqual(r.twoInputs.map((i) => [i.name, i.shape]), [['image', [null, 7, 7, 3]], ['vector', [null, 5]]]);
  assert.deepEqual(r.twoOutputs.map((o) => o.name), ['classifier', 'residual']);
  assert.deepEqual(r.twoArrays.map((o) => o.name), ['classifier', 'residual']);
});

test('a throwing onProgress callback is reported on the console and the load goes on', async () => {
  const before = page.consoleLines.length;
  const ok = await page.evaluate(async () => {
    const m = await window.wi.loadLayersModel('/fixtures/dense_sequential/model.json', {
      cache: false,
      onProgress: () => {
        throw new Error('callback bug');
      },
    });
    m.dispose();
    return true;
  });
  assert.equal(ok, true);
  const lines = page.consoleLines.slice(before).filter((l) => l.includes('onProgress callback threw'));
  assert.ok(lines.length >= 1, JSON.stringify(page.consoleLines.slice(before)));
});

test('after all those failures the same page loads and predicts correctly, and nothing panicked', async () => {
  const r = await page.evaluate(() =>
    window.runModel('/fixtures/functional_two_in_two_out/model.json', ['/fixtures/functional_two_in_two_out/input_0.npy', '/fixtures/functional_two_in_two_out/input_1.npy'], { backend: 'cpu' }),
  );
  assertMatchesTfjs('functional_two_in_two_out (after failures)', r.outputs, expectedFiles(TWO));
  await env.assertClean();
});
