#!/usr/bin/env bash
# The pip way to install scorer: maturin (PyPI) packages the scorer and scorer-datagen binaries
# into a wheel (packaging/wheel/pyproject.toml, binary bindings, as ruff and uv ship), which is
# installed into a fresh virtualenv and runs the quickstart from there: datagen, validate, run into
# SQLite, rows checked. The build shares CARGO_TARGET_DIR's release artifacts.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/scorer/target}"
say() { echo "wheel-check: $*"; }
VENV="${SCORER_CACHE:-$HOME/.cache/scorer}/wheel-venv"
if [ ! -x "$VENV/bin/maturin" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "maturin==1.16.0"
fi
work="$(mktemp -d /tmp/scorer-wheel.XXXXXX)"
trap 'rm -rf "$work"' EXIT
t0=$SECONDS
(cd packaging/wheel && "$VENV/bin/maturin" build --release --locked --out "$work/dist") >"$work/build.log" 2>&1 \
  || { tail -40 "$work/build.log"; say "FAILED: maturin build"; exit 1; }
wheel="$(ls "$work"/dist/scorer-*.whl)"
say "built $(basename "$wheel") ($(($(stat -c %s "$wheel") / 1000000)) MB) in $((SECONDS - t0)) s"

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$wheel"
say "pip install into a fresh venv: $("$work/venv/bin/scorer" --version)"
# The quickstart, from the installed wheel, in a directory holding only its job and model.
mkdir -p "$work/qs/jobs" "$work/qs/models"
cp jobs/quickstart.toml "$work/qs/jobs/"
cp -r models/quickstart_mlp "$work/qs/models/"
(
  cd "$work/qs"
  PATH="$work/venv/bin:$PATH"
  scorer-datagen input --out data/quickstart/dt=2026-11-24 --date 2026-11-24 --rows 100000 --files 4 \
    --row-group-rows 16384 --features 8 --null-feature 3 --null-fraction 0.01 >/dev/null
  scorer validate jobs/quickstart.toml --date 2026-11-24 >/dev/null
  scorer run jobs/quickstart.toml --date 2026-11-24
)
rows=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT count(*) FROM quickstart_scores WHERE ds = '2026-11-24'\").fetchone()[0])" "$work/qs/scorer.db")
[ "$rows" = 100000 ] || { say "FAILED: quickstart_scores has $rows rows"; exit 1; }
say "the quickstart from the wheel: exit 0, $rows rows in quickstart_scores"
