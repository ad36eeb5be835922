#!/usr/bin/env bash
# The quickstart, end to end on a fresh machine: build scorer, generate a day of synthetic input,
# validate the job, score it into the embedded SQLite file and show a few of the rows.
# With DATABASE_URL=postgres://... set, the same run writes to PostgreSQL instead.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/scorer/target}"
DATE="${1:-2026-11-24}"

# Only what the quickstart runs: a dense model into SQLite needs none of the optional capabilities
# (Delta tables, polars preprocessing, ONNX, text embeddings), which are most of a first build.
# `cargo build --release` builds scorer with all of them (README, "Building").
cargo build --bins --no-default-features --quiet
bin="$CARGO_TARGET_DIR/debug"

"$bin/scorer-datagen" input --out "data/quickstart/dt=$DATE" --date "$DATE" \
  --rows 100000 --files 4 --row-group-rows 16384 --features 8 --null-feature 3 --null-fraction 0.01
"$bin/scorer" validate jobs/quickstart.toml --date "$DATE"
"$bin/scorer" run jobs/quickstart.toml --date "$DATE"

if [ -z "${DATABASE_URL:-}" ]; then
  python3 - "$DATE" <<'PY'
import sqlite3, sys
db = sqlite3.connect("scorer.db")
date = sys.argv[1]
n = db.execute("SELECT count(*) FROM quickstart_scores WHERE ds = ?", (date,)).fetchone()[0]
print(f"\nquickstart_scores has {n} rows for {date} in scorer.db; the first five:")
for row in db.execute("SELECT id, ds, score, run_id FROM quickstart_scores WHERE ds = ? ORDER BY id LIMIT 5", (date,)):
    print("  ", row)
run = db.execute("SELECT status, rows_read, rows_written, rows_rejected, stage_seconds FROM scorer_runs ORDER BY started_at DESC LIMIT 1").fetchone()
print(f"latest ledger row: status={run[0]} read={run[1]} written={run[2]} rejected={run[3]} seconds={run[4]}")
PY
fi
