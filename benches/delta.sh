#!/usr/bin/env bash
# W1 end to end into a local Delta table beside W1 into PostgreSQL (benches/README.md, "Delta
# Lake output"): the same 5M rows, model and binary, runs alternated, each a cold process, the
# page cache warm. Reports wall seconds, rows/s, user+sys CPU seconds and peak RSS per run.
#
#   benches/delta.sh            # 3 runs of each
#   RUNS=5 benches/delta.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/pg-env.sh
source scripts/pg-env.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/scorer/target}"
DATE=2026-11-24
RUNS="${RUNS:-3}"
cargo build --release --bins --quiet
BIN="$CARGO_TARGET_DIR/release"
if [ ! -f "data/w1/dt=$DATE/_complete" ]; then
  rm -rf "data/w1/dt=$DATE"
  "$BIN/scorer-datagen" input --out "data/w1/dt=$DATE" --date "$DATE" --rows 5000000 --files 8 \
    --row-group-rows 131072 --features 32 --null-feature 0 --null-fraction 0.01 --seed 1 >&2
  touch "data/w1/dt=$DATE/_complete"
fi
trap 'pg_down' EXIT
pg_up
work="$(mktemp -d)"
trap 'pg_down; rm -rf "$work"' EXIT
# The W1 job into a Delta table under the work directory instead of PostgreSQL.
sed -e 's|^table = "bench.w1_scores"|delta = "'"$work"'/w1_delta"|' -e 's|^name = "w1"|name = "w1_delta"|' \
  jobs/w1.toml >"$work/w1_delta.toml"
measure() { # label job database-url
  local t
  t="$(mktemp)"
  sync
  DATABASE_URL="$3" /usr/bin/time -f "%e %U %S %M" -o "$t" "$BIN/scorer" run "$2" --date "$DATE" --quiet >/dev/null
  read -r wall user sys rss <"$t"
  rm -f "$t"
  python3 -c "import sys; w=float(sys.argv[1]); print(f'{sys.argv[5]:<10} wall {w:6.2f} s  {5e6/w:>10,.0f} rows/s  cpu {float(sys.argv[2])+float(sys.argv[3]):6.2f} s  peak RSS {int(sys.argv[4])//1024} MB')" \
    "$wall" "$user" "$sys" "$rss" "$1"
}
for _ in $(seq "$RUNS"); do
  measure postgres jobs/w1.toml "$SCORER_TEST_DATABASE_URL"
  measure delta "$work/w1_delta.toml" "$SCORER_TEST_DATABASE_URL"
done
echo "Delta table: $(du -sh "$work/w1_delta" | cut -f1), $(ls "$work/w1_delta/_delta_log" | grep -c json) commits"
