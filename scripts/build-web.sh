#!/usr/bin/env bash
# Builds the browser package (crates/webinfer-web) into OUT_DIR (default crates/webinfer-web/pkg):
#   webinfer_web.js + webinfer_web_bg.wasm         wasm-pack's output: plain 128-bit SIMD
#   webinfer_web_bg.relaxed.wasm                   the same crate with +relaxed-simd (the CPU
#                                                  kernels' multiply-adds fuse), same JS glue
#   webinfer_cpu.js + webinfer_cpu_bg.wasm         the CPU-only module (--no-default-features:
#   webinfer_cpu_bg.relaxed.wasm                   no WebGPU, no wgpu code; plain and relaxed)
#   webinfer_cpu_layers.js + ..._bg.wasm           the smallest: CPU-only, layers-models only
#   webinfer_cpu_layers_bg.relaxed.wasm            (no graph-model code; plain and relaxed)
#   webinfer.js / webinfer.d.ts                    the entry point: init() picks the module the
#                                                  browser can run (crates/webinfer-web/js/)
# The JS files are minified by terser (each with a source map, `<file>.map`, which a browser
# fetches only when its developer tools are open). Needs wasm-pack, wasm-bindgen-cli, binaryen's
# wasm-opt and terser on PATH (tests/browser/run.sh and scripts/demo.sh install them and call
# this). The relaxed build uses its own target dir, so switching between the two never rebuilds
# the other.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/crates/webinfer-web/pkg}"
CRATE="$ROOT/crates/webinfer-web"
BUILD=(wasm-pack build "$CRATE" --target web --profile web --mode no-install)
command -v terser >/dev/null || { echo "build-web.sh: terser is not on PATH (npm ci in tests/browser)" >&2; exit 1; }

"${BUILD[@]}" --out-dir "$OUT"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd" CARGO_TARGET_DIR="$ROOT/target/relaxed-simd" \
  "${BUILD[@]}" --out-dir "$TMP/pkg"
# One JS glue serves both modules only if wasm-bindgen generated the same one.
if ! cmp -s "$TMP/pkg/webinfer_web.js" "$OUT/webinfer_web.js"; then
  echo "build-web.sh: the relaxed-SIMD build's webinfer_web.js differs from the plain one" >&2
  diff "$OUT/webinfer_web.js" "$TMP/pkg/webinfer_web.js" | head -20 >&2
  exit 1
fi
cp "$TMP/pkg/webinfer_web_bg.wasm" "$OUT/webinfer_web_bg.relaxed.wasm"
# Short import names (scripts/minify-imports.mjs: ~4 KB of gzip), in both builds and their glue.
node "$ROOT/scripts/minify-imports.mjs" "$OUT/webinfer_web.js" "$OUT/webinfer_web_bg.wasm" "$OUT/webinfer_web_bg.relaxed.wasm"

# The CPU-only modules, plain and relaxed-SIMD, each with its own JS glue (wasm-bindgen output):
# webinfer_cpu (both model formats) and webinfer_cpu_layers (layers-models only).
cpu_module() { # <name> <cargo feature arguments...>
  local name="$1"; shift
  "${BUILD[@]}" --out-dir "$TMP/$name" --out-name "$name" -- --no-default-features "$@"
  RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd" CARGO_TARGET_DIR="$ROOT/target/relaxed-simd" \
    "${BUILD[@]}" --out-dir "$TMP/$name-relaxed" --out-name "$name" -- --no-default-features "$@"
  if ! cmp -s "$TMP/$name/$name.js" "$TMP/$name-relaxed/$name.js"; then
    echo "build-web.sh: the relaxed-SIMD build's $name.js differs from the plain one" >&2
    exit 1
  fi
  cp "$TMP/$name/$name.js" "$TMP/$name/${name}_bg.wasm" "$OUT/"
  cp "$TMP/$name-relaxed/${name}_bg.wasm" "$OUT/${name}_bg.relaxed.wasm"
  node "$ROOT/scripts/minify-imports.mjs" "$OUT/$name.js" "$OUT/${name}_bg.wasm" "$OUT/${name}_bg.relaxed.wasm"
  cp -r "$TMP/$name/snippets/." "$OUT/snippets/"
}
cpu_module webinfer_cpu --features graph-models
cpu_module webinfer_cpu_layers
cp "$CRATE/js/webinfer.js" "$CRATE/js/webinfer.d.ts" "$OUT/"
# webinfer.js binds the API to whichever module init() loads: both glues must export the same
# names, and webinfer.js must declare each of them.
node --input-type=module -e '
  const [dir] = process.argv.slice(1);
  const names = async (glue) => Object.keys(await import(`${dir}/${glue}`)).filter((k) => k !== "default").sort();
  const full = await names("webinfer_web.js");
  const entry = (await import("node:fs")).readFileSync(`${dir}/webinfer.js`, "utf8");
  const declared = [...entry.matchAll(/^export let ([^;]+);/gm)].flatMap((m) => m[1].split(",").map((s) => s.trim())).sort();
  const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  for (const glue of ["webinfer_cpu.js", "webinfer_cpu_layers.js"]) {
    const other = await names(glue);
    if (!same(full, other)) { console.error(`build-web.sh: the modules export different names: ${full} / ${glue}: ${other}`); process.exit(1); }
  }
  if (!same(full, declared)) { console.error(`build-web.sh: webinfer.js declares ${declared}, the modules export ${full}`); process.exit(1); }
' "$OUT"
# Minified in place; exported names and class names stay (the API, and what a console shows).
( cd "$OUT" && for f in webinfer.js webinfer_web.js webinfer_cpu.js webinfer_cpu_layers.js snippets/*/src/*.js; do
    terser "$f" --module --compress --mangle --keep-classnames \
      --source-map "url='$(basename "$f").map',includeSources" -o "$f.min"
    mv "$f.min" "$f"
    mv "$f.min.map" "$f.map"
  done )
# package.json: the entry point is webinfer.js, and the extra files ship with the package.
node -e '
  const fs = require("fs"); const f = process.argv[1]; const p = JSON.parse(fs.readFileSync(f, "utf8"));
  p.module = "webinfer.js"; p.types = "webinfer.d.ts"; p.main = "webinfer.js";
  p.files = [...new Set([...(p.files || []), "webinfer.js", "webinfer.d.ts", "webinfer_web_bg.relaxed.wasm",
    "webinfer_cpu.js", "webinfer_cpu_bg.wasm", "webinfer_cpu_bg.relaxed.wasm",
    "webinfer_cpu_layers.js", "webinfer_cpu_layers_bg.wasm", "webinfer_cpu_layers_bg.relaxed.wasm", "*.js.map"])];
  fs.writeFileSync(f, JSON.stringify(p, null, 2) + "\n");
' "$OUT/package.json"
for f in webinfer.js webinfer_web.js webinfer_web_bg.wasm webinfer_web_bg.relaxed.wasm webinfer_cpu.js \
  webinfer_cpu_bg.wasm webinfer_cpu_bg.relaxed.wasm webinfer_cpu_layers.js webinfer_cpu_layers_bg.wasm \
  webinfer_cpu_layers_bg.relaxed.wasm; do
  printf '%-30s %9d bytes raw, %9d gzip\n' "$f" "$(stat -c %s "$OUT/$f")" "$(gzip -9c "$OUT/$f" | wc -c)"
done
# No function body over 24 KiB (the largest is ~17 KiB; wasm-opt's default inlining made two of
# 52 KiB, which the browser's optimising compiler took ~200 ms each to compile during a page's
# first load and predict): scripts/wasm-functions.mjs says why and fails when one is larger.
node "$ROOT/scripts/wasm-functions.mjs" --max-body 24576 --top 3 \
  "$OUT/webinfer_web_bg.wasm" "$OUT/webinfer_web_bg.relaxed.wasm" \
  "$OUT/webinfer_cpu_bg.wasm" "$OUT/webinfer_cpu_bg.relaxed.wasm" \
  "$OUT/webinfer_cpu_layers_bg.wasm" "$OUT/webinfer_cpu_layers_bg.relaxed.wasm"
