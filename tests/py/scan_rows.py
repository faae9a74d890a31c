"""Scan local catalogs with PyIceberg; report rows and distinct (id, grid_partition) pairs.

usage: scan_rows.py BASE_DIR [BASE_DIR ...]
"""
import json
import sys

from pyiceberg.catalog.sql import SqlCatalog

out = []
for base in sys.argv[1:]:
    catalog = SqlCatalog("earthcatalog", uri=f"sqlite:///{base}/earthcatalog.db", warehouse=f"file://{base}/warehouse")
    table = catalog.load_table("earthcatalog.stac_items")
    rows = table.scan(selected_fields=("id", "grid_partition")).to_arrow()
    pairs = set(zip(rows.column("id").to_pylist(), rows.column("grid_partition").to_pylist()))
    out.append({"base": base, "rows": rows.num_rows, "distinct": len(pairs)})
print(json.dumps({"catalogs": out}))
