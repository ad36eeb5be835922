#!/usr/bin/env bash
# The gbdt benchmark (benches/README.md, "Gradient-boosted trees"), in one run:
#   1. trains the benchmark models once (benches/python/gbdt_train.py): XGBoost and LightGBM,
#      500 trees of depth 8 over W1's 32 features, into data/bench-models;
#   2. evaluator alone: XGBoost's inplace_predict, LightGBM's predict and scorer's evaluator
#      (examples/gbdt_eval.rs) on the same ROWS rows of W1 (default 1,000,000) with THREADS threads
#      (default: all cores), RUNS timed runs each (default 3), with the largest output difference;
#   3. end to end (unless E2E=0): each model in a job over all of W1 into PostgreSQL
#      (benches/jobs/w1_gbdt_*.toml), wall, rows/s, CPU seconds per million rows, peak RSS.
# Needs the release build and a Python environment with xgboost-cpu and lightgbm (made once in
# the cache).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/pg-env.sh
source scripts/pg-env.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/scorer/target}"
DATE=2026-11-24
ROWS="${ROWS:-1000000}"
RUNS="${RUNS:-3}"
THREADS="${THREADS:-$(nproc)}"

# shellcheck source=benches/gbdt_setup.sh
source benches/gbdt_setup.sh
gbdt_setup

echo "== evaluator alone: $ROWS rows, $THREADS threads" >&2
"$VENV/bin/python" benches/python/gbdt_compare.py "$MODELS" "$W1" "$ROWS" "$RUNS" "$THREADS" \
  "$BIN/examples/gbdt_eval" cpu

[ "${E2E:-1}" = "0" ] && exit 0
echo "== end to end into PostgreSQL: W1, 5M rows" >&2
TMP=$(mktemp -d)
started=0
cleanup() { rm -rf "$TMP"; if [ "$started" = 1 ]; then pg_down; fi; }
trap cleanup EXIT
if [ -z "${SCORER_BENCH_DATABASE_URL:-}" ]; then
  PG_EXTRA_OPTS="-c autovacuum=off -c max_wal_size=16GB -c min_wal_size=8GB -c checkpoint_timeout=1h" pg_up
  started=1
  SCORER_BENCH_DATABASE_URL="$SCORER_TEST_DATABASE_URL"
fi
URL="$SCORER_BENCH_DATABASE_URL"
psql "$URL" -XqAt -c "CREATE SCHEMA IF NOT EXISTS bench"
for model in xgb lgb; do
  for i in 0 $(seq 1 "$RUNS"); do  # run 0 warms the table and the page cache
    psql "$URL" -XqAt -c CHECKPOINT; sync
    /usr/bin/time -f '%e %U %S %M' -o "$TMP/t" env DATABASE_URL="$URL" "$BIN/scorer" \
      --models-dir "$MODELS" run "benches/jobs/w1_gbdt_$model.toml" --date "$DATE" >"$TMP/out" 2>"$TMP/err" || {
      echo "gbdt bench: w1_gbdt_$model failed; the end of its log:" >&2; tail -5 "$TMP/err" >&2; exit 1; }
    [ "$i" = 0 ] || echo "$model $(cat "$TMP/t")" >>"$TMP/times"
  done
done
rows=$(psql "$URL" -XqAt -c "SELECT count(*) FROM bench.w1_gbdt_xgb_scores WHERE ds = '$DATE'")
python3 - "$TMP/times" "$rows" <<'PY'
import statistics, sys
rows = int(sys.argv[2])
by = {}
for line in open(sys.argv[1]):
    name, wall, user, sys_, rss = line.split()
    by.setdefault(name, []).append((float(wall), float(user) + float(sys_), int(rss)))
for name, runs in by.items():
    wall = statistics.median(w for w, _, _ in runs)
    cpu = statistics.median(c for _, c, _ in runs)
    print(f"w1_gbdt_{name}: {rows} rows, {wall:.2f} s wall ({', '.join('%.2f' % w for w, _, _ in runs)}), "
          f"{rows / wall / 1e3:.0f} k rows/s, {cpu / (rows / 1e6):.2f} CPU-s per M rows, "
          f"peak RSS {max(r for _, _, r in runs) / 1024:.0f} MB")
PY
