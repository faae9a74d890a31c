"""Write a catalog the way earthcatalog 0.5 writes one with a GeoJSON grid.

usage: write_reference_geojson.py BASE BOUNDARIES ID_FIELD ITEMS_DIR

earthcatalog 0.5 is not on PyPI (its last release there, 0.4.2, predates
its Iceberg catalogs), so this reproduces what its code does, with the same
libraries: table properties earthcatalog.grid.type = geojson,
.boundaries_path and .id_field (no resolution); partitions from shapely's
STRtree `intersects` over the boundary polygons as written, items touching
no region under "__none__"; one GeoParquet file per (partition, year)
written by pyarrow (no Parquet field ids, millisecond timestamps, assets /
links / bbox / stac_extensions as JSON text) and registered with
PyIceberg's add_files. Like earthcatalog, it drops items without a
geometry; it also leaves out footprints written across ±180 with a jump,
which shapely reads as planar shapes spanning the globe.
Prints the ids written and how many went to "__none__", as JSON.
"""
import glob
import json
import os
import sys
from collections import defaultdict
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import IdentityTransform, YearTransform
from pyiceberg.types import BinaryType, DoubleType, LongType, NestedField, StringType, TimestamptzType
from shapely.geometry import shape
from shapely.strtree import STRtree

base, boundaries, id_field, items_dir = sys.argv[1:5]
os.makedirs(f"{base}/warehouse", exist_ok=True)

features = json.load(open(boundaries))["features"]
tree = STRtree([shape(f["geometry"]) for f in features])
keys = [str(f["properties"][id_field]) for f in features]


def jumps(geometry):
    rings = geometry["coordinates"] if geometry["type"] == "Polygon" else [r for p in geometry["coordinates"] for r in p]
    return any(abs(b[0] - a[0]) > 180 for ring in rings for a, b in zip(ring, ring[1:]))


rows = defaultdict(list)
ids, outside = [], 0
for path in sorted(glob.glob(f"{items_dir}/**/*.stac.json", recursive=True)):
    item = json.load(open(path))
    geometry, props = item.get("geometry"), item.get("properties", {})
    if geometry is None or jumps(geometry) or not props.get("datetime"):
        continue
    geom = shape(geometry)
    parts = [keys[i] for i in tree.query(geom, predicate="intersects")] or ["__none__"]
    outside += parts == ["__none__"]
    when = datetime.fromisoformat(props["datetime"].replace("Z", "+00:00"))
    for part in parts:
        rows[(part, when.year)].append({
            "id": item["id"], "grid_partition": part, "geometry": geom.wkb, "datetime": when,
            "platform": props.get("platform"), "percent_valid_pixels": props.get("percent_valid_pixels"),
            "collection": item.get("collection"), "stac_version": item.get("stac_version"), "type": "Feature",
            "assets": json.dumps(item.get("assets")), "links": json.dumps(item.get("links")),
            "bbox": json.dumps(item.get("bbox")), "stac_extensions": json.dumps(item.get("stac_extensions")),
        })
    ids.append(item["id"])

arrow_schema = pa.schema([
    ("id", pa.string()), ("grid_partition", pa.string()), ("geometry", pa.binary()),
    ("datetime", pa.timestamp("ms", tz="UTC")), ("platform", pa.string()), ("percent_valid_pixels", pa.int64()),
    ("collection", pa.string()), ("stac_version", pa.string()), ("type", pa.string()),
    ("assets", pa.string()), ("links", pa.string()), ("bbox", pa.string()), ("stac_extensions", pa.string()),
])
geo = json.dumps({"version": "1.1.0", "primary_column": "geometry",
                  "columns": {"geometry": {"encoding": "WKB", "geometry_types": []}}})
files = []
for (part, year), part_rows in sorted(rows.items()):
    folder = f"{base}/warehouse/grid_partition={part}/year={year}"
    os.makedirs(folder, exist_ok=True)
    table = pa.Table.from_pylist(part_rows, schema=arrow_schema).replace_schema_metadata({"geo": geo})
    path = f"{folder}/part_0_reference.parquet"
    pq.write_table(table, path)
    files.append(path)

catalog = SqlCatalog("earthcatalog", uri=f"sqlite:///{base}/earthcatalog.db", warehouse=f"file://{base}/warehouse")
catalog.create_namespace("earthcatalog")
names = ["id", "grid_partition", "geometry", "datetime", "platform", "percent_valid_pixels", "date_dt", "proj:code",
         "assets", "links", "stac_version", "type", "start_datetime", "version", "sat:orbit_state", "scene_1_id",
         "scene_2_id", "scene_1_frame", "scene_2_frame", "mid_datetime", "created", "updated", "end_datetime",
         "stac_extensions", "collection", "latitude", "longitude", "bbox"]
types = {"geometry": BinaryType(), "datetime": TimestamptzType(), "percent_valid_pixels": LongType(),
         "date_dt": LongType(), "start_datetime": TimestamptzType(), "created": TimestamptzType(),
         "updated": TimestamptzType(), "end_datetime": TimestamptzType(), "latitude": DoubleType(),
         "longitude": DoubleType()}
schema = Schema(*[NestedField(i + 1, n, types.get(n, StringType()), required=False) for i, n in enumerate(names)])
spec = PartitionSpec(
    PartitionField(source_id=2, field_id=1000, transform=IdentityTransform(), name="grid_partition"),
    PartitionField(source_id=4, field_id=1001, transform=YearTransform(), name="year"),
)
table = catalog.create_table("earthcatalog.stac_items", schema=schema, partition_spec=spec, properties={
    "earthcatalog.grid.type": "geojson",
    "earthcatalog.grid.boundaries_path": boundaries,
    "earthcatalog.grid.id_field": id_field,
})
table.add_files(files)
print(json.dumps({"ids": ids, "outside": outside, "files": len(files)}))
