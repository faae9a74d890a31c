"""Open a catalog with PyIceberg's SqlCatalog and report what it sees, as JSON.

usage: read_catalog.py BASE_DIR [CELL]
"""
import json
import logging
import sys

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import EqualTo

base = sys.argv[1]
cell = sys.argv[2] if len(sys.argv) > 2 else None
# PyIceberg warns through logging when a catalog database lacks its v1 layout.
warnings = []


class Collect(logging.Handler):
    def emit(self, record):
        warnings.append(record.getMessage())


logging.getLogger("pyiceberg").addHandler(Collect(level=logging.WARNING))
catalog = SqlCatalog("earthcatalog", uri=f"sqlite:///{base}/earthcatalog.db", warehouse=f"file://{base}/warehouse")
table = catalog.load_table("earthcatalog.stac_items")
scan = table.scan()
rows = scan.to_arrow()
files = list(scan.plan_files())
out = {
    "schema": [[f.field_id, f.name, str(f.field_type)] for f in table.schema().fields],
    "spec": [[f.field_id, f.name, f.source_id, str(f.transform)] for f in table.spec().fields],
    "properties": dict(table.properties),
    "files": len(files),
    "rows": rows.num_rows,
    "ids": sorted(set(rows.column("id").to_pylist())),
    "snapshots": len(table.metadata.snapshots),
    "operations": [s.summary.operation.value for s in table.metadata.snapshots],
    "v0_warning": any("v0 schema" in w for w in warnings),
}
if cell:
    filtered = table.scan(row_filter=EqualTo("grid_partition", cell))
    part = filtered.to_arrow()
    out["cell_files"] = len(list(filtered.plan_files()))
    out["cell_rows"] = part.num_rows
    out["cell_ids"] = sorted(part.column("id").to_pylist())
print(json.dumps(out))
