//! Query jobs: the console's query form runs here, in the background,
//! through the query engine ([`crate::query::search`]): the form's text is
//! parsed by [`crate::query::Query::parse`] (never pasted into SQL), planned
//! (cells, pruned files) and scanned; the first asset href of each item is
//! shown (`data` when present).

use std::sync::Arc;
use std::time::Duration;

use crate::catalog::EarthCatalog;
use crate::query::{Fields, Query, QueryText, ScanOptions};

/// The query form's fields, as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryRequest {
    /// Point `lon,lat`, bbox `w,s,e,n`, GeoJSON or WKT (empty: everywhere).
    pub geometry: String,
    /// Interval `start/end` (either side may be `..`), or one instant (empty: any time).
    pub datetime: String,
    /// Property filter such as `platform = 'S2A' and percent_valid_pixels >= 80`.
    pub filter: String,
    /// Maximum items returned.
    pub limit: usize,
}

impl QueryRequest {
    /// One line for the jobs pane.
    pub fn summary(&self) -> String {
        let mut parts = vec![];
        for (name, value) in [
            ("geometry", &self.geometry),
            ("datetime", &self.datetime),
            ("filter", &self.filter),
        ] {
            if !value.trim().is_empty() {
                parts.push(format!("{name}={}", value.trim()));
            }
        }
        parts.push(format!("limit={}", self.limit));
        parts.join(" ")
    }
}

/// One result row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRow {
    pub id: String,
    pub datetime: String,
    pub platform: String,
    pub cell: String,
    pub href: String,
}

/// Results with the plan summary.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryOutcome {
    pub rows: Vec<QueryRow>,
    /// H3 cells the query geometry covers (None: no geometry, every cell).
    pub cells: Option<u64>,
    /// Data files considered and pruned by the plan.
    pub files_total: u64,
    pub files_pruned: u64,
    /// Rows read before the exact geometric test and de-duplication.
    pub rows_scanned: u64,
    pub took: Duration,
    /// True when `limit` cut the results.
    pub truncated: bool,
}

/// Which query option the geometry text is: GeoJSON (`{`), a file (`@`)
/// or WKT (a letter) are `intersects`; two numbers are a `point`, else a
/// `bbox` (whose parser reports what is wrong). None when empty.
pub fn geometry_flag(text: &str) -> Option<(&'static str, String)> {
    let t = text.trim();
    let first = t.chars().next()?;
    let flag = if first == '{' || first == '@' || first.is_ascii_alphabetic() {
        "intersects"
    } else if t.split(',').count() == 2 {
        "point"
    } else {
        "bbox"
    };
    Some((flag, t.to_string()))
}

fn geometry_text(text: &str, q: &mut QueryText) {
    match geometry_flag(text) {
        Some(("intersects", t)) => q.intersects = Some(t),
        Some(("point", t)) => q.point = Some(t),
        Some((_, t)) => q.bbox = Some(t),
        None => {}
    }
}

/// Runs `request` against `catalog`: parse, plan, scan, collect.
pub async fn run(
    catalog: Arc<EarthCatalog>,
    request: QueryRequest,
) -> Result<QueryOutcome, crate::runs::JobError> {
    let mut text = QueryText {
        datetime: Some(request.datetime.clone()).filter(|s| !s.trim().is_empty()),
        filter: Some(request.filter.clone()).filter(|s| !s.trim().is_empty()),
        limit: Some(request.limit.to_string()),
        ..Default::default()
    };
    geometry_text(&request.geometry, &mut text);
    let query = Query::parse(&text).map_err(crate::runs::JobError::refused)?;
    let opts = ScanOptions {
        fields: Fields::Assets,
        ..ScanOptions::default()
    };
    let result = crate::query::search(&catalog, &query, &opts)
        .await
        .map_err(crate::runs::JobError::failed)?;
    let plan = &result.plan;
    let rows: Vec<QueryRow> = result
        .hits
        .iter()
        .map(|h| QueryRow {
            id: h.id.clone(),
            datetime: h
                .datetime
                .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_else(|| "-".into()),
            platform: h.platform.clone().unwrap_or_else(|| "-".into()),
            cell: h.grid_partition.clone(),
            href: h
                .href("data")
                .map(str::to_string)
                .or_else(|| {
                    h.assets
                        .as_ref()?
                        .as_object()?
                        .values()
                        .find_map(|a| a.get("href")?.as_str().map(str::to_string))
                })
                .unwrap_or_else(|| "-".into()),
        })
        .collect();
    let truncated = rows.len() >= request.limit;
    Ok(QueryOutcome {
        cells: plan.cells.as_ref().map(|c| c.len() as u64),
        files_total: plan.files_total as u64,
        files_pruned: (plan.pruned_by_cell + plan.pruned_by_year + plan.pruned_by_stats) as u64,
        rows_scanned: result.scan.get("rows_read").copied().unwrap_or(0),
        took: result.elapsed,
        truncated,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_text_picks_the_field() {
        let pick = |t: &str| {
            let mut q = QueryText::default();
            geometry_text(t, &mut q);
            (q.point, q.bbox, q.intersects)
        };
        assert_eq!(pick("10,20").0.as_deref(), Some("10,20"));
        assert_eq!(pick("-10,40,10,60").1.as_deref(), Some("-10,40,10,60"));
        assert_eq!(pick("POINT (1 2)").2.as_deref(), Some("POINT (1 2)"));
        assert_eq!(
            pick("{\"type\":\"Point\"}").2.as_deref(),
            Some("{\"type\":\"Point\"}")
        );
        assert_eq!(pick("  "), (None, None, None));
    }
}
