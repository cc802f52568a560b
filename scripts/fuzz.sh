#!/usr/bin/env bash
# Run every cargo-fuzz target (fuzz/fuzz_targets) for a fixed time and report what it did.
#
#   scripts/fuzz.sh [SECONDS] [TARGET ...]     # default 60 s per target, every target
#
# Sets up what is missing and skips what is there: cargo-fuzz (pinned, `cargo install
# --locked`), the seed corpora (written by fuzz/seed.mjs from tests/fixtures; the corpus
# each run grows is kept in fuzz/corpus/, git-ignored). libFuzzer needs nightly-only rustc
# flags: with a nightly toolchain installed the targets build with `cargo +nightly fuzz`,
# otherwise with the stable one and RUSTC_BOOTSTRAP=1 (FUZZ_TOOLCHAIN=stable forces that).
#
# Prints, per target, the executions, executions per second, corpus size and crashes, and
# exits 1 if any target crashed (a panic, an allocation over libFuzzer's 2 GiB malloc / RSS
# limit, or a unit running over 10 s), with the path of the input that did it
# (fuzz/artifacts/TARGET/...). Reproduce one with
#   cd fuzz && cargo +nightly fuzz run TARGET artifacts/TARGET/crash-...
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CARGO_FUZZ_VERSION=0.13.2
SECONDS_PER_TARGET="${1:-60}"
shift || true
if ! [[ "$SECONDS_PER_TARGET" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS] [TARGET ...]" >&2
  exit 2
fi
TARGETS=("$@")
if [[ ${#TARGETS[@]} -eq 0 ]]; then
  TARGETS=(model_json weights model_from_memory)
fi

command -v cargo >/dev/null || { echo "fuzz.sh: cargo is required" >&2; exit 1; }
command -v node >/dev/null || { echo "fuzz.sh: node is required (fuzz/seed.mjs)" >&2; exit 1; }

# cargo-fuzz, pinned.
if [[ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
  echo "fuzz.sh: installing cargo-fuzz $CARGO_FUZZ_VERSION"
  start=$(date +%s)
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --force
  echo "fuzz.sh: cargo-fuzz installed in $(($(date +%s) - start)) s"
else
  echo "fuzz.sh: cargo-fuzz $CARGO_FUZZ_VERSION present"
fi

# The toolchain: nightly when there is one, else stable with RUSTC_BOOTSTRAP=1.
FUZZ=(cargo fuzz)
toolchain="${FUZZ_TOOLCHAIN:-}"
if [[ -z "$toolchain" ]] && command -v rustup >/dev/null \
  && rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=nightly
fi
if [[ -n "$toolchain" ]] && command -v rustup >/dev/null; then
  FUZZ=(cargo "+$toolchain" fuzz)
fi
if [[ "$toolchain" != nightly* ]]; then
  # libFuzzer's instrumentation flags (-Zsanitizer, ...) are nightly-only; this lets the
  # stable compiler accept them.
  export RUSTC_BOOTSTRAP=1
fi
echo "fuzz.sh: using ${FUZZ[*]}${RUSTC_BOOTSTRAP:+ (RUSTC_BOOTSTRAP=1)}"

echo "fuzz.sh: seed corpora from tests/fixtures"
node fuzz/seed.mjs fuzz/seeds

cd fuzz
mkdir -p logs
start=$(date +%s)
build_args=()
[[ ${#TARGETS[@]} -eq 1 ]] && build_args=("${TARGETS[0]}")
echo "fuzz.sh: building the targets (log: fuzz/logs/build.log)"
if ! "${FUZZ[@]}" build "${build_args[@]}" >logs/build.log 2>&1; then
  tail -60 logs/build.log
  echo "fuzz.sh: the fuzz targets did not build" >&2
  exit 1
fi
echo "fuzz.sh: built in $(($(date +%s) - start)) s"

summary=()
crashed=0
for t in "${TARGETS[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  log="logs/$t.log"
  echo "fuzz.sh: $t for $SECONDS_PER_TARGET s (log: fuzz/$log)"
  status=0
  timeout "$((SECONDS_PER_TARGET + 180))" "${FUZZ[@]}" run "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
    -dict=model.dict -print_final_stats=1 >"$log" 2>&1 || status=$?
  # (`|| true`: a crash while loading the corpus leaves some of these lines out.)
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  if [[ -z "$runs" ]]; then
    runs=$(grep -o '^Done [0-9]* runs' "$log" | grep -o '[0-9]*' | tail -1 || true)
  fi
  corpus=$(grep -o 'corp: [0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  crashes=$(grep -o 'Test unit written to [^ ]*' "$log" | sed 's/Test unit written to //' \
    | grep -v '/slow-unit-' || true)
  n=0
  [[ -n "$crashes" ]] && n=$(printf '%s\n' "$crashes" | wc -l)
  if [[ $status -ne 0 && $n -eq 0 ]]; then
    n=1
    crashes="(libFuzzer exited with status $status without writing an input; see fuzz/$log)"
  fi
  summary+=("$(printf '%-20s %12s %10s %8s %8s' "$t" "${runs:-?}" "${rate:-?}" "${corpus:-?}" "$n")")
  if [[ $n -gt 0 ]]; then
    crashed=1
    echo "fuzz.sh: $t CRASHED; the end of its log:"
    grep -v "^#[0-9]" "$log" | tail -40 | cut -c1-300
    while IFS= read -r c; do echo "fuzz.sh: $t crash input: $c"; done <<<"$crashes"
  fi
done

echo
printf '%-20s %12s %10s %8s %8s\n' target executions exec/s corpus crashes
printf '%s\n' "${summary[@]}"
if [[ $crashed -ne 0 ]]; then
  echo "fuzz.sh: FAILED: a target crashed (inputs above, under fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz.sh: no crashes ($SECONDS_PER_TARGET s per target)"
