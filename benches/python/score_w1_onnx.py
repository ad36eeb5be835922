"""The Python baseline for the ONNX benchmark: W1 scored the way a careful team would script it.

pyarrow reads the Parquet files batch by batch (only the id and feature columns), nulls become 0
as in jobs/w1.toml, onnxruntime runs models/w1_mlp_onnx/1/model.onnx on all cores, and psycopg
streams the results into PostgreSQL with COPY BINARY, the payload built with numpy (no per-row
Python). The date's previous rows are replaced in the same transaction (DELETE + COPY), so the
table is never half-written. Prints `rows seconds`.

  python benches/python/score_w1_onnx.py DATABASE_URL data/w1/dt=2026-11-24 2026-11-24
"""

import datetime
import glob
import os
import sys
import time

import numpy as np
import onnxruntime as ort
import psycopg
import pyarrow.compute as pc
import pyarrow.parquet as pq

FEATURES = [f"f{i}" for i in range(32)]
TABLE = "bench.w1_python_scores"


def encode(ids: np.ndarray, day: int, scores: np.ndarray) -> bytes:
    """COPY BINARY rows (id bigint, ds date, score real), built column-wise with numpy."""
    row = np.dtype(
        [("n", ">i2"), ("l_id", ">i4"), ("id", ">i8"), ("l_ds", ">i4"), ("ds", ">i4"),
         ("l_s", ">i4"), ("s", ">f4")]
    )
    out = np.empty(len(ids), dtype=row)
    out["n"], out["l_id"], out["id"] = 3, 8, ids
    out["l_ds"], out["ds"] = 4, day
    out["l_s"], out["s"] = 4, scores
    return out.tobytes()


def main(url: str, directory: str, date: str) -> None:
    t0 = time.perf_counter()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = os.cpu_count() or 1
    session = ort.InferenceSession("models/w1_mlp_onnx/1/model.onnx", opts)
    day = (datetime.date.fromisoformat(date) - datetime.date(2000, 1, 1)).days
    rows = 0
    with psycopg.connect(url) as conn:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigint NOT NULL, ds date NOT NULL, score real NOT NULL)"
        )
        conn.execute(f"DELETE FROM {TABLE} WHERE ds = %s", (date,))
        with conn.cursor().copy(f"COPY {TABLE} FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8)
            for path in sorted(glob.glob(os.path.join(directory, "*.parquet"))):
                for batch in pq.ParquetFile(path).iter_batches(
                    batch_size=65536, columns=["id"] + FEATURES
                ):
                    x = np.column_stack(
                        [pc.fill_null(batch.column(f), 0.0).to_numpy() for f in FEATURES]
                    ).astype(np.float32, copy=False)
                    score = session.run(None, {"features": x})[0][:, 0]
                    copy.write(encode(batch.column("id").to_numpy(), day, score))
                    rows += len(x)
            copy.write(b"\xff\xff")
    print(rows, f"{time.perf_counter() - t0:.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
