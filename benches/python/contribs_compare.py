"""The contributions comparison (benches/contribs.sh, issue 35): XGBoost's
`predict(pred_contribs=True)`, LightGBM's `predict(pred_contrib=True)` and scorer's TreeSHAP
(examples/gbdt_eval.rs on a copy of each benchmark model with `{ name = "contrib", kind =
"contributions" }` added) on the same rows, models and threads, in one invocation; medians of
RUNS timed runs after a warm-up (LIB_RUNS for the libraries, which take far longer), and the
largest difference between scorer's contributions and each library's, relative to the row's
largest one. LIB_RUNS = 0 times scorer alone.

  python benches/python/contribs_compare.py MODELS_DIR INPUT_DIR ROWS RUNS LIB_RUNS THREADS GBDT_EVAL_BIN
"""

import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import lightgbm as lgb
import numpy as np
import xgboost as xgb

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from gbdt_compare import load  # noqa: E402


def timed(f, runs):
    """Runs f once, then `runs` more times timed (no warm-up when runs is 1: the libraries'
    contributions take minutes, their start is a rounding error there)."""
    times, out = [], None
    if runs > 1:
        out = f()
    for _ in range(runs):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return out, statistics.median(times), times


def explained_copy(models, name, into):
    """The benchmark model `name` copied into the registry `into`, contributions added."""
    src = pathlib.Path(models) / name / "1"
    dst = pathlib.Path(into) / name / "1"
    shutil.copytree(src, dst)
    toml = (dst / "model.toml").read_text()
    line = next(l for l in toml.splitlines() if l.startswith("outputs = ["))
    toml = toml.replace(line, line.rstrip("]") + ', { name = "contrib", kind = "contributions" }]')
    (dst / "model.toml").write_text(toml)


def scorer(bin_, registry, name, directory, rows, runs, threads):
    with tempfile.NamedTemporaryFile() as out:
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads), GBDT_EVAL_OUTPUT="contrib")
        done = subprocess.run([bin_, "bench", registry, name, directory, str(rows), str(runs), out.name],
                              check=True, capture_output=True, text=True, env=env)
        line = done.stdout.split()
        print("  " + done.stderr.strip().splitlines()[-1], file=sys.stderr)
        values = np.fromfile(out.name, dtype="<f4")
    return values, float(line[1]), [float(t) for t in line[2:]]


def fmt(times):
    return ", ".join("%.2f" % x for x in times)


def main(models, directory, rows, runs, lib_runs, threads, bin_):
    rows, runs, lib_runs, threads = int(rows), int(runs), int(lib_runs), int(threads)
    X = load(directory, rows)
    print(f"{rows} rows x {X.shape[1]} f32 features ({np.isnan(X).sum()} missing), {threads} threads; "
          f"scorer median of {runs}, libraries median of {lib_runs}; "
          f"xgboost {xgb.__version__}, lightgbm {lgb.__version__}")
    booster = xgb.Booster(model_file=f"{models}/w1_gbdt_xgb/1/model.json")
    booster.set_param({"nthread": threads})
    model = lgb.Booster(model_file=f"{models}/w1_gbdt_lgb/1/model.txt")
    with tempfile.TemporaryDirectory() as registry:
        for fam, label, name, contribs in [
            ("xgb", "xgboost pred_contribs", "w1_gbdt_xgb",
             lambda: booster.predict(xgb.DMatrix(X, nthread=threads, feature_names=booster.feature_names), pred_contribs=True)),
            ("lgb", "lightgbm pred_contrib", "w1_gbdt_lgb",
             lambda: model.predict(X, pred_contrib=True, num_threads=threads)),
        ]:
            explained_copy(models, name, registry)
            got, t, ts = scorer(bin_, registry, name, directory, rows, runs, threads)
            print(f"{'scorer (' + fam + ' model)':24s} {t:9.2f} s ({fmt(ts)})  {rows / t / 1e3:8.1f} k rows/s",
                  flush=True)
            if lib_runs == 0:
                continue
            want, base, times = timed(contribs, lib_runs)
            want = np.asarray(want, dtype=np.float64).reshape(rows, -1)
            got = got.astype(np.float64).reshape(rows, -1)
            scale = np.maximum(np.abs(want).max(axis=1, keepdims=True), 1.0)
            diff = float((np.abs(got - want) / scale).max())
            print(f"{label:24s} {base:9.2f} s ({fmt(times)})  {rows / base / 1e3:8.1f} k rows/s  "
                  f"scorer {base / t:5.2f}x faster  max |scorer - library| / row scale {diff:.2e}",
                  flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
