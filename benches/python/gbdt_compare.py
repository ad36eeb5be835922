"""The tree-evaluator comparison (benches/gbdt.sh): XGBoost's `inplace_predict`, LightGBM's
`predict` and scorer's evaluator (examples/gbdt_eval.rs) on the same rows, the same models and the
same number of threads, in one run; medians of RUNS timed runs after a warm-up, and the largest
difference between scorer's outputs and each library's.

  python benches/python/gbdt_compare.py MODELS_DIR INPUT_DIR ROWS RUNS THREADS GBDT_EVAL_BIN [DEVICE…]

Scorer runs on each DEVICE named (default `cpu`; `cuda` on a GPU host, where THREADS is still the
libraries' and the CPU evaluator's thread count).
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


def scorer(bin_, models, name, directory, rows, runs, threads, device):
    with tempfile.NamedTemporaryFile() as out:
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
        done = subprocess.run([bin_, "bench", models, name, directory, str(rows), str(runs), out.name, device],
                              check=True, capture_output=True, text=True, env=env)
        line = done.stdout.split()
        print("  " + done.stderr.strip().splitlines()[-1], file=sys.stderr)
        values = np.fromfile(out.name, dtype="<f4")
    times = [float(t) for t in line[2:]]
    return values, float(line[1]), times


def main(models, directory, rows, runs, threads, bin_, *devices):
    rows, runs, threads = int(rows), int(runs), int(threads)
    devices = devices or ("cpu",)
    X = load(directory, rows)
    print(f"{rows} rows x {X.shape[1]} f32 features ({np.isnan(X).sum()} missing), {threads} threads, "
          f"median of {runs} runs; xgboost {xgb.__version__}, lightgbm {lgb.__version__}")
    booster = xgb.Booster(model_file=f"{models}/w1_gbdt_xgb/1/model.json")
    booster.set_param({"nthread": threads})
    model = lgb.Booster(model_file=f"{models}/w1_gbdt_lgb/1/model.txt")
    for fam, label, name, predict in [
        ("xgb", "xgboost inplace_predict", "w1_gbdt_xgb", lambda: booster.inplace_predict(X)),
        ("lgb", "lightgbm predict", "w1_gbdt_lgb", lambda: model.predict(X, num_threads=threads)),
    ]:
        want, base, times = timed(predict, runs)
        print(f"{label:30s} {base:7.3f} s ({', '.join('%.3f' % x for x in times)})  {rows / base / 1e3:8.0f} k rows/s")
        for device in devices:
            got, t, ts = scorer(bin_, models, name, directory, rows, runs, threads, device)
            diff = float(np.max(np.abs(got - want)))
            print(f"{'scorer ' + device + ' (' + fam + ' model)':30s} {t:7.3f} s ({', '.join('%.3f' % x for x in ts)})  "
                  f"{rows / t / 1e3:8.0f} k rows/s  {base / t:5.2f}x the library  max |scorer - library| {diff:.2e}")


if __name__ == "__main__":
    main(*sys.argv[1:])
