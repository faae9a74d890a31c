"""A writer that ignores the catalog lock, as the reference's newer pipeline
does: append small batches with PyIceberg in a loop, retrying each append
that loses the catalog's compare-and-swap (PyIceberg's CommitFailedException).

usage: append_loop.py BASE_DIR APPENDS ROWS_PER_APPEND
prints {"appends": n, "rows": n, "conflicts": n} as JSON.
"""
import datetime
import json
import sys
import time

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import CommitFailedException

base, appends, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
catalog = SqlCatalog("earthcatalog", uri=f"sqlite:///{base}/earthcatalog.db", warehouse=f"file://{base}/warehouse")
schema = catalog.load_table("earthcatalog.stac_items").schema().as_arrow()
conflicts = 0
rows = 0
for a in range(appends):
    ids = [f"pyiceberg-{a:03d}-{r:03d}" for r in range(per)]
    columns = {}
    for field in schema:
        if field.name == "id":
            columns[field.name] = pa.array(ids, field.type)
        elif field.name == "grid_partition":
            columns[field.name] = pa.array(["81003ffffffffff"] * per, field.type)
        elif field.name == "datetime":
            when = datetime.datetime(2021, 6, 1, tzinfo=datetime.timezone.utc)
            columns[field.name] = pa.array([when] * per, field.type)
        else:
            columns[field.name] = pa.nulls(per, field.type)
    batch = pa.Table.from_pydict(columns, schema=schema)
    for attempt in range(50):
        table = catalog.load_table("earthcatalog.stac_items")
        try:
            table.append(batch)
            break
        except CommitFailedException:
            conflicts += 1
            time.sleep(0.05)
    else:
        sys.exit(f"append {a} kept conflicting")
    rows += per
print(json.dumps({"appends": appends, "rows": rows, "conflicts": conflicts}))
