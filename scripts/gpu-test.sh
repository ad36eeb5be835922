#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: the GPU tests (every model kind on CUDA against its CPU output
# and the f64 reference; `auto`; a GPU that is not there) and the GPU benches (the W1 MLP forward
# pass per batch size; W1 end to end on cuda and on cpu into the embedded SQLite file), with the
# GPU named and the figures printed.
#
#   scripts/gpu-test.sh                       # builds with --features cuda (needs the CUDA toolkit)
#   SCORER_GPU_BIN_DIR=dir scripts/gpu-test.sh  # prebuilt: dir holds scorer, scorer-datagen, it, stages
#
# Fails (never skips) when no GPU is visible.
set -euo pipefail
cd "$(dirname "$0")/.."
DATE=2026-11-24

nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader ||
  { echo "gpu-test: no NVIDIA GPU visible (nvidia-smi failed)" >&2; exit 1; }

if [ -n "${SCORER_GPU_BIN_DIR:-}" ]; then
  bin="$(cd "$SCORER_GPU_BIN_DIR" && pwd)"
else
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/scorer/target}"
  export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d .)}"
  bin="$CARGO_TARGET_DIR/gpu-bin"
  mkdir -p "$bin"
  cargo build --locked --release --features cuda --bins
  cp "$CARGO_TARGET_DIR/release/scorer" "$CARGO_TARGET_DIR/release/scorer-datagen" "$bin/"
  # the test and bench executables, wherever cargo put them
  for target in "--test it" "--bench stages"; do
    # shellcheck disable=SC2086
    exe=$(cargo test --locked --release --features cuda $target --no-run --message-format=json 2>/dev/null |
      python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable"): print(m["executable"])' | tail -n 1)
    cp "$exe" "$bin/${target##* }"
  done
fi
export SCORER_BIN="$bin/scorer"

echo "== GPU tests" >&2
"$bin/it" gpu:: --test-threads=1 --nocapture

echo "== GPU bench: MLP forward" >&2
"$bin/stages" --bench cuda

echo "== GPU bench: W1 end to end into SQLite, cuda then cpu" >&2
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/jobs"
cp -r models "$work/models"
sed -e "s|^table = .*|table = \"w1_scores\"|" jobs/w1.toml >"$work/jobs/w1.toml"
"$bin/scorer-datagen" input --out "$work/data/w1/dt=$DATE" --date "$DATE" --rows 5000000 --files 8 \
  --row-group-rows 131072 --features 32 --null-feature 0 --null-fraction 0.01 --seed 1 >/dev/null
for device in cuda cpu; do
  (cd "$work" && "$bin/scorer" run w1 --date "$DATE" --device "$device" >/dev/null)
done
python3 - "$work/scorer.db" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for device, gpu, rows, stages in db.execute(
        "SELECT device, gpu_name, rows_written, stage_seconds FROM scorer_runs ORDER BY started_at"):
    s = json.loads(stages)
    print(f"W1 {device:7} {gpu or '':28} rows={rows} total={s['total']:.2f}s score={s['score']:.2f}s "
          f"({rows / s['score'] / 1e6:.1f} M rows/s scoring, {rows / s['total'] / 1e6:.2f} M rows/s end to end)")
PY
