// Shortens the names of the functions a wasm-bindgen module imports from its own JS glue:
//   node scripts/minify-imports.mjs GLUE.js MODULE.wasm [MODULE.wasm ...]
// wasm-bindgen names each import after the binding plus a 16-hex-digit hash
// (`__wbg_get_d7176cfb76d71114`); the name is written twice, in the module's import section and
// as a key of the glue's import object, and the hashes do not compress: ~4 KB of gzip for the
// ~145 imports of the CPU-only module (module and glue together). Each becomes a short name
// (`a`, `b`, ... `Z`, `ba`, ...), the same in every module given (the plain and relaxed-SIMD builds
// of one crate share one glue, so their import lists must be identical; checked), and each key in
// the glue is renamed, which must occur exactly once there (checked). Imports from other modules
// (the crate's JS snippets) keep their names: they are those modules' exports. Run before terser,
// so that the source maps describe the glue as shipped.
import fs from 'node:fs';

const [glueFile, ...wasmFiles] = process.argv.slice(2);
if (!glueFile || wasmFiles.length === 0) {
  console.error('usage: node scripts/minify-imports.mjs GLUE.js MODULE.wasm [MODULE.wasm ...]');
  process.exit(2);
}
const fail = (msg) => {
  console.error(`minify-imports: ${msg}`);
  process.exit(1);
};

/** Unsigned LEB128 at `at`: [value, next offset]. */
function readU32(buf, at) {
  let value = 0;
  for (let shift = 0; ; shift += 7) {
    if (at >= buf.length || shift > 28) fail('a truncated or oversized LEB128 number');
    const byte = buf[at++];
    value += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) return [value, at];
  }
}

function writeU32(n) {
  const out = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Buffer.from(out);
}

/** Offset just past an import's description (function, table, memory, global or tag). */
function skipImportDesc(buf, at) {
  const kind = buf[at++];
  const limits = (p) => {
    const flags = buf[p++];
    [, p] = readU32(buf, p);
    if (flags & 1) [, p] = readU32(buf, p);
    return p;
  };
  switch (kind) {
    case 0: return readU32(buf, at)[1]; // function: type index
    case 1: return limits(at + 1); // table: reference type, limits
    case 2: return limits(at); // memory: limits
    case 3: return at + 2; // global: value type (one byte here), mutability
    case 4: return readU32(buf, at + 1)[1]; // tag: attribute, type index
    default: return fail(`import kind ${kind} is not known`);
  }
}

/** The module's sections as {id, start, end} (start: the first byte of the section's payload). */
function sections(buf) {
  if (buf.readUInt32LE(0) !== 0x6d736100) fail('not a WebAssembly module');
  const out = [];
  let at = 8;
  while (at < buf.length) {
    const id = buf[at];
    const [size, start] = readU32(buf, at + 1);
    out.push({ id, head: at, start, end: start + size });
    at = start + size;
  }
  return out;
}

/** The imports: [{module, name, desc: Buffer}]. */
function readImports(buf, section) {
  let [count, at] = readU32(buf, section.start);
  const imports = [];
  const str = () => {
    let len;
    [len, at] = readU32(buf, at);
    const s = buf.subarray(at, at + len).toString('utf8');
    at += len;
    return s;
  };
  while (count-- > 0) {
    const module = str();
    const name = str();
    const end = skipImportDesc(buf, at);
    imports.push({ module, name, desc: buf.subarray(at, end) });
    at = end;
  }
  if (at !== section.end) fail('the import section does not end where its size says');
  return imports;
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
const shortName = (k) => {
  let s = '';
  do {
    s = ALPHABET[k % ALPHABET.length] + s;
    k = Math.floor(k / ALPHABET.length);
  } while (k > 0);
  return s;
};

const modules = wasmFiles.map((file) => {
  const buf = fs.readFileSync(file);
  const secs = sections(buf);
  const imp = secs.find((s) => s.id === 2) ?? fail(`${file} has no import section`);
  return { file, buf, secs, imp, imports: readImports(buf, imp) };
});
const key = (i) => `${i.module}\u0000${i.name}`;
const first = modules[0];
for (const m of modules.slice(1)) {
  if (m.imports.length !== first.imports.length || m.imports.some((x, k) => key(x) !== key(first.imports[k]))) {
    fail(`${m.file} imports other functions than ${first.file}: they cannot share one glue`);
  }
}
// The glue's own module: wasm-bindgen names it after the glue file (`./<name>_bg.js`).
const own = first.imports.find((i) => i.module.endsWith('_bg.js'))?.module ?? fail('no import from the glue');
const renames = new Map();
for (const i of first.imports) {
  if (i.module === own && !renames.has(i.name)) renames.set(i.name, shortName(renames.size));
}

let glue = fs.readFileSync(glueFile, 'utf8');
for (const [from, to] of renames) {
  if (renames.has(to)) fail(`the short name ${to} is also an original name`);
  const re = new RegExp(`(?<![\\w$])${from.replace(/\$/g, '\\$')}(?![\\w$])`, 'g');
  const n = (glue.match(re) ?? []).length;
  if (n !== 1) fail(`${glueFile}: "${from}" occurs ${n} times, expected once (the import object's key)`);
  glue = glue.replace(re, to);
}

for (const m of modules) {
  const parts = [writeU32(m.imports.length)];
  for (const i of m.imports) {
    const name = i.module === own ? renames.get(i.name) : i.name;
    for (const s of [i.module, name]) {
      const bytes = Buffer.from(s, 'utf8');
      parts.push(writeU32(bytes.length), bytes);
    }
    parts.push(i.desc);
  }
  const payload = Buffer.concat(parts);
  const out = Buffer.concat([
    m.buf.subarray(0, m.imp.head),
    Buffer.from([2]), writeU32(payload.length), payload,
    m.buf.subarray(m.imp.end),
  ]);
  // Where this node validates the original (its V8 may not know relaxed-SIMD), the result must
  // validate too; either way its imports must read back as written.
  if (WebAssembly.validate(m.buf) && !WebAssembly.validate(out)) fail(`${m.file}: the rewritten module does not validate`);
  const back = readImports(out, sections(out).find((x) => x.id === 2));
  if (back.some((x, k) => x.module !== m.imports[k].module || x.desc.compare(m.imports[k].desc) !== 0 || (x.module === own ? x.name !== renames.get(m.imports[k].name) : x.name !== m.imports[k].name))) {
    fail(`${m.file}: the rewritten import section does not read back as written`);
  }
  fs.writeFileSync(m.file, out);
}
fs.writeFileSync(glueFile, glue);
console.log(`minify-imports: ${renames.size} imports renamed in ${glueFile} and ${wasmFiles.length} module(s)`);
