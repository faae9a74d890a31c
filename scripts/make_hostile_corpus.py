#!/usr/bin/env python3
"""Writes the hostile input corpus at tests/data/hostile/ (issue 8, part 4).

Deterministic (no clock, no randomness without a fixed seed): running it twice
gives byte-identical files, so the committed corpus can be checked against a
fresh run (`git diff --exit-code tests/data/hostile` after running it).

    python3 scripts/make_hostile_corpus.py [--out DIR]

What it writes:

  items/**.stac.json   one body per item case (malformed JSON, nesting bombs,
                       bad encodings, bad STAC, bad geometries, bad datetimes,
                       bad bboxes) plus valid control items
  bait/escape.stac.json
                       a VALID item just outside the items root: it is what the
                       traversal keys point at, so a traversal that worked
                       would show up in the catalog as id "bait-escaped"
  inventory.csv        AWS S3 Inventory CSV (no header) listing every case,
                       plus hostile rows (traversal, absolute, encoded keys,
                       CSV injection, short rows, bad dates, non-UTF-8)
  bomb.csv.gz          gzip bomb within reason: ~130 KB expanding to 128 MiB
                       of 4-byte rows "a,b" (none of them an item)
  giant-line.csv.gz    ~65 KB expanding to one 64 MiB line without a newline
  truncated.csv.gz     a gzip inventory cut in the middle of its stream
  corrupt.csv.gz       a gzip header followed by bytes that are not deflate
  manifest-*.json      S3 Inventory manifests naming parts outside their folder
  cases.json           every case with its inventory position and the outcome
                       tests/hostile.rs expects (stage + reason keywords)
  README.md            the same table for people

Cases marked "generated" are too big to commit (an 8 MiB string, a 5 million
vertex polygon, bodies above the 16 MiB item limit): tests/hostile.rs writes
them into its copy of the corpus before ingesting; cases.json describes them.
"""

import argparse
import gzip
import io
import json
import os
import shutil
import struct
import zlib

DATE = "2026-01-01T00:00:00.000Z"
OLD_DATE = "1999-01-01T00:00:00.000Z"
SINCE = "2000-01-01"
MIB = 1024 * 1024


def item(id_, geometry=None, bbox=None, props=None, **top):
    """A valid STAC item (a 1x1 degree square near Oslo unless told otherwise)."""
    if geometry is None:
        geometry = {
            "type": "Polygon",
            "coordinates": [[[10, 59], [11, 59], [11, 60], [10, 60], [10, 59]]],
        }
        if bbox is None:
            bbox = [10, 59, 11, 60]
    p = {"datetime": "2024-06-01T10:00:00Z", "platform": "LC08", "percent_valid_pixels": 90}
    if props:
        p.update(props)
    body = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": id_,
        "geometry": geometry,
        "properties": p,
        "assets": {"data": {"href": f"s3://hostile-assets/{id_}.nc"}},
        "links": [],
    }
    if bbox is not None:
        body["bbox"] = bbox
    body.update(top)
    return body


def dumps(v):
    return json.dumps(v, separators=(",", ":"), allow_nan=False).encode()


def polygon(ring):
    return {"type": "Polygon", "coordinates": [ring]}


class Corpus:
    def __init__(self):
        self.files = {}  # relative path -> bytes
        self.rows = []  # raw inventory lines (bytes, without the newline)
        self.cases = []

    def add_file(self, rel, body):
        assert rel not in self.files, rel
        self.files[rel] = body

    def row(self, line, case):
        case["position"] = len(self.rows)
        self.rows.append(line)
        self.cases.append(case)

    def aws_row(self, key, case, bucket="hostile", date=DATE):
        line = b",".join(
            b'"' + (f.encode() if isinstance(f, str) else f) + b'"'
            for f in (bucket, key, b"1", date)
        )
        self.row(line, case)

    def item_case(self, group, name, body, expect, stage=None, keywords=(), note="", **extra):
        key = f"{group}/{name}.stac.json"
        if body is not None:
            self.add_file(f"items/{key}", body)
        case = {
            "name": f"{group}/{name}",
            "kind": "item",
            "key": key,
            "expect": expect,
            "note": note,
        }
        if stage:
            case["stage"] = stage
        if keywords:
            case["keywords"] = list(keywords)
        case.update(extra)
        self.aws_row(key, case)


def build():
    c = Corpus()

    # ---- controls: valid items that MUST be ingested ----
    c.item_case("controls", "ok-polygon", dumps(item("control-polygon")), "ingested",
                id="control-polygon", note="plain 1x1 degree footprint")
    c.item_case("controls", "ok-point",
                dumps(item("control-point", {"type": "Point", "coordinates": [-122.4, 37.8]},
                           bbox=[-122.4, 37.8, -122.4, 37.8])),
                "ingested", id="control-point", note="a point footprint")
    c.item_case("controls", "ok-antimeridian",
                dumps(item("control-antimeridian",
                           {"type": "MultiPolygon", "coordinates": [
                               [[[170, -10], [180, -10], [180, 10], [170, 10], [170, -10]]],
                               [[[-180, -10], [-170, -10], [-170, 10], [-180, 10], [-180, -10]]]]},
                           bbox=[170, -10, -170, 10])),
                "ingested", id="control-antimeridian", note="MultiPolygon split at ±180")
    c.item_case("controls", "ok-null-geometry",
                dumps(item("control-null-geometry", {"type": "Point", "coordinates": [0, 0]})
                      | {"geometry": None}),
                "ingested", id="control-null-geometry", note="no geometry: the __none__ cell")
    c.item_case("controls", "ok-large-area",
                dumps(item("control-large-area",
                           polygon([[-170, -80], [0, -80], [170, -80], [170, 80], [0, 80],
                                    [-170, 80], [-170, -80]]),
                           bbox=[-170, -80, 170, 80])),
                "ingested", id="control-large-area",
                note="an enormous (but valid) footprint: hundreds of cells at resolution 1")

    # ---- accepted by design: hostile-looking values that are only data ----
    c.item_case("accepted", "id-traversal", dumps(item("../../outside/evil")), "ingested",
                id="../../outside/evil",
                note="ids are column values, never paths: stored verbatim, no file named after it")
    c.item_case("accepted", "id-csv-formula", dumps(item("=cmd|' /C calc'!A0")), "ingested",
                id="=cmd|' /C calc'!A0", note="a spreadsheet formula as id is just a string")
    c.item_case("accepted", "datetime-leap-second",
                dumps(item("leap-second", props={"datetime": "2016-12-31T23:59:60Z"})),
                "ingested", id="leap-second", note="RFC 3339 allows second 60")

    # ---- malformed JSON ----
    good = dumps(item("json-case"))
    J = ("parse", "not JSON")
    c.item_case("json", "empty", b"", "dead_letter", J[0], [J[1], "EOF while parsing"],
                note="an empty file")
    c.item_case("json", "whitespace-only", b"  \n\t\n", "dead_letter", J[0],
                [J[1], "EOF while parsing"])
    c.item_case("json", "truncated", good[: len(good) // 2], "dead_letter", J[0],
                [J[1], "EOF while parsing"], note="a valid item cut in half")
    c.item_case("json", "trailing-garbage", good + b"}}garbage", "dead_letter", J[0],
                [J[1], "trailing characters"])
    c.item_case("json", "two-documents", good + b"\n" + good, "dead_letter", J[0],
                [J[1], "trailing characters"], note="NDJSON where one item was expected")
    c.item_case("json", "bare-bracket", b"[", "dead_letter", J[0],
                [J[1], "EOF while parsing a list"])
    c.item_case("json", "deep-array-100k", b"[" * 100_000, "dead_letter", J[0],
                [J[1], "recursion limit exceeded"], note="100 000 unclosed '['")
    deep = dumps(item("deep-balanced")).replace(
        b'"platform":"LC08"', b'"platform":"LC08","x":' + b"[" * 200 + b"]" * 200)
    c.item_case("json", "deep-balanced-200", deep, "dead_letter", J[0],
                [J[1], "recursion limit exceeded"],
                note="well-formed, 200 levels deep inside properties")
    c.item_case("json", "deep-object-5k", b'{"a":' * 5000 + b"1" + b"}" * 5000, "dead_letter",
                J[0], [J[1], "recursion limit exceeded"], note="5 000 nested objects")
    c.item_case("json", "nan-token",
                good.replace(b'"percent_valid_pixels":90', b'"percent_valid_pixels":NaN'),
                "dead_letter", J[0], [J[1], "expected value"], note="NaN is not JSON")
    c.item_case("json", "infinity-coordinate",
                good.replace(b"[10,59],[11,59]", b"[Infinity,59],[11,59]", 1),
                "dead_letter", J[0], [J[1], "expected value"])
    c.item_case("json", "number-overflow",
                good.replace(b"[10,59],[11,59]", b"[1e400,59],[11,59]", 1),
                "dead_letter", J[0], [J[1], "number out of range"])
    c.item_case("json", "latin1-in-string",
                good.replace(b'"platform":"LC08"', b'"platform":"Landsat \xe9t\xe9"'),
                "dead_letter", J[0], [J[1], "invalid unicode code point"],
                note="ISO-8859-1 bytes inside a string")
    c.item_case("json", "utf16-with-bom", b"\xff\xfe" + json.dumps(item("utf16")).encode("utf-16-le"),
                "dead_letter", J[0], [J[1], "expected value"], note="UTF-16LE with a BOM")
    c.item_case("json", "utf8-bom", b"\xef\xbb\xbf" + good, "dead_letter", J[0],
                [J[1], "expected value"], note="RFC 8259 forbids a BOM; we do not strip it")
    c.item_case("json", "binary-garbage",
                bytes((i * 197 + 13) % 256 for i in range(4096)), "dead_letter", J[0], [J[1]],
                note="4 KiB of non-UTF-8 bytes")
    c.item_case("json", "nul-bytes", b"\x00" * 64, "dead_letter", J[0], [J[1], "expected value"])
    c.item_case("json", "lone-surrogate", good.replace(b'"json-case"', b'"\\ud800\\u0041"'),
                "dead_letter", J[0], [J[1], "lone leading surrogate"],
                note="a UTF-16 high surrogate followed by a non-surrogate escape")
    c.item_case("json", "unpaired-surrogate", good.replace(b'"json-case"', b'"\\ud800"'),
                "dead_letter", J[0], [J[1], "hex escape"],
                note="a high surrogate at the end of a string")
    c.item_case("json", "raw-control-char", good.replace(b'"json-case"', b'"a\x01b"'),
                "dead_letter", J[0], [J[1], "control character"])

    # ---- not a STAC item ----
    S = "parse"
    c.item_case("stac", "top-level-array", b"[1,2]", "dead_letter", S,
                ["not a STAC item", "not an object"])
    c.item_case("stac", "top-level-null", b"null", "dead_letter", S,
                ["not a STAC item", "not an object"])
    c.item_case("stac", "collection",
                dumps({"type": "Collection", "id": "a-collection", "stac_version": "1.0.0",
                       "description": "a STAC Collection, not an Item", "license": "proprietary",
                       "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                                  "temporal": {"interval": [["2020-01-01T00:00:00Z", None]]}},
                       "links": []}),
                "dead_letter", S, ["not a STAC item", '"Collection"'])
    c.item_case("stac", "feature-collection",
                dumps({"type": "FeatureCollection", "features": [item("inner")]}),
                "dead_letter", S, ["not a STAC item", '"FeatureCollection"'])
    no_id = item("x")
    del no_id["id"]
    c.item_case("stac", "missing-id", dumps(no_id), "dead_letter", S, ["missing or invalid id"])
    c.item_case("stac", "empty-id", dumps(item("")), "dead_letter", S, ["missing or invalid id"])
    c.item_case("stac", "blank-id", dumps(item("   ")), "dead_letter", S,
                ["missing or invalid id"])
    c.item_case("stac", "numeric-id", dumps(item(7)), "dead_letter", S, ["missing or invalid id"])
    c.item_case("stac", "id-with-nul", dumps(item("a\u0000b")), "dead_letter", S,
                ["missing or invalid id"], note="a NUL (escaped) inside the id")
    c.item_case("stac", "id-too-long", dumps(item("i" * 2000)), "dead_letter", S,
                ["missing or invalid id"], note="ids are capped at 1 024 bytes")
    c.item_case("stac", "properties-not-object", dumps(item("p") | {"properties": [1, 2]}),
                "dead_letter", S, ["properties is not an object"])

    # ---- geometry ----
    G = "invalid geometry"
    c.item_case("geom", "bowtie",
                dumps(item("bowtie", polygon([[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]),
                           bbox=[0, 0, 2, 2])),
                "dead_letter", S, [G, "invalid polygon"], note="self-intersecting ring")
    c.item_case("geom", "hole-outside-shell",
                dumps(item("hole-outside", {"type": "Polygon", "coordinates": [
                    [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]],
                    [[5, 5], [6, 5], [6, 6], [5, 6], [5, 5]]]}, bbox=[0, 0, 6, 6])),
                "dead_letter", S, [G, "invalid polygon"])
    c.item_case("geom", "overlapping-multipolygon",
                dumps(item("overlap", {"type": "MultiPolygon", "coordinates": [
                    [[[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]],
                    [[[1, 1], [3, 1], [3, 3], [1, 3], [1, 1]]]]}, bbox=[0, 0, 3, 3])),
                "dead_letter", S, [G, "invalid polygon"])
    c.item_case("geom", "zero-area-polygon",
                dumps(item("zero-area", polygon([[1, 1], [1, 1], [1, 1], [1, 1]]),
                           bbox=[1, 1, 1, 1])),
                "dead_letter", S, [G, "invalid polygon"], note="four copies of one point")
    c.item_case("geom", "empty-polygon",
                dumps(item("empty-poly", {"type": "Polygon", "coordinates": []}, bbox=[0, 0, 1, 1])),
                "dead_letter", S, [G, "empty geometry"])
    c.item_case("geom", "empty-ring",
                dumps(item("empty-ring", {"type": "Polygon", "coordinates": [[]]}, bbox=[0, 0, 1, 1])),
                "dead_letter", S, [G, "empty geometry"])
    c.item_case("geom", "empty-multipolygon",
                dumps(item("empty-multi", {"type": "MultiPolygon", "coordinates": []},
                           bbox=[0, 0, 1, 1])),
                "dead_letter", S, [G, "empty geometry"])
    c.item_case("geom", "empty-geometry-collection",
                dumps(item("empty-gc", {"type": "GeometryCollection", "geometries": []},
                           bbox=[0, 0, 1, 1])),
                "dead_letter", S, [G, "empty geometry"])
    c.item_case("geom", "unknown-type",
                dumps(item("circle", {"type": "Circle", "coordinates": [0, 0], "radius": 5},
                           bbox=[0, 0, 1, 1])),
                "dead_letter", S, [G, "unknown geometry type"])
    c.item_case("geom", "no-type",
                dumps(item("no-type", {"coordinates": [0, 0]}, bbox=[0, 0, 1, 1])),
                "dead_letter", S, [G, "no type"])
    c.item_case("geom", "coordinates-string",
                dumps(item("coord-str", {"type": "Polygon", "coordinates": "0 0, 1 1"},
                           bbox=[0, 0, 1, 1])),
                "dead_letter", S, [G, "malformed coordinates"])
    c.item_case("geom", "position-one-number",
                dumps(item("one-num", {"type": "Point", "coordinates": [1]}, bbox=[0, 0, 1, 1])),
                "dead_letter", S, [G, "two numbers"])
    c.item_case("geom", "position-strings",
                dumps(item("strs", {"type": "Point", "coordinates": ["1", "2"]},
                           bbox=[0, 0, 1, 1])),
                "dead_letter", S, [G, "not numeric"])
    c.item_case("geom", "short-ring",
                dumps(item("short", polygon([[0, 0], [1, 0], [0, 0]]), bbox=[0, 0, 1, 1])),
                "dead_letter", S, [G, "fewer than 4 positions"])
    c.item_case("geom", "lon-200",
                dumps(item("lon200", polygon([[190, 0], [200, 0], [200, 1], [190, 1], [190, 0]]),
                           bbox=[190, 0, 200, 1])),
                "dead_letter", S, [G, "not a finite lon/lat"], note="longitude 200")
    c.item_case("geom", "lat-minus-95",
                dumps(item("lat95", {"type": "Point", "coordinates": [0, -95]},
                           bbox=[0, -95, 0, -95])),
                "dead_letter", S, [G, "not a finite lon/lat"], note="latitude -95")
    c.item_case("geom", "lon-1e308",
                dumps(item("lon1e308", {"type": "Point", "coordinates": [1e308, 0]})),
                "dead_letter", S, [G, "not a finite lon/lat"])
    nested = {"type": "Point", "coordinates": [10.5, 59.5]}
    for _ in range(8):
        nested = {"type": "GeometryCollection", "geometries": [nested]}
    c.item_case("geom", "nested-collections", dumps(item("nested-gc", nested)),
                "dead_letter", S, [G, "nested too deep"], note="8 nested GeometryCollections")

    # ---- datetimes ----
    D = "not an RFC 3339 datetime"
    for name, value, field in [
        ("unparseable", "yesterday", "datetime"),
        ("year-99999", "99999-01-01T00:00:00Z", "datetime"),
        ("february-30", "2021-02-30T00:00:00Z", "datetime"),
        ("empty-string", "", "datetime"),
        ("hour-25", "2021-01-01T25:00:00Z", "datetime"),
        ("bad-start-datetime", "2021-13-01T00:00:00Z", "start_datetime"),
    ]:
        c.item_case("datetime", name, dumps(item(f"dt-{name}", props={field: value})),
                    "dead_letter", S, [D, f"invalid {field}"], note=f"{field} = {value!r}")
    c.item_case("datetime", "numeric", dumps(item("dt-numeric", props={"datetime": 1700000000})),
                "dead_letter", S, [D], note="epoch seconds instead of a string")

    # ---- bbox ----
    c.item_case("bbox", "not-containing",
                dumps(item("bbox-far", bbox=[100, -10, 101, -9])),
                "dead_letter", S, ["does not contain the geometry"])
    c.item_case("bbox", "three-numbers", dumps(item("bbox-3", bbox=[10, 59, 11])),
                "dead_letter", S, ["bbox must be 4 or 6 numbers"])
    c.item_case("bbox", "strings", dumps(item("bbox-str", bbox=["10", "59", "11", "60"])),
                "dead_letter", S, ["bbox must be 4 or 6 numbers"])

    # ---- generated at test time (too big to commit) ----
    c.item_case("generated", "huge-string-8mib", None, "ingested", id="huge-string",
                generated="item with an 8 MiB string property (valid otherwise)",
                note="accepted by design: bodies up to 16 MiB are read whole")
    c.item_case("generated", "huge-id-8mib", None, "dead_letter", "parse",
                ["missing or invalid id"], generated="item whose id is an 8 MiB string")

    # ---- items root edge cases ----
    c.add_file("items/is-a-directory.stac.json/.keep", b"")
    c.aws_row("is-a-directory.stac.json",
              {"name": "fetch/directory", "kind": "row", "key": "is-a-directory.stac.json",
               "expect": "dead_letter", "stage": "fetch", "keywords": ["directory"],
               "note": "the key names a folder"})
    c.aws_row("missing/nope.stac.json",
              {"name": "fetch/missing", "kind": "row", "key": "missing/nope.stac.json",
               "expect": "dead_letter", "stage": "fetch", "keywords": ["not found"]})
    long_key = "l" * 300 + ".stac.json"
    c.aws_row(long_key,
              {"name": "fetch/name-too-long", "kind": "row", "key": long_key,
               "expect": "dead_letter", "stage": "fetch", "keywords": ["too long"],
               "note": "a 310-byte path segment"})

    # ---- hostile inventory rows ----
    def key_row(name, raw_key, decoded, keywords, note="", stage="fetch"):
        c.aws_row(raw_key, {"name": name, "kind": "row", "key": decoded, "expect": "dead_letter",
                            "stage": stage, "keywords": keywords, "note": note})

    seg = "'..' path segment"
    key_row("keys/dot-dot", "../bait/escape.stac.json", "../bait/escape.stac.json",
            ["unsafe key", seg], "points at bait/escape.stac.json, a valid item")
    key_row("keys/inner-dot-dot", "x/../../bait/escape.stac.json", "x/../../bait/escape.stac.json",
            ["unsafe key", seg])
    key_row("keys/encoded-dot-dot", "%2e%2e/bait/escape.stac.json", "../bait/escape.stac.json",
            ["unsafe key", seg], "AWS keys are URL-encoded: decoded, then checked")
    key_row("keys/encoded-slash", "..%2Fbait%2Fescape.stac.json", "../bait/escape.stac.json",
            ["unsafe key", seg])
    key_row("keys/fully-encoded", "%2E%2E%2Fbait%2Fescape.stac.json", "../bait/escape.stac.json",
            ["unsafe key", seg])
    key_row("keys/absolute", "/etc/passwd.stac.json", "/etc/passwd.stac.json",
            ["unsafe key", "absolute path"])
    key_row("keys/encoded-absolute", "%2Fetc%2Fpasswd.stac.json", "/etc/passwd.stac.json",
            ["unsafe key", "absolute path"])
    key_row("keys/backslash", "..\\bait\\escape.stac.json", "..\\bait\\escape.stac.json",
            ["unsafe key", "backslash"])
    key_row("keys/dot-segment", "./controls/ok-point.stac.json", "./controls/ok-point.stac.json",
            ["unsafe key", seg], "refused even though it stays inside the root")
    key_row("keys/empty-segment", "controls//ok-point.stac.json", "controls//ok-point.stac.json",
            ["unsafe key", seg])
    key_row("keys/encoded-newline", "a%0Ab.stac.json", "a\nb.stac.json",
            ["unsafe key", "control character"])
    key_row("keys/double-encoded", "%252e%252e/bait/escape.stac.json",
            "%2e%2e/bait/escape.stac.json", ["not found"],
            "decoded once only: a folder literally named %2e%2e, which does not exist")
    key_row("keys/csv-injection", "=cmd|' /C calc'!A0.stac.json", "=cmd|' /C calc'!A0.stac.json",
            ["not found"], "a formula is a file name like any other; never evaluated")
    key_row("keys/csv-injection-at", "@SUM(1+1)*cmd|' /C calc'!A0.stac.json",
            "@SUM(1+1)*cmd|' /C calc'!A0.stac.json", ["not found"])
    # A quoted field with a raw newline: one CSV record whose key holds a control character.
    c.row(b'"hostile","multi\nline.stac.json","1","' + DATE.encode() + b'"',
          {"name": "rows/quoted-newline", "kind": "row", "key": "multi\nline.stac.json",
           "expect": "dead_letter", "stage": "fetch",
           "keywords": ["unsafe key", "control character"]})
    c.row(b'"hostile","caf\xe9.stac.json","1","' + DATE.encode() + b'"',
          {"name": "rows/latin1-key", "kind": "row", "expect": "dead_letter",
           "stage": "inventory", "keywords": ["not UTF-8"], "note": "ISO-8859-1 bytes in the row"})
    key_row("rows/bad-percent-encoding", "%ff%fe.stac.json", None,
            ["not valid URL-encoded UTF-8"], stage="inventory")
    c.row(b'"only-bucket"',
          {"name": "rows/too-few-columns", "kind": "row", "expect": "dead_letter",
           "stage": "inventory", "keywords": ["1 field(s)"]})
    c.aws_row("", {"name": "rows/empty-key", "kind": "row", "expect": "dead_letter",
                   "stage": "inventory", "keywords": ["no bucket or key"]})
    c.aws_row("controls/ok-polygon.stac.json",
              {"name": "rows/empty-bucket", "kind": "row", "expect": "dead_letter",
               "stage": "inventory", "keywords": ["no bucket or key"]}, bucket="")
    c.aws_row("bad-date-row.stac.json",
              {"name": "rows/bad-date", "kind": "row", "expect": "dead_letter", "stage": "inventory",
               "keywords": ["last_modified_date", "is not a datetime"],
               "note": f"unreadable last_modified_date (the test runs with --since {SINCE})"},
              date="31/12/2025 12:00")
    c.aws_row("old-row.stac.json",
              {"name": "rows/older-than-since", "kind": "row", "expect": "skipped_since",
               "note": f"last modified before --since {SINCE}: skipped and counted"},
              date=OLD_DATE)
    c.aws_row("notes/readme.txt",
              {"name": "rows/not-an-item", "kind": "row", "expect": "skipped_suffix",
               "note": "no .stac.json suffix: skipped and counted"})

    # The bait a working traversal would reach.
    c.add_file("bait/escape.stac.json", dumps(item("bait-escaped")))

    inventory = b"".join(r + b"\n" for r in c.rows)
    c.add_file("inventory.csv", inventory)

    # ---- compressed inventories ----
    # Rows of 4 bytes ("a,b\n": bucket a, key b, not an item) repeat at a distance
    # deflate encodes without extra bits, so the bomb reaches ~1000:1.
    bomb_row = b"a,b\n"
    bomb_rows = (128 * MIB) // len(bomb_row)
    c.add_file("bomb.csv.gz", gzip_stream([(bomb_row, bomb_rows)]))
    junk = b'"junk","junk/not-an-item.txt","1","' + DATE.encode() + b'"\n'
    c.add_file("giant-line.csv.gz", gzip_stream([(b"A" * 65536, 1024)]))
    good_rows = b"".join(
        b'"hostile","controls/ok-point.stac.json","1","' + DATE.encode() + b'"\n'
        for _ in range(20)) + junk * 20000
    whole = gzip_bytes(good_rows)
    cut = whole[: len(whole) // 2]
    c.add_file("truncated.csv.gz", cut)
    # What a reader can get out of the cut stream (independently of ecops).
    readable = zlib.decompressobj(31).decompress(cut)
    good_before_cut = readable.count(b"controls/ok-point.stac.json")
    assert 0 < good_before_cut and b"\n" in readable
    header = gzip_bytes(b"")[:10]  # a gzip member header, then not deflate
    c.add_file("corrupt.csv.gz", header + bytes((i * 91 + 7) % 256 for i in range(2048)))

    # ---- manifests naming parts outside their folder ----
    for name, part in [("manifest-dot-dot.json", "../../outside/part.csv.gz"),
                       ("manifest-absolute.json", "/etc/passwd")]:
        c.add_file(name, dumps({"sourceBucket": "hostile", "destinationBucket": "arn:aws:s3:::inv",
                                "fileFormat": "CSV", "fileSchema": "Bucket, Key, Size, LastModifiedDate",
                                "files": [{"key": part, "size": 1, "MD5checksum": "0"}]}))
    c.add_file("manifest-deep.json", b'{"files":' + b"[" * 50_000)

    meta = {
        "since": SINCE,
        "inventory": "inventory.csv",
        "items_root": "items",
        "bait_id": "bait-escaped",
        "bomb": {"file": "bomb.csv.gz", "rows": bomb_rows, "bytes": bomb_rows * len(bomb_row)},
        "giant_line": {"file": "giant-line.csv.gz", "bytes": 65536 * 1024},
        "truncated": {"file": "truncated.csv.gz", "items_before_cut": good_before_cut,
                      "complete_lines": readable.count(b"\n")},
        "cases": c.cases,
    }
    c.add_file("cases.json", json.dumps(meta, indent=1, ensure_ascii=True).encode() + b"\n")
    c.add_file("README.md", readme(c.cases, bomb_rows, len(bomb_row)).encode())
    return c


def gzip_bytes(data):
    """gzip without a timestamp or file name, so output is reproducible."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0, filename="") as f:
        f.write(data)
    return buf.getvalue()


def gzip_stream(pieces):
    """gzip of `piece * count` for each piece, streamed (never the whole text in memory)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    crc = 0
    size = 0
    out = [b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"]
    for piece, count in pieces:
        block = piece * max(1, (1 << 20) // len(piece))
        per = (1 << 20) // len(piece) or 1
        left = count
        while left > 0:
            n = min(per, left)
            data = block if n == per else piece * n
            crc = zlib.crc32(data, crc)
            size += len(data)
            out.append(comp.compress(data))
            left -= n
    out.append(comp.flush())
    out.append(struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF))
    return b"".join(out)


def readme(cases, junk_rows, junk_len):
    def show(v):
        return "`" + repr(v)[1:-1].replace("|", "\\|").replace("`", "'") + "`" if v else ""

    lines = [
        "# Hostile input corpus",
        "",
        "Generated by `scripts/make_hostile_corpus.py` (deterministic; do not edit by hand)",
        "and exercised by `tests/hostile.rs`, which copies it to a temporary sandbox, adds the",
        "generated cases, and runs the real `ecops ingest` binary on it:",
        "",
        "```sh",
        "ecops ingest --base B --inventory inventory.csv --items-root items --since 2000-01-01 --json",
        "```",
        "",
        "Expected: exit 3 (some items dead-lettered), no panic, every case below reported as",
        "stated (the dead letter's stage and reason keywords), every `ingested` case in the",
        "catalog, nothing written outside the catalog folder, bounded peak RSS.",
        "`cases.json` is the machine-readable form of this table (positions are 0-based",
        "inventory rows).",
        "",
        "| pos | case | key | expected | stage | reason contains | note |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for case in cases:
        kws = " / ".join(show(k) for k in case.get("keywords", []))
        note = case.get("note", "")
        if case.get("generated"):
            note = f"generated at test time: {case['generated']}. {note}".strip()
        lines.append(
            f"| {case['position']} | {case['name']} | {show(case.get('key'))} | {case['expect']} | "
            f"{case.get('stage', '')} | {kws} | {note.replace('|', '/')} |")
    lines += [
        "",
        "Cases `ingested` under `accepted/` are hostile-looking values that are data by design",
        "(ids never become paths; a leap second is valid RFC 3339). `bait/escape.stac.json`",
        "is a valid item outside the items root that every traversal key points at: if any",
        "traversal worked, id `bait-escaped` would appear in the catalog.",
        "",
        "## Other files",
        "",
        f"- `bomb.csv.gz`: a gzip bomb within reason, {junk_rows} identical rows `a,b`",
        f"  ({junk_rows * junk_len // MIB} MiB decompressed) whose keys are not items. Expected:",
        "  read in bounded memory and bounded time, every row skipped by suffix (exit 0).",
        "- `giant-line.csv.gz`: one 64 MiB line with no newline. Expected: a clear error naming",
        "  the line (exit 1) before the line is buffered whole.",
        "- `truncated.csv.gz`: a gzip inventory cut in half. Expected: exit 1, an error naming",
        "  the file and the line where the stream ended; rows before the damage are committed.",
        "- `corrupt.csv.gz`: a gzip header followed by non-deflate bytes. Expected: exit 1,",
        "  a clear error with the line.",
        "- `manifest-dot-dot.json`, `manifest-absolute.json`: S3 Inventory manifests naming a",
        "  part at `../../outside/…` or `/etc/passwd`. Expected: exit 1 before anything is",
        "  read from outside the manifest's folder.",
        "- `manifest-deep.json`: 50 000 nested `[`. Expected: exit 1, 'not an S3 Inventory manifest'.",
        "",
        "Generated at test time (too big to commit): `generated/huge-string-8mib` and",
        "`generated/huge-id-8mib` (main inventory), and in `hostile_huge_geometries_are_too_large`",
        "a 5 000 000-vertex polygon (~30 MB, above the 16 MiB body limit), a 1 200 000-vertex",
        "polygon under the body limit (above the 1 000 000-vertex budget) and a 17 MiB body.",
        "",
    ]
    return "\n".join(lines)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "data", "hostile"))
    args = ap.parse_args()
    corpus = build()
    out = os.path.abspath(args.out)
    if os.path.isdir(out):
        shutil.rmtree(out)
    total = 0
    for rel, body in sorted(corpus.files.items()):
        path = os.path.join(out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(body)
        total += len(body)
    print(f"wrote {len(corpus.files)} files, {total} bytes, {len(corpus.cases)} cases to {out}")


if __name__ == "__main__":
    main()
