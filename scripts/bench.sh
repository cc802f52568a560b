#!/usr/bin/env bash
# The benchmark suite: webinfer against TensorFlow.js 4.22.0 in one headless Chromium session
# (inference on WebGPU / WASM / CPU, loading, download size, memory), plus the native figures
# (webinfer CLI on MobileNetV2, CPU kernels next to the gemm crate, GPU microbenchmarks).
#
#   scripts/bench.sh            # full run (~5-10 min on 2 cores): writes BENCHMARKS.md and bench/out/results.json
#   scripts/bench.sh --quick    # CI smoke check: few runs, small models only; writes bench/out/quick/
#
# Never a test: nothing here asserts on a timing. Idempotent set-up, each step skipped when done:
#   - tests/browser/run.sh (toolchain, Chromium, real models via scripts/fetch-models.sh) with
#     SKIP_BUILD=1 when crates/webinfer-web/pkg is newer than every source, else a rebuild; its
#     test run is filtered down to nothing (--test-name-pattern that matches no test)
#   - `npm ci` in bench/ (tfjs 4.22.0, tfjs-backend-wasm, tfjs-backend-webgpu, playwright-core)
#   - bench/gen-models.mjs (deterministic synthetic models into bench/out/models/)
#   - cargo build --release -p webinfer-cli and the two example benchmarks
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
QUICK=0
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument $a (usage: scripts/bench.sh [--quick])" >&2; exit 2 ;;
  esac
done
step() { printf '\n== %s\n' "$*"; }
T0=$(date +%s)
if [[ $QUICK == 1 ]]; then OUT="bench/out/quick"; else OUT="bench/out"; fi
mkdir -p "$OUT/native"

step "setup: package, toolchain, Chromium, real models (tests/browser/run.sh)"
PKG_WASM="crates/webinfer-web/pkg/webinfer_web_bg.relaxed.wasm"
stale=0
if [[ ! -f "$PKG_WASM" ]]; then
  stale=1
elif [[ -n "$(find crates shaders Cargo.lock Cargo.toml .cargo -newer "$PKG_WASM" -type f \( -name '*.rs' -o -name '*.toml' -o -name '*.js' -o -name '*.ts' -o -name '*.wgsl' -o -name Cargo.lock \) -not -path '*/pkg/*' 2>/dev/null | head -1)" ]]; then
  stale=1
fi
if [[ $stale == 1 ]]; then echo "package missing or older than the sources: rebuilding"; build_env=(); else echo "package up to date"; build_env=(SKIP_BUILD=1); fi
env "${build_env[@]}" tests/browser/run.sh --test-name-pattern='^bench-setup-only: no test has this name$' > "$OUT/setup.log" 2>&1 \
  || { tail -30 "$OUT/setup.log"; echo "bench.sh: tests/browser/run.sh failed (log: $OUT/setup.log)" >&2; exit 1; }
grep -E '^(==|wasm-|chromium|webinfer_web|fetch-models)' "$OUT/setup.log" || true

step "setup: bench/node_modules (npm ci)"
if [[ ! -d bench/node_modules/@tensorflow/tfjs-backend-webgpu || ! -d bench/node_modules/playwright-core ]]; then
  (cd bench && npm ci --no-audit --no-fund)
else
  echo "bench/node_modules present"
fi

step "setup: synthetic models (bench/gen-models.mjs)"
gen_args=(); [[ $QUICK == 1 ]] && gen_args=(--quick)
node bench/gen-models.mjs "${gen_args[@]}" 2>&1 | grep '^gen-models'

step "setup: cargo build --release (webinfer-cli, examples)"
cargo build --release -q -p webinfer-cli
cargo build --release -q -p webinfer-cpu --example kernel_bench
cargo build --release -q -p webinfer-gpu --example gpu_bench

step "browser: one headless Chromium session"
run_args=(--out "$OUT/browser.json"); [[ $QUICK == 1 ]] && run_args+=(--quick)
node bench/run-browser.mjs "${run_args[@]}"

step "native"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
MN=tests/real/models/mobilenet_v2
if [[ $QUICK == 1 ]]; then RUNS_CPU=3; RUNS_GPU=2; else RUNS_CPU=30; RUNS_GPU=5; fi
native() { # native NAME COMMAND...: run, keep the command line and the output
  local name="$1"; shift
  { echo "\$ $*"; "$@" 2>&1 || echo "(exit status $?)"; } > "$OUT/native/$name.txt"
  cat "$OUT/native/$name.txt"
}
native cli_cpu target/release/webinfer bench "$MN/model.json" --input "$MN/input_0.npy" --backend cpu --runs "$RUNS_CPU"
native cli_gpu target/release/webinfer bench "$MN/model.json" --input "$MN/input_0.npy" --backend gpu --runs "$RUNS_GPU"
kb_args=(); [[ $QUICK == 1 ]] && kb_args=(-- --quick)
native kernel_bench cargo run -q --release -p webinfer-cpu --example kernel_bench "${kb_args[@]}"
native gpu_bench cargo run -q --release -p webinfer-gpu --example gpu_bench -- --quick

step "report"
rep_args=(--out-dir "$OUT" --seconds "$(( $(date +%s) - T0 ))")
[[ $QUICK == 1 ]] && rep_args+=(--md "$OUT/BENCHMARKS.md") || rep_args+=(--md BENCHMARKS.md)
node bench/report.mjs "${rep_args[@]}"
echo "bench.sh: done in $(( $(date +%s) - T0 )) s"
