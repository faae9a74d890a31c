"""Check a hash index file against item ids, with the `xxhash` package.

usage: hash_index_check.py INDEX.parquet IDS.txt
IDS.txt holds one item id per line (duplicates allowed). Prints, as JSON,
whether the index is exactly the sorted xxh3-128 (seed 42) digests of the
distinct ids, one column fixed_size_binary[16] in one row group.
"""
import json
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

index_path, ids_path = sys.argv[1], sys.argv[2]
ids = {line.rstrip("\n") for line in open(ids_path, encoding="utf-8") if line.strip()}
expected = sorted(xxhash.xxh3_128(i.encode("utf-8"), seed=42).digest() for i in ids)
f = pq.ParquetFile(index_path)
table = f.read()
got = table.column("id_hash").to_pylist() if "id_hash" in table.column_names else []
print(json.dumps({
    "columns": table.column_names,
    "type": str(table.schema.field(0).type) if table.num_columns else None,
    "row_groups": f.metadata.num_row_groups,
    "rows": table.num_rows,
    "distinct_ids": len(ids),
    "equal": got == expected,
    "sorted": got == sorted(got),
}))
