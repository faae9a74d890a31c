"""Read a stac-geoparquet file with rustac and with stac-geoparquet, and
compare each reader's items with the items `ecops query --format json` printed.

usage: read_stac_geoparquet.py FILE.parquet ITEMS.json
Prints one JSON line: per reader, how many items it read and which differ.

Both sides are normalised the same way before comparing: nulls and missing
members are the same (Parquet structs cannot tell them apart), timestamps
of STAC's datetime fields are compared as instants, a Polygon equals a
MultiPolygon of that one polygon (readers may widen geometry types), and
numbers compare by value.
"""
import asyncio
import datetime as dt
import json
import sys

import pyarrow.parquet as pq
import rustac
import stac_geoparquet.arrow as sga

DATETIMES = {"datetime", "start_datetime", "end_datetime", "created", "updated",
             "expires", "published", "unpublished"}


def instant(v):
    if isinstance(v, dt.datetime):
        t = v if v.tzinfo else v.replace(tzinfo=dt.timezone.utc)
        return round(t.timestamp() * 1_000_000)
    if isinstance(v, str):
        try:
            return instant(dt.datetime.fromisoformat(v.replace("Z", "+00:00")))
        except ValueError:
            return v
    return v


def plain(v):
    """Lists for tuples/arrays, no nulls in objects, numbers as floats."""
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items() if x is not None}
    if isinstance(v, (list, tuple)) or type(v).__name__ == "ndarray":
        return [plain(x) for x in list(v)]
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    if hasattr(v, "item"):  # numpy scalar
        return plain(v.item())
    if isinstance(v, dt.datetime):
        return instant(v)
    return v


def geometry(g):
    g = plain(g)
    if g and g.get("type") == "Polygon":
        return {"type": "MultiPolygon", "coordinates": [g["coordinates"]]}
    return g


def normal(item):
    props = {k: (instant(v) if k in DATETIMES else v) for k, v in (item.get("properties") or {}).items()}
    return plain({
        "id": item["id"],
        "collection": item.get("collection"),
        "stac_version": item.get("stac_version"),
        "stac_extensions": item.get("stac_extensions") or [],
        "bbox": item.get("bbox"),
        "links": item.get("links") or [],
        "assets": item.get("assets") or {},
        "properties": props,
    }) | {"geometry": geometry(item.get("geometry"))}


def from_query_json(record):
    """An item as `ecops query --format json` prints it, as a STAC item."""
    props = dict(record.get("properties") or {})
    top = {k: props.pop(k, None) for k in ["bbox", "links", "stac_extensions", "stac_version", "type"]}
    props["datetime"] = record.get("datetime")
    if record.get("platform") is not None:
        props["platform"] = record["platform"]
    return {"id": record["id"], "collection": record.get("collection"), "geometry": record.get("geometry"),
            "assets": record.get("assets"), "properties": props, **top}


def compare(expected, got):
    got = {i["id"]: normal(i) for i in got}
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    differ = []
    for k in sorted(set(expected) & set(got)):
        if expected[k] != got[k]:
            a, b = expected[k], got[k]
            keys = sorted(x for x in set(a) | set(b) if a.get(x) != b.get(x))
            detail = {x: [a.get(x), b.get(x)] for x in keys}
            if "properties" in detail:
                pa, pb = a["properties"], b["properties"]
                detail["properties"] = {x: [pa.get(x), pb.get(x)] for x in set(pa) | set(pb) if pa.get(x) != pb.get(x)}
            differ.append({"id": k, "detail": detail})
    return {"items": len(got), "missing": missing[:5], "extra": extra[:5],
            "differ": len(differ), "first_difference": differ[:1]}


async def read_rustac(path):
    return (await rustac.read(path))["features"]


def main():
    path, items_json = sys.argv[1], sys.argv[2]
    records = json.load(open(items_json))
    expected = {r["id"]: normal(from_query_json(r)) for r in records if r.get("geometry") is not None}
    table = pq.read_table(path)
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    out = {
        "expected": len(expected),
        "rustac": compare(expected, asyncio.run(read_rustac(path))),
        "stac_geoparquet": compare(expected, list(sga.stac_table_to_items(table))),
        "stac_geoparquet_key": json.loads(meta.get("stac-geoparquet", "null")),
        "geo_primary": json.loads(meta.get("geo", "{}")).get("primary_column"),
        "bbox_type": str(table.schema.field("bbox").type),
    }
    print(json.dumps(out))


main()
