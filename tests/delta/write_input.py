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

With --engines-defaults, also the tables as engines leave them (Databricks turns column mapping
on for new tables; long-lived tables have hundreds of versions and checkpoints):

  OUT/events_delta_name/   the same four versions, column mapping mode `name`
  OUT/events_delta_id/     the same four versions, column mapping mode `id` (Parquet field ids)
  OUT/events_delta_long/   version 0 as above, then 299 appends of other dates, a checkpoint
                           every 50 versions, and the log before the last checkpoint removed
  OUT/events_delta_dv/     deletion vectors enabled; ids 0..1499 and 1500..2999 of 2026-11-24 in
                           two files (versions 0, 1), then version 2 deletes rows from both
                           without rewriting them: an inline deletion vector in the first file
                           (ids 0, 5, 1000..1099, 1499), one in a deletion_vector_*.bin file in
                           the second (every 7th row). Neither `deltalake` nor any other writer
                           installable here writes deletion vectors (delta-rs rewrites files on
                           DELETE; Spark's Delta needs jars from Maven), so version 2 is written
                           by this script, to the protocol's format.
  OUT/events_parquet_dv/dt=2026-11-24/part-0.parquet  the rows left after version 2

  python write_input.py OUT [--engines-defaults]
"""
import datetime
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake


def rows(ids: range, day: datetime.date, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    columns = {"id": pa.array(list(ids), pa.int64())}
    for f in range(8):
        columns[f"f{f}"] = pa.array(rng.normal(size=len(ids)).astype(np.float32))
    columns["ds"] = pa.array([day] * len(ids), pa.date32())
    return pa.table(columns)


def four_versions(table: str, configuration: dict) -> tuple:
    """The four versions above; returns the rows of versions 0, 2 and 3."""
    d1, d2 = datetime.date(2026, 11, 24), datetime.date(2026, 11, 25)
    v0 = rows(range(0, 3000), d1, 1)
    write_deltalake(table, v0, partition_by=["ds"], configuration=configuration or None)
    write_deltalake(table, rows(range(0, 1000), d2, 2), mode="append")
    v2 = rows(range(0, 2000), d1, 3)
    write_deltalake(table, v2, mode="overwrite", predicate="ds = '2026-11-24'")
    v3 = rows(range(2000, 2500), d1, 4)
    write_deltalake(table, v3, mode="append")
    return v0, v2, v3


def long_history(table: str) -> None:
    """Version 0 of the four, then 299 one-row-per-date appends; checkpoints every 50 versions
    and no log retention, so the commits before the last checkpoint are gone."""
    d1 = datetime.date(2026, 11, 24)
    write_deltalake(
        table,
        rows(range(0, 3000), d1, 1),
        partition_by=["ds"],
        configuration={"delta.checkpointInterval": "50", "delta.logRetentionDuration": "interval 0 days"},
    )
    for i in range(1, 300):
        write_deltalake(table, rows(range(i, i + 1), datetime.date(2020, 1, 1) + datetime.timedelta(days=i), 5), mode="append")
    DeltaTable(table).cleanup_metadata()
    log = os.listdir(os.path.join(table, "_delta_log"))
    assert not any(name.startswith("00000000000000000000") for name in log), log
    assert any(name.endswith(".checkpoint.parquet") for name in log), log


def z85(data: bytes) -> str:
    """Z85 (ZeroMQ's base85), as the Delta protocol encodes deletion vectors and their ids."""
    chars = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
    assert len(data) % 4 == 0
    out = []
    for i in range(0, len(data), 4):
        value = int.from_bytes(data[i:i + 4], "big")
        block = []
        for _ in range(5):
            value, digit = divmod(value, 85)
            block.append(chars[digit])
        out.extend(reversed(block))
    return "".join(out)


def dv_bitmap(rows: list) -> bytes:
    """The protocol's deletion vector: magic 1681511377, then a RoaringTreemap in the portable
    format (one 32-bit bitmap, key 0, of array containers)."""
    import struct
    groups = {}
    for r in sorted(set(rows)):
        assert r < 1 << 32
        groups.setdefault(r >> 16, []).append(r & 0xFFFF)
    assert all(len(v) <= 4096 for v in groups.values())
    keys = sorted(groups)
    header = struct.pack("<II", 12346, len(keys))
    header += b"".join(struct.pack("<HH", k, len(groups[k]) - 1) for k in keys)
    offset = len(header) + 4 * len(keys)
    offsets, body = b"", b""
    for k in keys:
        offsets += struct.pack("<I", offset + len(body))
        body += b"".join(struct.pack("<H", v) for v in groups[k])
    bitmap = header + offsets + body
    return struct.pack("<I", 1681511377) + struct.pack("<QI", 1, 0) + bitmap


def deletion_vectors(table: str) -> pa.Table:
    """Versions 0 and 1 through `deltalake`, version 2 (the deletes) by hand; returns the rows
    left."""
    import json
    import struct
    import uuid
    import zlib

    d1 = datetime.date(2026, 11, 24)
    first, second = rows(range(0, 1500), d1, 6), rows(range(1500, 3000), d1, 7)
    write_deltalake(table, first, partition_by=["ds"], configuration={"delta.enableDeletionVectors": "true"})
    write_deltalake(table, second, mode="append")
    adds = []
    for version in (0, 1):
        with open(os.path.join(table, "_delta_log", f"{version:020d}.json")) as f:
            adds += [json.loads(line)["add"] for line in f if '"add"' in line]
    assert len(adds) == 2, adds
    gone_first = [0, 5] + list(range(1000, 1100)) + [1499]
    gone_second = list(range(0, 1500, 7))
    inline = dv_bitmap(gone_first)
    inline += b"\0" * (-len(inline) % 4)
    on_disk = dv_bitmap(gone_second)
    dv_id = uuid.uuid4()
    with open(os.path.join(table, f"deletion_vector_{dv_id}.bin"), "wb") as f:
        f.write(b"\x01" + struct.pack(">I", len(on_disk)) + on_disk + struct.pack(">I", zlib.crc32(on_disk)))
    descriptors = [
        {"storageType": "i", "pathOrInlineDv": z85(inline), "sizeInBytes": len(dv_bitmap(gone_first)),
         "cardinality": len(gone_first)},
        {"storageType": "u", "pathOrInlineDv": z85(dv_id.bytes), "offset": 1, "sizeInBytes": len(on_disk),
         "cardinality": len(gone_second)},
    ]
    now = 1796688000000
    lines = [{"commitInfo": {"timestamp": now, "operation": "DELETE", "operationParameters": {}}}]
    for add, dv in zip(adds, descriptors):
        lines.append({"remove": {"path": add["path"], "deletionTimestamp": now, "dataChange": True,
                                 "extendedFileMetadata": True, "partitionValues": add["partitionValues"],
                                 "size": add["size"]}})
        lines.append({"add": dict(add, modificationTime=now, dataChange=True, deletionVector=dv)})
    with open(os.path.join(table, "_delta_log", f"{2:020d}.json"), "w") as f:
        f.write("\n".join(json.dumps(line) for line in lines) + "\n")
    keep_first = [i for i in range(1500) if i not in set(gone_first)]
    keep_second = [i for i in range(1500) if i not in set(gone_second)]
    return pa.concat_tables([first.take(keep_first), second.take(keep_second)])


def main() -> None:
    out = sys.argv[1]
    v0, v2, v3 = four_versions(os.path.join(out, "events_delta"), {})
    if "--engines-defaults" in sys.argv[2:]:
        for mode in ("name", "id"):
            four_versions(os.path.join(out, f"events_delta_{mode}"), {"delta.columnMapping.mode": mode})
        long_history(os.path.join(out, "events_delta_long"))
        left = deletion_vectors(os.path.join(out, "events_delta_dv"))
        day = os.path.join(out, "events_parquet_dv", "dt=2026-11-24")
        os.makedirs(day, exist_ok=True)
        pq.write_table(left.drop_columns(["ds"]), os.path.join(day, "part-0.parquet"))
    for name, data in [
        ("events_parquet", pa.concat_tables([v2, v3])),
        ("events_parquet_v1", v0),
    ]:
        day = os.path.join(out, name, "dt=2026-11-24")
        os.makedirs(day, exist_ok=True)
        pq.write_table(data.drop_columns(["ds"]), os.path.join(day, "part-0.parquet"))


if __name__ == "__main__":
    main()
