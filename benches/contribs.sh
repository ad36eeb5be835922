#!/usr/bin/env bash
# The contributions benchmark (benches/README.md, "Contributions (TreeSHAP)", issue 35), in one
# invocation: scorer's TreeSHAP on the gbdt bench's 500-tree depth-8 models (XGBoost and LightGBM,
# benches/gbdt_setup.sh) over ROWS rows of W1 (default 1,000,000), then XGBoost's
# `pred_contribs` and LightGBM's `pred_contrib` on the first LIB_ROWS of those rows (default: all
# ROWS; the libraries run about 80 rows/s on 2 cores, so 1M rows take them hours each), THREADS
# threads each (default: all cores), with the largest difference from each library.
#   RUNS (default 1) timed scorer runs, LIB_RUNS (default 1) timed library runs.
# When LIB_ROWS is below ROWS, scorer also runs on those LIB_ROWS rows, for the like-for-like
# ratio. Needs the release build and the bench Python environment (benches/gbdt_setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/scorer/target}"
DATE=2026-11-24
ROWS="${ROWS:-1000000}"
LIB_ROWS="${LIB_ROWS:-$ROWS}"
RUNS="${RUNS:-1}"
LIB_RUNS="${LIB_RUNS:-1}"
THREADS="${THREADS:-$(nproc)}"

# shellcheck source=benches/gbdt_setup.sh
source benches/gbdt_setup.sh
gbdt_setup

grep -m1 'model name' /proc/cpuinfo >&2 || true
if [ "$LIB_ROWS" -lt "$ROWS" ]; then
  echo "== scorer alone: $ROWS rows, $THREADS threads" >&2
  "$VENV/bin/python" benches/python/contribs_compare.py "$MODELS" "$W1" "$ROWS" "$RUNS" 0 \
    "$THREADS" "$BIN/examples/gbdt_eval"
fi
echo "== scorer and the libraries: $LIB_ROWS rows, $THREADS threads" >&2
"$VENV/bin/python" benches/python/contribs_compare.py "$MODELS" "$W1" "$LIB_ROWS" "$RUNS" \
  "$LIB_RUNS" "$THREADS" "$BIN/examples/gbdt_eval"
