# The gbdt benchmarks' shared setup, sourced by benches/gbdt.sh and benches/contribs.sh:
# `gbdt_setup` builds the release binaries, makes the Python environment with XGBoost and LightGBM
# (once, in the cache), writes W1 (5M rows) and trains the 500-tree depth-8 benchmark models
# (once), and sets BIN, VENV, W1 and MODELS. Needs DATE and CARGO_TARGET_DIR set.
gbdt_setup() {
  cargo build --release --bins --example gbdt_eval --quiet
  BIN="$CARGO_TARGET_DIR/release"
  VENV="${SCORER_CACHE:-$HOME/.cache/scorer}/bench-venv"
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
  fi
  if ! "$VENV/bin/python" -c 'import xgboost, lightgbm, pyarrow' 2>/dev/null; then
    "$VENV/bin/pip" install -q numpy pyarrow xgboost-cpu==3.2.0 lightgbm==4.7.0 "psycopg[binary]"
  fi

  W1="data/w1/dt=$DATE"
  if [ ! -f "$W1/part-00007.parquet" ]; then
    "$BIN/scorer-datagen" input --out "$W1" --date "$DATE" --rows 5000000 --files 8 \
      --row-group-rows 131072 --features 32 --null-feature 0 --null-fraction 0.01 --seed 1
  fi
  MODELS=data/bench-models
  if [ ! -f "$MODELS/w1_gbdt_lgb/1/model.toml" ]; then
    TRAIN="data/w1_train/dt=$DATE"
    [ -f "$TRAIN/part-00000.parquet" ] || "$BIN/scorer-datagen" input --out "$TRAIN" --date "$DATE" \
      --rows 200000 --files 1 --row-group-rows 131072 --features 32 --null-feature 0 \
      --null-fraction 0.01 --seed 2
    echo "gbdt bench: training the 500-tree models (about a minute)" >&2
    "$VENV/bin/python" benches/python/gbdt_train.py "$TRAIN" "$MODELS"
  fi
}
