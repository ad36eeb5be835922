"""Trains the benchmark's tree models on W1-shaped rows (benches/gbdt.sh): XGBoost and LightGBM,
500 trees of depth 8 over the 32 f32 features f0..f31 (f0 has missing values), binary logistic,
and writes each as a scorer model (model file + model.toml with its sha256).

  python benches/python/gbdt_train.py TRAIN_DIR OUT_MODELS_DIR

The label is a fixed nonlinear function of the features plus noise, so the trees grow to depth 8
(a realistic, not a degenerate, ensemble).
"""

import glob
import hashlib
import json
import pathlib
import sys

import lightgbm as lgb
import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xgboost as xgb

FEATURES = [f"f{i}" for i in range(32)]
TREES = 500
DEPTH = 8


def load(directory):
    tables = [pq.read_table(p, columns=FEATURES) for p in sorted(glob.glob(f"{directory}/*.parquet"))]
    cols = []
    for f in FEATURES:
        col = np.concatenate([pc.fill_null(t.column(f), np.nan).to_numpy() for t in tables])
        cols.append(col.astype(np.float32))
    return np.column_stack(cols)


def label(X, rng):
    Z = np.nan_to_num((X - np.nanmean(X, 0)) / (np.nanstd(X, 0) + 1e-9))
    w = rng.normal(size=X.shape[1])
    logit = Z @ w * 0.3 + np.sin(2 * Z[:, 1]) + Z[:, 2] * Z[:, 3] - np.abs(Z[:, 4]) + (Z[:, 5] > 0.5) * Z[:, 6]
    logit += rng.normal(scale=0.5, size=len(X))
    return (logit > np.median(logit)).astype(np.float32)


def write(out, name, file, data, description):
    d = pathlib.Path(out) / name / "1"
    d.mkdir(parents=True, exist_ok=True)
    (d / file).write_bytes(data)
    fmt = "xgboost_json" if file.endswith(".json") else "lightgbm_text"
    (d / "model.toml").write_text(
        f"""kind = "gbdt"
description = {json.dumps(description)}
inputs = [{", ".join(json.dumps(f) for f in FEATURES)}]
outputs = ["score"]

[gbdt]
format = "{fmt}"

[artifacts.model]
file = "{file}"
sha256 = "{hashlib.sha256(data).hexdigest()}"
"""
    )
    print(f"wrote {d / file} ({len(data)} bytes)")


def main(train_dir, out):
    rng = np.random.default_rng(3)
    X = load(train_dir)
    y = label(X, rng)
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": DEPTH, "eta": 0.05, "tree_method": "hist", "nthread": 2,
         "seed": 1, "min_child_weight": 1},
        xgb.DMatrix(X, label=y, feature_names=FEATURES), TREES)
    write(out, "w1_gbdt_xgb", "model.json", bytes(booster.save_raw("json")),
          f"XGBoost {xgb.__version__} binary:logistic, {TREES} trees depth {DEPTH}, W1-shaped (benches/gbdt.sh)")
    model = lgb.train(
        {"objective": "binary", "max_depth": DEPTH, "num_leaves": 2 ** DEPTH - 1, "learning_rate": 0.05,
         "min_data_in_leaf": 5, "num_threads": 2, "seed": 1, "verbose": -1},
        lgb.Dataset(X, label=y, feature_name=FEATURES), TREES)
    write(out, "w1_gbdt_lgb", "model.txt", model.model_to_string().encode(),
          f"LightGBM {lgb.__version__} binary, {TREES} trees depth {DEPTH}, W1-shaped (benches/gbdt.sh)")


if __name__ == "__main__":
    main(*sys.argv[1:3])
