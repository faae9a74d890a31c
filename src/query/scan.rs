//! Scanning: read the planned files through object_store (parquet's async
//! reader), only the needed columns and the row groups whose datetime
//! statistics can match; apply the datetime, id, collection and property
//! filters, then the exact geometric test; de-duplicate by id.
//!
//! Columns are found by name, so files without Parquet field ids
//! (earthcatalog's, rustac's column order) read the same as ours; types are
//! normalised (milliseconds → microseconds, Binary → LargeBinary, any string
//! layout → Utf8).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use geo_types::Geometry;
use object_store::ObjectStore;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStreamBuilder};
use serde::Serialize;
use serde_json::Value;

use super::filter::{ColumnKind, column_kind};
use super::geom::Planar;
use super::model::{Query, QueryError, SortOrder};
use super::plan::{Plan, PlannedFile};
use crate::catalog::EarthCatalog;
use crate::catalog::schema::COLUMNS;

/// Columns holding JSON text; returned parsed.
const JSON_COLUMNS: &[&str] = &[
    "assets",
    "links",
    "bbox",
    "stac_extensions",
    "extra_properties",
];

/// Which columns a hit carries beyond id, datetime, platform, collection and cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fields {
    /// Only those (table and CSV output).
    #[default]
    Core,
    /// Plus `assets` (for `--uris`).
    Assets,
    /// Every column: geometry, assets and all properties (JSON, GeoJSON output).
    All,
}

/// How to scan.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub fields: Fields,
    /// Files read at once.
    pub concurrency: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            fields: Fields::Core,
            concurrency: 8,
        }
    }
}

/// One matching item (one row of one of its cells).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub id: String,
    pub datetime: Option<DateTime<Utc>>,
    pub platform: Option<String>,
    pub collection: Option<String>,
    /// One of the item's cells (the row that was read first).
    pub grid_partition: String,
    /// The footprint, with [`Fields::All`].
    #[serde(skip)]
    pub geometry: Option<Geometry<f64>>,
    /// The `assets` object, with [`Fields::Assets`] and [`Fields::All`].
    pub assets: Option<Value>,
    /// Every other column by name (JSON columns parsed, `extra_properties`
    /// merged in), with [`Fields::All`].
    pub properties: BTreeMap<String, Value>,
}

impl Hit {
    /// The href of asset `name` (earthcatalog's `search_uris` uses `data`).
    pub fn href(&self, name: &str) -> Option<&str> {
        self.assets.as_ref()?.get(name)?.get("href")?.as_str()
    }
}

/// Counters of a running scan (shared with the stream; read them after it ends).
#[derive(Debug, Default)]
pub struct ScanStats {
    pub files_read: AtomicU64,
    pub row_groups_total: AtomicU64,
    pub row_groups_read: AtomicU64,
    pub rows_read: AtomicU64,
    /// Rows that passed every test (before de-duplication).
    pub rows_matched: AtomicU64,
    /// Matching rows dropped because their id was already returned.
    pub duplicates: AtomicU64,
}

impl ScanStats {
    /// A plain copy of the counters.
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        BTreeMap::from([
            ("files_read", g(&self.files_read)),
            ("row_groups_total", g(&self.row_groups_total)),
            ("row_groups_read", g(&self.row_groups_read)),
            ("rows_read", g(&self.rows_read)),
            ("rows_matched", g(&self.rows_matched)),
            ("duplicates", g(&self.duplicates)),
        ])
    }
}

/// A running scan: distinct matching items, streamed, and live counters.
pub struct Hits {
    pub stream: BoxStream<'static, Result<Hit, QueryError>>,
    pub stats: Arc<ScanStats>,
}

struct Ctx {
    query: Query,
    planar: Option<Planar>,
    columns: Vec<&'static str>,
    fields: Fields,
    stats: Arc<ScanStats>,
}

/// Runs `plan` for `query`: a stream of distinct matching items.
///
/// Without a sort, items come in plan order and the stream ends after
/// `query.limit` items (files beyond are never read). With a sort, every
/// file is read, then the items are sorted and cut to the limit.
/// Must be polled inside a tokio runtime (files are read on spawned tasks).
pub fn execute(catalog: &EarthCatalog, query: &Query, plan: &Plan, opts: &ScanOptions) -> Hits {
    let stats = Arc::new(ScanStats::default());
    let planar = super::regions::query_shape(query);
    let ctx = Arc::new(Ctx {
        query: query.clone(),
        planar,
        columns: columns(query, opts.fields),
        fields: opts.fields,
        stats: stats.clone(),
    });
    let store = catalog.base().clone();
    let object_store = store.object_store();
    let per_file = stream::iter(plan.files.clone())
        .map(move |file| {
            let ctx = ctx.clone();
            let object_store = object_store.clone();
            let key = store.key_of(&file.path);
            async move {
                let key = key.map_err(|source| QueryError::Store {
                    path: file.path.clone(),
                    source,
                })?;
                // A task per file: decoding and geometry tests are CPU-bound.
                tokio::spawn(scan_file(object_store, key, file, ctx))
                    .await
                    .map_err(|e| QueryError::Task(e.to_string()))?
            }
        })
        .buffered(opts.concurrency.max(1));
    let mut seen = HashSet::new();
    let dedup_stats = stats.clone();
    let distinct = per_file
        .map_ok(|hits| stream::iter(hits.into_iter().map(Ok)))
        .try_flatten()
        .try_filter(move |hit| {
            let new = seen.insert(hit.id.clone());
            if !new {
                dedup_stats.duplicates.fetch_add(1, Ordering::Relaxed);
            }
            futures::future::ready(new)
        });
    let limit = query.limit.unwrap_or(usize::MAX);
    let stream: BoxStream<'static, Result<Hit, QueryError>> = match query.sort {
        None => distinct.take(limit).boxed(),
        Some(order) => stream::once(async move {
            let mut all: Vec<Hit> = distinct.try_collect().await?;
            sort_hits(&mut all, order);
            all.truncate(limit);
            Ok::<_, QueryError>(stream::iter(all.into_iter().map(Ok)))
        })
        .try_flatten()
        .boxed(),
    };
    Hits { stream, stats }
}

/// Sorts by datetime (items without one last), then id.
pub fn sort_hits(hits: &mut [Hit], order: SortOrder) {
    hits.sort_by(|a, b| {
        let by_time = match (a.datetime, b.datetime) {
            (Some(x), Some(y)) => match order {
                SortOrder::DatetimeAsc => x.cmp(&y),
                SortOrder::DatetimeDesc => y.cmp(&x),
            },
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        by_time.then_with(|| a.id.cmp(&b.id))
    });
}

/// Columns to read: what the tests need plus what the output shows.
fn columns(query: &Query, fields: Fields) -> Vec<&'static str> {
    let mut cols: Vec<&'static str> =
        vec!["id", "grid_partition", "datetime", "platform", "collection"];
    if query.geometry.is_some() || fields == Fields::All {
        cols.push("geometry");
    }
    if fields != Fields::Core {
        cols.push("assets");
    }
    if fields == Fields::All {
        cols.extend(COLUMNS.iter().map(|(_, n, _)| *n));
    }
    cols.extend(query.filter.columns());
    let mut seen = HashSet::new();
    cols.retain(|c| seen.insert(*c));
    cols
}

/// The canonical Arrow type of a table column.
fn canonical(name: &str) -> DataType {
    if name == "geometry" {
        return DataType::LargeBinary;
    }
    match column_kind(name).map(|(_, k)| k) {
        Some(ColumnKind::Long) => DataType::Int64,
        Some(ColumnKind::Double) => DataType::Float64,
        Some(ColumnKind::Time) => DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
        _ => DataType::Utf8,
    }
}

async fn scan_file(
    store: Arc<dyn ObjectStore>,
    key: object_store::path::Path,
    file: PlannedFile,
    ctx: Arc<Ctx>,
) -> Result<Vec<Hit>, QueryError> {
    let path = file.path.as_str();
    let pq = |context: &'static str| {
        move |source: parquet::errors::ParquetError| QueryError::Parquet {
            path: path.to_string(),
            context,
            source,
        }
    };
    let reader = ParquetObjectReader::new(store, key).with_file_size(file.bytes);
    let builder = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(pq("read footer"))?;
    ctx.stats.files_read.fetch_add(1, Ordering::Relaxed);
    let file_schema = builder.schema().clone();
    let metadata = builder.metadata().clone();
    let n_groups = metadata.num_row_groups();
    ctx.stats
        .row_groups_total
        .fetch_add(n_groups as u64, Ordering::Relaxed);
    let groups = match ctx.query.datetime {
        Some(range) => row_groups_in_range(
            &file_schema,
            builder.parquet_schema(),
            &metadata,
            range.micros(),
        ),
        None => (0..n_groups).collect(),
    };
    if groups.is_empty() {
        return Ok(vec![]);
    }
    ctx.stats
        .row_groups_read
        .fetch_add(groups.len() as u64, Ordering::Relaxed);
    let present: Vec<&str> = ctx
        .columns
        .iter()
        .copied()
        .filter(|c| file_schema.field_with_name(c).is_ok())
        .collect();
    let mask = ProjectionMask::columns(builder.parquet_schema(), present.iter().copied());
    let mut batches = builder
        .with_projection(mask)
        .with_row_groups(groups)
        .with_batch_size(8192)
        .build()
        .map_err(pq("plan read"))?;
    let mut hits = Vec::new();
    while let Some(batch) = batches.try_next().await.map_err(pq("read rows"))? {
        ctx.stats
            .rows_read
            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        let batch = normalise(&batch, &ctx.columns).map_err(|source| QueryError::Arrow {
            path: path.to_string(),
            context: "convert columns",
            source,
        })?;
        rows(&batch, &ctx, &mut hits);
    }
    ctx.stats
        .rows_matched
        .fetch_add(hits.len() as u64, Ordering::Relaxed);
    Ok(hits)
}

/// Row groups whose datetime statistics overlap `[lo, hi]` (µs); a group
/// without statistics is kept.
fn row_groups_in_range(
    schema: &Schema,
    parquet_schema: &parquet::schema::types::SchemaDescriptor,
    metadata: &parquet::file::metadata::ParquetMetaData,
    (lo, hi): (i64, i64),
) -> Vec<usize> {
    let all: Vec<usize> = (0..metadata.num_row_groups()).collect();
    let Ok(conv) = StatisticsConverter::try_new("datetime", schema, parquet_schema) else {
        return all;
    };
    let groups = metadata.row_groups();
    let (Ok(mins), Ok(maxes)) = (conv.row_group_mins(groups), conv.row_group_maxes(groups)) else {
        return all;
    };
    let ty = canonical("datetime");
    let (Ok(mins), Ok(maxes)) = (arrow_cast::cast(&mins, &ty), arrow_cast::cast(&maxes, &ty))
    else {
        return all;
    };
    let (Some(mins), Some(maxes)) = (
        mins.as_primitive_opt::<TimestampMicrosecondType>(),
        maxes.as_primitive_opt::<TimestampMicrosecondType>(),
    ) else {
        return all;
    };
    all.into_iter()
        .filter(|&i| {
            let below = maxes.is_valid(i) && maxes.value(i) < lo;
            let above = mins.is_valid(i) && mins.value(i) > hi;
            !(below || above)
        })
        .collect()
}

/// The batch with the wanted columns in their canonical types; missing ones are all-null.
fn normalise(
    batch: &RecordBatch,
    wanted: &[&'static str],
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let mut fields = Vec::with_capacity(wanted.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(wanted.len());
    for name in wanted {
        let ty = canonical(name);
        let array = match batch.column_by_name(name) {
            Some(a) if a.data_type() == &ty => a.clone(),
            Some(a) => arrow_cast::cast(a, &ty)?,
            None => arrow_array::new_null_array(&ty, batch.num_rows()),
        };
        fields.push(Field::new(*name, ty, true));
        arrays.push(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
}

fn text(batch: &RecordBatch, name: &str, row: usize) -> Option<String> {
    let a = batch.column_by_name(name)?.as_string_opt::<i32>()?;
    a.is_valid(row).then(|| a.value(row).to_string())
}

/// Applies every test to each row of a normalised batch; pushes the hits.
fn rows(batch: &RecordBatch, ctx: &Ctx, hits: &mut Vec<Hit>) {
    let q = &ctx.query;
    let (Some(ids), Some(times)) = (
        batch
            .column_by_name("id")
            .and_then(|a| a.as_string_opt::<i32>()),
        batch
            .column_by_name("datetime")
            .and_then(|a| a.as_primitive_opt::<TimestampMicrosecondType>()),
    ) else {
        return;
    };
    let geometry = batch
        .column_by_name("geometry")
        .and_then(|a| a.as_binary_opt::<i64>());
    let filter = q.filter.bind(batch);
    let range = q.datetime.map(|r| r.micros());
    for row in 0..batch.num_rows() {
        if !ids.is_valid(row) {
            continue;
        }
        let id = ids.value(row);
        if q.ids.as_ref().is_some_and(|set| !set.contains(id)) {
            continue;
        }
        let micros = times.is_valid(row).then(|| times.value(row));
        if let Some((lo, hi)) = range
            && !micros.is_some_and(|t| t >= lo && t <= hi)
        {
            continue;
        }
        if let Some(cols) = &q.collections
            && !text(batch, "collection", row).is_some_and(|c| cols.contains(&c))
        {
            continue;
        }
        if !filter.matches(row) {
            continue;
        }
        // The exact test last: it is the most expensive.
        let decoded = geometry
            .filter(|g| g.is_valid(row))
            .and_then(|g| crate::stac::wkb::decode(g.value(row)).ok());
        if let Some(planar) = &ctx.planar {
            let Some(g) = &decoded else { continue };
            if !Planar::from_geometry(g).intersects(planar) {
                continue;
            }
        }
        hits.push(hit(batch, row, id, micros, decoded, ctx.fields));
    }
}

fn hit(
    batch: &RecordBatch,
    row: usize,
    id: &str,
    micros: Option<i64>,
    geometry: Option<Geometry<f64>>,
    fields: Fields,
) -> Hit {
    let json_text = |name: &str| {
        text(batch, name, row).map(|s| serde_json::from_str(&s).unwrap_or(Value::String(s)))
    };
    let mut properties = BTreeMap::new();
    if fields == Fields::All {
        for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
            let name = field.name().as_str();
            if matches!(
                name,
                "id" | "geometry"
                    | "grid_partition"
                    | "assets"
                    | "datetime"
                    | "platform"
                    | "collection"
            ) || array.is_null(row)
            {
                continue;
            }
            let value = if JSON_COLUMNS.contains(&name) {
                json_text(name).unwrap_or(Value::Null)
            } else {
                cell_json(array, row)
            };
            if name == "extra_properties" {
                if let Value::Object(extra) = value {
                    for (k, v) in extra {
                        properties.entry(k).or_insert(v);
                    }
                }
            } else {
                properties.insert(name.to_string(), value);
            }
        }
    }
    Hit {
        id: id.to_string(),
        datetime: micros.and_then(DateTime::from_timestamp_micros),
        platform: text(batch, "platform", row),
        collection: text(batch, "collection", row),
        grid_partition: text(batch, "grid_partition", row).unwrap_or_default(),
        geometry: if fields == Fields::All {
            geometry
        } else {
            None
        },
        assets: if fields == Fields::Core {
            None
        } else {
            json_text("assets")
        },
        properties,
    }
}

/// A non-null cell of a canonical column as JSON.
fn cell_json(array: &ArrayRef, row: usize) -> Value {
    if let Some(a) = array.as_string_opt::<i32>() {
        Value::String(a.value(row).to_string())
    } else if let Some(a) = array.as_primitive_opt::<Int64Type>() {
        Value::from(a.value(row))
    } else if let Some(a) = array.as_primitive_opt::<Float64Type>() {
        serde_json::Number::from_f64(a.value(row)).map_or(Value::Null, Value::Number)
    } else if let Some(a) = array.as_primitive_opt::<TimestampMicrosecondType>() {
        DateTime::from_timestamp_micros(a.value(row)).map_or(Value::Null, |t| {
            Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        })
    } else {
        Value::Null
    }
}
