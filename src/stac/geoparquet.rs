//! GeoParquet 1.1 file metadata (`geo`) for the table's data files, and the
//! key saying which layout they follow.
//!
//! The data files keep earthcatalog's column layout — `assets`, `links`,
//! `bbox`, `stac_extensions` (and our `extra_properties`) as JSON text — so
//! they are **not** stac-geoparquet, and they no longer carry its
//! `stac-geoparquet` key (its readers would try and fail on them). They say
//! what they are under [`LAYOUT_KEY`] instead. Spec-conformant
//! stac-geoparquet comes from `ecops export` / `query --format
//! stac-geoparquet` ([`super::stac_geoparquet`]).

use std::collections::BTreeSet;

use arrow_array::{Array, LargeBinaryArray, RecordBatch};
use geo::BoundingRect;
use serde_json::{Value, json};

use super::wkb;

/// Key-value metadata key naming the data files' layout.
pub const LAYOUT_KEY: &str = "earthcatalog";
/// Columns of a data file that hold JSON text.
pub const JSON_COLUMNS: &[&str] = &[
    "assets",
    "links",
    "bbox",
    "stac_extensions",
    "extra_properties",
];

/// Key/value metadata entries for a data file holding `batches`: `geo`
/// (primary column `geometry`, WKB, CRS84 by omission, types, bbox) and
/// [`LAYOUT_KEY`] (earthcatalog's JSON-column layout).
pub fn file_metadata(batches: &[RecordBatch]) -> Vec<(String, String)> {
    let layout = json!({
        "layout": "earthcatalog-json-columns",
        "json_columns": JSON_COLUMNS,
        "stac_geoparquet": false,
    });
    vec![
        ("geo".to_string(), geo_metadata(batches, None).to_string()),
        (LAYOUT_KEY.to_string(), layout.to_string()),
    ]
}

/// The `geo` metadata of WKB column `geometry` (LargeBinary) in `batches`.
pub fn geo_metadata(batches: &[RecordBatch], covering: Option<Value>) -> Value {
    let mut summary = GeoSummary::default();
    for batch in batches {
        let Some(arr) = batch
            .column_by_name("geometry")
            .and_then(|c| c.as_any().downcast_ref::<LargeBinaryArray>())
        else {
            continue;
        };
        for i in (0..arr.len()).filter(|&i| arr.is_valid(i)) {
            if let Ok(g) = wkb::decode(arr.value(i)) {
                summary.add(&g);
            }
        }
    }
    summary.to_json(covering)
}

/// Geometry types and overall bbox of a geometry column, for its `geo` metadata.
#[derive(Debug, Clone, Default)]
pub struct GeoSummary {
    types: BTreeSet<&'static str>,
    bbox: Option<[f64; 4]>,
}

impl GeoSummary {
    pub fn add(&mut self, g: &geo_types::Geometry<f64>) {
        self.types.insert(wkb::type_name(g));
        if let Some(r) = g.bounding_rect() {
            let b = self
                .bbox
                .get_or_insert([f64::MAX, f64::MAX, f64::MIN, f64::MIN]);
            b[0] = b[0].min(r.min().x);
            b[1] = b[1].min(r.min().y);
            b[2] = b[2].max(r.max().x);
            b[3] = b[3].max(r.max().y);
        }
    }

    /// GeoParquet 1.1 `geo` metadata: primary column `geometry`, WKB,
    /// CRS84 by omission, the types and bbox seen, and `covering` when given.
    pub fn to_json(&self, covering: Option<Value>) -> Value {
        let mut column = json!({"encoding": "WKB", "geometry_types": self.types});
        if let Some(b) = self.bbox {
            column["bbox"] = json!(b);
        }
        if let Some(c) = covering {
            column["covering"] = c;
        }
        json!({"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": column}})
    }
}
