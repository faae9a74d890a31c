"""Leave a catalog database as a writer that died mid-way would: with a hot
rollback journal (a transaction begun, never finished) or with a WAL holding
a commit that was never checkpointed. Exits without closing anything.

usage: crashed_writer.py journal|wal DB_PATH

`wal` moves the table pointer back to its previous metadata (a real commit,
visible only through the WAL) and prints the pointer it committed, as JSON.
"""
import json
import os
import sqlite3
import sys

mode, path = sys.argv[1], sys.argv[2]
db = sqlite3.connect(path, isolation_level=None)
if mode == "journal":
    db.execute("PRAGMA journal_mode=DELETE")
    db.execute("BEGIN IMMEDIATE")
    db.execute("UPDATE iceberg_tables SET metadata_location = 'torn' || metadata_location")
    # Force the change into the database file before the commit, as a
    # large transaction would: the journal is then needed to undo it.
    db.execute("PRAGMA cache_spill = 1")
    db.execute("PRAGMA cache_size = 1")
    db.execute("CREATE TABLE filler(x)")
    db.executemany("INSERT INTO filler VALUES (?)", [("x" * 500,) for _ in range(200)])
    print(json.dumps({"left": "journal"}), flush=True)
elif mode == "wal":
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    row = db.execute(
        "SELECT metadata_location, previous_metadata_location FROM iceberg_tables"
    ).fetchone()
    db.execute(
        "UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ?",
        (row[1], row[0]),
    )
    print(json.dumps({"pointer": row[1]}), flush=True)
else:
    sys.exit(f"unknown mode {mode}")
os._exit(0)
