#!/usr/bin/env node
// The demo's local static server (node 20, no dependencies). Serves on 127.0.0.1:
//   /                      demo/ (index.html, app.js, style.css, samples.js)
//   /pkg/...               the wasm-pack package (WEBINFER_PKG or crates/webinfer-web/pkg)
//   /vendor/tfjs/...       @tensorflow/tfjs 4.22.0's dist (tf.min.js) from tests/tfjs/node_modules
//   /vendor/tfjs-wasm/...  @tensorflow/tfjs-backend-wasm 4.22.0's dist (js + .wasm files)
//   /models/<name>/...     the real models of scripts/fetch-models.sh (tests/real/models)
// Every response carries `Cache-Control: no-store`, so what a second visit gets from a cache is
// webinfer's Cache API store, never the browser's HTTP cache. `throttleKbps` slows the bodies
// of /models/ (kilobytes per second, per connection: shards downloaded in parallel add up) so
// the progress bar can be watched on localhost.
//
//   node demo/server.mjs [--port 8080] [--throttle KBPS] [--host 127.0.0.1]
//   import { startDemoServer } from './server.mjs'; await startDemoServer({ port: 0 })

import http from 'node:http';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..');
export const PKG_DIR = process.env.WEBINFER_PKG
  ? path.resolve(process.env.WEBINFER_PKG)
  : path.join(REPO, 'crates', 'webinfer-web', 'pkg');
export const MODELS_DIR = path.join(REPO, 'tests', 'real', 'models');
const TF = path.join(REPO, 'tests', 'tfjs', 'node_modules', '@tensorflow');

const MOUNTS = [
  ['/pkg/', PKG_DIR],
  ['/vendor/tfjs/', path.join(TF, 'tfjs', 'dist')],
  ['/vendor/tfjs-wasm/', path.join(TF, 'tfjs-backend-wasm', 'dist')],
  ['/models/', MODELS_DIR],
  ['/', HERE],
];

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.map': 'application/json',
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts the server. Options: port (0: a free one), host, throttleKbps (0: none), quiet.
 * Returns { url, port, requests(prefix), close() }.
 */
export async function startDemoServer({ port = 8080, host = '127.0.0.1', throttleKbps = 0, quiet = true } = {}) {
  const log = [];
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(String(e?.message ?? e));
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
    let pathname;
    try {
      pathname = decodeURIComponent(u.pathname);
    } catch {
      return send404(res, u.pathname);
    }
    log.push(pathname);
    if (!quiet) console.log(`${req.method} ${pathname}`);
    if (pathname === '/') pathname = '/index.html';
    if (pathname === '/favicon.ico') {
      res.writeHead(204, { 'Cache-Control': 'no-store' });
      return res.end();
    }
    const mount = MOUNTS.find(([prefix]) => pathname.startsWith(prefix));
    const root = mount[1];
    const file = path.resolve(root, '.' + pathname.slice(mount[0].length - 1));
    // No escape from the mount (../), and only demo's own files from demo/ (not the tests').
    if (!file.startsWith(root + path.sep)) return send404(res, pathname);
    if (mount[0] === '/' && !/^\/[\w.-]+\.(html|js|css|png|svg)$/.test(pathname)) return send404(res, pathname);
    let body;
    try {
      body = await fs.readFile(file);
    } catch {
      return send404(res, pathname);
    }
    const headers = {
      'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'Content-Length': body.length,
      'Cache-Control': 'no-store',
    };
    res.writeHead(200, headers);
    if (req.method === 'HEAD') return res.end();
    if (!throttleKbps || !pathname.startsWith('/models/')) return res.end(body);
    // Throttled: 50 ms slices of throttleKbps * 1024 / 20 bytes.
    const chunk = Math.max(1, Math.round((throttleKbps * 1024) / 20));
    for (let pos = 0; pos < body.length; pos += chunk) {
      if (res.destroyed) return;
      if (!res.write(body.subarray(pos, pos + chunk))) await new Promise((r) => res.once('drain', r));
      await sleep(50);
    }
    res.end();
  }

  function send404(res, pathname) {
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(`no such file: ${pathname}\n`);
  }

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const actual = server.address().port;
  return {
    url: `http://${host}:${actual}`,
    port: actual,
    requests: (prefix = '/') => log.filter((p) => p.startsWith(prefix)),
    resetRequests: () => { log.length = 0; },
    async close() {
      await new Promise((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
}

function parseArgs(argv) {
  const o = { port: 8080, host: '127.0.0.1', throttleKbps: 0, quiet: true };
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      i += 1;
      return argv[i];
    };
    if (a === '--port') o.port = Number(next());
    else if (a === '--throttle') o.throttleKbps = Number(next());
    else if (a === '--host') o.host = next();
    else if (a === '--verbose') o.quiet = false;
    else throw new Error(`unknown argument ${a} (use --port N, --throttle KBPS, --host H, --verbose)`);
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new Error('--port: an integer 0..65535');
  if (!(o.throttleKbps >= 0)) throw new Error('--throttle: kilobytes per second, >= 0');
  return o;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`demo/server.mjs: ${e.message}`);
    process.exit(2);
  }
  try {
    const s = await startDemoServer(opts);
    const t = opts.throttleKbps ? `, model downloads throttled to ${opts.throttleKbps} KB/s` : '';
    console.log(`webinfer demo: open ${s.url}/  (Ctrl-C to stop${t})`);
  } catch (e) {
    console.error(`demo/server.mjs: cannot listen on ${opts.host}:${opts.port}: ${e.message}`);
    process.exit(1);
  }
}
