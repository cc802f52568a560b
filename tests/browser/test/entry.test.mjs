// webinfer.js, the package's entry point, before any module is loaded (run in node: no
// browser needed): the API says to call init() first instead of failing obscurely, init()'s
// options are checked, and without navigator.gpu it would load the CPU-only module.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PKG_DIR } from '../lib/server.mjs';

const wi = await import(pathToFileURL(path.join(PKG_DIR, 'webinfer.js')).href);

test('before init(): each function of the API throws an Error that says to await init()', () => {
  for (const name of ['loadLayersModel', 'loadGraphModel', 'listCachedModels', 'deleteCachedModel', 'memoryStats', 'whenCached']) {
    assert.equal(typeof wi[name], 'function', name);
    assert.throws(() => wi[name]('/model.json'), (e) => e instanceof Error && e.message.includes(`${name}() was called before init() finished`) && e.message.includes('await init()'), name);
  }
  assert.equal(wi.moduleFile(), null);
  // node has no navigator.gpu: init() would load the CPU-only module.
  assert.equal(wi.moduleKind(), 'cpu');
});

test("init({backend}) accepts only 'auto', 'webgpu' and 'cpu'", async () => {
  await assert.rejects(wi.default({ backend: 'wasm' }), /init: options.backend must be "auto", "webgpu" or "cpu", got "wasm"/);
});

test('init({graphModels}) accepts only true or false', async () => {
  await assert.rejects(wi.default({ backend: 'cpu', graphModels: 'no' }), /init: options.graphModels must be true or false, got "no"/);
  assert.equal(wi.moduleFile(), null);
});
