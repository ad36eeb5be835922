#!/usr/bin/env python3
"""W1 as other writers lay it out (benches/README.md): the same shape as scorer-datagen's W1
(ids, 32 f32 features with 1% nulls in f0), plus the columns real tables carry and jobs do not
read, written with another writer's defaults:

  pyarrow  pyarrow.parquet.write_table's defaults (dictionary tried on every column, snappy, 1 MB
           pages), plus a date and a string column; 131,072-row row groups
  spark    Spark's parquet-mr defaults emulated: dictionary on, snappy, 1 MB pages, 128 MB row
           groups (~700k rows here), plus the date, the string and three wide text columns
  pyarrow_defaults
           pyarrow.parquet.write_table with no settings at all: its default row groups of
           1,048,576 rows (so each file is one or two row groups), plus the date and the string
  duckdb   DuckDB's `COPY ... TO (FORMAT parquet)` with its defaults (122,880-row row groups,
           snappy), from the same table (needs the duckdb package)

  python3 benches/w1_inputs.py pyarrow data/w1_pyarrow/dt=2026-11-24 [--rows 5000000] [--files 8]

Rows are spread evenly over the files. 10 x W1 (benches/e2e.sh --x10) is 50M rows in 80 files: the
same files as W1, ten times as many, as a writer that writes one file per task would produce.

Needs numpy and pyarrow (the bench virtualenv of benches/models.sh, or any Python that has them).
"""

import argparse
import datetime
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

FEATURES = 32


def table(start, rows, rng, wide):
    cols = {"id": pa.array(np.arange(start, start + rows, dtype=np.int64))}
    for f in range(FEATURES):
        values = rng.standard_normal(rows, dtype=np.float32)
        mask = rng.random(rows) < 0.01 if f == 0 else None
        cols[f"f{f}"] = pa.array(values, mask=mask)
    cols["event_date"] = pa.array(
        [datetime.date(2026, 11, 24)] * rows, type=pa.date32()
    )
    cols["segment"] = pa.array(rng.choice(["retail", "smb", "enterprise", "public"], rows))
    if wide:
        for w in range(3):
            # ~100 characters of text per row, many distinct values: the dictionary overflows.
            codes = rng.integers(0, 1 << 40, rows)
            cols[f"notes_{w}"] = pa.array([f"{c:040x}" * 2 + "-" * 20 for c in codes])
    return pa.table(cols)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("layout", choices=["pyarrow", "spark", "pyarrow_defaults", "duckdb"])
    ap.add_argument("out")
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    per_file = -(-args.rows // args.files)
    for i in range(args.files):
        start = i * per_file
        rows = min(per_file, args.rows - start)
        if rows <= 0:
            break
        t = table(start, rows, rng, wide=args.layout == "spark")
        path = os.path.join(args.out, f"part-{i:05d}.parquet")
        if args.layout == "pyarrow":
            pq.write_table(t, path, row_group_size=131_072)
        elif args.layout == "pyarrow_defaults":
            pq.write_table(t, path)
        elif args.layout == "duckdb":
            import duckdb

            con = duckdb.connect()
            con.register("w1", t)
            con.execute(f"COPY w1 TO '{path}' (FORMAT parquet)")
            con.close()
        else:
            # parquet-mr: a row group closes at 128 MB of buffered data; with these columns that
            # is about 700k rows. Dictionary on, snappy, 1 MB pages, as Spark writes by default.
            pq.write_table(
                t,
                path,
                row_group_size=700_000,
                compression="snappy",
                use_dictionary=True,
                data_page_size=1 << 20,
                dictionary_pagesize_limit=1 << 20,
            )
    print(f"w1_inputs: {args.rows} rows in {args.files} files ({args.layout} layout) under {args.out}")


if __name__ == "__main__":
    main()
