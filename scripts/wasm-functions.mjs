#!/usr/bin/env node
// Usage: node scripts/wasm-functions.mjs [--max-body BYTES] [--top N] module.wasm...
//
// Lists each module's largest function bodies (index and bytes; a module built without names
// has no function names) and, with --max-body, fails when one is larger.
//
// Why a limit: a browser runs a page's WebAssembly first with its baseline compiler and
// recompiles each function that runs hot with its optimising compiler, in the background and
// as a whole. A function of 50 KB took ~200 ms of that compiler (Chromium, this project's
// 2-core machines) during a page's first load and first predict, which is what wasm-opt's
// default inlining of every one-caller function produced (see crates/webinfer-web/Cargo.toml).
// scripts/build-web.sh checks the modules it builds against this.
import fs from 'node:fs';

const args = process.argv.slice(2);
let maxBody = Infinity;
let top = 5;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--max-body') maxBody = Number(args[++i]);
  else if (args[i] === '--top') top = Number(args[++i]);
  else files.push(args[i]);
}
if (!files.length || !(maxBody > 0) || !(top >= 0)) {
  console.error('usage: wasm-functions.mjs [--max-body BYTES] [--top N] module.wasm...');
  process.exit(2);
}

/** Function body sizes (bytes, without their length prefix) in module order, after imports. */
function bodySizes(bytes) {
  let pos = 8;
  const leb = () => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[pos++];
      if (b === undefined) throw new Error('truncated LEB128');
      result += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if (b < 0x80) return result;
    }
  };
  // (not `pos += leb()`: that adds to the position from before the number was read)
  const skip = (n) => { pos += n; };
  if (bytes.length < 8 || bytes.readUInt32LE(0) !== 0x6d736100) throw new Error('not a WebAssembly module');
  let imported = 0;
  const sizes = [];
  while (pos < bytes.length) {
    const id = bytes[pos++];
    const size = leb();
    const end = pos + size;
    if (id === 2) {
      // Imports: count the functions (their indices come before the module's own).
      for (let n = leb(); n > 0; n--) {
        skip(leb()); // module name
        skip(leb()); // field name
        const kind = bytes[pos++];
        if (kind === 0) { leb(); imported++; }
        else if (kind === 1) { pos++; const flags = leb(); leb(); if (flags & 1) leb(); }
        else if (kind === 2) { const flags = leb(); leb(); if (flags & 1) leb(); }
        else if (kind === 3) { pos += 2; }
        else if (kind === 4) { pos++; leb(); }
        else throw new Error(`unknown import kind ${kind}`);
      }
    } else if (id === 10) {
      for (let n = leb(); n > 0; n--) {
        const len = leb();
        sizes.push(len);
        skip(len);
      }
    }
    pos = end;
  }
  return { imported, sizes };
}

let failed = false;
for (const file of files) {
  const { imported, sizes } = bodySizes(fs.readFileSync(file));
  const ranked = sizes.map((size, i) => ({ index: imported + i, size })).sort((a, b) => b.size - a.size);
  const largest = ranked.slice(0, top).map((f) => `#${f.index} ${f.size}`).join(', ');
  console.log(`${file}: ${sizes.length} functions; largest bodies (bytes): ${largest}`);
  const over = ranked.filter((f) => f.size > maxBody);
  if (over.length) {
    failed = true;
    console.error(`${file}: ${over.length} function bodies over ${maxBody} bytes (${over.map((f) => `#${f.index} ${f.size}`).join(', ')}): ` +
      'the browser compiles each hot function whole with its optimising compiler, and one this large ' +
      'holds up a page\'s first load and predict; keep kernels out of their callers (#[inline(never)]) ' +
      'and wasm-opt\'s one-caller inlining bounded (crates/webinfer-web/Cargo.toml)');
  }
}
process.exit(failed ? 1 : 0);
