//! STAC items: JSON parsing and validation, GeoJSON and WKB geometry,
//! Arrow batches in the table schema, GeoParquet file metadata.

pub mod batch;
pub mod geojson;
pub mod geoparquet;
pub mod item;
pub mod json_arrow;
pub mod stac_geoparquet;
pub mod wkb;

pub use item::{Item, ItemError, parse_item};
