#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: the gbdt kind on CUDA. Every fixture model against its
# training library's predict on `cuda` (and on `cpu` for comparison), then the 500-tree depth-8
# W1 models (benches/gbdt.sh trains them) over ROWS W1-shaped rows: XGBoost's inplace_predict,
# LightGBM's predict and scorer's CPU evaluator on all cores, and scorer on the GPU.
#
#   scripts/gpu-gbdt.sh                        # builds examples/gbdt_eval with --features cuda
#   SCORER_GPU_BIN_DIR=dir scripts/gpu-gbdt.sh # prebuilt: dir holds gbdt_eval (cuda build)
#
# SCORER_BENCH_MODELS (default data/bench-models) holds the W1 models; without xgboost and
# lightgbm importable the libraries' timings are left out. Fails (never skips) when no GPU is
# visible.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${ROWS:-1000000}"
RUNS="${RUNS:-3}"
MODELS="${SCORER_BENCH_MODELS:-data/bench-models}"

nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader ||
  { echo "gpu-gbdt: no NVIDIA GPU visible (nvidia-smi failed)" >&2; exit 1; }
if [ -n "${SCORER_GPU_BIN_DIR:-}" ]; then
  bin="$(cd "$SCORER_GPU_BIN_DIR" && pwd)/gbdt_eval"
else
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/scorer/target}"
  export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d .)}"
  cargo build --locked --release --features cuda --example gbdt_eval
  bin="$CARGO_TARGET_DIR/release/examples/gbdt_eval"
fi
echo "host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)" >&2

echo "== gbdt parity on cuda (fixtures against each library's predict)" >&2
"$bin" parity tests/fixtures/gbdt cuda
echo "== gbdt parity on cpu" >&2
"$bin" parity tests/fixtures/gbdt cpu

echo "== W1 $ROWS rows, 500 trees depth 8" >&2
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$bin" w1 "$work/w1" "$ROWS"
if python3 -c 'import xgboost, lightgbm' 2>/dev/null; then
  python3 benches/python/gbdt_compare.py "$MODELS" "$work/w1" "$ROWS" "$RUNS" "$(nproc)" "$bin" cpu cuda
else
  echo "gpu-gbdt: no xgboost/lightgbm here; scorer alone" >&2
  for model in w1_gbdt_xgb w1_gbdt_lgb; do
    for device in cpu cuda; do
      echo "$model $device: $("$bin" bench "$MODELS" "$model" "$work/w1" "$ROWS" "$RUNS" "$work/$model.$device" "$device")"
    done
  done
fi
