#!/usr/bin/env bash
# Set up what the tests need on a fresh machine (skipping what is already there) and run
# every test: fixture regeneration check, the Rust suites (unit, conformance against tfjs,
# CLI), the real nsfwjs models, and the wasm32 build of the engine.
#
#   scripts/test.sh            # everything
#   QUICK=1 scripts/test.sh    # skip the fixture regeneration check
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
step() { printf '\n== %s\n' "$*"; }

step "toolchain"
command -v cargo >/dev/null || { echo "test.sh: cargo (Rust 1.85+) is required" >&2; exit 1; }
command -v node >/dev/null || { echo "test.sh: node (20+) and npm are required" >&2; exit 1; }
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
else
  echo "wasm32-unknown-unknown target present"
fi

step "TensorFlow.js reference (tests/tfjs) and real models (tests/real/models)"
scripts/fetch-models.sh

if [[ "${QUICK:-0}" != 1 ]]; then
  step "fixtures are exactly what tfjs generates (tests/tfjs/check-fixtures.sh)"
  tests/tfjs/check-fixtures.sh
fi

step "format"
cargo fmt --all -- --check

step "cargo test (unit, CLI, doc, conformance against tfjs)"
WEBINFER_REQUIRE_REAL_MODELS=1 cargo test --workspace --release 2>&1

step "wasm32 build of the engine"
cargo build --release --target wasm32-unknown-unknown -p webinfer

step "all tests passed"
