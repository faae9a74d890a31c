"""Create an EarthCatalog-layout catalog with PyIceberg itself and append to it.

usage: write_catalog.py BASE_DIR
Prints what was written, as JSON, for ecops to be checked against.
"""
import json
import os
import sys
from collections import Counter
from datetime import datetime, timezone

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import IdentityTransform, YearTransform
from pyiceberg.types import BinaryType, LongType, NestedField, StringType, TimestamptzType

base = sys.argv[1]
os.makedirs(base, exist_ok=True)
catalog = SqlCatalog("earthcatalog", uri=f"sqlite:///{base}/earthcatalog.db", warehouse=f"file://{base}/warehouse")
catalog.create_namespace("earthcatalog")
schema = Schema(
    NestedField(1, "id", StringType(), required=False),
    NestedField(2, "grid_partition", StringType(), required=False),
    NestedField(3, "geometry", BinaryType(), required=False),
    NestedField(4, "datetime", TimestamptzType(), required=False),
    NestedField(5, "platform", StringType(), required=False),
    NestedField(6, "percent_valid_pixels", LongType(), required=False),
)
spec = PartitionSpec(
    PartitionField(source_id=2, field_id=1000, transform=IdentityTransform(), name="grid_partition"),
    PartitionField(source_id=4, field_id=1001, transform=YearTransform(), name="year"),
)
table = catalog.create_table("earthcatalog.stac_items", schema=schema, partition_spec=spec)
arrow_schema = pa.schema([
    ("id", pa.large_string()), ("grid_partition", pa.large_string()), ("geometry", pa.large_binary()),
    ("datetime", pa.timestamp("us", tz="UTC")), ("platform", pa.large_string()), ("percent_valid_pixels", pa.int64()),
])
cells = ["81017ffffffffff", "81003ffffffffff", "8108bffffffffff", "811fbffffffffff"]
written = []
for batch in range(2):
    rows = []
    for i in range(37 + batch * 11):
        cell = cells[(i * 7 + batch) % len(cells)] if i % 5 else cells[0]
        year = 2019 + (i % 3)
        rows.append({
            "id": f"b{batch}-{i}", "grid_partition": cell, "geometry": b"\x01\x01\x00\x00\x00" + bytes(16),
            "datetime": datetime(year, 1 + i % 12, 1, tzinfo=timezone.utc), "platform": "LC08",
            "percent_valid_pixels": i,
        })
    table.append(pa.Table.from_pylist(rows, schema=arrow_schema))
    written.extend(rows)
table = catalog.load_table("earthcatalog.stac_items")
files = list(table.scan().plan_files())
per_cell = Counter(r["grid_partition"] for r in written)
out = {
    "rows": len(written),
    "files": len(files),
    "bytes": sum(f.file.file_size_in_bytes for f in files),
    "partitions": len({(r["grid_partition"], r["datetime"].year) for r in written}),
    "cells": len(per_cell),
    "snapshots": len(table.metadata.snapshots),
    "top_cell": per_cell.most_common(1)[0][0],
    "top_rows": per_cell.most_common(1)[0][1],
}
print(json.dumps(out))
