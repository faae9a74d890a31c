//! The integration suite as one test binary (one link instead of one per file):
//! each module is one area; `common` holds the shared helpers.

mod common;

mod backfill;
mod boundaries;
mod catalog;
mod compact;
mod concurrency;
mod crash;
mod demo_data;
mod export;
mod fanout;
mod fixture;
mod geojson_grid;
mod hash_index;
mod hostile;
mod ingest;
mod lock;
mod lock_cli;
mod lock_lease;
mod outputs;
mod pyiceberg_interop;
mod query;
mod read_only;
mod reliability;
mod runs;
mod s3_catalog;
mod secrets;
mod spec_evolution;
mod stats_cache;
mod tui;
mod tui_backfill;
mod url_lists;
