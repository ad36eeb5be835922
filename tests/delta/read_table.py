"""Reads a Delta table that scorer wrote with readers nobody here wrote: the `deltalake` package
(delta-rs's Python binding) and Polars' `read_delta`. Prints one JSON object:

  {"version": N,
   "deltalake": {"<ds>": {"rows": R, "ids": I, "run_ids": [...]}, ...},
   "polars":    {... the same, read by Polars ...},
   "columns": [...], "history": [{"version": v, "operation": "...", "scorer": {...}}, ...]}

  python read_table.py TABLE_URL [STORAGE_OPTIONS_JSON]
"""
import json
import sys

import polars as pl
from deltalake import DeltaTable


def by_date(frame: pl.DataFrame, id_column: str) -> dict:
    out = {}
    for (ds,), part in frame.group_by(["ds"]):
        out[str(ds)] = {
            "rows": part.height,
            "ids": part[id_column].n_unique(),
            "run_ids": sorted(part["run_id"].unique().to_list()),
        }
    return out


def main() -> None:
    url = sys.argv[1]
    options = json.loads(sys.argv[2]) if len(sys.argv) > 2 else None
    table = DeltaTable(url, storage_options=options)
    arrow = table.to_pyarrow_table()
    via_deltalake = pl.from_arrow(arrow)
    via_polars = pl.read_delta(url, storage_options=options)
    id_column = via_deltalake.columns[0]
    history = []
    for entry in table.history():
        history.append(
            {
                "version": entry.get("version"),
                "operation": entry.get("operation"),
                "scorer": entry.get("scorer"),
            }
        )
    print(
        json.dumps(
            {
                "version": table.version(),
                "columns": via_deltalake.columns,
                "partition_columns": table.metadata().partition_columns,
                "deltalake": by_date(via_deltalake, id_column),
                "polars": by_date(via_polars, id_column),
                "history": history,
            },
            default=str,
        )
    )


if __name__ == "__main__":
    main()
