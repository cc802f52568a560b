// The benchmark's local server: node http on 127.0.0.1 (random port), no compression.
//   /pkg/...      crates/webinfer-web/pkg (the wasm-pack package)
//   /tfjs/...     bench/node_modules/@tensorflow (tfjs 4.22.0 bundles and .wasm files)
//   /models/...   bench/out/models (generated), /real/... tests/real/models, /fixtures/... tests/fixtures
//   /page/...     bench/page, /lib/... tests/browser/lib (the .npy reader)
// Any path may be prefixed with /t/<tag>/: same file, new URL (a new HTTP-cache and Cache API key).
// Headers: `Cache-Control: public, max-age=3600` plus `Last-Modified` and `ETag` on every
// file, so the browser's HTTP cache can serve repeat requests (what tfjs relies on for a warm
// load). Requests are counted per path, to show which loads reached the network.
import http from 'node:http';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const BENCH = path.resolve(HERE, '..');
export const REPO = path.resolve(BENCH, '..');
export const CACHE_CONTROL = 'public, max-age=3600';

const MOUNTS = [
  ['/pkg/', path.join(REPO, 'crates', 'webinfer-web', 'pkg')],
  ['/tfjs/', path.join(BENCH, 'node_modules', '@tensorflow')],
  ['/models/', path.join(BENCH, 'out', 'models')],
  ['/real/', path.join(REPO, 'tests', 'real', 'models')],
  ['/fixtures/', path.join(REPO, 'tests', 'fixtures')],
  ['/page/', path.join(BENCH, 'page')],
  ['/lib/', path.join(REPO, 'tests', 'browser', 'lib')],
];
const TYPES = {
  '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm',
  '.json': 'application/json', '.html': 'text/html; charset=utf-8',
};

export async function startServer() {
  const counts = new Map();
  const sockets = new Set();
  const server = http.createServer(async (req, res) => {
    const u = new URL(req.url, 'http://127.0.0.1');
    const pathname = decodeURIComponent(u.pathname);
    counts.set(pathname, (counts.get(pathname) ?? 0) + 1);
    const stripped = pathname.replace(/^\/t\/[^/]+/, '');
    const mount = MOUNTS.find(([p]) => stripped.startsWith(p));
    const file = mount && path.join(mount[1], stripped.slice(mount[0].length));
    let body;
    let stat;
    try {
      if (!file || !file.startsWith(mount[1])) throw new Error('outside');
      [body, stat] = await Promise.all([fs.readFile(file), fs.stat(file)]);
    } catch {
      res.writeHead(404, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-store' });
      res.end(`no such file: ${pathname}\n`);
      return;
    }
    const etag = `"${stat.size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}"`;
    const headers = {
      'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'Cache-Control': CACHE_CONTROL,
      'Last-Modified': stat.mtime.toUTCString(),
      ETag: etag,
    };
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, 'Content-Length': body.length });
    res.end(body);
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve); });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    /** Requests whose path starts with `prefix`. */
    counts(prefix) { let n = 0; for (const [p, c] of counts) if (p.startsWith(prefix)) n += c; return n; },
    async close() { await new Promise((r) => { server.close(() => r()); for (const s of sockets) s.destroy(); }); },
  };
}
