"""Append another version of one item, as a writer that ignores the catalog
lock would: the item's rows (one per grid partition) copied with a new
platform and everything else, `updated` included, unchanged.

usage: append_version.py BASE ITEM_ID PLATFORM
prints {"rows": n}
"""
import json
import sys

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import EqualTo

base, item_id, platform = sys.argv[1:4]
catalog = SqlCatalog("earthcatalog", uri=f"sqlite:///{base}/earthcatalog.db", warehouse=f"file://{base}/warehouse")
table = catalog.load_table("earthcatalog.stac_items")
rows = table.scan(row_filter=EqualTo("id", item_id)).to_arrow()
if rows.num_rows == 0:
    sys.exit(f"no rows of {item_id}")
index = rows.schema.get_field_index("platform")
rows = rows.set_column(index, rows.schema.field(index), pa.array([platform] * rows.num_rows, rows.schema.field(index).type))
table.append(rows)
print(json.dumps({"rows": rows.num_rows}))
