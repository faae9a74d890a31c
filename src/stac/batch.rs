//! Items → Arrow record batches in the table's Arrow schema (iceberg's types:
//! LargeBinary geometry, Timestamp(µs, "+00:00"), field-id metadata).

use std::sync::Arc;

use arrow_array::builder::{
    Float64Builder, Int64Builder, LargeBinaryBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, SchemaRef};
use chrono::{DateTime, Utc};

use super::item::Item;
use super::wkb;

/// The table's Arrow schema (with `PARQUET:field_id` metadata).
pub fn arrow_schema() -> Result<SchemaRef, iceberg::Error> {
    let schema = crate::catalog::schema::table_schema()?;
    Ok(Arc::new(iceberg::arrow::schema_to_arrow_schema(&schema)?))
}

/// Builds one batch of rows: each `(item, cell)` pair is one row.
pub fn rows_to_batch(
    schema: &SchemaRef,
    rows: &[(&Item, &str)],
) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let strings = |f: &dyn Fn(&Item) -> Option<&str>| -> ArrayRef {
        let mut b = StringBuilder::with_capacity(n, n * 16);
        for (item, _) in rows {
            b.append_option(f(item));
        }
        Arc::new(b.finish())
    };
    let times = |f: &dyn Fn(&Item) -> Option<DateTime<Utc>>| -> ArrayRef {
        let mut b = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("+00:00");
        for (item, _) in rows {
            b.append_option(f(item).map(|t| t.timestamp_micros()));
        }
        Arc::new(b.finish())
    };
    let longs = |f: &dyn Fn(&Item) -> Option<i64>| -> ArrayRef {
        let mut b = Int64Builder::with_capacity(n);
        for (item, _) in rows {
            b.append_option(f(item));
        }
        Arc::new(b.finish())
    };
    let doubles = |f: &dyn Fn(&Item) -> Option<f64>| -> ArrayRef {
        let mut b = Float64Builder::with_capacity(n);
        for (item, _) in rows {
            b.append_option(f(item));
        }
        Arc::new(b.finish())
    };
    let mut cells = StringBuilder::with_capacity(n, n * 15);
    let mut geometry = LargeBinaryBuilder::with_capacity(n, n * 100);
    for (item, cell) in rows {
        cells.append_value(cell);
        geometry.append_option(item.geometry.as_ref().map(wkb::encode));
    }
    let columns: Vec<ArrayRef> = vec![
        strings(&|i| Some(i.id.as_str())),
        Arc::new(cells.finish()),
        Arc::new(geometry.finish()),
        times(&|i| i.datetime),
        strings(&|i| i.platform.as_deref()),
        longs(&|i| i.percent_valid_pixels),
        longs(&|i| i.date_dt),
        strings(&|i| i.proj_code.as_deref()),
        strings(&|i| i.assets.as_deref()),
        strings(&|i| i.links.as_deref()),
        strings(&|i| i.stac_version.as_deref()),
        strings(&|i| i.item_type.as_deref()),
        times(&|i| i.start_datetime),
        strings(&|i| i.version.as_deref()),
        strings(&|i| i.orbit_state.as_deref()),
        strings(&|i| i.scene_1_id.as_deref()),
        strings(&|i| i.scene_2_id.as_deref()),
        strings(&|i| i.scene_1_frame.as_deref()),
        strings(&|i| i.scene_2_frame.as_deref()),
        strings(&|i| i.mid_datetime.as_deref()),
        times(&|i| i.created),
        times(&|i| i.updated),
        times(&|i| i.end_datetime),
        strings(&|i| i.stac_extensions.as_deref()),
        strings(&|i| i.collection.as_deref()),
        doubles(&|i| i.latitude),
        doubles(&|i| i.longitude),
        strings(&|i| i.bbox.as_deref()),
        strings(&|i| i.extra_properties.as_deref()),
    ];
    RecordBatch::try_new(schema.clone(), columns)
}
