// Shared pieces of the browser tests: Chromium, pages, reference data and the tolerance.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { parseNpy } from './npy.mjs';
import { REPO, PKG_DIR, startServer } from './server.mjs';

export { REPO, startServer };

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/lib/chromium/chromium';

// ENVIRONMENT.md: WebGPU needs --enable-unsafe-webgpu (the SwiftShader adapter is
// block-listed otherwise); as root --no-sandbox; the rest keeps Chromium off the network.
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  '--disable-dev-shm-usage',
];

export const FIXTURES_DIR = path.join(REPO, 'tests', 'fixtures');
export const REAL_DIR = path.join(REPO, 'tests', 'real', 'models');

let tagCounter = 0;
/** A fresh URL prefix (`/t/<tag>`): new cache keys and new request counts. */
export function tag(name) {
  tagCounter += 1;
  return `/t/${name}-${process.pid}-${tagCounter}`;
}

/** Starts the server and Chromium. Fails clearly when the package was not built. */
export async function startEnv() {
  if (!fs.existsSync(path.join(PKG_DIR, 'webinfer.js'))) {
    throw new Error(`no wasm-pack package at ${PKG_DIR}: run tests/browser/run.sh (or wasm-pack build) first`);
  }
  const server = await startServer();
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  const pages = [];

  /** A page with the package initialised, in a fresh context (own Cache Storage) unless given one. */
  async function openPage(context, query = '') {
    const ctx = context ?? (await browser.newContext());
    const page = await ctx.newPage();
    page.consoleLines = [];
    page.pageErrors = [];
    page.on('console', (m) => page.consoleLines.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => page.pageErrors.push(String(e?.stack ?? e)));
    await page.goto(`${server.url}/page/index.html${query}`);
    await page.waitForFunction(() => window.ready === true || window.initError !== undefined);
    const initError = await page.evaluate(() => window.initError);
    if (initError) throw new Error(`the package failed to initialise: ${initError}`);
    pages.push(page);
    return page;
  }

  /**
   * No panic message and no uncaught error reached any page. `allowed`: console lines that
   * are expected (a test's deliberate panics) match it and are not counted.
   */
  function assertNoPanics(allowed = null) {
    for (const page of pages) {
      const panics = page.consoleLines.filter((l) => /panicked|RuntimeError|unreachable/i.test(l) && !(allowed && allowed.test(l)));
      assert.deepEqual(panics, [], `panic or trap reported on the console:\n${panics.join('\n')}`);
      assert.deepEqual(page.pageErrors, [], `uncaught errors in the page:\n${page.pageErrors.join('\n')}`);
    }
  }

  /** assertNoPanics, and no promise rejection went unhandled in any page. */
  async function assertClean(allowed = null) {
    assertNoPanics(allowed);
    for (const page of pages) {
      if (page.isClosed()) continue;
      const unhandled = await page.evaluate(() => window.unhandledRejections ?? []);
      assert.deepEqual(unhandled, [], `unhandled promise rejections in the page:\n${unhandled.join('\n')}`);
    }
  }

  async function close() {
    await browser.close().catch(() => {});
    await server.close().catch(() => {});
  }

  return { server, browser, openPage, assertNoPanics, assertClean, close };
}

export function readNpy(file) {
  return parseNpy(fs.readFileSync(file));
}

export function fixtureNames() {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES_DIR, 'index.json'), 'utf8'));
}

export function fixtureInfo(name) {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES_DIR, name, 'fixture.json'), 'utf8'));
}

/** model.json's length plus every shard's: the exact total of a load's progress. */
export function modelBytes(dir) {
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  let total = fs.statSync(path.join(dir, 'model.json')).size;
  const shards = [];
  for (const group of json.weightsManifest) {
    for (const p of group.paths) {
      total += fs.statSync(path.join(dir, p)).size;
      shards.push(p);
    }
  }
  return { total, shards };
}

/** The tolerance of the conformance suite (tests/conformance.rs): |d| <= 1e-4 + 1e-3 * |ref|. */
export const ATOL = 1e-4;
export const RTOL = 1e-3;

/**
 * Compares webinfer's outputs with tfjs's expected_<i>.npy files; a failure names the
 * model, the output, the element and both values. Returns the largest |d|.
 */
export function assertMatchesTfjs(label, outputs, expectedFiles) {
  assert.equal(outputs.length, expectedFiles.length, `${label}: ${outputs.length} outputs, tfjs has ${expectedFiles.length}`);
  return assertMatchesRefs(label, outputs, expectedFiles.map(readNpy));
}

/** tfjs's tensor `t` ({shape, data}, batch axis first) restricted to the examples `rows`, stacked in that order. */
export function stackRows(t, rows) {
  const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
  const data = new Float32Array(rows.length * per);
  rows.forEach((r, i) => {
    if (r >= t.shape[0]) throw new Error(`stackRows: example ${r} of a batch of ${t.shape[0]}`);
    data.set(t.data.subarray(r * per, (r + 1) * per), i * per);
  });
  return { shape: [rows.length, ...t.shape.slice(1)], data };
}

/** assertMatchesTfjs with tfjs's outputs already read (`refs`: [{shape, data}]). */
export function assertMatchesRefs(label, outputs, refs) {
  assert.equal(outputs.length, refs.length, `${label}: ${outputs.length} outputs, tfjs has ${refs.length}`);
  let maxAbs = 0;
  outputs.forEach((out, i) => {
    const ref = refs[i];
    const where = `${label}: output ${i} ("${out.name}")`;
    assert.deepEqual(out.shape, ref.shape, `${where}: shape ${JSON.stringify(out.shape)}, tfjs ${JSON.stringify(ref.shape)}`);
    assert.equal(out.data.length, ref.data.length, `${where}: ${out.data.length} values, tfjs ${ref.data.length}`);
    for (let k = 0; k < ref.data.length; k += 1) {
      const a = out.data[k];
      const r = ref.data[k];
      const d = Math.abs(a - r);
      const ok = (Number.isNaN(a) && Number.isNaN(r)) || d <= ATOL + RTOL * Math.abs(r);
      if (!ok) {
        assert.fail(`${where}: element ${k}: webinfer ${a}, tfjs ${r} (|d| = ${d}, allowed ${ATOL + RTOL * Math.abs(r)})`);
      }
      if (d > maxAbs) maxAbs = d;
    }
  });
  return maxAbs;
}

/** tfjs's outputs for the model in `dir`: expected_0.npy, expected_1.npy, ... */
export function expectedFiles(dir) {
  const files = [];
  for (let i = 0; fs.existsSync(path.join(dir, `expected_${i}.npy`)); i += 1) files.push(path.join(dir, `expected_${i}.npy`));
  return files;
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Runs `fn(wi, arg)` in the page; it must return a promise that rejects with an Error (not
 * throw synchronously). Returns {message, url, status, ...}.
 */
export async function rejection(page, fn, arg) {
  const r = await page.evaluate(
    async ({ src, arg }) => {
      // eslint-disable-next-line no-new-func
      const f = new Function('wi', 'arg', `return (${src})(wi, arg);`);
      let promise;
      try {
        promise = f(window.wi, arg);
      } catch (e) {
        return { resolved: false, sync: true, isError: e instanceof Error, message: String(e?.message ?? e) };
      }
      try {
        const value = await promise;
        return { resolved: true, value: String(value) };
      } catch (e) {
        return { resolved: false, sync: false, isError: e instanceof Error, name: e?.name, message: String(e?.message ?? e), url: e?.url, status: e?.status };
      }
    },
    { src: fn.toString(), arg },
  );
  assert.equal(r.resolved, false, `expected a rejection, but it resolved to ${r.value}`);
  assert.equal(r.sync, false, `threw synchronously instead of rejecting: ${r.message}`);
  assert.equal(r.isError, true, `the rejection is not an Error: ${r.message}`);
  return r;
}

/**
 * Whether a test that needs WebGPU runs, by WEBINFER_EXPECT_WEBGPU (as in
 * test/conformance.test.mjs): '1' (default) it must (a missing adapter fails the test when it
 * loads on 'webgpu'), '0' it is skipped, 'any' it runs only where `navigator.gpu` gives an
 * adapter.
 */
export async function webgpuWanted(t, page) {
  const expect = process.env.WEBINFER_EXPECT_WEBGPU ?? '1';
  if (expect === '0') {
    t.skip('WEBINFER_EXPECT_WEBGPU=0: no WebGPU expected');
    return false;
  }
  if (expect === 'any') {
    const has = await page.evaluate(async () => !!(navigator.gpu && (await navigator.gpu.requestAdapter())));
    if (!has) {
      t.skip('WEBINFER_EXPECT_WEBGPU=any and this browser has no WebGPU adapter');
      return false;
    }
  }
  return true;
}

/** memoryStats() of the page's module. */
export function memoryStats(page) {
  return page.evaluate(() => window.wi.memoryStats());
}

export function mib(bytes) {
  return `${(bytes / 2 ** 20).toFixed(2)} MiB`;
}
