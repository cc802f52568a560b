#!/usr/bin/env bash
# End-to-end test of the demo page in headless Chromium (node --test + playwright-core).
#
#   tests/demo/run.sh              # uses the package and models if present, else builds them
#   BUILD=1 tests/demo/run.sh      # rebuild first (scripts/demo.sh --build-only)
#
# Screenshots: tests/demo/out/{cpu-auto,webgpu,error-404}.png (ignored).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PKG="${WEBINFER_PKG:-$ROOT/crates/webinfer-web/pkg}"
if [[ "${BUILD:-0}" == 1 || ! -f "$PKG/webinfer.js" || ! -f "$ROOT/tests/real/models/mobilenet_v2/model.json" \
      || ! -f "$ROOT/tests/tfjs/node_modules/@tensorflow/tfjs/dist/tf.min.js" || ! -d "$ROOT/tests/browser/node_modules/playwright-core" ]]; then
  "$ROOT/scripts/demo.sh" --build-only
fi
if [[ ! -x "${CHROMIUM:-/usr/lib/chromium/chromium}" ]]; then
  echo "tests/demo: no Chromium at ${CHROMIUM:-/usr/lib/chromium/chromium} (apt-get install -y chromium; never npx playwright install)" >&2
  exit 1
fi
cd "$HERE"
exec node --test --test-concurrency=1 --test-reporter=spec "$@" demo.test.mjs
