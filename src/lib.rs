//! ecops: an operations console for EarthCatalog STAC catalogs.
//!
//! The engine (catalog, store, grid, stac) knows nothing of the terminal;
//! `cli` is the headless front end, `tui` the console, whose background
//! work runs in `jobs`.

pub mod catalog;
pub mod cli;
pub mod compact;
pub mod config;
pub mod demo;
pub mod fmt;
pub mod grid;
pub mod ingest;
pub mod jobs;
pub mod lock;
pub mod metrics;
pub mod query;
pub mod runs;
pub mod stac;
pub mod store;
pub mod testkit;
pub mod tui;
