//! ecops: an operations console for EarthCatalog STAC catalogs.
//!
//! The engine (catalog, store, grid, stac) knows nothing of the terminal;
//! `cli` is the headless front end (and later `tui` the console).

pub mod catalog;
pub mod cli;
pub mod config;
pub mod demo;
pub mod grid;
pub mod ingest;
pub mod lock;
pub mod metrics;
pub mod stac;
pub mod store;
