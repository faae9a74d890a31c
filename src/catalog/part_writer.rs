//! Encoding one bucket's rows as a GeoParquet part and describing it as an
//! Iceberg DataFile — the lean path every writer (ingest, compaction) uses.
//!
//! Why not iceberg's `ParquetWriter`: per file it builds an async writer over
//! FileIO, converts the schema, walks every batch for NaN counts and streams
//! the output in pieces. Ingest writes tens of thousands of small files, and
//! that fixed cost dominated. Here a part is encoded in memory with
//! parquet's `ArrowWriter` (on a blocking thread) and stored with one `put`
//! (object_store: temp file + rename locally, one PUT on S3), so a part is
//! either whole or absent. Column stats come straight from the Arrow arrays.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, SchemaRef, TimeUnit};
use bytes::Bytes;
use iceberg::spec::{DataContentType, DataFile, DataFileBuilder, DataFileFormat, Datum, Struct};
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::arrow::{
    ARROW_SCHEMA_META_KEY, ArrowSchemaConverter, ArrowWriter, encode_arrow_schema,
};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::{ColumnPath, SchemaDescriptor};

use super::CatalogError;
use crate::stac::geoparquet;

/// Strings longer than this get no bounds; Iceberg treats missing bounds as
/// "unknown", which never prunes wrongly.
const MAX_BOUND_LEN: usize = 64;

/// Columns whose Iceberg metrics (value/null counts, bounds) are recorded:
/// the ones queries filter and prune on. Metrics are optional in Iceberg;
/// recording all 29 columns made each manifest entry ~3× larger, and a
/// chunk commits thousands of them.
const METRICS_COLUMNS: &[&str] = &[
    "id",
    "grid_partition",
    "datetime",
    "platform",
    "percent_valid_pixels",
    "proj:code",
    "start_datetime",
    "end_datetime",
    "created",
    "updated",
    "collection",
    "sat:orbit_state",
];

/// Columns whose Parquet statistics are useless (large JSON or WKB) and cost
/// time and footer bytes in every small file.
const NO_PARQUET_STATS: &[&str] = &[
    "geometry",
    "assets",
    "links",
    "bbox",
    "extra_properties",
    "stac_extensions",
];

/// Parts with fewer rows are written without dictionary encoding.
const DICTIONARY_MIN_ROWS: usize = 1024;

/// Rows per Parquet row group (large parts are still read by row group).
const ROW_GROUP_ROWS: usize = 64 * 1024;

/// One encoded part.
pub struct EncodedPart {
    pub bytes: Bytes,
    pub rows: u64,
}

/// Parts whose rows take less memory than this are compressed with Snappy,
/// larger ones with zstd. A zstd codec costs a compression and a
/// decompression context per column chunk (29 per file), which for a part of
/// a few rows cost more than everything else it took to write it; Snappy's
/// codec is a few words. Compaction rewrites small parts into large ones,
/// and large parts get zstd.
pub const SMALL_PART_BYTES: usize = 1 << 20;

/// The bytes `batch`'s rows take: of its slice only, when it is a slice of
/// a larger batch (ingest writes each bucket as a slice of its chunk's rows).
pub fn rows_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|c| {
            c.to_data()
                .get_slice_memory_size()
                .unwrap_or_else(|_| c.get_array_memory_size())
        })
        .sum()
}

/// How a writer compresses its parts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PartCodec {
    /// Snappy below [`SMALL_PART_BYTES`] of rows, zstd above: for ingest,
    /// whose many small parts compaction later rewrites.
    #[default]
    BySize,
    /// zstd whatever the size: for files meant to stay (compaction's output).
    Zstd,
}

/// The codec for a part, `small` when its rows take less than
/// [`SMALL_PART_BYTES`].
fn compression_for(
    small: bool,
    codec: PartCodec,
) -> Result<Compression, parquet::errors::ParquetError> {
    Ok(if codec == PartCodec::BySize && small {
        Compression::SNAPPY
    } else {
        Compression::ZSTD(ZstdLevel::try_new(3)?)
    })
}

/// What every part of one Arrow schema shares: its Parquet schema and the
/// encoded `ARROW:schema` footer entry, derived once rather than per file.
struct SchemaPlan {
    arrow: SchemaRef,
    parquet: SchemaDescriptor,
    arrow_schema_meta: String,
}

/// The plan for `schema`, reusing the last one when the schema is the same
/// (ingest and compaction write every part with one schema).
fn schema_plan(schema: &SchemaRef) -> Result<Arc<SchemaPlan>, parquet::errors::ParquetError> {
    static LAST: Mutex<Option<Arc<SchemaPlan>>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(plan) = last.as_ref()
        && (Arc::ptr_eq(&plan.arrow, schema) || plan.arrow == *schema)
    {
        return Ok(plan.clone());
    }
    let plan = Arc::new(SchemaPlan {
        arrow: schema.clone(),
        parquet: ArrowSchemaConverter::new().convert(schema)?,
        arrow_schema_meta: encode_arrow_schema(schema),
    });
    *last = Some(plan.clone());
    Ok(plan)
}

/// Encodes `batch` (already sorted, one bucket) as a GeoParquet file:
/// compressed as `codec` says, field ids from the schema's `PARQUET:field_id`
/// metadata, the `geo` and layout keys and the Arrow schema. CPU-bound:
/// call it off the async workers.
pub fn encode(batch: &RecordBatch, codec: PartCodec) -> Result<EncodedPart, CatalogError> {
    let err = |e: parquet::errors::ParquetError| {
        CatalogError::Invalid(format!("encoding a Parquet part: {e}"))
    };
    let plan = schema_plan(batch.schema_ref()).map_err(err)?;
    let kv = geoparquet::file_metadata(std::slice::from_ref(batch))
        .into_iter()
        .map(|(k, v)| KeyValue::new(k, v))
        .chain([KeyValue::new(
            ARROW_SCHEMA_META_KEY.to_string(),
            plan.arrow_schema_meta.clone(),
        )])
        .collect();
    let small = rows_bytes(batch) < SMALL_PART_BYTES;
    let mut props = WriterProperties::builder()
        .set_compression(compression_for(small, codec).map_err(err)?)
        // A small part's column chunks are one page each (pages hold up to
        // 1 MiB): an offset index would point at the one page the column
        // chunk already locates, at a cost in every file.
        .set_offset_index_disabled(small)
        .set_key_value_metadata(Some(kv))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        // Dictionaries cost a hash table per column and pay off only in
        // large files; compaction's output is where dictionary pages would help.
        .set_dictionary_enabled(batch.num_rows() >= DICTIONARY_MIN_ROWS)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS));
    for name in NO_PARQUET_STATS {
        props =
            props.set_column_statistics_enabled(ColumnPath::from(*name), EnabledStatistics::None);
    }
    let options = ArrowWriterOptions::new()
        .with_properties(props.build())
        .with_parquet_schema(plan.parquet.clone())
        // Added above from the plan, not re-encoded per file.
        .with_skip_arrow_metadata(true);
    let mut buffer = Vec::with_capacity(rows_bytes(batch) / 3 + 4096);
    let mut writer =
        ArrowWriter::try_new_with_options(&mut buffer, batch.schema(), options).map_err(err)?;
    writer.write(batch).map_err(err)?;
    writer.close().map_err(err)?;
    Ok(EncodedPart {
        bytes: Bytes::from(buffer),
        rows: batch.num_rows() as u64,
    })
}

/// The DataFile for a part stored at `path`: record count, size, and for
/// [`METRICS_COLUMNS`] value/null counts and min/max bounds computed from
/// the rows themselves.
pub fn data_file(
    batch: &RecordBatch,
    part: &EncodedPart,
    path: String,
    partition: Struct,
    spec_id: i32,
) -> Result<DataFile, CatalogError> {
    let mut value_counts = HashMap::new();
    let mut null_counts = HashMap::new();
    let mut nan_counts = HashMap::new();
    let mut lower = HashMap::new();
    let mut upper = HashMap::new();
    for (i, column) in batch.columns().iter().enumerate() {
        let field = batch.schema_ref().field(i);
        if !METRICS_COLUMNS.contains(&field.name().as_str()) {
            continue;
        }
        let Some(id) = field_id(batch, i) else {
            continue;
        };
        value_counts.insert(id, column.len() as u64);
        null_counts.insert(id, column.null_count() as u64);
        if let Some((lo, hi, nans)) = bounds(column.as_ref()) {
            if let Some(nans) = nans {
                nan_counts.insert(id, nans);
            }
            if let (Some(lo), Some(hi)) = (lo, hi) {
                lower.insert(id, lo);
                upper.insert(id, hi);
            }
        }
    }
    DataFileBuilder::default()
        .content(DataContentType::Data)
        .file_path(path)
        .file_format(DataFileFormat::Parquet)
        .partition(partition)
        .partition_spec_id(spec_id)
        .record_count(part.rows)
        .file_size_in_bytes(part.bytes.len() as u64)
        .value_counts(value_counts)
        .null_value_counts(null_counts)
        .nan_value_counts(nan_counts)
        .lower_bounds(lower)
        .upper_bounds(upper)
        .build()
        .map_err(|e| CatalogError::Invalid(format!("describing a data file: {e}")))
}

/// The Iceberg field id of column `i` (from the Arrow field metadata).
fn field_id(batch: &RecordBatch, i: usize) -> Option<i32> {
    batch
        .schema_ref()
        .field(i)
        .metadata()
        .get(parquet::arrow::PARQUET_FIELD_ID_META_KEY)?
        .parse()
        .ok()
}

type Bounds = (Option<Datum>, Option<Datum>, Option<u64>);

/// Min/max of a column as Iceberg datums (None for types we do not bound),
/// plus the NaN count for floating-point columns.
fn bounds(column: &dyn Array) -> Option<Bounds> {
    fn fold<T: PartialOrd + Copy>(values: impl Iterator<Item = T>) -> Option<(T, T)> {
        values.fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((if v < lo { v } else { lo }, if v > hi { v } else { hi })),
        })
    }
    match column.data_type() {
        DataType::Utf8 => {
            let values = column.as_string::<i32>();
            if values.iter().flatten().any(|s| s.len() > MAX_BOUND_LEN) {
                return Some((None, None, None));
            }
            let (lo, hi) = fold(values.iter().flatten())?;
            Some((Some(Datum::string(lo)), Some(Datum::string(hi)), None))
        }
        DataType::Int64 => {
            let (lo, hi) = fold(column.as_primitive::<Int64Type>().iter().flatten())?;
            Some((Some(Datum::long(lo)), Some(Datum::long(hi)), None))
        }
        DataType::Float64 => {
            let values = column.as_primitive::<Float64Type>();
            let nans = values.iter().flatten().filter(|v| v.is_nan()).count() as u64;
            let found = fold(values.iter().flatten().filter(|v| !v.is_nan()));
            Some(match found {
                Some((lo, hi)) => (Some(Datum::double(lo)), Some(Datum::double(hi)), Some(nans)),
                None => (None, None, Some(nans)),
            })
        }
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => {
            let values = column.as_primitive::<TimestampMicrosecondType>();
            let (lo, hi) = fold(values.iter().flatten())?;
            Some((
                Some(Datum::timestamptz_micros(lo)),
                Some(Datum::timestamptz_micros(hi)),
                None,
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stac::batch::{arrow_schema, rows_to_batch};

    fn item(id: &str, datetime: &str, pct: i64) -> crate::stac::Item {
        let body = serde_json::json!({
            "type": "Feature", "stac_version": "1.0.0", "id": id,
            "geometry": {"type": "Point", "coordinates": [10.0, 20.0]},
            "bbox": [10.0, 20.0, 10.0, 20.0],
            "properties": {"datetime": datetime, "platform": "LC08", "percent_valid_pixels": pct},
            "assets": {"data": {"href": format!("s3://bucket/a/long/prefix/to/the/scene/{id}/data.nc")}},
            "links": []
        });
        crate::stac::parse_item(body.to_string().as_bytes()).expect("valid item")
    }

    #[test]
    fn small_parts_are_snappy_large_ones_zstd_and_both_read_back_whole() {
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let schema = arrow_schema().expect("schema");
        let items: Vec<_> = (0..12_000)
            .map(|i| item(&format!("item-{i:05}"), "2021-03-01T00:00:00Z", i % 100))
            .collect();
        let mut codecs = Vec::new();
        for n in [1, 2, 12_000] {
            let pairs: Vec<_> = items[..n].iter().map(|i| (i, "8001fffffffffff")).collect();
            let batch = rows_to_batch(&schema, &pairs).expect("batch");
            let part = encode(&batch, PartCodec::BySize).expect("encode");
            let reader =
                ParquetRecordBatchReaderBuilder::try_new(part.bytes.clone()).expect("parquet");
            let chunk = reader.metadata().row_group(0).column(0);
            let small = rows_bytes(&batch) < SMALL_PART_BYTES;
            assert_eq!(
                matches!(chunk.compression(), Compression::SNAPPY),
                small,
                "{n} rows: {:?}",
                chunk.compression()
            );
            codecs.push(chunk.compression());
            let kv = reader.metadata().file_metadata().key_value_metadata();
            let keys: Vec<&str> = kv.into_iter().flatten().map(|k| k.key.as_str()).collect();
            assert!(
                keys.contains(&"geo") && keys.contains(&ARROW_SCHEMA_META_KEY),
                "{keys:?}"
            );
            // The embedded Arrow schema gives back the very schema and rows.
            let read: Vec<RecordBatch> = reader
                .build()
                .expect("reader")
                .collect::<Result<_, _>>()
                .expect("rows");
            let read =
                arrow_select::concat::concat_batches(&read[0].schema(), &read).expect("concat");
            assert_eq!(read, batch, "{n} rows");
        }
        assert!(
            matches!(codecs[2], Compression::ZSTD(_)),
            "a 12 000-row part is large: {codecs:?}"
        );
        // A few rows sliced out of a large batch (ingest's buckets) are a
        // small part: sizes count the slice, not the buffers behind it.
        let pairs: Vec<_> = items.iter().map(|i| (i, "8001fffffffffff")).collect();
        let large = rows_to_batch(&schema, &pairs).expect("batch");
        assert!(rows_bytes(&large) >= SMALL_PART_BYTES);
        let slice = large.slice(100, 2);
        assert!(rows_bytes(&slice) < SMALL_PART_BYTES / 100);
        let part = encode(&slice, PartCodec::BySize).expect("encode");
        let reader = parquet::file::reader::SerializedFileReader::new(part.bytes).expect("parquet");
        use parquet::file::reader::FileReader;
        assert!(matches!(
            reader.metadata().row_group(0).column(0).compression(),
            Compression::SNAPPY
        ));
        // Files meant to stay are zstd however small.
        let pairs = [(&items[0], "8001fffffffffff")];
        let batch = rows_to_batch(&schema, &pairs).expect("batch");
        let part = encode(&batch, PartCodec::Zstd).expect("encode");
        let reader = parquet::file::reader::SerializedFileReader::new(part.bytes).expect("parquet");
        assert!(matches!(
            reader.metadata().row_group(0).column(0).compression(),
            Compression::ZSTD(_)
        ));
    }

    #[test]
    fn bounds_and_counts_come_from_the_rows() {
        let a = item("b-item", "2021-03-01T00:00:00Z", 40);
        let b = item("a-item", "2020-01-01T00:00:00Z", 90);
        let schema = arrow_schema().expect("schema");
        let batch = rows_to_batch(&schema, &[(&a, "8001fffffffffff"), (&b, "8001fffffffffff")])
            .expect("batch");
        let part = encode(&batch, PartCodec::BySize).expect("encode");
        let file = data_file(&batch, &part, "/tmp/x.parquet".into(), Struct::empty(), 0)
            .expect("data file");
        assert_eq!(file.record_count(), 2);
        assert_eq!(file.file_size_in_bytes(), part.bytes.len() as u64);
        assert_eq!(file.lower_bounds().get(&1), Some(&Datum::string("a-item")));
        assert_eq!(file.upper_bounds().get(&1), Some(&Datum::string("b-item")));
        assert_eq!(file.lower_bounds().get(&6), Some(&Datum::long(40)));
        assert_eq!(file.upper_bounds().get(&6), Some(&Datum::long(90)));
        let t = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .expect("rfc3339")
                .timestamp_micros()
        };
        assert_eq!(
            file.lower_bounds().get(&4),
            Some(&Datum::timestamptz_micros(t("2020-01-01T00:00:00Z")))
        );
        assert_eq!(
            file.upper_bounds().get(&4),
            Some(&Datum::timestamptz_micros(t("2021-03-01T00:00:00Z")))
        );
        // Long JSON columns carry no metrics; query columns do.
        assert!(!file.lower_bounds().contains_key(&9));
        assert!(!file.value_counts().contains_key(&9));
        assert_eq!(file.value_counts().get(&4), Some(&2));
        assert_eq!(file.null_value_counts().get(&13), Some(&2));
        // The bytes are a Parquet file with the table's field ids.
        let reader =
            parquet::file::reader::SerializedFileReader::new(part.bytes.clone()).expect("parquet");
        use parquet::file::reader::FileReader;
        let schema = reader.metadata().file_metadata().schema_descr();
        assert_eq!(schema.column(0).self_type().get_basic_info().id(), 1);
        let kv = reader
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .expect("kv");
        assert!(kv.iter().any(|k| k.key == "geo"));
    }
}
