// The TypeScript declarations (webinfer.d.ts over the generated webinfer_web.d.ts, with the
// hand-written types of src/types.d.ts) compile under --strict, accept the documented usage and reject misuse
// (types/usage.ts, checked with TypeScript from package-lock.json).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BROWSER_DIR, PKG_DIR } from '../lib/server.mjs';

test('TypeScript: the declarations compile and type the documented usage', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webinfer-types-'));
  try {
    for (const f of ['webinfer.d.ts', 'webinfer_web.d.ts']) fs.copyFileSync(path.join(PKG_DIR, f), path.join(dir, f));
    fs.copyFileSync(path.join(BROWSER_DIR, 'types', 'usage.ts'), path.join(dir, 'usage.ts'));
    const tsc = path.join(BROWSER_DIR, 'node_modules', 'typescript', 'bin', 'tsc');
    const args = ['--noEmit', '--strict', '--target', 'es2022', '--lib', 'esnext,dom', '--module', 'esnext', '--moduleResolution', 'bundler', path.join(dir, 'usage.ts')];
    try {
      execFileSync(process.execPath, [tsc, ...args], { stdio: 'pipe' });
    } catch (e) {
      assert.fail(`tsc failed:\n${e.stdout}${e.stderr}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
