"""Writes a Delta table with the `deltalake` package (delta-rs's Python binding), partitioned by
date, in several versions, and the same final rows of one date as plain Parquet, for the test
that scorer scores both alike:

  version 0: ds=2026-11-24, ids 0..2999
  version 1: ds=2026-11-25 appended, ids 0..999
  version 2: ds=2026-11-24 overwritten (predicate), ids 0..1999, new values
  version 3: ds=2026-11-24 appended, ids 2000..2499

  OUT/events_delta/                              the Delta table
  OUT/events_parquet/dt=2026-11-24/part-0.parquet  ds=2026-11-24 at version 3, without ds
  OUT/events_parquet_v1/dt=2026-11-24/part-0.parquet  ds=2026-11-24 at version 1

  python write_input.py OUT
"""
import datetime
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import write_deltalake


def rows(ids: range, day: datetime.date, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    columns = {"id": pa.array(list(ids), pa.int64())}
    for f in range(8):
        columns[f"f{f}"] = pa.array(rng.normal(size=len(ids)).astype(np.float32))
    columns["ds"] = pa.array([day] * len(ids), pa.date32())
    return pa.table(columns)


def main() -> None:
    out = sys.argv[1]
    table = os.path.join(out, "events_delta")
    d1, d2 = datetime.date(2026, 11, 24), datetime.date(2026, 11, 25)
    v0 = rows(range(0, 3000), d1, 1)
    write_deltalake(table, v0, partition_by=["ds"])
    write_deltalake(table, rows(range(0, 1000), d2, 2), mode="append")
    v2 = rows(range(0, 2000), d1, 3)
    write_deltalake(table, v2, mode="overwrite", predicate="ds = '2026-11-24'")
    v3 = rows(range(2000, 2500), d1, 4)
    write_deltalake(table, v3, mode="append")
    for name, data in [
        ("events_parquet", pa.concat_tables([v2, v3])),
        ("events_parquet_v1", v0),
    ]:
        day = os.path.join(out, name, "dt=2026-11-24")
        os.makedirs(day, exist_ok=True)
        pq.write_table(data.drop_columns(["ds"]), os.path.join(day, "part-0.parquet"))


if __name__ == "__main__":
    main()
