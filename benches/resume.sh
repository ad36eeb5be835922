#!/usr/bin/env bash
# Resume bench (benches/README.md, "Resume"): W1 into a throwaway PostgreSQL; uninterrupted runs
# against runs killed with SIGKILL once their checkpoints hold a given share of the rows, then
# resumed. Prints the uninterrupted and resumed wall times (median of RUNS each), and how many rows
# each resumed run adopted.
#
#   benches/resume.sh            # kill at 90%
#   KILL_AT=0.5 benches/resume.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/pg-env.sh
source scripts/pg-env.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/scorer/target}"
DATE=2026-11-24
KILL_AT="${KILL_AT:-0.9}"
RUNS="${RUNS:-3}"

cargo build --release --bins --quiet
BIN="$CARGO_TARGET_DIR/release"
W1="data/w1/dt=$DATE"
if [ ! -f "$W1/part-00007.parquet" ]; then
  echo "resume: generating W1 into $W1" >&2
  "$BIN/scorer-datagen" input --out "$W1" --date "$DATE" --rows 5000000 --files 8 \
    --row-group-rows 131072 --features 32 --null-feature 0 --null-fraction 0.01 --seed 1
fi
PG_EXTRA_OPTS="-c autovacuum=off -c max_wal_size=16GB -c min_wal_size=8GB -c checkpoint_timeout=1h" pg_up
trap pg_down EXIT
URL="$SCORER_TEST_DATABASE_URL"
psql_q() { psql "$URL" -XqAt -v ON_ERROR_STOP=1 "$@"; }
run() { DATABASE_URL="$URL" RUST_LOG=scorer=error "$BIN/scorer" run jobs/w1.toml --date "$DATE" >/dev/null; }
seconds() { python3 -c 'import sys,time; t=time.perf_counter(); import subprocess; subprocess.run(sys.argv[1:], check=True); print(f"{time.perf_counter()-t:.3f}")' "$@"; }
settle() { psql_q -c CHECKPOINT; sync; }
checkpointed() {
  psql_q -c "SELECT coalesce(sum((r->>'scored')::bigint), 0) FROM scorer.resume_checkpoints c,
             jsonb_array_elements(c.body::jsonb->'ranges') r" 2>/dev/null || echo 0
}
export -f run
export URL BIN DATE

echo "resume: warm-up run" >&2
run
whole=()
resumed=()
adopted=()
for i in $(seq 1 "$RUNS"); do
  settle
  whole+=("$(seconds bash -c run)")
  settle
  DATABASE_URL="$URL" RUST_LOG=scorer=error "$BIN/scorer" run jobs/w1.toml --date "$DATE" >/dev/null 2>&1 &
  pid=$!
  target=$(python3 -c "print(int(5000000 * $KILL_AT))")
  while [ "$(checkpointed)" -lt "$target" ]; do
    kill -0 "$pid" 2>/dev/null || { echo "resume: the run ended before $KILL_AT of its rows were checkpointed" >&2; exit 1; }
    sleep 0.01
  done
  kill -9 "$pid"
  wait "$pid" 2>/dev/null || true
  settle
  resumed+=("$(seconds bash -c run)")
  adopted+=("$(psql_q -c "SELECT rows_resumed FROM scorer.runs WHERE status = 'succeeded' ORDER BY finished_at DESC LIMIT 1")")
  echo "resume: resumed run $i stage seconds: $(psql_q -c "SELECT stage_seconds FROM scorer.runs WHERE status = 'succeeded' ORDER BY finished_at DESC LIMIT 1")" >&2
done
python3 - "$KILL_AT" "${whole[*]}" "${resumed[*]}" "${adopted[*]}" <<'PY'
import statistics, sys
at, whole, resumed, adopted = float(sys.argv[1]), *[list(map(float, a.split())) for a in sys.argv[2:]]
w, r = statistics.median(whole), statistics.median(resumed)
print(f"uninterrupted W1     {w:.2f} s median (runs: {', '.join(f'{x:.2f}' for x in whole)})")
print(f"resumed after a kill at {at:.0%} checkpointed: {r:.2f} s median (runs: {', '.join(f'{x:.2f}' for x in resumed)}) = {r / w:.2f} of uninterrupted")
print(f"rows adopted         {', '.join(str(int(a)) for a in adopted)} of 5000000")
PY
