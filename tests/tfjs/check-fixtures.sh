#!/usr/bin/env bash
# Regenerates the conformance fixtures into a temporary directory and compares them,
# byte for byte, with the committed tests/fixtures. Exits non-zero on any difference.
#
#   tests/tfjs/check-fixtures.sh
#
# Installs the pinned node dependencies (npm ci) first if tests/tfjs/node_modules lacks them.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
committed="$repo/tests/fixtures"

if [ ! -f "$here/node_modules/@tensorflow/tfjs/package.json" ]; then
  echo "check-fixtures: installing node dependencies (npm ci) in $here"
  (cd "$here" && npm ci --no-audit --no-fund)
fi

if [ ! -d "$committed" ]; then
  echo "check-fixtures: FAIL: $committed does not exist; run: node tests/tfjs/generate-fixtures.mjs" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

if ! node "$here/generate-fixtures.mjs" "$tmp/fixtures" >"$tmp/generate.log" 2>&1; then
  cat "$tmp/generate.log" >&2
  echo "check-fixtures: FAIL: the generator failed (log above)" >&2
  exit 1
fi

if diff -r "$committed" "$tmp/fixtures" >"$tmp/diff.txt" 2>&1; then
  count="$(find "$committed" -name fixture.json | wc -l)"
  echo "check-fixtures: OK: $count fixtures in tests/fixtures match a fresh regeneration"
else
  cat "$tmp/diff.txt" >&2
  echo "check-fixtures: FAIL: tests/fixtures differs from a fresh regeneration (differences above)." >&2
  echo "  If the change is intended, run: node tests/tfjs/generate-fixtures.mjs" >&2
  exit 1
fi
