"""Evolve a catalog's partition spec as another tool would (PyIceberg's
update_spec), and count rows through PyIceberg's partition pruning.

usage:
  evolve_spec.py evolve BASE SOURCE_BASE
      Moves grid_partition behind year (drop it: spec [year]; add it back:
      spec [year, grid_partition]), then appends every row of SOURCE_BASE's
      table under the new spec. Prints {"specs", "default_spec", "fields", "appended"}.
  evolve_spec.py count BASE CELL
      Rows whose grid_partition is CELL, scanned with a row filter (so files
      are pruned by the partition tuples their manifests record). Prints {"rows"}.
"""
import json
import sys

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import EqualTo


def table_of(base):
    catalog = SqlCatalog("earthcatalog", uri=f"sqlite:///{base}/earthcatalog.db", warehouse=f"file://{base}/warehouse")
    return catalog.load_table("earthcatalog.stac_items")


mode, base = sys.argv[1], sys.argv[2]
if mode == "evolve":
    table = table_of(base)
    with table.update_spec() as update:
        update.remove_field("grid_partition")
    table = table_of(base)
    with table.update_spec() as update:
        update.add_identity("grid_partition")
    table = table_of(base)
    rows = table_of(sys.argv[3]).scan().to_arrow()
    table.append(rows)
    table = table_of(base)
    print(json.dumps({
        "specs": len(table.specs()),
        "default_spec": table.spec().spec_id,
        "fields": [f.name for f in table.spec().fields],
        "appended": rows.num_rows,
    }))
elif mode == "count":
    rows = table_of(base).scan(row_filter=EqualTo("grid_partition", sys.argv[3]), selected_fields=("id",)).to_arrow()
    print(json.dumps({"rows": rows.num_rows}))
else:
    sys.exit(f"unknown mode {mode}")
