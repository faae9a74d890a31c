//! The typed query: what the user asked for, after parsing (never raw text),
//! and the errors parsing and running it can give.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use geo_types::Geometry;

use super::filter::Filter;

/// Where a query's geometry came from, as typed values.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryGeometry {
    /// `--point LON,LAT`.
    Point { lon: f64, lat: f64 },
    /// `--bbox W,S,E,N` with GeoJSON meaning: `west > east` crosses the
    /// antimeridian; otherwise the box runs from west to east
    /// (`-180,-90,180,90` is the whole world).
    BBox {
        west: f64,
        south: f64,
        east: f64,
        north: f64,
    },
    /// `--intersects` (GeoJSON or WKT), read with the grid's footprint rules
    /// (edges straight in lon/lat; an edge spanning more than 180° of
    /// longitude goes the short way across ±180; see [`crate::grid::cells_for`]).
    Shape(Geometry<f64>),
}

/// A closed datetime interval; an open side is `None`. Both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatetimeRange {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

impl DatetimeRange {
    /// True if `t` lies in the interval (both ends inclusive).
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start.is_none_or(|s| t >= s) && self.end.is_none_or(|e| t <= e)
    }

    /// The interval in microseconds since the epoch (open sides as i64 bounds).
    pub fn micros(&self) -> (i64, i64) {
        (
            self.start.map_or(i64::MIN, |t| t.timestamp_micros()),
            self.end.map_or(i64::MAX, |t| t.timestamp_micros()),
        )
    }
}

/// Result order. Without one, items come in plan order (cell, year, file) and
/// the scan stops as soon as `limit` distinct items are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum SortOrder {
    /// Oldest first (items without datetime last), then by id.
    DatetimeAsc,
    /// Newest first (items without datetime last), then by id.
    DatetimeDesc,
}

/// A parsed query. Build it with [`Query::parse`] from [`QueryText`] (what
/// the CLI flags and the console's form hold), or directly.
///
/// Semantics (all conditions are joined by *and*):
/// - `geometry`: an item matches when its footprint shares at least one point
///   with the query geometry (boundary-inclusive), both read as planar lon/lat
///   shapes under the grid's antimeridian and pole rules. Items without a
///   geometry never match a geometric query.
/// - `datetime`: the item's `datetime` lies in the interval (inclusive); items
///   without a datetime never match a datetime query.
/// - `filter`: every comparison holds (SQL null semantics: a comparison with a
///   null value is false).
/// - `ids` / `collections`: the item's id / collection is one of those given.
/// - Every item is returned once, whatever the number of cells it was fanned
///   out to or the number of times it was ingested.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    pub geometry: Option<QueryGeometry>,
    pub datetime: Option<DatetimeRange>,
    pub filter: Filter,
    pub ids: Option<BTreeSet<String>>,
    pub collections: Option<BTreeSet<String>>,
    pub limit: Option<usize>,
    pub sort: Option<SortOrder>,
}

/// A query as text, field by field (CLI flags, the console's form). Empty or
/// absent fields are ignored. See [`Query::parse`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryText {
    /// `LON,LAT`.
    pub point: Option<String>,
    /// `W,S,E,N`.
    pub bbox: Option<String>,
    /// GeoJSON (geometry, Feature) or WKT, or `@FILE` holding either.
    pub intersects: Option<String>,
    /// RFC 3339 instant, or interval `A/B`, `../B`, `A/..` (a date alone means the whole day).
    pub datetime: Option<String>,
    /// `col OP value and …` (see [`Filter`]).
    pub filter: Option<String>,
    /// Comma-separated ids.
    pub ids: Option<String>,
    /// Comma-separated collections.
    pub collections: Option<String>,
    /// Maximum number of items.
    pub limit: Option<String>,
    /// `datetime` or `-datetime`.
    pub sort: Option<String>,
}

/// A piece of user text that did not parse, with the byte offset of the
/// offending character. `Display` shows the text with a caret under it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// Which field: `--bbox`, `--filter`, …
    pub field: &'static str,
    /// The text as given.
    pub input: String,
    /// Byte offset into `input` of the offending character (may equal its length: "at the end").
    pub offset: usize,
    /// What was wrong there.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(
        field: &'static str,
        input: &str,
        offset: usize,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field,
            input: input.to_string(),
            offset: offset.min(input.len()),
            message: message.into(),
        }
    }

    /// 1-based character column of the offending character.
    pub fn column(&self) -> usize {
        let at = floor_char_boundary(&self.input, self.offset);
        self.input[..at].chars().count() + 1
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let col = self.column();
        // Long inputs (inline GeoJSON) are shown as a window around the error.
        let chars: Vec<char> = self.input.chars().collect();
        let from = col.saturating_sub(40).max(1) - 1;
        let to = (col + 40).min(chars.len());
        let shown: String = chars[from..to.max(from)]
            .iter()
            .map(|c| if c.is_control() { ' ' } else { *c })
            .collect();
        let lead = if from > 0 { "…" } else { "" };
        write!(
            f,
            "{}: {} at character {col}\n  {lead}{shown}\n  {}{}^",
            self.field,
            self.message,
            if from > 0 { " " } else { "" },
            " ".repeat(col - 1 - from)
        )
    }
}

/// Why a query could not be built or run. Each says which input or file.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("give at most one of --point, --bbox and --intersects (got {0})")]
    ConflictingGeometry(String),
    #[error("--intersects: cannot read {path}: {source}")]
    GeometryFile {
        path: String,
        // Not a #[source]: the message already says it (no repetition in error chains).
        source: std::io::Error,
    },
    #[error("query geometry: {0}")]
    Grid(crate::grid::GridError),
    #[error("the table has no grid resolution (no grid properties and no cells to infer it from)")]
    NoGrid,
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error("{path}: {context}: {source}")]
    Parquet {
        path: String,
        context: &'static str,
        source: parquet::errors::ParquetError,
    },
    #[error("{path}: {context}: {source}")]
    Arrow {
        path: String,
        context: &'static str,
        source: arrow_schema::ArrowError,
    },
    #[error("{path}: {source}")]
    Store {
        path: String,
        source: crate::store::StoreError,
    },
    #[error("scan task failed: {0}")]
    Task(String),
}

impl From<crate::grid::GridError> for QueryError {
    fn from(e: crate::grid::GridError) -> Self {
        QueryError::Grid(e)
    }
}
