//! GeoParquet 1.1 (`geo`) and stac-geoparquet file metadata for a batch.

use std::collections::BTreeSet;

use arrow_array::{Array, LargeBinaryArray, RecordBatch};
use geo::BoundingRect;
use serde_json::json;

use super::wkb;

/// Key/value metadata entries for a data file holding `batches`:
/// `geo` (primary column `geometry`, WKB, CRS84 by omission, types, bbox) and `stac-geoparquet`.
pub fn file_metadata(batches: &[RecordBatch]) -> Vec<(String, String)> {
    let mut types = BTreeSet::new();
    let mut bbox: Option<[f64; 4]> = None;
    for batch in batches {
        let Some(col) = batch.column_by_name("geometry") else {
            continue;
        };
        let Some(arr) = col.as_any().downcast_ref::<LargeBinaryArray>() else {
            continue;
        };
        for i in 0..arr.len() {
            if arr.is_null(i) {
                continue;
            }
            let Ok(g) = wkb::decode(arr.value(i)) else {
                continue;
            };
            types.insert(wkb::type_name(&g));
            if let Some(r) = g.bounding_rect() {
                let b = bbox.get_or_insert([f64::MAX, f64::MAX, f64::MIN, f64::MIN]);
                b[0] = b[0].min(r.min().x);
                b[1] = b[1].min(r.min().y);
                b[2] = b[2].max(r.max().x);
                b[3] = b[3].max(r.max().y);
            }
        }
    }
    let mut column =
        json!({"encoding": "WKB", "geometry_types": types.into_iter().collect::<Vec<_>>()});
    if let Some(b) = bbox {
        column["bbox"] = json!(b);
    }
    let geo =
        json!({"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": column}});
    vec![
        ("geo".to_string(), geo.to_string()),
        (
            "stac-geoparquet".to_string(),
            json!({"version": "1.0.0"}).to_string(),
        ),
    ]
}
