//! Deterministic synthetic STAC scenes for tests, benchmarks and the demo.
//!
//! * [`scene`] / [`scenes`]: in-memory [`Item`]s for catalog tests.
//! * [`generate()`] (`ecops demo-data`): a realistic data set on disk for ingest
//!   tests and benchmarks, streamed so a million items fit in bounded memory:
//!
//! ```text
//! DIR/items/<key>                          one compact JSON item per file; key =
//!                                          velocity_image_pair/<platform>/v02/<tile>/<id>.stac.json
//! DIR/inventory/inventory.csv              S3 Inventory CSV, no header, all fields quoted:
//!                                          "bucket","key","size","last_modified_date"
//! DIR/inventory/inventory_header.csv       same rows after `bucket,key,size,last_modified_date`
//! DIR/inventory/inventory.csv.gz           gzip of inventory.csv
//! DIR/inventory/inventory.parquet          bucket, key, size (int64), last_modified_date (timestamp ms UTC)
//! DIR/inventory/manifest.json              S3 Inventory manifest (CSV) of data/part-0000K.csv.gz
//! DIR/inventory/manifest-parquet.json      the same for data/part-0000K.parquet
//! DIR/inventory/data/part-0000K.{csv.gz,parquet}
//! DIR/meta.json                            counts for tests ([`DemoMeta`])
//! DIR/.ecops-demo-data                     marker: a rerun may replace this folder's contents
//! ```
//!
//! Details: [`generate`](mod@generate) (items, key order, last_modified_date),
//! [`footprint`] (geometries), [`inventory_writer`] (formats, manifests).

pub mod footprint;
pub mod generate;
pub mod inventory_writer;
pub mod rng;
pub mod time;

use std::path::PathBuf;

use serde_json::json;

pub use generate::{
    DemoMeta, DemoOptions, DemoSummary, InvalidClass, InvalidItem, InventoryOrder, generate,
};

/// Why demo data could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: writing Parquet: {source}", path.display())]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("{0}")]
    Options(String),
}

use crate::stac::Item;
use crate::stac::item::item_from_value;

/// A scene: a square footprint `size` degrees wide with its south-west corner at (lon, lat).
pub fn scene(
    id: &str,
    lon: f64,
    lat: f64,
    size: f64,
    datetime: Option<&str>,
    platform: &str,
) -> Item {
    let (w, s) = (
        lon.clamp(-180.0, 180.0 - size),
        lat.clamp(-90.0, 90.0 - size),
    );
    let (e, n) = (w + size, s + size);
    let value = json!({
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": id,
        "collection": "synthetic",
        "bbox": [w, s, e, n],
        "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
        "properties": {"datetime": datetime, "platform": platform, "percent_valid_pixels": 90,
                       "proj:code": "EPSG:4326", "eo:cloud_cover": 3.5},
        "assets": {"data": {"href": format!("s3://synthetic/{id}.tif")}},
        "links": [],
    });
    // The generator only builds valid items; a failure here is a bug in this function.
    item_from_value(value).unwrap_or_else(|e| panic!("synthetic scene {id} is invalid: {e}"))
}

/// `n` scenes spread over the globe, five years and three platforms; the
/// `offset` shifts the sequence so successive calls give new scenes.
pub fn scenes(n: usize, offset: usize) -> Vec<Item> {
    (offset..offset + n)
        .map(|i| {
            let lon = -170.0 + ((i * 37) % 340) as f64 + (i % 7) as f64 * 0.1;
            let lat = -60.0 + ((i * 53) % 120) as f64;
            let year = 2018 + (i % 5);
            let dt = format!("{year}-0{}-1{}T10:00:00Z", 1 + i % 9, i % 10);
            let platform = ["LC08", "LC09", "S2A"][i % 3];
            scene(&format!("scene-{i:07}"), lon, lat, 0.8, Some(&dt), platform)
        })
        .collect()
}
