#!/usr/bin/env bash
# The model-kinds benchmark (benches/README.md): W1 into PostgreSQL five ways on the same rows, in
# one run, alternating, RUNS times each (default 3), medians printed:
#   mlp       scorer, the native `mlp` kind (jobs/w1.toml)
#   prep      the same MLP behind declared preprocessing: a polars-derived column, imputation,
#             30 standardized columns (jobs/w1_derived.toml); polars on 1 thread (scorer's setting)
#   prep_pl2  the same with POLARS_MAX_THREADS=2: polars' own pool beside rayon's
#   onnx      scorer, the same network exported from PyTorch, through ONNX Runtime (jobs/w1_onnx.toml)
#   python    pyarrow + onnxruntime + psycopg COPY BINARY (benches/python/score_w1_onnx.py)
# ONLY="mlp onnx" runs a subset. Needs: the release build, ONNX Runtime (scripts/onnxruntime.sh), a Python environment with
# pyarrow, onnxruntime and psycopg (made once in the cache).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/pg-env.sh
source scripts/pg-env.sh
# shellcheck source=scripts/onnxruntime.sh
source scripts/onnxruntime.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/scorer/target}"
DATE=2026-11-24
RUNS="${RUNS:-3}"

cargo build --release --bins --quiet
BIN="$CARGO_TARGET_DIR/release"
onnxruntime_up
VENV="${SCORER_CACHE:-$HOME/.cache/scorer}/bench-venv"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q numpy pyarrow "onnxruntime==$ONNXRUNTIME_VERSION" "psycopg[binary]"
fi

W1="data/w1/dt=$DATE"
if [ ! -f "$W1/part-00007.parquet" ]; then
  "$BIN/scorer-datagen" input --out "$W1" --date "$DATE" --rows 5000000 --files 8 \
    --row-group-rows 131072 --features 32 --null-feature 0 --null-fraction 0.01 --seed 1
fi
if [ -z "${SCORER_BENCH_DATABASE_URL:-}" ]; then
  PG_EXTRA_OPTS="-c autovacuum=off -c max_wal_size=16GB -c min_wal_size=8GB -c checkpoint_timeout=1h" pg_up
  trap pg_down EXIT
  SCORER_BENCH_DATABASE_URL="$SCORER_TEST_DATABASE_URL"
fi
URL="$SCORER_BENCH_DATABASE_URL"
psql_q() { psql "$URL" -XqAt -v ON_ERROR_STOP=1 "$@"; }
psql_q -c "CREATE SCHEMA IF NOT EXISTS bench"

TMP=$(mktemp -d)
measure() { # name command...: appends "name wall user+sys maxrss_kb" to $TMP/times
  local name="$1"; shift
  psql_q -c CHECKPOINT; sync
  /usr/bin/time -f '%e %U %S %M' -o "$TMP/t" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" || {
    echo "models bench: $name failed; the end of its log:" >&2; tail -5 "$TMP/$name.err" >&2; exit 1; }
  read -r wall user sys rss <"$TMP/t"
  echo "$name $wall $(echo "$user + $sys" | bc) $rss" >>"$TMP/times"
}
run_mlp() { measure mlp env DATABASE_URL="$URL" "$BIN/scorer" run jobs/w1.toml --date "$DATE"; }
run_prep() { measure prep env DATABASE_URL="$URL" "$BIN/scorer" run jobs/w1_derived.toml --date "$DATE"; }
run_prep2() { measure prep_pl2 env DATABASE_URL="$URL" POLARS_MAX_THREADS=2 "$BIN/scorer" run jobs/w1_derived.toml --date "$DATE"; }
run_onnx() { measure onnx env DATABASE_URL="$URL" "$BIN/scorer" run jobs/w1_onnx.toml --date "$DATE"; }
run_python() { measure python "$VENV/bin/python" benches/python/score_w1_onnx.py "$URL" "$W1" "$DATE"; }

echo "models bench: warm-up (tables, page cache)" >&2
ONLY="${ONLY:-mlp prep prep_pl2 onnx python}"
round() {
  for c in $ONLY; do
    case "$c" in
      mlp) run_mlp ;; prep) run_prep ;; prep_pl2) run_prep2 ;; onnx) run_onnx ;; python) run_python ;;
      *) echo "models bench: unknown contender $c (mlp prep prep_pl2 onnx python)" >&2; exit 2 ;;
    esac
  done
}
round
: >"$TMP/times"
for i in $(seq 1 "$RUNS"); do
  echo "models bench: round $i/$RUNS" >&2
  round
done
rows=$(psql_q -c "SELECT count(*) FROM bench.w1_scores WHERE ds = '$DATE'")
same="(not checked: a subset ran)"
if [ "$ONLY" = "mlp prep prep_pl2 onnx python" ]; then
  same=$(psql_q -c "SELECT count(*) FROM bench.w1_onnx_scores o JOIN bench.w1_scores m USING (id, ds)
    JOIN bench.w1_python_scores p USING (id, ds) JOIN bench.w1_derived_scores d USING (id, ds)
    WHERE ds = '$DATE' AND abs(o.score - m.score) <= 1e-5 AND abs(o.score - p.score) <= 1e-6
      AND abs(d.score - m.score) <= 1e-6")
fi
python3 - "$TMP/times" "$rows" "$same" <<'PY'
import statistics, sys
rows, same = int(sys.argv[2]), sys.argv[3]
by = {}
for line in open(sys.argv[1]):
    name, wall, cpu, rss = line.split()
    by.setdefault(name, []).append((float(wall), float(cpu), int(rss)))
print(f"W1: {rows} rows; {same} rows agree across all (onnx vs mlp 1e-5, onnx vs python 1e-6, prep vs mlp 1e-6)")
base = statistics.median(w for w, _, _ in by["mlp"]) if "mlp" in by else None
for name in ["mlp", "prep", "prep_pl2", "onnx", "python"]:
    if name not in by:
        continue
    runs = by[name]
    wall = statistics.median(w for w, _, _ in runs)
    cpu = statistics.median(c for _, c, _ in runs)
    rss = max(r for _, _, r in runs)
    print(f"{name:8s} {wall:6.2f} s wall ({', '.join('%.2f' % w for w, _, _ in runs)})  "
          f"{rows / wall / 1e6:.2f} M rows/s  CPU {cpu:.2f} s  peak RSS {rss / 1024:.0f} MB  "
          + (f"vs mlp {wall / base:.2f}x" if base else ""))
PY
rm -rf "$TMP"
