#!/usr/bin/env bash
# Runs the browser tests in headless Chromium through chromedriver.
set -euo pipefail
cd "$(dirname "$0")"
command -v wasm-bindgen-test-runner >/dev/null || { echo "needs: cargo install wasm-bindgen-cli --version 0.2.130" >&2; exit 1; }
command -v chromedriver >/dev/null || { echo "needs: apt-get install -y chromium chromium-driver" >&2; exit 1; }
export CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver)}"
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-60}"
exec cargo test --target wasm32-unknown-unknown "$@"
