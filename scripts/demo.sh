#!/usr/bin/env bash
# The demo: webinfer in the browser, on the real nsfwjs models, next to TensorFlow.js.
#
#   scripts/demo.sh                    # set up what is missing, build the wasm package, fetch the models, serve
#   scripts/demo.sh --port 9000        # another port (default 8080)
#   scripts/demo.sh --throttle 2000    # model files at 2000 KB/s per connection, to watch the progress bar on localhost
#   scripts/demo.sh --no-build         # reuse crates/webinfer-web/pkg as it is
#   scripts/demo.sh --build-only       # set up, build and fetch, then exit (tests/demo/run.sh uses this)
#   scripts/demo.sh --cli              # the command-line demo instead: the webinfer CLI on MobileNetV2 vs tfjs
#
# Then open the printed URL (http://127.0.0.1:8080/) in a browser. Everything is served
# locally by demo/server.mjs: demo/, the package, tfjs 4.22.0 (tests/tfjs/node_modules) and the
# models (tests/real/models). Idempotent set-up, each step skipped when already done: the
# wasm32 target, wasm-pack 0.15.1, wasm-bindgen-cli 0.2.130 (must equal the wasm-bindgen crate),
# `npm ci` in tests/browser (binaryen 132's wasm-opt, terser, playwright-core for tests/demo/), the models
# and tfjs (scripts/fetch-models.sh, which runs `npm ci` in tests/tfjs).
# WEBINFER_PKG=DIR builds into / serves from DIR instead of crates/webinfer-web/pkg.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PKG="${WEBINFER_PKG:-$ROOT/crates/webinfer-web/pkg}"
BROWSER="$ROOT/tests/browser"

PORT=8080
THROTTLE=0
BUILD=1
SERVE=1
CLI=0
usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --port) PORT="${2:?--port needs a number}"; shift 2 ;;
    --port=*) PORT="${1#*=}"; shift ;;
    --throttle) THROTTLE="${2:?--throttle needs KB/s}"; shift 2 ;;
    --throttle=*) THROTTLE="${1#*=}"; shift ;;
    --no-build) BUILD=0; shift ;;
    --build-only) SERVE=0; shift ;;
    --cli) CLI=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "demo.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ "$PORT" =~ ^[0-9]+$ ]] || { echo "demo.sh: --port: a number" >&2; exit 2; }
[[ "$THROTTLE" =~ ^[0-9]+$ ]] || { echo "demo.sh: --throttle: kilobytes per second (integer)" >&2; exit 2; }
step() { printf '\n== %s\n' "$*"; }
command -v node >/dev/null || { echo "demo.sh: node (20+) is required" >&2; exit 1; }

if [[ $CLI == 1 ]]; then
  # Natively: the webinfer CLI on the real MobileNetV2, next to tfjs's output on the same input.
  scripts/fetch-models.sh
  cargo build --release -p webinfer-cli
  BIN=target/release/webinfer
  M=tests/real/models/mobilenet_v2
  echo
  $BIN inspect $M/model.json
  echo
  $BIN predict $M/model.json --input $M/input_0.npy --out out/mobilenet_v2 --runs 10
  echo
  echo "tfjs (cpu backend) on the same input, from $M/reference.json:"
  node -e 'const r=require(process.argv[1]); console.log("top5", JSON.stringify(r.top5))' "$ROOT/$M/reference.json"
  exit 0
fi

if [[ $BUILD == 1 ]]; then
  step "toolchain"
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
  fi
  if [[ "$(wasm-pack --version 2>/dev/null || true)" != "wasm-pack 0.15.1" ]]; then
    echo "installing wasm-pack 0.15.1 (about 3 minutes)"
    cargo install wasm-pack --version 0.15.1 --locked --force
  else
    echo "wasm-pack 0.15.1 present"
  fi
  if [[ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen 0.2.130" ]]; then
    # No --locked: a pinned transitive version of the CLI is missing from the registry.
    echo "installing wasm-bindgen-cli 0.2.130 (about 3.5 minutes)"
    cargo install wasm-bindgen-cli --version 0.2.130 --force
  else
    echo "wasm-bindgen 0.2.130 present"
  fi
  if [[ ! -d "$BROWSER/node_modules/binaryen" || ! -d "$BROWSER/node_modules/playwright-core" || ! -d "$BROWSER/node_modules/terser" ]]; then
    (cd "$BROWSER" && npm ci --no-audit --no-fund)
  else
    echo "tests/browser/node_modules present (binaryen, playwright-core, terser)"
  fi

  step "build the browser package (scripts/build-web.sh) -> $PKG"
  # binaryen 132's wasm-opt from npm first on PATH (never Debian's binaryen 108: it breaks the
  # module); wasm-pack runs with --mode no-install: it uses the tools on PATH, downloads nothing.
  PATH="$BROWSER/node_modules/.bin:$PATH" "$ROOT/scripts/build-web.sh" "$PKG"
elif [[ ! -f "$PKG/webinfer.js" ]]; then
  echo "demo.sh: --no-build, but there is no package in $PKG (run without --no-build)" >&2
  exit 1
fi

step "models and tfjs (scripts/fetch-models.sh)"
scripts/fetch-models.sh

[[ $SERVE == 1 ]] || { echo; echo "demo.sh: built; serve with scripts/demo.sh --no-build"; exit 0; }

step "serving the demo"
args=(--port "$PORT")
[[ "$THROTTLE" != 0 ]] && args+=(--throttle "$THROTTLE")
echo "Open the URL below in a browser (Chrome/Edge for WebGPU; any browser runs the CPU engine)."
echo "Try: InceptionV3 (23 MB, 6 shards) for the progress bar, then reload the page: it loads from the cache."
exec node demo/server.mjs "${args[@]}"
