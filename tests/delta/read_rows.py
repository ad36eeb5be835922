"""Reads some columns of a Delta table that scorer wrote with `deltalake` (delta-rs's Python
binding), a reader nobody here wrote, and prints them as one JSON list of rows ordered by the
first column:

  python read_rows.py TABLE_URL COLUMN [COLUMN ...]
"""
import json
import sys

from deltalake import DeltaTable


def main() -> None:
    url, columns = sys.argv[1], sys.argv[2:]
    rows = DeltaTable(url).to_pyarrow_table(columns=columns).to_pylist()
    rows.sort(key=lambda r: r[columns[0]])
    print(json.dumps([[r[c] for c in columns] for r in rows]))


if __name__ == "__main__":
    main()
