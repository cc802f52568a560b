#!/usr/bin/env bash
# Browser tests of the webinfer-web package (headless Chromium via playwright-core, node:test).
#
#   tests/browser/run.sh                     # set up what is missing, build the package, run every test
#   tests/browser/run.sh --test-name-pattern=cache    # extra arguments go to `node --test`
#   SKIP_BUILD=1 tests/browser/run.sh        # reuse the package already built
#   WEBINFER_EXPECT_WEBGPU=1|0|any ...       # webgpu must work (default) | be refused | either (test/conformance.test.mjs)
#
# Idempotent set-up, each step skipped when already done: the wasm32 target, wasm-pack 0.15.1,
# wasm-bindgen-cli 0.2.130 (must equal the wasm-bindgen crate), Chromium, `npm ci` here
# (playwright-core; binaryen 132, whose wasm-opt shrinks the module; terser, which minifies the
# JS glue; typescript), the real models
# (scripts/fetch-models.sh). Never `npx playwright install`: Chromium comes from Debian.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PKG="${WEBINFER_PKG:-$ROOT/crates/webinfer-web/pkg}"
step() { printf '\n== %s\n' "$*"; }
as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }

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
if [[ ! -x /usr/lib/chromium/chromium ]]; then
  echo "installing chromium"
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver
else
  echo "chromium present: $(/usr/lib/chromium/chromium --version 2>/dev/null || echo '?')"
fi
if [[ ! -d "$HERE/node_modules/playwright-core" || ! -d "$HERE/node_modules/binaryen" || ! -d "$HERE/node_modules/typescript" || ! -d "$HERE/node_modules/terser" ]]; then
  (cd "$HERE" && npm ci --no-audit --no-fund)
else
  echo "tests/browser/node_modules present"
fi

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  step "build the browser package (scripts/build-web.sh) -> $PKG"
  # binaryen 132's wasm-opt from npm, first on PATH (never Debian's binaryen 108: it breaks
  # the module). --mode no-install: wasm-pack uses the tools on PATH and downloads nothing.
  export PATH="$HERE/node_modules/.bin:$PATH"
  echo "wasm-opt: $(command -v wasm-opt) ($(wasm-opt --version))"
  "$ROOT/scripts/build-web.sh" "$PKG"
fi

step "real models (scripts/fetch-models.sh)"
"$ROOT/scripts/fetch-models.sh"

step "browser tests (node --test)"
cd "$HERE"
export WEBINFER_PKG="$PKG"
exec node --test --test-concurrency=1 --test-reporter=tap "$@" test/*.test.mjs
