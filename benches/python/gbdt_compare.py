"""The tree-evaluator comparison (benches/gbdt.sh): XGBoost's `inplace_predict`, LightGBM's
`predict` and scorer's evaluator (examples/gbdt_eval.rs) on the same rows, the same models and the
same number of threads, in one run; medians of RUNS timed runs after a warm-up, and the largest
difference between scorer's outputs and each library's.

  python benches/python/gbdt_compare.py MODELS_DIR INPUT_DIR ROWS RUNS THREADS GBDT_EVAL_BIN
"""

import glob
import os
import statistics
import subprocess
import sys
import tempfile
import time

import lightgbm as lgb
import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xgboost as xgb

FEATURES = [f"f{i}" for i in range(32)]


def load(directory, rows):
    parts, have = [], 0
    for path in sorted(glob.glob(f"{directory}/*.parquet")):
        t = pq.read_table(path, columns=FEATURES)
        parts.append(np.column_stack([pc.fill_null(t.column(f), np.nan).to_numpy() for f in FEATURES]))
        have += t.num_rows
        if have >= rows:
            break
    X = np.ascontiguousarray(np.concatenate(parts)[:rows], dtype=np.float32)
    assert len(X) == rows, f"{directory} has fewer than {rows} rows"
    return X


def timed(f, runs):
    out = f()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return out, statistics.median(times), times


def scorer(bin_, models, name, directory, rows, runs, threads):
    with tempfile.NamedTemporaryFile() as out:
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
        line = subprocess.run([bin_, models, name, directory, str(rows), str(runs), out.name],
                              check=True, capture_output=True, text=True, env=env).stdout.split()
        values = np.fromfile(out.name, dtype="<f4")
    times = [float(t) for t in line[2:]]
    return values, float(line[1]), times


def main(models, directory, rows, runs, threads, bin_):
    rows, runs, threads = int(rows), int(runs), int(threads)
    X = load(directory, rows)
    print(f"{rows} rows x {X.shape[1]} f32 features ({np.isnan(X).sum()} missing), {threads} threads, "
          f"median of {runs} runs; xgboost {xgb.__version__}, lightgbm {lgb.__version__}")
    results = []
    booster = xgb.Booster(model_file=f"{models}/w1_gbdt_xgb/1/model.json")
    booster.set_param({"nthread": threads})
    xp, xt, xts = timed(lambda: booster.inplace_predict(X), runs)
    sp, st, sts = scorer(bin_, models, "w1_gbdt_xgb", directory, rows, runs, threads)
    results += [("xgboost inplace_predict", "xgb", xt, xts, None), ("scorer (XGBoost model)", "xgb", st, sts,
                 float(np.max(np.abs(sp - xp))))]
    model = lgb.Booster(model_file=f"{models}/w1_gbdt_lgb/1/model.txt")
    lp, lt, lts = timed(lambda: model.predict(X, num_threads=threads), runs)
    sp2, st2, sts2 = scorer(bin_, models, "w1_gbdt_lgb", directory, rows, runs, threads)
    results += [("lightgbm predict", "lgb", lt, lts, None), ("scorer (LightGBM model)", "lgb", st2, sts2,
                 float(np.max(np.abs(sp2 - lp))))]
    base = {"xgb": xt, "lgb": lt}
    for name, fam, t, ts, diff in results:
        extra = f"  {base[fam] / t:5.2f}x the library" if diff is not None else ""
        extra += f"  max |scorer - library| {diff:.2e}" if diff is not None else ""
        print(f"{name:26s} {t:7.3f} s ({', '.join('%.3f' % x for x in ts)})  {rows / t / 1e3:8.0f} k rows/s{extra}")


if __name__ == "__main__":
    main(*sys.argv[1:7])
