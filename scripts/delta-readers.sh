# shellcheck shell=bash
# Sourced by scripts/test.sh: the Delta Lake readers the Delta tests check scorer's tables with,
# written by other people: the `deltalake` Python package (delta-rs's binding) and Polars'
# `read_delta`, with pyarrow and numpy (the input-writing script), in a cached virtualenv (PyPI
# wheels only).
# `delta_readers_up` exports SCORER_TEST_DELTA_PYTHON (that environment's python).
DELTA_READERS_PINS=(deltalake==1.6.6 polars==2.1.0 pyarrow==26.0.1 numpy==2.4.6)

delta_readers_up() {
  local venv="${SCORER_CACHE:-$HOME/.cache/scorer}/delta-venv"
  local stamp="$venv/.pins"
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${DELTA_READERS_PINS[*]}" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --only-binary=:all: "${DELTA_READERS_PINS[@]}"
    echo "${DELTA_READERS_PINS[*]}" >"$stamp"
  fi
  SCORER_TEST_DELTA_PYTHON="$venv/bin/python"
  export SCORER_TEST_DELTA_PYTHON
  echo "scorer: Delta readers (${DELTA_READERS_PINS[*]}) in $venv" >&2
}
