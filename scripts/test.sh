#!/usr/bin/env bash
# Set up what the tests need on a fresh machine (skipping what is already there) and run
# every test: fixture regeneration check, the Rust suites (unit, conformance against tfjs on
# cpu / gpu (lavapipe) / auto, CLI, loader), the real nsfwjs models, the wasm32 build, and the
# browser suite (wasm-pack package in headless Chromium: tests/browser/run.sh).
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

step "software Vulkan (lavapipe) for the GPU suites"
if ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers libvulkan1
else
  echo "lavapipe present"
fi
# Mesa's loader complains on every probe without a runtime dir.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

step "TensorFlow.js reference (tests/tfjs) and real models (tests/real/models)"
scripts/fetch-models.sh

if [[ "${QUICK:-0}" != 1 ]]; then
  step "fixtures are exactly what tfjs generates (tests/tfjs/check-fixtures.sh)"
  tests/tfjs/check-fixtures.sh
fi

step "format"
cargo fmt --all -- --check

step "cargo test (unit, CLI, doc, GPU on lavapipe, conformance against tfjs on cpu, gpu and auto)"
# A GPU suite that finds no adapter fails here rather than skipping.
WEBINFER_REQUIRE_GPU=1 WEBINFER_REQUIRE_REAL_MODELS=1 cargo test --workspace --release 2>&1

step "conformance with no GPU adapter at all: auto falls back to the CPU"
VK_ICD_FILENAMES=/nonexistent.json __EGL_VENDOR_LIBRARY_FILENAMES=/nonexistent.json \
  WEBINFER_BACKENDS=auto WEBINFER_REQUIRE_REAL_MODELS=1 cargo test --release -p webinfer --test conformance 2>&1

step "fuzzing: each cargo-fuzz target for 60 s (scripts/fuzz.sh; any crash fails the run)"
scripts/fuzz.sh 60

step "wasm32 build of the engine; the engine without GPU support (webinfer-gpu without \`device\`) and without graph-models"
cargo build --release --target wasm32-unknown-unknown -p webinfer
cargo check --release -p webinfer --no-default-features --all-targets 2>&1
cargo test --release -p webinfer --no-default-features --lib 2>&1

step "browser: the JS API in headless Chromium (WebGPU on SwiftShader, CPU fallback, Cache API, faults)"
tests/browser/run.sh

step "demo page end to end (tests/demo: load, progress, classify, compare with tfjs, cache, errors)"
tests/demo/run.sh

step "all tests passed"
