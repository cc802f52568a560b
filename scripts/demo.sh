#!/usr/bin/env bash
# The main job, on a fresh machine: get the real nsfwjs MobileNetV2 from npm, build the CLI,
# and run it on the model, comparing with TensorFlow.js's output on the same input.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
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
