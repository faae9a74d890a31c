"""Read a compacted catalog with PyIceberg: the current rows and, for every
snapshot (time travel), its operation, row count and (id, cell) pairs.

usage: compact_check.py BASE_DIR
"""
import json
import sys

from pyiceberg.catalog.sql import SqlCatalog

base = sys.argv[1]
catalog = SqlCatalog("earthcatalog", uri=f"sqlite:///{base}/earthcatalog.db", warehouse=f"file://{base}/warehouse")
table = catalog.load_table("earthcatalog.stac_items")


def pairs(arrow):
    ids = arrow.column("id").to_pylist()
    cells = arrow.column("grid_partition").to_pylist()
    pvp = arrow.column("percent_valid_pixels").to_pylist()
    return sorted([i, c, p] for i, c, p in zip(ids, cells, pvp))


snapshots = []
for s in sorted(table.metadata.snapshots, key=lambda s: s.sequence_number):
    scan = table.scan(snapshot_id=s.snapshot_id)
    snapshots.append({
        "snapshot_id": s.snapshot_id,
        "parent_id": s.parent_snapshot_id,
        "operation": s.summary.operation.value,
        "files": len(list(scan.plan_files())),
        "rows": pairs(scan.to_arrow()),
        "summary_total_records": s.summary.get("total-records"),
    })
current = table.scan()
print(json.dumps({
    "current_snapshot_id": table.metadata.current_snapshot_id,
    "files": len(list(current.plan_files())),
    "rows": pairs(current.to_arrow()),
    "snapshots": snapshots,
}))
