// The local test server: node http on 127.0.0.1 (random port). It serves
//   /pkg/...              the wasm-pack package (WEBINFER_PKG or crates/webinfer-web/pkg)
//   /page/..., /lib/...   the test page and the shared helpers
//   /fixtures/...         tests/fixtures
//   /real/...             tests/real/models (scripts/fetch-models.sh)
//   /v/...                files registered with server.addFile() (bad JSON, unknown layers, ...)
// Any path can be prefixed with /t/<tag>: the file is the same, the URL (so the cache key and
// the request counts) is new. Each test uses its own tag.
//
// It counts requests per path (without the query), can throttle bodies, and injects faults:
// by query on the requested URL (`?fault=404|500|503|reset|truncate|truncate-chunked|html`,
// `&after=<bytes>`, `&delay=<ms>`) or by rule (server.fault(path, {...})) for files such as
// shards whose URLs the page does not write. Responses carry `Cache-Control: no-store` so the
// browser's HTTP cache never hides a request.

import http from 'node:http';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const BROWSER_DIR = path.resolve(HERE, '..');
export const REPO = path.resolve(BROWSER_DIR, '..', '..');
export const PKG_DIR = process.env.WEBINFER_PKG
  ? path.resolve(process.env.WEBINFER_PKG)
  : path.join(REPO, 'crates', 'webinfer-web', 'pkg');

const MOUNTS = [
  ['/pkg/', PKG_DIR],
  ['/page/', path.join(BROWSER_DIR, 'page')],
  ['/lib/', path.join(BROWSER_DIR, 'lib')],
  ['/fixtures/', path.join(REPO, 'tests', 'fixtures')],
  ['/real/', path.join(REPO, 'tests', 'real', 'models')],
];

const TYPES = {
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.html': 'text/html; charset=utf-8',
  '.ts': 'text/plain',
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts a server. Returns an object with:
 * - url: 'http://127.0.0.1:PORT'
 * - count(path) / counts(prefix) / requests(prefix) / resetCounts()
 * - fault(path, spec) / clearFaults(): spec {type, after, delayMs, times}
 * - throttle({chunkBytes, delayMs}, prefix?) / throttle(null)
 * - addFile(path, body, type)
 * - close()
 */
export async function startServer() {
  const counts = new Map();
  const log = [];
  const rules = new Map();
  const virtual = new Map();
  let throttle = null;
  const sockets = new Set();

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(String(e?.stack ?? e));
      } else {
        res.destroy();
      }
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  async function handle(req, res) {
    const u = new URL(req.url, 'http://127.0.0.1');
    const pathname = decodeURIComponent(u.pathname);
    counts.set(pathname, (counts.get(pathname) ?? 0) + 1);
    log.push(pathname);

    // Where the bytes come from.
    const stripped = pathname.replace(/^\/t\/[^/]+/, '');
    const q = u.searchParams;
    let spec = null;
    if (q.has('fault')) {
      spec = { type: q.get('fault'), after: Number(q.get('after') ?? 0), delayMs: Number(q.get('delay') ?? 0) };
    } else if (rules.has(pathname)) {
      const rule = rules.get(pathname);
      if (rule.times === undefined || rule.times > 0) {
        spec = rule;
        if (rule.times !== undefined) rule.times -= 1;
      }
    }

    if (spec?.delayMs) await sleep(spec.delayMs);
    if (spec && /^\d{3}$/.test(spec.type)) {
      const status = Number(spec.type);
      res.writeHead(status, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-store' });
      res.end(`injected ${status} for ${pathname}\n`);
      return;
    }
    if (spec?.type === 'html') {
      res.writeHead(200, { 'Content-Type': 'text/html', 'Cache-Control': 'no-store' });
      res.end('<!doctype html><html><body>Welcome to our single-page app</body></html>\n');
      return;
    }

    let body;
    let type;
    if (virtual.has(stripped)) {
      ({ body, type } = virtual.get(stripped));
    } else {
      const mount = MOUNTS.find(([prefix]) => stripped.startsWith(prefix));
      if (!mount) return notFound(res, pathname);
      const file = path.join(mount[1], stripped.slice(mount[0].length));
      if (!file.startsWith(mount[1])) return notFound(res, pathname);
      try {
        body = await fs.readFile(file);
      } catch {
        return notFound(res, pathname);
      }
      type = TYPES[path.extname(file)] ?? 'application/octet-stream';
    }

    const headers = { 'Content-Type': type, 'Cache-Control': 'no-store' };
    switch (spec?.type) {
      case 'truncate': {
        // The file on the server is short: a consistent Content-Length for fewer bytes.
        const part = body.subarray(0, spec.after);
        res.writeHead(200, { ...headers, 'Content-Length': part.length });
        res.end(part);
        return;
      }
      case 'truncate-chunked': {
        // A short body without Content-Length (chunked): only the manifest can tell.
        res.writeHead(200, headers);
        res.end(body.subarray(0, spec.after));
        return;
      }
      case 'reset': {
        // The connection breaks mid-body: full Content-Length, `after` bytes, then a TCP reset.
        res.writeHead(200, { ...headers, 'Content-Length': body.length });
        res.write(body.subarray(0, spec.after));
        await sleep(50);
        if (typeof req.socket.resetAndDestroy === 'function') req.socket.resetAndDestroy();
        else req.socket.destroy();
        return;
      }
      default:
        break;
    }

    res.writeHead(200, { ...headers, 'Content-Length': body.length });
    const t = throttle && (!throttle.prefix || stripped.startsWith(throttle.prefix)) && !stripped.startsWith('/pkg/') ? throttle : null;
    if (!t) {
      res.end(body);
      return;
    }
    for (let pos = 0; pos < body.length; pos += t.chunkBytes) {
      if (res.destroyed) return;
      res.write(body.subarray(pos, pos + t.chunkBytes));
      await sleep(t.delayMs);
    }
    res.end();
  }

  function notFound(res, pathname) {
    res.writeHead(404, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-store' });
    res.end(`no such file: ${pathname}\n`);
  }

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    /** Requests for exactly this path. */
    count: (p) => counts.get(p) ?? 0,
    /** Total requests for paths starting with `prefix`. */
    counts(prefix = '/') {
      let n = 0;
      for (const [p, c] of counts) if (p.startsWith(prefix)) n += c;
      return n;
    },
    /** The paths requested (in order) that start with `prefix`. */
    requests: (prefix = '/') => log.filter((p) => p.startsWith(prefix)),
    resetCounts() {
      counts.clear();
      log.length = 0;
    },
    fault(p, spec) {
      rules.set(p, { ...spec });
    },
    clearFaults: () => rules.clear(),
    throttle(spec, prefix) {
      throttle = spec ? { ...spec, prefix } : null;
    },
    addFile(p, body, type = 'application/json') {
      virtual.set(p, { body: Buffer.from(body), type });
    },
    async close() {
      await new Promise((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
}
