//! Query engine: text → typed [`Query`] → [`Plan`] (cells,
//! pruned files) → scan ([`Hits`]: distinct matching items) → output.
//!
//! ```no_run
//! # async fn demo(catalog: &ecops::catalog::EarthCatalog) -> Result<(), ecops::query::QueryError> {
//! use ecops::query::{Query, QueryText, ScanOptions, plan, execute};
//! use futures::TryStreamExt;
//! let query = Query::parse(&QueryText {
//!     bbox: Some("170,-20,-170,0".into()),
//!     datetime: Some("2020-01-01/..".into()),
//!     filter: Some("percent_valid_pixels >= 80".into()),
//!     limit: Some("100".into()),
//!     ..Default::default()
//! })?;
//! let plan = plan(catalog, &query).await?;          // plan.files.len(), plan.files_total, …
//! let hits = execute(catalog, &query, &plan, &ScanOptions::default());
//! let items: Vec<_> = hits.stream.try_collect().await?;
//! # Ok(()) }
//! ```
//!
//! User text is parsed into typed values ([`Query`]); nothing the user types
//! is pasted into SQL or used as a path (data file paths come from the
//! table's manifests).

pub mod filter;
pub mod geom;
pub mod model;
pub mod parse;
pub mod plan;
pub mod scan;
pub mod wkt;

use std::time::{Duration, Instant};

use futures::TryStreamExt;

pub use filter::Filter;
pub use model::{
    DatetimeRange, ParseError, Query, QueryError, QueryGeometry, QueryText, SortOrder,
};
pub use plan::{Plan, PlannedFile, plan};
pub use scan::{Fields, Hit, Hits, ScanOptions, ScanStats, execute};

use crate::catalog::EarthCatalog;

/// A finished search: the plan, the items, and what it cost.
#[derive(Debug)]
pub struct SearchResult {
    pub plan: Plan,
    pub hits: Vec<Hit>,
    /// Scan counters (files, row groups, rows read and matched, duplicates).
    pub scan: std::collections::BTreeMap<&'static str, u64>,
    /// Planning plus scanning.
    pub elapsed: Duration,
}

/// Plans and runs `query`, collecting every item (for the console and
/// tests; the CLI streams with [`plan`] + [`execute`] instead).
pub async fn search(
    catalog: &EarthCatalog,
    query: &Query,
    opts: &ScanOptions,
) -> Result<SearchResult, QueryError> {
    let started = Instant::now();
    let plan = plan(catalog, query).await?;
    let hits = execute(catalog, query, &plan, opts);
    let items: Vec<Hit> = hits.stream.try_collect().await?;
    Ok(SearchResult {
        plan,
        hits: items,
        scan: hits.stats.snapshot(),
        elapsed: started.elapsed(),
    })
}
