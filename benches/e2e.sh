#!/usr/bin/env bash
# End-to-end benchmark on W1 (benches/README.md): generates W1 if absent, starts a throwaway
# PostgreSQL (unless SCORER_BENCH_DATABASE_URL names one on this machine), runs scorer as a cold
# process, and measures in the same run the time PostgreSQL alone needs to ingest the same rows
# through COPY BINARY from a file into a fresh unindexed table.
#
#   benches/e2e.sh                   # W1 as scorer-datagen, pyarrow and Spark write it: 5M rows each
#   benches/e2e.sh --input pyarrow   # one of native | pyarrow | spark | pyarrow_defaults | duckdb
#   benches/e2e.sh --x10             # 10 x W1: 50M rows (generated once; ~10 GB per layout)
#   benches/e2e.sh --tls             # the scorer connects with sslmode=require (default: disable)
#   benches/e2e.sh --in-flight "auto 1 4"   # W1's job as is (auto: no tuning keys), then with
#                                    # input.row_groups_in_flight = 1 and = 4, side by side
#   SCORER_BENCH_BIN_DIR=/tmp/old benches/e2e.sh --input native   # another build's binary
#
# COPY-only reads its file inside the server, with no connection at all; the scorer's rows cross
# a loopback connection. Unless --tls, that connection is plain TCP (`sslmode=disable` added to the
# URL), so the ratio compares the data paths; --tls measures what encryption adds (the test
# server speaks TLS, and sqlx's default `sslmode=prefer` would use it).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/pg-env.sh
source scripts/pg-env.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/scorer/target}"
DATE=2026-11-24
X10=""
SSLMODE=disable
INPUTS="native pyarrow spark"
IN_FLIGHTS="auto"
while [ $# -gt 0 ]; do
  case "$1" in
    --x10) X10=1 ;;
    --tls) SSLMODE=require ;;
    --input) INPUTS="$2"; shift ;;
    --input=*) INPUTS="${1#--input=}" ;;
    --in-flight) IN_FLIGHTS="$2"; shift ;;
    --in-flight=*) IN_FLIGHTS="${1#--in-flight=}" ;;
    *) echo "e2e: unknown argument $1 (use --input native|pyarrow|spark|pyarrow_defaults|duckdb, --x10, --tls, --in-flight \"auto 1 4\")" >&2; exit 2 ;;
  esac
  shift
done

# SCORER_BENCH_BIN_DIR: measure the scorer binary in that directory instead of building this tree
# (an A/B against an older build: benches/README.md "Observability overhead").
if [ -n "${SCORER_BENCH_BIN_DIR:-}" ]; then
  BIN="$SCORER_BENCH_BIN_DIR"
else
  cargo build --release --bins --quiet
  BIN="$CARGO_TARGET_DIR/release"
fi

# The input directory of one layout, generated if absent: scorer-datagen's W1, or W1 as pyarrow
# and Spark lay it out (benches/w1_inputs.py, in the bench virtualenv); 50M rows with --x10 (ids
# unique across the whole date: copies of the 5M-row files would repeat ids, which a run refuses).
input_dir() {
  local layout="$1" dir rows=5000000 files=8
  if [ -n "$X10" ]; then
    rows=50000000
    files=80
  fi
  case "$layout" in
    native) dir="data/w1${X10:+x10}/dt=$DATE" ;;
    pyarrow | spark | pyarrow_defaults | duckdb) dir="data/w1_$layout${X10:+x10}/dt=$DATE" ;;
    *) echo "e2e: unknown input $layout (native | pyarrow | spark | pyarrow_defaults | duckdb)" >&2; exit 2 ;;
  esac
  if [ ! -f "$dir/_complete" ]; then
    echo "e2e: generating W1 ($layout, $rows rows) into $dir" >&2
    rm -rf "$dir"
    if [ "$layout" = native ]; then
      "$BIN/scorer-datagen" input --out "$dir" --date "$DATE" --rows "$rows" --files "$files" \
        --row-group-rows 131072 --features 32 --null-feature 0 --null-fraction 0.01 --seed 1 >&2
    else
      local venv="${SCORER_CACHE:-$HOME/.cache/scorer}/bench-venv"
      if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import pyarrow, numpy, duckdb" 2>/dev/null; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q numpy pyarrow duckdb
      fi
      "$venv/bin/python" benches/w1_inputs.py "$layout" "$dir" --rows "$rows" --files "$files" >&2
    fi
    # Hidden from the run (a `_` name), marks a generation that finished.
    touch "$dir/_complete"
  fi
  echo "$dir"
}

if [ -z "${SCORER_BENCH_DATABASE_URL:-}" ]; then
  # No autovacuum or checkpoints in the middle of a measurement: both runs see the same server.
  PG_EXTRA_OPTS="-c autovacuum=off -c max_wal_size=16GB -c min_wal_size=8GB -c checkpoint_timeout=1h" pg_up
  trap pg_down EXIT
  SCORER_BENCH_DATABASE_URL="$SCORER_TEST_DATABASE_URL"
fi
URL="$SCORER_BENCH_DATABASE_URL"
case "$URL" in
  *sslmode=*) SCORER_URL="$URL" ;;
  *\?*) SCORER_URL="$URL&sslmode=$SSLMODE" ;;
  *) SCORER_URL="$URL?sslmode=$SSLMODE" ;;
esac
psql_q() { psql "$URL" -XqAt -v ON_ERROR_STOP=1 "$@"; }
postmaster_pid=$(head -1 "$(psql_q -c 'SHOW data_directory')/postmaster.pid")

# CPU seconds of the server: the postmaster with its reaped children, plus live children.
pg_cpu() {
  python3 - "$postmaster_pid" <<'PY'
import os, sys
tick = os.sysconf("SC_CLK_TCK")
pm = sys.argv[1]
def fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()
f = fields(pm)
total = sum(int(x) for x in f[11:15])
for pid in os.listdir("/proc"):
    if pid.isdigit() and pid != pm:
        try:
            g = fields(pid)
        except OSError:
            continue
        if g[1] == pm:
            total += int(g[11]) + int(g[12])
print(total / tick)
PY
}

run_scorer() {
  local out="$1"
  /usr/bin/time -f '%e %U %S %M' -o "$out.time" env DATABASE_URL="$SCORER_URL" RUST_LOG=scorer=info \
    "$BIN/scorer" run "$JOB_FILE" --date "$DATE" >"$out.stdout" 2>"$out.stderr" || {
    local rc=$?
    echo "e2e: the scorer run failed (exit $rc); the end of its log ($out.stderr):" >&2
    tail -n 5 "$out.stderr" >&2
    return "$rc"
  }
}

# Both measurements start from the same state: PostgreSQL's buffers written out and the kernel's
# dirty pages on disk, so neither pays for the write-back of the run before it.
settle() {
  psql_q -c CHECKPOINT
  sync
}

# One input layout: a job over it (W1's job with its URL and table), a warm-up run, then RUNS
# measured scorer runs alternating with COPY-only, and the summary.
bench_input() {
  local layout="$1" in_flight="$2" dir set job table
  dir=$(input_dir "$layout")
  set="$(dirname "$dir")"
  job="w1_${layout}${X10:+_x10}"
  [ "$in_flight" = auto ] || job="${job}_rg${in_flight}"
  table="bench.${job}_scores"
  JOB_FILE="$TMP/$job.toml"
  sed -e "0,/^name = .*/s//name = \"$job\"/" -e "s|data/w1/dt=|$set/dt=|" \
    -e "s|^table = .*|table = \"$table\"|" jobs/w1.toml >"$JOB_FILE"
  if [ "$in_flight" != auto ]; then
    sed -i "s|^\[input\]$|[input]\nrow_groups_in_flight = $in_flight|" "$JOB_FILE"
  fi
  JOB="$job"
  echo "e2e: $layout: warm-up run (creates the table, warms the page cache)" >&2
  run_scorer "$TMP/warm"
  local copy_file
  copy_file="$(psql_q -c 'SHOW data_directory')/../copy-only.bin"
  psql_q -c "COPY (SELECT * FROM $table WHERE ds = DATE '$DATE') TO '$copy_file' (FORMAT binary)"
  : >"$TMP/scorer.tsv"
  : >"$TMP/copy.tsv"
  for i in $(seq 1 "$RUNS"); do
    echo "e2e: $layout: measured run $i/$RUNS" >&2
    settle
    cpu0=$(pg_cpu)
    run_scorer "$TMP/run$i"
    cpu1=$(pg_cpu)
    read -r wall user sys rss_kb <"$TMP/run$i.time"
    first=$(grep -o 'since_launch_ms=[0-9]*' "$TMP/run$i.stderr" | head -1 | cut -d= -f2)
    stages=$(psql_q -c "SELECT stage_seconds FROM scorer.runs WHERE job = '$JOB' ORDER BY started_at DESC LIMIT 1")
    [ -n "${E2E_VERBOSE:-}" ] && echo "run $i: wall $wall user $user sys $sys pg $(echo "$cpu1 - $cpu0" | bc) first ${first:-0} $stages" >&2
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$wall" "$user" "$sys" "$rss_kb" "$(echo "$cpu1 - $cpu0" | bc)" "${first:-0}" "$stages" >>"$TMP/scorer.tsv"

    # The sink limit: PostgreSQL alone ingesting the same rows from a binary COPY file.
    psql_q -c "DROP TABLE IF EXISTS bench.copy_only" -c "CREATE TABLE bench.copy_only (LIKE $table)"
    settle
    ccpu0=$(pg_cpu)
    t0=$(date +%s.%N)
    psql_q -c "COPY bench.copy_only FROM '$copy_file' (FORMAT binary)"
    t1=$(date +%s.%N)
    ccpu1=$(pg_cpu)
    printf '%s\t%s\n' "$(echo "$t1 - $t0" | bc)" "$(echo "$ccpu1 - $ccpu0" | bc)" >>"$TMP/copy.tsv"
  done
  psql_q -c "DROP TABLE bench.copy_only"
  rm -f "$copy_file"
  local rows
  rows=$(psql_q -c "SELECT rows_written FROM scorer.runs WHERE job = '$JOB' ORDER BY started_at DESC LIMIT 1")
  summarise "$rows" "$JOB ($layout, sslmode=$SSLMODE)" "$TMP/scorer.tsv" "$TMP/copy.tsv"
  # The next input starts from the server state this one found: without its table, its
  # quarantine and their WAL (measured: a second input otherwise paid ~25% more server CPU).
  psql_q -c "DROP TABLE $table CASCADE" -c "DROP TABLE IF EXISTS ${table}_quarantine"
  settle
}

summarise() {
  python3 - "$@" <<'PY'
import json, statistics, sys
rows, job = int(sys.argv[1]), sys.argv[2]
runs = [l.rstrip("\n").split("\t") for l in open(sys.argv[3])]
copies = [l.split() for l in open(sys.argv[4])]
med = lambda xs: statistics.median(xs)
walls = [float(r[0]) for r in runs]
wall = med(walls)
scorer_cpu = med(float(r[1]) + float(r[2]) for r in runs)
rss = max(int(r[3]) for r in runs)
rss_med = med(int(r[3]) for r in runs)
pg = med(float(r[4]) for r in runs)
first = med(int(r[5]) for r in runs)
stages = json.loads(sorted(runs, key=lambda r: float(r[0]))[len(runs) // 2][6])
copy_walls = [float(c[0]) for c in copies]
copy_s = med(copy_walls)
copy_cpu = med(float(c[1]) for c in copies)
m = rows / 1e6
print(f"workload            {job}: {rows} rows, median of {len(runs)} runs each")
print(f"scorer end to end   {wall:.2f} s wall = {rows / wall / 1e6:.3f} M rows/s  (committed, cold process; min / median / max {min(walls):.2f} / {wall:.2f} / {max(walls):.2f} s = {rows / max(walls) / 1e6:.3f} / {rows / wall / 1e6:.3f} / {rows / min(walls) / 1e6:.3f} M rows/s)")
print(f"COPY-only (sink)    {copy_s:.2f} s wall = {rows / copy_s / 1e6:.3f} M rows/s  (COPY BINARY from a file into a fresh unindexed table; min / median / max {min(copy_walls):.2f} / {copy_s:.2f} / {max(copy_walls):.2f} s)")
print(f"ratio               {copy_s / wall:.3f}  (end to end rate / COPY-only rate)")
print(f"peak RSS            {rss / 1024:.0f} MB  (max over runs; median of the runs' peaks {rss_med / 1024:.0f} MB)")
print(f"CPU per M rows      {(scorer_cpu + pg) / m:.3f} s  (scorer {scorer_cpu / m:.3f} + PostgreSQL {pg / m:.3f}; COPY-only server {copy_cpu / m:.3f})")
print("stage seconds       " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(stages.items())) + "  (busy time per stage; stages overlap)")
print(f"first batch scored  {first:.0f} ms after launch")
PY
}

TMP=$(mktemp -d)
RUNS="${RUNS:-5}"
for layout in $INPUTS; do
  for in_flight in $IN_FLIGHTS; do
    bench_input "$layout" "$in_flight"
  done
done
rm -rf "$TMP"
